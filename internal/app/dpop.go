package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/clientkeys"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/dpop"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/httpsig"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/vault"
)

// DPoPNonceKeySecret is the vault secret holding the key that seals DPoP
// server nonces (dpop.nonce: true). All nodes share it, so any node accepts
// any node's nonce.
const DPoPNonceKeySecret = "keygate/dpop-nonce"

// ProblemInvalidSignature is the problem type of a request refused for its
// RFC 9421 signature on a route with require_signature.
const ProblemInvalidSignature = httpapi.ProblemTypeBase + "invalid-signature"

// setupDPoP configures DPoP (RFC 9449) at the token endpoint and the proxy,
// and request signatures (RFC 9421) for routes that require them.
func (a *App) setupDPoP(ctx context.Context, mux *http.ServeMux) error {
	cfg := a.cfg
	issuer := strings.TrimSuffix(cfg.Issuer, "/")
	dc := dpop.Config{Window: cfg.DPoP.ProofWindow.Std(), RequireNonce: cfg.DPoP.Nonce}
	if cfg.DPoP.Nonce {
		key, err := a.sharedKey(ctx, DPoPNonceKeySecret, dpop.NonceKeySize)
		if err != nil {
			return fmt.Errorf("dpop nonce key: %w", err)
		}
		dc.NonceKey = key
	}
	v := dpop.NewVerifier(dc, a.st, a.now)
	a.dpopTokenEndpoint = &tokenEndpointDPoP{proofs: v, url: issuer + "/oauth2/token"}
	a.dpopAuth = proxy.NewDPoPAuth(a.verifier, v, issuer, a.now)

	a.clientKeys = clientkeys.New(&http.Client{Timeout: 10 * time.Second}, a.now, a.log)
	keys, err := newClientKeys(cfg.Clients, a.secret)
	if err != nil {
		return err
	}
	if hasSignedRoutes(cfg.Upstreams) {
		for _, w := range keys.warnings {
			a.log.Warn("request signatures: " + w)
		}
	}
	keys.fetch, keys.log = a.clientKeys, a.log
	sc := &signatureCheck{
		verifier: httpsig.NewVerifier(keys, a.st, cfg.DPoP.ProofWindow.Std(), a.now),
		issuer:   issuer,
		maxBody:  make(map[string]int64, len(cfg.Upstreams)),
	}
	for _, u := range cfg.Upstreams {
		n := int64(u.MaxRequestBody)
		if n <= 0 {
			n = int64(config.DefaultMaxRequestBody)
		}
		sc.maxBody[u.Name] = n
	}
	// First of the pre-forward checks: an unsigned request must not count
	// against limits or spend a capability use.
	a.checks = append(a.checks, sc.check)
	return nil
}

// sharedKey loads a random key of size bytes from the vault secret name,
// creating it on first start (as refreshKey does).
func (a *App) sharedKey(ctx context.Context, name string, size int) ([]byte, error) {
	s, _, err := a.vault.Get(ctx, name)
	if errors.Is(err, vault.ErrNotFound) {
		b := make([]byte, size)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if _, err := a.vault.Put(ctx, name, vault.NewSecret(b)); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		s, _, err = a.vault.Get(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	key := s.Reveal()
	if len(key) != size {
		return nil, fmt.Errorf("vault secret %s holds %d bytes, want %d", name, len(key), size)
	}
	return key, nil
}

// proofVerifier is the part of dpop.Verifier the token endpoint uses.
type proofVerifier interface {
	Verify(ctx context.Context, req dpop.Request) (*dpop.Proof, error)
	NewNonce() string
}

// tokenEndpointDPoP checks DPoP proofs at the token endpoint (RFC 9449 §5);
// it implements oauth.DPoPVerifier.
type tokenEndpointDPoP struct {
	proofs proofVerifier
	url    string // issuer + "/oauth2/token", the htu a proof must name
}

// TokenRequestJKT returns the thumbprint of the proof's key, or "" when the
// request has no DPoP header (a Bearer token request).
func (t *tokenEndpointDPoP) TokenRequestJKT(r *http.Request) (string, error) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 {
		return "", nil
	}
	// No ath at the token endpoint: no access token is presented there.
	proof, err := t.proofs.Verify(r.Context(), dpop.Request{Proofs: proofs, Method: r.Method, URL: t.url})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		// RFC 9449 §8: "the authorization server responds with an HTTP
		// 400 ... "error": "use_dpop_nonce" ... [and] a DPoP-Nonce
		// header with the nonce value".
		return "", &httpapi.OAuthError{Status: http.StatusBadRequest, Code: "use_dpop_nonce",
			Description: "Authorization server requires nonce in DPoP proof",
			Header:      http.Header{"Dpop-Nonce": {t.proofs.NewNonce()}}}
	case errors.Is(err, dpop.ErrInvalidProof):
		// The text names the failed check and is safe to send.
		return "", &httpapi.OAuthError{Status: http.StatusBadRequest, Code: "invalid_dpop_proof", Description: err.Error()}
	case err != nil:
		return "", &httpapi.OAuthError{Status: http.StatusInternalServerError, Code: "server_error",
			Description: "the DPoP proof could not be checked", Cause: err}
	}
	return proof.JKT, nil
}

