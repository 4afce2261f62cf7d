package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/httpapi"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionAlgs are the signature algorithms accepted for client
// assertions: an explicit list, so "none" and the HMAC algorithms (whose
// "key" would be public JWKS material) can never verify.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// forbiddenHeaders would let the token name its own verification key or
// demand processing keygate does not do; a client's keys come only from its
// registered JWKS.
var forbiddenHeaders = []string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// replayNamespace holds the jti of accepted client assertions.
const replayNamespace = "client-assertion"

// authenticateClient identifies and authenticates the client of an
// endpoint request with exactly one method (RFC 6749 §2.3: "The client
// MUST NOT use more than one authentication method in each request").
//
// Failures are invalid_client 401, with a Basic challenge when the client
// tried Basic (RFC 6749 §5.2: "If the client attempted to authenticate via
// the "Authorization" request header field, the authorization server MUST
// respond with an HTTP 401 (Unauthorized) status code and include the
// WWW-Authenticate response header field matching the authentication
// scheme used by the client.").
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, f form) (*client, error) {
	authz := r.Header.Get("Authorization")
	usesBasic := authz != ""
	usesPost := f.get("client_secret") != ""
	usesJWT := f.get("client_assertion") != "" || f.get("client_assertion_type") != ""
	n := 0
	for _, b := range []bool{usesBasic, usesPost, usesJWT} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, invalidRequest("more than one client authentication method used")
	}
	formID := f.get("client_id")
	switch {
	case usesBasic:
		id, secret, ok := parseBasic(authz)
		if !ok {
			return nil, invalidClient(true, "malformed basic credentials")
		}
		if formID != "" && formID != id {
			return nil, invalidRequest("client_id does not match the authenticated client")
		}
		return s.checkSecret(ctx, id, secret, AuthClientSecretBasic, true)
	case usesPost:
		if formID == "" {
			return nil, invalidClient(false, "client_id is required with client_secret")
		}
		return s.checkSecret(ctx, formID, f.get("client_secret"), AuthClientSecretPost, false)
	case usesJWT:
		c, err := s.checkAssertion(ctx, f.get("client_assertion_type"), f.get("client_assertion"), formID)
		if err != nil {
			return nil, err
		}
		return c, nil
	default:
		if formID == "" {
			return nil, invalidClient(false, "client authentication required")
		}
		c, ok := s.clients[formID]
		if !ok {
			return nil, invalidClient(false, "unknown client")
		}
		if !c.Public {
			return nil, invalidClient(false, "client authentication required")
		}
		return c, nil
	}
}

func invalidClient(basic bool, description string) *httpapi.OAuthError {
	e := &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: description}
	if basic {
		e.Challenge = "Basic"
	}
	return e
}

// parseBasic decodes client_secret_basic credentials. RFC 6749 §2.3.1:
// "The client identifier is encoded using the
// "application/x-www-form-urlencoded" encoding algorithm per Appendix B,
// and the encoded value is used as the username; the client password is
// encoded using the same algorithm and used as the password."
func parseBasic(h string) (id, secret string, ok bool) {
	scheme, cred, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") || len(cred) > maxTokenBytes {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(u); err != nil || id == "" {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(p); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// checkSecret authenticates a client_secret_basic or client_secret_post
// client.
func (s *Server) checkSecret(ctx context.Context, id, secret, method string, basic bool) (*client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, invalidClient(basic, "unknown client")
	}
	if c.Public {
		return nil, invalidClient(basic, "a public client must not present a client secret")
	}
	if c.AuthMethod != method {
		return nil, invalidClient(basic, "client is not registered for "+method)
	}
	want, err := s.deps.Secrets.Secret(ctx, c.SecretName)
	if err != nil {
		return nil, fmt.Errorf("client %s secret: %w", c.ID, err)
	}
	// Hashing first makes the comparison constant-time in the lengths too.
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256(want)
	clear(want)
	if secret == "" || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return nil, invalidClient(basic, "client authentication failed")
	}
	return c, nil
}

// checkAssertion authenticates a private_key_jwt client (RFC 7523 §2.2,
// §3) and consumes the assertion's jti.
func (s *Server) checkAssertion(ctx context.Context, typ, assertion, formID string) (*client, error) {
	if typ == "" || assertion == "" {
		return nil, invalidRequest("client_assertion and client_assertion_type are both required")
	}
	if typ != ClientAssertionType {
		return nil, invalidClient(false, "unsupported client_assertion_type")
	}
	c, claims, err := s.verifyAssertion(ctx, assertion, formID, s.now())
	if err != nil {
		return nil, err
	}
	// RFC 7523 §3: "The authorization server MAY ensure that JWTs are not
	// replayed by maintaining the set of used "jti" values for the length
	// of time for which the JWT would be considered valid based on the
	// applicable "exp" instant." Remembered until exp plus the leeway
	// during which it would still be accepted.
	fresh, err := s.deps.Store.Remember(ctx, replayNamespace, c.ID+" "+claims.ID, claims.Expiry.Time().Add(clockSkew))
	if err != nil {
		return nil, fmt.Errorf("remember client assertion: %w", err)
	}
	if !fresh {
		return nil, invalidClient(false, "client assertion was already used")
	}
	return c, nil
}

