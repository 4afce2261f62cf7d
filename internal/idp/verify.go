// Package idp verifies ID tokens from the identity providers keygate
// trusts, for the token-exchange grant (RFC 8693 §2.1, subject_token_type
// urn:ietf:params:oauth:token-type:id_token).
//
// An ID token is an OpenID Connect Core 1.0 §2 JWT signed by its issuer.
// The issuer is read, unverified, only to choose the provider by exact
// match; everything else is believed only after the signature checks out
// against the provider's own keys, with an algorithm from the provider's
// configured list (RFC 8725 §3.1). Keys come from the configured jwks_uri,
// or from the jwks_uri of the issuer's discovery document (OpenID Connect
// Discovery 1.0 §4), over HTTPS unless the host is loopback. Key sets are
// cached; a token with an unknown kid causes one refetch (single-flight),
// at most once per MinRefetchInterval per provider, so a flood of forged
// kids cannot turn keygate into a load generator against the IdP.
//
// JOSE parsing and signature checks use go-jose; the header rules and the
// claim checks (OpenID Connect Core §3.1.3.7) are written here.
package idp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/jws"
	"github.com/keygate/keygate/internal/keyfetch"
)

// Limits and timings.
const (
	MaxTokenSize = 8 << 10
	// Skew is the clock skew allowed on exp, iat and nbf.
	Skew = 60 * time.Second
	// MinRefetchInterval is the least time between two key set fetches of
	// one provider.
	MinRefetchInterval = 30 * time.Second
	// KeySetMaxAge is how long a fetched key set is used before it is
	// fetched again (keys an IdP withdraws stop being accepted).
	KeySetMaxAge = time.Hour
	// MaxSubjectLen bounds sub; keygate subjects are "{idp}|{sub}".
	MaxSubjectLen = 255

	maxKeys       = 100
	discoveryPath = "/.well-known/openid-configuration"
)

var (
	// ErrInvalidIDToken is every refusal of the token itself. Messages give
	// the reason, never the token.
	ErrInvalidIDToken = errors.New("invalid id token")
	// ErrKeysUnavailable reports that the provider's keys could not be
	// fetched: not the token's fault.
	ErrKeysUnavailable = errors.New("identity provider keys unavailable")

	errRateLimited = errors.New("key set fetched less than 30s ago")
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidIDToken, reason) }

// Verifier verifies ID tokens of the configured providers. It is safe for
// concurrent use.
type Verifier struct {
	byIssuer map[string]*provider
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger
}

type provider struct {
	cfg  config.IdentityProvider
	algs []jose.SignatureAlgorithm

	sf singleflight.Group

	mu          sync.Mutex
	keys        []jose.JSONWebKey // replaced, never modified
	fetchedAt   time.Time
	lastAttempt time.Time
	jwksURI     string // configured or discovered
}

// New returns a Verifier for providers. client may be nil; it is copied
// and given a redirect policy that applies the HTTPS rule to every hop.
func New(providers []config.IdentityProvider, client *http.Client, now func() time.Time, logger *slog.Logger) *Verifier {
	c := keyfetch.Client(client)
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{byIssuer: make(map[string]*provider, len(providers)), client: c, now: now, log: logger}
	for _, p := range providers {
		pr := &provider{cfg: p, jwksURI: p.JWKSURI}
		for _, a := range p.Algorithms {
			pr.algs = append(pr.algs, jose.SignatureAlgorithm(a))
		}
		v.byIssuer[p.Issuer] = pr
	}
	return v
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

// parseHeader reads the JOSE header with the shared rules (package jws:
// no crit, no keys or key URLs from the token) and adds the ID token's own.
func parseHeader(seg string) (jws.Header, error) {
	h, err := jws.ParseHeader(seg)
	if err != nil {
		return h, invalid(jws.Reason(err))
	}
	// An ID token's typ, when present, is JWT (RFC 7519 §5.1; the
	// "application/" prefix may be omitted, RFC 7515 §4.1.9). Anything else,
	// such as at+jwt, is another kind of token (RFC 8725 §3.11).
	if h.HasTyp && !strings.EqualFold(h.Typ, "JWT") && !strings.EqualFold(h.Typ, "application/jwt") {
		return h, invalid("typ is not JWT")
	}
	return h, nil
}

// Verify checks an ID token and returns who it identifies.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if len(raw) > MaxTokenSize {
		return nil, invalid("token too large")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, invalid("not a compact JWS")
	}
	h, err := parseHeader(parts[0])
	if err != nil {
		return nil, err
	}
	payload, err := b64(parts[1])
	if err != nil {
		return nil, invalid("payload is not base64url")
	}
	claims, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	// Unverified: used only to pick whose keys to try.
	iss, _ := claims.str("iss")
	p, ok := v.byIssuer[iss]
	if !ok || iss == "" {
		return nil, invalid("unknown issuer")
	}
	if !slices.Contains(p.algs, jose.SignatureAlgorithm(h.Alg)) {
		return nil, invalid("alg not allowed for this issuer")
	}
	jws, err := jose.ParseSignedCompact(raw, p.algs)
	if err != nil {
		return nil, invalid("malformed JWS")
	}
	verified, err := v.verifySignature(ctx, p, jws, h)
	if err != nil {
		return nil, err
	}
	// Only the verified payload counts from here on.
	claims, err = parseClaims(verified)
	if err != nil {
		return nil, err
	}
	return v.checkClaims(p, claims)
}