// clientKeys resolves the keyid of a request signature (DESIGN.md "Signed
// requests"): a kid of a confidential client's jwks, inline or at its
// jwks_uri (Ed25519 or P-256 keys), or "hmac:{client_id}" for the client's
// hmac_secret, read from the vault on every use so that `keygate secret
// rotate` takes effect at once. A kid that more than one client registers
// names no key.
type clientKeys struct {
	keys     map[string]httpsig.Key // inline, by kid
	inline   map[string]bool        // every inline kid, ambiguous ones too
	uris     map[string]string      // client id -> jwks_uri
	hmac     map[string]string      // client id -> vault secret name
	secret   func(ctx context.Context, name string) ([]byte, error)
	fetch    *clientkeys.Cache
	log      *slog.Logger
	warnings []string
}

func newClientKeys(clients []config.Client, secret func(context.Context, string) ([]byte, error)) (*clientKeys, error) {
	k := &clientKeys{keys: map[string]httpsig.Key{}, inline: map[string]bool{}, uris: map[string]string{}, hmac: map[string]string{}, secret: secret}
	owner := map[string]string{} // kid -> client id
	ambiguous := map[string]bool{}
	for _, c := range clients {
		if c.Type != config.ClientConfidential {
			continue
		}
		if c.HMACSecret != "" {
			k.hmac[c.ID] = c.HMACSecret
		}
		if c.JWKSURI != "" {
			k.uris[c.ID] = c.JWKSURI
		}
		if len(c.JWKS) == 0 {
			continue
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return nil, fmt.Errorf("clients %s: jwks: %w", c.ID, err)
		}
		for _, jwk := range set.Keys {
			key, ok := signatureKey(jwk, c.ID)
			if !ok {
				continue
			}
			k.inline[jwk.KeyID] = true
			if strings.HasPrefix(jwk.KeyID, "hmac:") {
				k.warnings = append(k.warnings, fmt.Sprintf("client %s: kid %q is reserved for HMAC keyids and is not used", c.ID, jwk.KeyID))
				continue
			}
			if prev, dup := owner[jwk.KeyID]; dup && prev != c.ID {
				// A keyid must name one client: the signature decides
				// whose request it is.
				ambiguous[jwk.KeyID] = true
				k.warnings = append(k.warnings, fmt.Sprintf("kid %q is registered by clients %s and %s and is not used", jwk.KeyID, prev, c.ID))
				continue
			}
			owner[jwk.KeyID] = c.ID
			k.keys[jwk.KeyID] = key
		}
	}
	for kid := range ambiguous {
		delete(k.keys, kid)
	}
	return k, nil
}

