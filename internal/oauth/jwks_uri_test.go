package oauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/clientkeys"
)

// jwksServer publishes a client's JWK Set on loopback and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches int
}

func newJWKSServer(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	js := &jwksServer{keys: keys}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.mu.Lock()
		defer js.mu.Unlock()
		js.fetches++
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(keys ...jose.JSONWebKey) { js.mu.Lock(); js.keys = keys; js.mu.Unlock() }
func (js *jwksServer) count() int                  { js.mu.Lock(); defer js.mu.Unlock(); return js.fetches }

// withJWKSURI registers client "uric" (private_key_jwt, keys at uri).
func withJWKSURI(uri string) func(*Config, *Deps) {
	return func(c *Config, d *Deps) {
		c.Clients = append(c.Clients, Client{ID: "uric", AuthMethod: AuthPrivateKeyJWT, JWKSURI: uri,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"echo"}})
		d.ClientKeys = clientkeys.New(nil, d.Now, d.Logger)
	}
}

func (f *fixture) uriAssertion(t *testing.T, key ed25519.PrivateKey, kid string) url.Values {
	t.Helper()
	now := f.clock.now()
	c := jwt.Claims{Issuer: "uric", Subject: "uric", Audience: jwt.Audience{f.issuer + "/oauth2/token"},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {raw}}
}

func edJWK(t *testing.T, kid string) (jose.JSONWebKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}, priv
}

func TestPrivateKeyJWTWithJWKSURI(t *testing.T) {
	k1, priv1 := edJWK(t, "u1")
	js := newJWKSServer(t, k1)
	f := newFixture(t, withJWKSURI(js.URL+"/jwks.json"))

	r := f.post(t, "/oauth2/token", f.uriAssertion(t, priv1, "u1"))
	if r.status != http.StatusOK || r.str("scope") != "echo" {
		t.Fatalf("answer = %d %s", r.status, r.raw)
	}
	if got := js.count(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}

	t.Run("cached", func(t *testing.T) {
		before := js.count()
		if r := f.post(t, "/oauth2/token", f.uriAssertion(t, priv1, "u1")); r.status != http.StatusOK {
			t.Fatalf("answer = %d %s", r.status, r.raw)
		}
		if got := js.count(); got != before {
			t.Errorf("fetches = %d, want %d (served from cache)", got, before)
		}
	})

	t.Run("client rotates its key", func(t *testing.T) {
		f.clock.advance(clientkeys.MinRefetchInterval)
		k2, priv2 := edJWK(t, "u2")
		js.set(k2)
		before := js.count()
		if r := f.post(t, "/oauth2/token", f.uriAssertion(t, priv2, "u2")); r.status != http.StatusOK {
			t.Fatalf("new kid: answer = %d %s", r.status, r.raw)
		}
		if got := js.count(); got != before+1 {
			t.Errorf("fetches = %d, want %d", got, before+1)
		}
		// The withdrawn key is gone with the refetched set.
		wantError(t, f.post(t, "/oauth2/token", f.uriAssertion(t, priv1, "u1")), http.StatusUnauthorized, "invalid_client")
	})

	t.Run("flood of unknown kids", func(t *testing.T) {
		f.clock.advance(clientkeys.MinRefetchInterval)
		_, forged := edJWK(t, "x")
		before := js.count()
		var wg sync.WaitGroup
		for i := range 50 {
			form := f.uriAssertion(t, forged, "forged-"+string(rune('a'+i%26))+strings.Repeat("x", i))
			wg.Go(func() {
				r := f.post(t, "/oauth2/token", form)
				if r.status != http.StatusUnauthorized {
					t.Errorf("forged kid: answer = %d %s", r.status, r.raw)
				}
			})
		}
		wg.Wait()
		if got := js.count(); got != before+1 {
			t.Errorf("fetches in one window = %d, want 1", got-before)
		}
		f.clock.advance(clientkeys.MinRefetchInterval - time.Second)
		f.post(t, "/oauth2/token", f.uriAssertion(t, forged, "forged-late"))
		if got := js.count(); got != before+1 {
			t.Errorf("fetches within 30 s = %d, want 1", got-before)
		}
		f.clock.advance(time.Second)
		f.post(t, "/oauth2/token", f.uriAssertion(t, forged, "forged-next"))
		if got := js.count(); got != before+2 {
			t.Errorf("fetches after 30 s = %d, want 2", got-before)
		}
	})
}

func TestPrivateKeyJWTWithUnreachableJWKSURI(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	uri := dead.URL + "/jwks.json"
	dead.Close() // nothing listens there any more
	f := newFixture(t, withJWKSURI(uri))
	_, priv := edJWK(t, "u1")

	r := f.post(t, "/oauth2/token", f.uriAssertion(t, priv, "u1"))
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	host := strings.TrimPrefix(dead.URL, "http://")
	for _, leak := range []string{host, "connect", "refused", "jwks"} {
		if strings.Contains(string(r.raw), leak) {
			t.Errorf("answer leaks %q: %s", leak, r.raw)
		}
	}
	if logs := f.logs.String(); !strings.Contains(logs, host) {
		t.Errorf("cause not logged: %s", logs)
	}
}
