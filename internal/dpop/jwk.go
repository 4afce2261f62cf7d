package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// b64 is base64url without padding (RFC 7515 §2), strict about the unused
// trailing bits so that every value has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// isB64URL reports whether s uses only the base64url alphabet. The decoder
// alone is not enough: it skips CR and LF.
func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(s)%4 != 1
}

// jwk holds the members of a JSON Web Key (RFC 7517) that matter here.
type jwk struct {
	kty, crv, x, y, n, e string
	private              bool // d, p, q, dp, dq, qi, oth or k present
}

const (
	seenKty = 1 << iota
	seenCrv
	seenX
	seenY
	seenN
	seenE
)

func parseJWK(data []byte) (jwk, error) {
	var k jwk
	var seen uint
	err := eachMember(data, func(key string, kind jsonKind, raw []byte) error {
		var dst *string
		var bit uint
		switch key {
		case "kty":
			dst, bit = &k.kty, seenKty
		case "crv":
			dst, bit = &k.crv, seenCrv
		case "x":
			dst, bit = &k.x, seenX
		case "y":
			dst, bit = &k.y, seenY
		case "n":
			dst, bit = &k.n, seenN
		case "e":
			dst, bit = &k.e, seenE
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			// RFC 9449 §4.3 check 7: "the JWK does not contain a private key".
			k.private = true
			return nil
		default:
			return nil
		}
		if seen&bit != 0 {
			return errDuplicate
		}
		seen |= bit
		if kind != kindString {
			return errMemberType
		}
		v, err := jsonString(raw)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	})
	if err == errJSON {
		err = errJWKJSON
	}
	return k, err
}

// publicKey returns the verification key for alg, or an error saying why k
// cannot be one.
func (k *jwk) publicKey(alg string) (any, error) {
	if k.private {
		return nil, errPrivateJWK
	}
	switch alg {
	case "ES256":
		if k.kty != "EC" || k.crv != "P-256" {
			return nil, errJWKType
		}
		// RFC 7518 §6.2.1.2: "The length of this octet string MUST be the
		// full size of a coordinate for the curve".
		var point [65]byte
		point[0] = 4
		if !decodeExact(point[1:33], k.x) || !decodeExact(point[33:], k.y) {
			return nil, errJWKKey
		}
		// ParseUncompressedPublicKey refuses points not on the curve
		// (RFC 8725 §3.4, invalid-curve attacks).
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
		if err != nil {
			return nil, errJWKKey
		}
		return pub, nil
	case "EdDSA", "Ed25519":
		// RFC 8037 §2: kty "OKP", crv "Ed25519", x the 32-byte public key.
		if k.kty != "OKP" || k.crv != "Ed25519" {
			return nil, errJWKType
		}
		pub := make([]byte, ed25519.PublicKeySize)
		if !decodeExact(pub, k.x) {
			return nil, errJWKKey
		}
		return ed25519.PublicKey(pub), nil
	}
	return nil, errAlg
}

// decodeExact decodes base64url s into dst and reports whether it filled
// dst exactly.
func decodeExact(dst []byte, s string) bool {
	if b64.DecodedLen(len(s)) != len(dst) || !isB64URL(s) {
		return false
	}
	n, err := b64.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// thumbprint returns the RFC 7638 thumbprint of k: base64url(SHA-256) of
// the required members in lexicographic order, no whitespace (§3.2, §3.3).
func (k *jwk) thumbprint() (string, error) {
	var buf [512]byte
	b := buf[:0]
	switch k.kty {
	case "EC": // RFC 7638 §3.2: crv, kty, x, y
		if k.crv == "" || k.x == "" || k.y == "" {
			return "", errors.New("ec jwk needs crv, x and y")
		}
		b = append(b, `{"crv":`...)
		b = appendJSONString(b, k.crv)
		b = append(b, `,"kty":"EC","x":`...)
		b = appendJSONString(b, k.x)
		b = append(b, `,"y":`...)
		b = appendJSONString(b, k.y)
	case "OKP": // RFC 8037 §2: crv, kty, x
		if k.crv == "" || k.x == "" {
			return "", errors.New("okp jwk needs crv and x")
		}
		b = append(b, `{"crv":`...)
		b = appendJSONString(b, k.crv)
		b = append(b, `,"kty":"OKP","x":`...)
		b = appendJSONString(b, k.x)
	case "RSA": // RFC 7638 §3.2: e, kty, n
		if k.e == "" || k.n == "" {
			return "", errors.New("rsa jwk needs e and n")
		}
		b = append(b, `{"e":`...)
		b = appendJSONString(b, k.e)
		b = append(b, `,"kty":"RSA","n":`...)
		b = appendJSONString(b, k.n)
	default:
		return "", fmt.Errorf("jwk kty %q not supported", k.kty)
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return b64.EncodeToString(sum[:]), nil
}

// appendJSONString appends s as a JSON string with the minimal escaping of
// RFC 8259 §7 (no HTML escaping, which would change the thumbprint).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Thumbprint returns the RFC 7638 JWK thumbprint (base64url SHA-256) of the
// JSON Web Key jwkJSON: the value of jkt (RFC 9449 §6.1). EC, OKP and RSA
// keys are supported; only the required public members take part, so a
// private JWK has the thumbprint of its public key.
func Thumbprint(jwkJSON []byte) (string, error) {
	k, err := parseJWK(jwkJSON)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	tp, err := k.thumbprint()
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	return tp, nil
}