// ResolveKey implements httpsig.KeyResolver.
func (k *clientKeys) ResolveKey(ctx context.Context, keyid string) (httpsig.Key, error) {
	if id, ok := strings.CutPrefix(keyid, "hmac:"); ok {
		name, ok := k.hmac[id]
		if !ok {
			return httpsig.Key{}, httpsig.ErrUnknownKey
		}
		b, err := k.secret(ctx, name)
		if errors.Is(err, vault.ErrNotFound) {
			return httpsig.Key{}, fmt.Errorf("client %s: hmac secret %s: %w", id, name, httpsig.ErrUnknownKey)
		}
		if err != nil {
			return httpsig.Key{}, fmt.Errorf("client %s: hmac secret: %w", id, err)
		}
		return httpsig.Key{Alg: httpsig.AlgHMACSHA256, HMACSecret: b, ClientID: id}, nil
	}
	var found []httpsig.Key
	if key, ok := k.keys[keyid]; ok {
		found = append(found, key)
	} else if k.inline[keyid] {
		return httpsig.Key{}, httpsig.ErrUnknownKey // registered by two clients
	}
	for id, uri := range k.uris {
		// An inline kid must still be unique, but need not cause refetches.
		want := keyid
		if len(found) > 0 {
			want = ""
		}
		set, err := k.fetch.Keys(ctx, uri, want)
		if err != nil {
			if k.log != nil {
				k.log.Warn("request signatures: client keys", slog.String("client", id), slog.Any("error", err))
			}
			continue
		}
		for _, jwk := range set {
			if jwk.KeyID != keyid {
				continue
			}
			if key, ok := signatureKey(jwk, id); ok {
				found = append(found, key)
				break
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		if k.log != nil {
			k.log.Warn("request signatures: kid is registered by more than one client and is not used", slog.String("kid", keyid))
		}
	}
	return httpsig.Key{}, httpsig.ErrUnknownKey
}

// signatureKey converts a JWK to a request-signature key of clientID, if
// it is one keygate verifies (Ed25519 or P-256, with a kid, not for
// encryption).
func signatureKey(jwk jose.JSONWebKey, clientID string) (httpsig.Key, bool) {
	if jwk.KeyID == "" || jwk.Use == "enc" || !jwk.IsPublic() {
		return httpsig.Key{}, false
	}
	switch pub := jwk.Key.(type) {
	case ed25519.PublicKey:
		return httpsig.Key{Alg: httpsig.AlgEd25519, Public: pub, ClientID: clientID}, true
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return httpsig.Key{}, false
		}
		return httpsig.Key{Alg: httpsig.AlgECDSAP256SHA256, Public: pub, ClientID: clientID}, true
	default:
		return httpsig.Key{}, false // RSA and other curves: no RFC 9421 algorithm keygate verifies
	}
}

func hasSignedRoutes(ups []config.Upstream) bool {
	for _, u := range ups {
		for _, r := range u.Routes {
			if r.RequireSignature {
				return true
			}
		}
	}
	return false
}

// signatureCheck is the pre-forward check of routes with
// require_signature: true.
type signatureCheck struct {
	verifier *httpsig.Verifier
	issuer   string
	maxBody  map[string]int64 // by upstream
}

func (s *signatureCheck) check(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error {
	if !route.RequireSignature {
		return nil
	}
	// The body is read in full (up to max_request_body) and put back, so
	// the bytes whose Content-Digest is checked are the bytes forwarded.
	body, err := httpsig.ReadBody(r, s.maxBody[route.Upstream])
	if errors.Is(err, httpsig.ErrBodyTooLarge) {
		return &httpapi.Problem{Status: http.StatusRequestEntityTooLarge, Type: proxy.ProblemBodyTooLarge,
			Title: "Content Too Large", Detail: fmt.Sprintf("the request body exceeds %d bytes", s.maxBody[route.Upstream])}
	}
	if err != nil {
		return &httpapi.Problem{Status: http.StatusBadRequest, Type: httpapi.ProblemTypeBase + "bad-request",
			Title: "Bad Request", Detail: "the request body could not be read", Cause: err}
	}
	// @target-uri (RFC 9421 §2.2.2) is the configured public origin and the
	// request-target exactly as the client sent it, query included; never
	// the Host header, which is the client's to choose.
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	clientID, err := s.verifier.Verify(r.Context(), r, s.issuer+target, body)
	if errors.Is(err, httpsig.ErrInvalidSignature) {
		return invalidSignature(r, len(body) > 0, err.Error())
	}
	if err != nil {
		return fmt.Errorf("verify request signature: %w", err)
	}
	// The signature authenticates the client; the token says for whom it
	// acts. Both must be the same client, or one client's token could ride
	// on another's signature.
	if c == nil || clientID != c.ClientID {
		return invalidSignature(r, len(body) > 0, "the signing key does not belong to the access token's client")
	}
	return nil
}

// invalidSignature is the 401 answer for a missing or bad request
// signature. RFC 9421 defines no authentication scheme; keygate sends a
// "Signature" challenge (RFC 9110 §15.5.2 requires one with a 401) and the
// RFC 9421 §5.1 Accept-Signature field naming what must be signed.
func invalidSignature(r *http.Request, hasBody bool, detail string) error {
	challenge := `Signature realm="keygate"`
	if len(r.Header.Values("Signature")) > 0 || len(r.Header.Values("Signature-Input")) > 0 {
		challenge += `, error="invalid_signature"`
	}
	accept := `sig1=("@method" "@target-uri");created`
	if hasBody {
		accept = `sig1=("@method" "@target-uri" "content-digest");created`
	}
	return &httpapi.Problem{Status: http.StatusUnauthorized, Type: ProblemInvalidSignature, Title: "Invalid Signature",
		Detail: detail, Header: http.Header{"Www-Authenticate": {challenge}, "Accept-Signature": {accept}}}
}
