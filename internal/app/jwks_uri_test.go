package app_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/config"
)

// A confidential client whose private_key_jwt keys live at its jwks_uri
// gets a client_credentials token; keygate fetched the keys from the URI.
func TestClientCredentialsWithJWKSURI(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			var fetches atomic.Int32
			keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetches.Add(1)
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "r1", Algorithm: string(jose.EdDSA), Use: "sig"}}})
			}))
			t.Cleanup(keys.Close)

			s := startDev(t, b, func(c *config.Config) {
				c.Clients = append(c.Clients, config.Client{ID: "remote-keys", Type: config.ClientConfidential,
					Auth: config.AuthPrivateKeyJWT, JWKSURI: keys.URL + "/jwks.json",
					GrantTypes: []string{config.GrantClientCredentials}, Scopes: []string{"chat"}})
			})

			assertion := func(kid string) string {
				now := time.Now()
				claims := jwt.Claims{Issuer: "remote-keys", Subject: "remote-keys", Audience: jwt.Audience{s.URL + "/oauth2/token"},
					Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}
				sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
				if err != nil {
					t.Fatal(err)
				}
				raw, err := jwt.Signed(sig).Claims(claims).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				return raw
			}
			form := func(kid string) url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "scope": {"chat"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion(kid)}}
			}

			var tok tokenResponse
			res := s.postForm(t, "/oauth2/token", form("r1"), nil, &tok)
			if res.StatusCode != http.StatusOK || tok.AccessToken == "" {
				t.Fatalf("client_credentials: %d %+v", res.StatusCode, tok)
			}
			if got := jwtClaims(t, tok.AccessToken)["sub"]; got != "client:remote-keys" {
				t.Errorf("sub = %v, want client:remote-keys", got)
			}
			if got := fetches.Load(); got != 1 {
				t.Errorf("jwks fetches = %d, want 1", got)
			}

			var bad map[string]any
			res = s.postForm(t, "/oauth2/token", form("not-published"), nil, &bad)
			if res.StatusCode != http.StatusUnauthorized || bad["error"] != "invalid_client" {
				t.Errorf("unknown kid: %d %v, want 401 invalid_client", res.StatusCode, bad)
			}
		})
	}
}
