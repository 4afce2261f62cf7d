package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/jws"
)

// MaxTokenSize is the longest token accepted; longer ones are refused
// before any parsing.
const MaxTokenSize = 8 << 10

// DefaultSkew is the clock skew allowed on exp, iat and nbf.
const DefaultSkew = 30 * time.Second

// DefaultCacheSize bounds the verified-token cache.
const DefaultCacheSize = 100_000

// Verification outcomes. Every refusal wraps ErrInvalidToken, so
// errors.Is(err, ErrInvalidToken) identifies them all; ErrExpired and
// ErrRevoked are the refusals a caller may want to tell apart. Messages
// give the reason, never the token, and are safe to log.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrExpired      = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrRevoked      = fmt.Errorf("%w: revoked", ErrInvalidToken)
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// KeySource finds the verification key a kid names. *Manager implements it.
type KeySource interface {
	VerificationKey(ctx context.Context, kid string) (PublicKey, bool)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Issuer    string        // exact iss
	Audience  string        // aud must be this, or an array containing it
	Skew      time.Duration // DefaultSkew when zero
	CacheSize int           // verified tokens remembered; DefaultCacheSize when zero, no cache when negative
}

// Verifier checks keygate access tokens. It is safe for concurrent use.
type Verifier struct {
	keys  KeySource
	rev   *Revocations
	cfg   VerifierConfig
	now   func() time.Time
	cache *tokenCache // nil when disabled
}

// NewVerifier returns a Verifier. rev may be nil (no revocation checks),
// now may be nil.
func NewVerifier(keys KeySource, rev *Revocations, cfg VerifierConfig, now func() time.Time) *Verifier {
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{keys: keys, rev: rev, cfg: cfg, now: now}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v
}

// Verify checks raw and returns its claims. A token verified before is
// answered from a cache keyed by the whole token until it expires, but the
// revocation check runs on every call, so a cached token is refused as soon
// as it is revoked.
func (v *Verifier) Verify(ctx context.Context, raw string) (*AccessClaims, error) {
	if len(raw) > MaxTokenSize {
		return nil, invalid("token too large")
	}
	now := v.now()
	if v.cache != nil {
		if c, ok := v.cache.get(raw, now); ok {
			if err := v.rev.Check(c); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	c, deadline, err := v.verify(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.rev.Check(c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(raw, c, deadline, now)
	}
	cp := *c
	return &cp, nil
}

// parseHeader reads the JOSE header with the shared rules (package jws:
// no crit, no embedded keys or key URLs) and adds the access token's own.
func parseHeader(seg string) (jws.Header, error) {
	h, err := jws.ParseHeader(seg)
	if err != nil {
		return h, invalid(jws.Reason(err))
	}
	// RFC 9068 §2.1: access tokens "MUST include this media type [at+jwt]
	// in the typ header parameter"; RFC 7515 §4.1.9 lets the "application/"
	// prefix be omitted and media types are case-insensitive. Checking it
	// keeps ID tokens and other JWTs out (RFC 8725 §3.11).
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return h, invalid("typ is not at+jwt")
	}
	if h.Alg != AlgES256 && h.Alg != AlgEdDSA {
		return h, invalid("alg not allowed")
	}
	if h.Kid == "" {
		return h, invalid("kid missing")
	}
	return h, nil
}

// b64 decodes unpadded base64url. The caller has checked the alphabet, so
// the decoder's tolerance of newlines cannot matter.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// splitCompact splits a compact JWS into its three parts, refusing any
// byte outside the base64url alphabet and the two dots.
func splitCompact(raw string) (h, p, s string, err error) {
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			dots++
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return "", "", "", invalid("not a compact JWS")
		}
	}
	if dots != 2 {
		return "", "", "", invalid("not a compact JWS")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ = strings.Cut(rest, ".")
	if h == "" || p == "" || s == "" {
		return "", "", "", invalid("not a compact JWS")
	}
	return h, p, s, nil
}

// verify does the full check of an uncached token. It returns the claims
// and the instant after which they must not be accepted.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*AccessClaims, time.Time, error) {
	hs, ps, ss, err := splitCompact(raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	h, err := parseHeader(hs)
	if err != nil {
		return nil, time.Time{}, err
	}
	key, ok := v.keys.VerificationKey(ctx, h.Kid)
	if !ok {
		return nil, time.Time{}, invalid("unknown kid")
	}
	// RFC 8725 §3.1: the algorithm is the key's, not the token's choice.
	if h.Alg != key.Alg {
		return nil, time.Time{}, invalid("alg does not match the key")
	}
	sig, err := b64(ss)
	if err != nil {
		return nil, time.Time{}, invalid("signature is not base64url")
	}
	signingInput := raw[:len(hs)+1+len(ps)]
	if !verifySignature(key, signingInput, sig) {
		return nil, time.Time{}, invalid("bad signature")
	}
	payload, err := b64(ps)
	if err != nil {
		return nil, time.Time{}, invalid("payload is not base64url")
	}
	return v.checkClaims(payload, now)
}

func verifySignature(key PublicKey, signingInput string, sig []byte) bool {
	switch key.Alg {
	case AlgES256:
		pub, ok := key.Key.(*ecdsa.PublicKey)
		// RFC 7518 §3.4: the signature is R || S, each 32 bytes for P-256.
		if !ok || len(sig) != 64 {
			return false
		}
		digest := sha256.Sum256([]byte(signingInput))
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, digest[:], r, s)
	case AlgEdDSA:
		pub, ok := key.Key.(ed25519.PublicKey)
		if !ok || len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(pub, []byte(signingInput), sig)
	default:
		return false
	}
}

