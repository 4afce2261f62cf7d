// Package devidp is the identity provider of `keygate serve --dev`: it mints
// OpenID Connect ID tokens for any subject so the token-exchange flow can be
// tried without a real IdP. It exists only in dev mode, answers only
// loopback clients, and its key lives in memory for the life of the process.
package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/httpapi"
)

// Token lifetime: long enough to paste a curl command, short enough to be
// obviously a toy.
const idTokenTTL = 10 * time.Minute

var subjectRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// IdP is the dev identity provider.
type IdP struct {
	issuer   string
	audience string
	signer   jose.Signer
	jwks     []byte
	now      func() time.Time
}

// New creates a dev IdP whose tokens carry iss = issuer and aud = audience.
func New(issuer, audience string, now func() time.Time) (*IdP, error) {
	if now == nil {
		now = time.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev idp key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := jwk.Thumbprint(cryptoSHA256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = b64(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return nil, err
	}
	return &IdP{issuer: issuer, audience: audience, signer: signer, jwks: jwks, now: now}, nil
}

// Handlers returns the dev IdP's routes keyed by mux pattern.
func (p *IdP) Handlers() map[string]httpapi.HandlerFunc {
	return map[string]httpapi.HandlerFunc{
		"POST /dev/id-token":                        p.idToken,
		"GET /dev/jwks.json":                        p.keys,
		"GET /dev/.well-known/openid-configuration": p.discovery,
	}
}

func loopbackOnly(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return httpapi.NotFound("")
	}
	return nil
}

func (p *IdP) idToken(w http.ResponseWriter, r *http.Request) error {
	if err := loopbackOnly(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		return httpapi.BadRequest("form body expected: sub=alice")
	}
	sub := r.PostForm.Get("sub")
	if !subjectRE.MatchString(sub) {
		return httpapi.BadRequest("sub must match [A-Za-z0-9._@-]{1,64}")
	}
	now := p.now()
	claims := map[string]any{
		"iss":       p.issuer,
		"sub":       sub,
		"aud":       p.audience,
		"iat":       now.Unix(),
		"exp":       now.Add(idTokenTTL).Unix(),
		"auth_time": now.Unix(),
	}
	raw, err := jwt.Signed(p.signer).Claims(claims).Serialize()
	if err != nil {
		return fmt.Errorf("sign dev id token: %w", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id_token": raw, "expires_in": int(idTokenTTL.Seconds())})
	return nil
}

func (p *IdP) keys(w http.ResponseWriter, r *http.Request) error {
	if err := loopbackOnly(r); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(p.jwks)
	return err
}

func (p *IdP) discovery(w http.ResponseWriter, r *http.Request) error {
	if err := loopbackOnly(r); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer,
		"jwks_uri":                              p.issuer + "/jwks.json",
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"id_token"},
	})
	return nil
}

const cryptoSHA256 = crypto.SHA256

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