// verifyAssertion checks a client assertion without consuming it.
func (s *Server) verifyAssertion(ctx context.Context, assertion, formID string, now time.Time) (*client, *jwt.Claims, error) {
	fail := func(d string) (*client, *jwt.Claims, error) { return nil, nil, invalidClient(false, d) }
	if len(assertion) > maxTokenBytes {
		return fail("client assertion is too large")
	}
	if err := checkJWSHeader(assertion); err != nil {
		return fail(err.Error())
	}
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return fail("client assertion is malformed or uses an unsupported algorithm")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return fail("client assertion claims are malformed")
	}
	// RFC 7523 §3: "For client authentication, the subject MUST be the
	// "client_id" of the OAuth client." and the issuer likewise (§2.2).
	id := unverified.Subject
	if id == "" || unverified.Issuer != id {
		return fail("client assertion iss and sub must both be the client_id")
	}
	if formID != "" && formID != id {
		return fail("client_id does not match the client assertion")
	}
	c, ok := s.clients[id]
	if !ok || c.Public || c.AuthMethod != AuthPrivateKeyJWT {
		return fail("client is not registered for private_key_jwt")
	}
	keys, err := s.clientKeys(ctx, c, tok.Headers[0].KeyID)
	if err != nil {
		// The client's server is down or serves garbage: the client cannot
		// be authenticated, and the cause is for keygate's log only.
		return nil, nil, &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_client",
			Description: "the client's keys could not be obtained", Cause: fmt.Errorf("client %s: %w", c.ID, err)}
	}
	var claims jwt.Claims
	if !verifyWithJWKS(tok, keys, &claims) {
		return fail("client assertion signature is invalid")
	}
	if claims.Issuer != id || claims.Subject != id {
		return fail("client assertion iss and sub must both be the client_id")
	}
	// RFC 7523 §3: "The JWT MUST contain an "aud" (audience) claim
	// containing a value that identifies the authorization server as an
	// intended audience." Exact match on the token endpoint or issuer.
	if !claims.Audience.Contains(s.tokenURL) && !claims.Audience.Contains(s.cfg.Issuer) {
		return fail("client assertion audience is not this server")
	}
	// RFC 7523 §3: "The JWT MUST contain an "exp" (expiration time) claim
	// that limits the time window during which the JWT can be used."
	if claims.Expiry == nil {
		return fail("client assertion has no exp")
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp.Add(clockSkew)) {
		return fail("client assertion has expired")
	}
	if exp.After(now.Add(maxAssertionLifetime + clockSkew)) {
		return fail("client assertion lives too long")
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(clockSkew)) {
		return fail("client assertion is not yet valid")
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(clockSkew)) {
		return fail("client assertion is issued in the future")
	}
	if claims.ID == "" || len(claims.ID) > 256 {
		return fail("client assertion needs a jti")
	}
	return c, &claims, nil
}

// checkJWSHeader refuses what go-jose would otherwise accept or ignore:
// anything but compact serialization, and headers that point at keys.
func checkJWSHeader(compact string) error {
	h, _, ok := strings.Cut(compact, ".")
	if !ok || strings.Count(compact, ".") != 2 {
		return fmt.Errorf("client assertion must be a compact JWS")
	}
	raw, err := b64.DecodeString(h)
	if err != nil {
		return fmt.Errorf("client assertion header is malformed")
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return fmt.Errorf("client assertion header is malformed")
	}
	for _, name := range forbiddenHeaders {
		if _, ok := hdr[name]; ok {
			return fmt.Errorf("client assertion header %s is not accepted", name)
		}
	}
	return nil
}

// clientKeys returns the client's inline keys, or those at its jwks_uri
// (refetched once, rate limited, when none has kid).
func (s *Server) clientKeys(ctx context.Context, c *client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKSURI == "" {
		return c.JWKS.Keys, nil
	}
	keys, err := s.deps.ClientKeys.Keys(ctx, c.JWKSURI, kid)
	if err != nil {
		return nil, err
	}
	// Only public keys: a published private key is no proof of anything.
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		if k.IsPublic() {
			out = append(out, k)
		}
	}
	return out, nil
}

// verifyWithJWKS verifies tok with the client's keys that match its kid
// (all keys when it has none) and alg.
func verifyWithJWKS(tok *jwt.JSONWebToken, keys []jose.JSONWebKey, dst *jwt.Claims) bool {
	hdr := tok.Headers[0]
	for _, k := range keys {
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if err := tok.Claims(k.Key, dst); err == nil {
			return true
		}
	}
	return false
}