func (v *Verifier) checkClaims(payload []byte, now time.Time) (*AccessClaims, time.Time, error) {
	var jc jwtClaims
	if err := json.Unmarshal(payload, &jc); err != nil {
		return nil, time.Time{}, invalid("claims are not valid JSON")
	}
	// RFC 9068 §2.2 makes these claims required.
	if jc.Issuer == "" || jc.Subject == "" || jc.ClientID == "" || jc.JTI == "" || jc.Expiry == 0 || jc.IssuedAt == 0 {
		return nil, time.Time{}, invalid("required claim missing")
	}
	// RFC 9068 §4: "The resource server MUST validate that the iss claim
	// exactly matches the issuer identifier" and that aud "contains a
	// resource indicator value corresponding to an identifier the resource
	// server expects for itself".
	if jc.Issuer != v.cfg.Issuer {
		return nil, time.Time{}, invalid("wrong issuer")
	}
	if !audienceHas(jc.Audience, v.cfg.Audience) {
		return nil, time.Time{}, invalid("wrong audience")
	}
	skew := v.cfg.Skew
	exp := time.Unix(jc.Expiry, 0).UTC()
	deadline := exp.Add(skew)
	if !now.Before(deadline) {
		return nil, time.Time{}, fmt.Errorf("%w at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	iat := time.Unix(jc.IssuedAt, 0).UTC()
	if iat.After(now.Add(skew)) {
		return nil, time.Time{}, invalid("issued in the future")
	}
	if jc.NotBefore != nil && time.Unix(*jc.NotBefore, 0).After(now.Add(skew)) {
		return nil, time.Time{}, invalid("not yet valid")
	}
	c := &AccessClaims{
		Issuer: jc.Issuer, Subject: jc.Subject, Audience: v.cfg.Audience, ClientID: jc.ClientID,
		Scope: jc.Scope, JTI: jc.JTI, SID: jc.SID, ACR: jc.ACR, AuthTime: jc.AuthTime,
		IssuedAt: iat, Expiry: exp,
	}
	if jc.Cnf != nil {
		c.JKT = jc.Cnf.JKT
	}
	return c, deadline, nil
}

// audienceHas reports whether aud, a JSON string or array of strings
// (RFC 7519 §4.1.3), contains want.
func audienceHas(aud json.RawMessage, want string) bool {
	aud = bytes.TrimSpace(aud)
	if len(aud) == 0 || want == "" {
		return false
	}
	if aud[0] == '[' {
		var list []string
		if err := json.Unmarshal(aud, &list); err != nil {
			return false
		}
		for _, a := range list {
			if a == want {
				return true
			}
		}
		return false
	}
	var s string
	return json.Unmarshal(aud, &s) == nil && s == want
}
