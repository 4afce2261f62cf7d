package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/keyfetch"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signingKey is one IdP key with its kid and JWS alg.
type signingKey struct {
	kid, alg string
	priv     crypto.Signer
}

func (k signingKey) sign(input []byte) []byte {
	d := sha256.Sum256(input)
	switch p := k.priv.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
		return sig
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, p, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	panic("unknown key")
}

var (
	keysOnce        sync.Once
	rsaKey, rsaKey2 *rsa.PrivateKey
	ecKey           *ecdsa.PrivateKey
)

func testKeys(t testing.TB) (rs, rs2, es signingKey) {
	t.Helper()
	keysOnce.Do(func() {
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		rsaKey2, _ = rsa.GenerateKey(rand.Reader, 2048)
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	return signingKey{"rs1", "RS256", rsaKey}, signingKey{"rs2", "RS256", rsaKey2}, signingKey{"ec1", "ES256", ecKey}
}

// testIdP serves discovery and a JWKS whose keys the test can change, and
// counts JWKS requests.
type testIdP struct {
	srv       *httptest.Server
	mu        sync.Mutex
	keys      []signingKey
	jwksHits  atomic.Int32
	discovery atomic.Int32
}

func newTestIdP(t *testing.T, keys ...signingKey) *testIdP {
	idp := &testIdP{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.discovery.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		idp.mu.Lock()
		defer idp.mu.Unlock()
		set := jose.JSONWebKeySet{}
		for _, k := range idp.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
		}
		// An unknown key type must not hide the others.
		b, _ := json.Marshal(set)
		b = append([]byte(`{"keys":[{"kty":"weird","kid":"x"},`), b[len(`{"keys":[`):]...)
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", keyfetch.MaxBodySize) + `]}`))
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (i *testIdP) setKeys(keys ...signingKey) {
	i.mu.Lock()
	i.keys = keys
	i.mu.Unlock()
}

func b64e(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func craft(t testing.TB, hdr, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	hb, _ := json.Marshal(hdr)
	cb, _ := json.Marshal(claims)
	in := b64e(hb) + "." + b64e(cb)
	return in + "." + b64e(sign([]byte(in)))
}

func with(m map[string]any, kv ...any) map[string]any {
	m = maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

type fixture struct {
	idp *testIdP
	clk *clock
	v   *Verifier
	rs  signingKey
	rs2 signingKey
	es  signingKey
}

func newFixture(t *testing.T) *fixture {
	rs, rs2, es := testKeys(t)
	idp := newTestIdP(t, rs, es)
	clk := &clock{t: t0}
	providers := []config.IdentityProvider{
		{Name: "test", Issuer: idp.srv.URL, Audiences: []string{"app", "app2"}, Algorithms: []string{"RS256", "ES256"}},
		{Name: "rsonly", Issuer: idp.srv.URL + "/rs", Audiences: []string{"app"}, JWKSURI: idp.srv.URL + "/jwks", Algorithms: []string{"RS256"}},
	}
	return &fixture{idp: idp, clk: clk, v: New(providers, idp.srv.Client(), clk.Now, nil), rs: rs, rs2: rs2, es: es}
}

func (f *fixture) claims() map[string]any {
	now := f.clk.Now()
	return map[string]any{"iss": f.idp.srv.URL, "sub": "alice", "aud": "app",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "acr": "1", "auth_time": now.Add(-time.Minute).Unix()}
}

func hdr(k signingKey) map[string]any {
	return map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	now := f.clk.Now()
	pubDER, _ := x509.MarshalPKIXPublicKey(f.rs.priv.Public())
	hs := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	tests := []struct {
		name    string
		token   func() string
		wantErr error
	}{
		{"valid RS256", func() string { return craft(t, hdr(f.rs), f.claims(), f.rs.sign) }, nil},
		{"valid ES256", func() string { return craft(t, hdr(f.es), f.claims(), f.es.sign) }, nil},
		{"valid without typ", func() string { return craft(t, with(hdr(f.rs), "typ", nil), f.claims(), f.rs.sign) }, nil},
		{"valid aud array", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "aud", []string{"other", "app"}), f.rs.sign)
		}, nil},
		{"valid sub with |", func() string { return craft(t, hdr(f.rs), with(f.claims(), "sub", "auth0|alice"), f.rs.sign) }, nil},

		{"unknown issuer", func() string { return craft(t, hdr(f.rs), with(f.claims(), "iss", "https://evil.test"), f.rs.sign) }, ErrInvalidIDToken},
		{"issuer with trailing slash", func() string { return craft(t, hdr(f.rs), with(f.claims(), "iss", f.idp.srv.URL+"/"), f.rs.sign) }, ErrInvalidIDToken},
		{"wrong aud", func() string { return craft(t, hdr(f.rs), with(f.claims(), "aud", "other"), f.rs.sign) }, ErrInvalidIDToken},
		{"expired", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "exp", now.Add(-61*time.Second).Unix()), f.rs.sign)
		}, ErrInvalidIDToken},
		{"exp missing", func() string { return craft(t, hdr(f.rs), with(f.claims(), "exp", nil), f.rs.sign) }, ErrInvalidIDToken},
		{"iat in the future", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "iat", now.Add(2*time.Minute).Unix()), f.rs.sign)
		}, ErrInvalidIDToken},
		{"iat missing", func() string { return craft(t, hdr(f.rs), with(f.claims(), "iat", nil), f.rs.sign) }, ErrInvalidIDToken},
		{"nbf in the future", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "nbf", now.Add(2*time.Minute).Unix()), f.rs.sign)
		}, ErrInvalidIDToken},
		{"sub missing", func() string { return craft(t, hdr(f.rs), with(f.claims(), "sub", nil), f.rs.sign) }, ErrInvalidIDToken},
		{"sub too long", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "sub", strings.Repeat("a", 256)), f.rs.sign)
		}, ErrInvalidIDToken},
		{"sub with a newline", func() string { return craft(t, hdr(f.rs), with(f.claims(), "sub", "a\nb"), f.rs.sign) }, ErrInvalidIDToken},
		{"alg not in the provider's list", func() string {
			return craft(t, hdr(f.es), with(f.claims(), "iss", f.idp.srv.URL+"/rs"), f.es.sign)
		}, ErrInvalidIDToken},
		{"alg none", func() string {
			return craft(t, with(hdr(f.rs), "alg", "none"), f.claims(), func([]byte) []byte { return []byte{0} })
		}, ErrInvalidIDToken},
		{"HS256 keyed with the public key", func() string { return craft(t, with(hdr(f.rs), "alg", "HS256"), f.claims(), hs(pubDER)) }, ErrInvalidIDToken},
		{"typ at+jwt", func() string { return craft(t, with(hdr(f.rs), "typ", "at+jwt"), f.claims(), f.rs.sign) }, ErrInvalidIDToken},
		{"jku", func() string {
			return craft(t, with(hdr(f.rs), "jku", "https://evil.test/jwks"), f.claims(), f.rs.sign)
		}, ErrInvalidIDToken},
		{"jwk", func() string {
			return craft(t, with(hdr(f.rs), "jwk", map[string]any{"kty": "RSA"}), f.claims(), f.rs.sign)
		}, ErrInvalidIDToken},
		{"x5u", func() string { return craft(t, with(hdr(f.rs), "x5u", "https://evil.test/c"), f.claims(), f.rs.sign) }, ErrInvalidIDToken},
		{"x5c", func() string { return craft(t, with(hdr(f.rs), "x5c", []string{"MII"}), f.claims(), f.rs.sign) }, ErrInvalidIDToken},
		{"crit", func() string { return craft(t, with(hdr(f.rs), "crit", []string{"exp"}), f.claims(), f.rs.sign) }, ErrInvalidIDToken},
		{"signed by a key the IdP does not publish", func() string { return craft(t, hdr(f.rs), f.claims(), f.rs2.sign) }, ErrInvalidIDToken},
		{"over 8 KiB", func() string {
			return craft(t, hdr(f.rs), with(f.claims(), "pad", strings.Repeat("a", MaxTokenSize)), f.rs.sign)
		}, ErrInvalidIDToken},
		{"tampered payload", func() string {
			parts := strings.Split(craft(t, hdr(f.rs), f.claims(), f.rs.sign), ".")
			cb, _ := json.Marshal(with(f.claims(), "sub", "mallory"))
			parts[1] = b64e(cb)
			return strings.Join(parts, ".")
		}, ErrInvalidIDToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			id, err := f.v.Verify(t.Context(), tok)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.Provider != "test" || id.Audience != "app" || id.ACR != "1" || id.AuthTime != now.Add(-time.Minute).Unix() || !id.Expiry.Equal(now.Add(time.Hour)) {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v, want %v", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
			if strings.Contains(err.Error(), tok[:20]) {
				t.Errorf("error echoes the token: %v", err)
			}
		})
	}
	if got := f.idp.discovery.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}
}