func (v *Verifier) verifySignature(ctx context.Context, p *provider, jws *jose.JSONWebSignature, h jws.Header) ([]byte, error) {
	keys, fetchedAt := p.snapshot()
	if keys == nil || v.now().Sub(fetchedAt) >= KeySetMaxAge {
		if err := v.refresh(ctx, p); err != nil && !errors.Is(err, errRateLimited) {
			v.log.Warn("fetch identity provider keys", slog.String("idp", p.cfg.Name), slog.Any("error", err))
		}
		if keys, _ = p.snapshot(); keys == nil {
			return nil, fmt.Errorf("%w: %s", ErrKeysUnavailable, p.cfg.Name)
		}
	}
	cands := candidates(keys, h)
	if len(cands) == 0 {
		// Perhaps the IdP rotated: one refetch, rate limited.
		if err := v.refresh(ctx, p); err != nil && !errors.Is(err, errRateLimited) {
			v.log.Warn("fetch identity provider keys", slog.String("idp", p.cfg.Name), slog.Any("error", err))
		}
		keys, _ = p.snapshot()
		if cands = candidates(keys, h); len(cands) == 0 {
			return nil, invalid("no key of the issuer matches kid and alg")
		}
	}
	for _, k := range cands {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, invalid("bad signature")
}

// candidates are the keys that may have signed a token with header h: the
// kid matches (any key when the token names none), the key is for signing,
// and its alg, if stated, is the token's.
func candidates(keys []jose.JSONWebKey, h jws.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if (h.Kid != "" && k.KeyID != h.Kid) || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != h.Alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func (p *provider) snapshot() ([]jose.JSONWebKey, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys, p.fetchedAt
}

// refresh fetches the provider's key set once for all concurrent callers,
// unless a fetch was attempted less than MinRefetchInterval ago.
func (v *Verifier) refresh(ctx context.Context, p *provider) error {
	_, err, _ := p.sf.Do("jwks", func() (any, error) {
		now := v.now()
		p.mu.Lock()
		if !p.lastAttempt.IsZero() && now.Sub(p.lastAttempt) < MinRefetchInterval {
			p.mu.Unlock()
			return nil, errRateLimited
		}
		p.lastAttempt = now
		uri := p.jwksURI
		p.mu.Unlock()

		// Shared by every waiter, so not bound to the first caller's request.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyfetch.Timeout)
		defer cancel()
		if uri == "" {
			var err error
			if uri, err = v.discover(fctx, p.cfg.Issuer); err != nil {
				return nil, err
			}
		}
		keys, err := v.fetchKeys(fctx, uri)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.keys, p.fetchedAt, p.jwksURI = keys, v.now(), uri
		p.mu.Unlock()
		v.log.Debug("fetched identity provider keys", slog.String("idp", p.cfg.Name), slog.Int("keys", len(keys)))
		return nil, nil
	})
	return err
}

// discover reads jwks_uri from the issuer's OpenID Provider Configuration.
func (v *Verifier) discover(ctx context.Context, issuer string) (string, error) {
	body, err := keyfetch.Get(ctx, v.client, strings.TrimSuffix(issuer, "/")+discoveryPath)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	// OpenID Connect Discovery 1.0 §4.3: "The issuer value returned MUST be
	// identical to the Issuer URL that was used as the prefix".
	if doc.Issuer != issuer {
		return "", errors.New("discovery: issuer in the document does not match")
	}
	if doc.JWKSURI == "" {
		return "", errors.New("discovery: no jwks_uri")
	}
	return doc.JWKSURI, nil
}

// fetchKeys reads a JWK Set, keeping the public signature keys it can use
// and skipping the rest (unknown key types must not hide the good ones).
func (v *Verifier) fetchKeys(ctx context.Context, uri string) ([]jose.JSONWebKey, error) {
	body, err := keyfetch.Get(ctx, v.client, uri)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := []jose.JSONWebKey{}
	for _, raw := range set.Keys {
		if len(keys) == maxKeys {
			break
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		if keyfetch.UsableKey(k.Key) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable signature keys")
	}
	return keys, nil
}

// claims are a JWT claims set with members looked up by exact name.
type claims map[string]json.RawMessage

func parseClaims(payload []byte) (claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil || c == nil {
		return nil, invalid("claims are not a JSON object")
	}
	return c, nil
}

func (c claims) has(name string) bool { _, ok := c[name]; return ok }

func (c claims) str(name string) (string, error) {
	var s string
	if err := json.Unmarshal(c[name], &s); err != nil {
		return "", invalid(name + " is not a string")
	}
	return s, nil
}

// date reads a NumericDate (RFC 7519 §2): seconds, possibly fractional.
func (c claims) date(name string) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(c[name], &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, invalid(name + " is not a NumericDate")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// audiences reads aud: a string or an array of strings (RFC 7519 §4.1.3).
func (c claims) audiences() ([]string, error) {
	raw := bytes.TrimSpace(c["aud"])
	if len(raw) > 0 && raw[0] == '[' {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, invalid("aud is not a string or array of strings")
		}
		return list, nil
	}
	s, err := c.str("aud")
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// checkClaims applies OpenID Connect Core 1.0 §3.1.3.7. The azp claim is
// not checked: Google, for one, sets it to the Android or iOS client while
// aud is the server's client id, and aud already binds the token to us.
func (v *Verifier) checkClaims(p *provider, c claims) (*Identity, error) {
	now := v.now()
	// §3.1.3.7 (2): "The Issuer Identifier ... MUST exactly match the value
	// of the iss (issuer) Claim."
	if iss, err := c.str("iss"); err != nil || iss != p.cfg.Issuer {
		return nil, invalid("wrong issuer")
	}
	// (3): "The Client MUST validate that the aud (audience) Claim contains
	// its client_id value registered at the Issuer".
	auds, err := c.audiences()
	if err != nil {
		return nil, err
	}
	var aud string
	for _, a := range auds {
		if slices.Contains(p.cfg.Audiences, a) {
			aud = a
			break
		}
	}
	if aud == "" {
		return nil, invalid("audience not accepted")
	}
	// (9): "The current time MUST be before the time represented by the exp Claim."
	if !c.has("exp") {
		return nil, invalid("exp missing")
	}
	exp, err := c.date("exp")
	if err != nil {
		return nil, err
	}
	if !now.Before(exp.Add(Skew)) {
		return nil, invalid("expired")
	}
	if !c.has("iat") {
		return nil, invalid("iat missing")
	}
	iat, err := c.date("iat")
	if err != nil {
		return nil, err
	}
	if iat.After(now.Add(Skew)) {
		return nil, invalid("issued in the future")
	}
	if c.has("nbf") {
		nbf, err := c.date("nbf")
		if err != nil {
			return nil, err
		}
		if nbf.After(now.Add(Skew)) {
			return nil, invalid("not yet valid")
		}
	}
	sub, err := c.str("sub")
	if err != nil || !validSubject(sub) {
		return nil, invalid("sub missing or malformed")
	}
	id := &Identity{Provider: p.cfg.Name, Subject: sub, Audience: aud, Expiry: exp}
	if c.has("acr") {
		if id.ACR, err = c.str("acr"); err != nil {
			return nil, err
		}
	}
	if c.has("auth_time") {
		at, err := c.date("auth_time")
		if err != nil {
			return nil, err
		}
		id.AuthTime = at.Unix()
	}
	return id, nil
}

// validSubject: non-empty, at most MaxSubjectLen bytes, UTF-8 without
// control characters (it ends up in logs and audit records). A "|" is
// fine: the provider name comes first in "{idp}|{sub}" and cannot hold one.
func validSubject(s string) bool {
	if s == "" || len(s) > MaxSubjectLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
