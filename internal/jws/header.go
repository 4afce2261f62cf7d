// Package jws parses the protected header of a compact JWS (RFC 7515 §7.1)
// under the rules keygate applies to every JWT it verifies against keys it
// already holds (access tokens, ID tokens): RFC 7515 §4.1.11 critical
// extensions are refused, since keygate implements none, and RFC 8725
// §3.10 keys or key URLs carried by the token itself (jwk, jku, x5u, x5c)
// are refused, since a key named by the token proves nothing and fetching
// one is a request-forgery vector. What a caller then demands of alg, kid
// and typ is its own business.
//
// Written by hand: go-jose parses headers leniently (case-insensitive
// member matching through encoding/json, embedded keys accepted), and the
// strict variant is a few lines.
package jws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
)

// Header holds the members keygate reads from a protected header.
type Header struct {
	Alg, Kid, Typ string
	HasTyp        bool // typ present (possibly empty)
}

// HeaderError is every refusal. Reason says which rule failed and is safe
// to log or to put in an error description.
type HeaderError struct{ Reason string }

func (e *HeaderError) Error() string { return "invalid JOSE header: " + e.Reason }

func refuse(reason string) error { return &HeaderError{Reason: reason} }

// Reason returns the reason of a *HeaderError in err, or err's text.
func Reason(err error) string {
	if he, ok := errors.AsType[*HeaderError](err); ok {
		return he.Reason
	}
	return err.Error()
}

// ParseHeader decodes seg, the base64url first part of a compact JWS, and
// applies the rules in the package documentation. Members are looked up
// by exact name: encoding/json would match struct fields
// case-insensitively.
func ParseHeader(seg string) (Header, error) {
	var h Header
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return h, refuse("header is not base64url")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return h, refuse("header is not a JSON object")
	}
	// RFC 7515 §4.1.11: "Recipients MUST understand and process" every name
	// listed in crit; an empty list is forbidden too, so any crit is refused.
	if _, ok := m["crit"]; ok {
		return h, refuse("crit header not supported")
	}
	for _, name := range []string{"jwk", "jku", "x5u", "x5c"} {
		if _, ok := m[name]; ok {
			return h, refuse(name + " header not allowed")
		}
	}
	for name, dst := range map[string]*string{"alg": &h.Alg, "kid": &h.Kid, "typ": &h.Typ} {
		raw, ok := m[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return h, refuse(name + " header is not a string")
		}
	}
	_, h.HasTyp = m["typ"]
	if h.Alg == "" {
		return h, refuse("alg missing")
	}
	return h, nil
}