// TestKeyRotationAtIdP: a token with a new kid causes one refetch, after
// which it verifies.
func TestKeyRotationAtIdP(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Verify(ctx, craft(t, hdr(f.rs), f.claims(), f.rs.sign)); err != nil {
		t.Fatal(err)
	}
	f.idp.setKeys(f.rs, f.rs2)
	f.clk.Advance(MinRefetchInterval)
	before := f.idp.jwksHits.Load()
	if _, err := f.v.Verify(ctx, craft(t, hdr(f.rs2), f.claims(), f.rs2.sign)); err != nil {
		t.Fatalf("token from the rotated-in key: %v", err)
	}
	if got := f.idp.jwksHits.Load() - before; got != 1 {
		t.Errorf("JWKS fetched %d times for the new kid, want 1", got)
	}
	if _, err := f.v.Verify(ctx, craft(t, hdr(f.rs2), f.claims(), f.rs2.sign)); err != nil || f.idp.jwksHits.Load()-before != 1 {
		t.Errorf("second token: %v, fetches %d", err, f.idp.jwksHits.Load()-before)
	}
}

// TestUnknownKidFlood: unknown kids cause at most one JWKS fetch per
// provider per MinRefetchInterval, however many arrive at once.
func TestUnknownKidFlood(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Verify(ctx, craft(t, hdr(f.rs), f.claims(), f.rs.sign)); err != nil {
		t.Fatal(err)
	}
	flood := func() {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := craft(t, with(hdr(f.rs), "kid", "forged-"+string(rune('a'+i%26))), f.claims(), f.rs.sign)
				if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrInvalidIDToken) {
					t.Errorf("forged kid: err = %v", err)
				}
			}()
		}
		wg.Wait()
	}
	flood()
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times within the window, want 1 (the initial fetch)", got)
	}
	f.clk.Advance(MinRefetchInterval)
	flood()
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times after one more window, want 2", got)
	}
}

func TestKeysUnavailable(t *testing.T) {
	rs, _, _ := testKeys(t)
	idp := newTestIdP(t, rs)
	clk := &clock{t: t0}
	claims := map[string]any{"sub": "a", "aud": "app", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	tests := []struct {
		name string
		p    config.IdentityProvider
	}{
		{"plain http to a non-loopback host", config.IdentityProvider{Issuer: "http://idp.example.test", JWKSURI: "http://idp.example.test/jwks"}},
		{"response over 1 MiB", config.IdentityProvider{Issuer: "https://idp.example.test", JWKSURI: idp.srv.URL + "/huge"}},
		{"jwks 404", config.IdentityProvider{Issuer: "https://idp.example.test", JWKSURI: idp.srv.URL + "/missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Name, tt.p.Audiences, tt.p.Algorithms = "x", []string{"app"}, []string{"RS256"}
			v := New([]config.IdentityProvider{tt.p}, idp.srv.Client(), clk.Now, nil)
			_, err := v.Verify(t.Context(), craft(t, hdr(rs), with(claims, "iss", tt.p.Issuer), rs.sign))
			if !errors.Is(err, ErrKeysUnavailable) {
				t.Errorf("err = %v, want ErrKeysUnavailable", err)
			}
		})
	}
}
