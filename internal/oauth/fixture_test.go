package oauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/idp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/sqlite"
	"github.com/keygate/keygate/internal/store/sqlstore"
	"github.com/keygate/keygate/internal/token"
)

// Test client secrets. backend's secret holds characters that
// client_secret_basic must form-encode (RFC 6749 §2.3.1).
const (
	backendSecret = "kgs_s3cr:t+/=%&é"
	posterSecret  = "kgs_poster"
	rsSecret      = "kgs_resource-server"
)

// clock is a controllable time source. It starts near the wall clock
// because the replay store judges expiry by the wall clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeTokens signs access tokens as "at.{jti}" and verifies them by
// lookup, refusing expired ones and those revoked by jti or family.
type fakeTokens struct {
	mu      sync.Mutex
	issued  map[string]token.AccessClaims
	revoked map[string]bool // kind + ":" + value
	now     func() time.Time
}

func (f *fakeTokens) Sign(c token.AccessClaims) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := "at." + c.JTI
	f.issued[raw] = c
	return raw, nil
}

func (f *fakeTokens) Verify(_ context.Context, raw string) (*token.AccessClaims, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.issued[raw]
	switch {
	case !ok:
		return nil, errors.New("unknown token")
	case !f.now().Before(c.Expiry):
		return nil, errors.New("expired")
	case f.revoked["jti:"+c.JTI] || (c.SID != "" && f.revoked["family:"+c.SID]):
		return nil, errors.New("revoked")
	}
	return &c, nil
}

func (f *fakeTokens) claims(raw string) token.AccessClaims {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[raw]
}

// fakeRevoker appends to the real log and records what was applied.
type fakeRevoker struct {
	tokens  *fakeTokens
	mu      sync.Mutex
	applied []store.Revocation
}

func (r *fakeRevoker) Add(ctx context.Context, tx store.RevocationStore, rev store.Revocation) error {
	_, err := tx.AddRevocation(ctx, rev)
	return err
}

func (r *fakeRevoker) Apply(revs ...store.Revocation) {
	r.mu.Lock()
	r.applied = append(r.applied, revs...)
	r.mu.Unlock()
	r.tokens.mu.Lock()
	for _, rev := range revs {
		r.tokens.revoked[rev.Kind+":"+rev.Value] = true
	}
	r.tokens.mu.Unlock()
}

type fakeIDTokens struct {
	verify func(ctx context.Context, raw string) (*idp.Identity, error)
}

func (f fakeIDTokens) Verify(ctx context.Context, raw string) (*idp.Identity, error) {
	return f.verify(ctx, raw)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	oauth   *Server
	handler http.Handler
	store   *sqlstore.Store
	clock   *clock
	tokens  *fakeTokens
	revoker *fakeRevoker
	logs    *syncBuffer
	jwtKey  ed25519.PrivateKey
	issuer  string
}

const (
	accessTTL  = 5 * time.Minute
	refreshTTL = 720 * time.Hour
	idleTTL    = 168 * time.Hour
	grace      = 10 * time.Second
)

func newFixture(t testing.TB, mods ...func(*Config, *Deps)) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	clk := &clock{t: time.Now().Truncate(time.Second)}
	toks := &fakeTokens{issued: map[string]token.AccessClaims{}, revoked: map[string]bool{}, now: clk.now}
	rev := &fakeRevoker{tokens: toks}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secrets := map[string]string{"clients/backend": backendSecret, "clients/poster": posterSecret, "clients/rs": rsSecret}
	cfg := Config{
		Issuer: issuer, AccessTTL: accessTTL, RefreshTTL: refreshTTL, RefreshIdleTTL: idleTTL, ReuseGrace: grace,
		RefreshKey: bytes.Repeat([]byte{7}, 32),
		Clients: []Client{
			{ID: "app", Public: true, GrantTypes: []string{"token-exchange", "refresh_token"}, Scopes: []string{"echo", "chat"}},
			{ID: "app2", Public: true, GrantTypes: []string{"token-exchange", "refresh_token"}, Scopes: []string{"echo", "chat"}},
			{ID: "backend", AuthMethod: AuthClientSecretBasic, SecretName: "clients/backend",
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"echo", "capability:mint"}},
			{ID: "poster", AuthMethod: AuthClientSecretPost, SecretName: "clients/poster",
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"echo"}},
			{ID: "rs", SecretName: "clients/rs", GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}},
			{ID: "jwtc", AuthMethod: AuthPrivateKeyJWT, GrantTypes: []string{"client_credentials"}, Scopes: []string{"echo", "introspect"},
				JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: string(jose.EdDSA), Use: "sig"}}}},
		},
	}
	deps := Deps{
		Store: st, Signer: toks, AccessTokens: toks, Revoker: rev,
		IDTokens: fakeIDTokens{verify: func(_ context.Context, raw string) (*idp.Identity, error) {
			sub, ok := strings.CutPrefix(raw, "idt:")
			if !ok {
				return nil, errors.New("bad id token")
			}
			return &idp.Identity{Provider: "dev", Subject: sub, Audience: "dev-app", ACR: "urn:acr:silver", AuthTime: 1700000000}, nil
		}},
		Secrets: SecretFunc(func(_ context.Context, name string) ([]byte, error) {
			v, ok := secrets[name]
			if !ok {
				return nil, errors.New("no such secret")
			}
			return []byte(v), nil
		}),
		Now: clk.now, Logger: logger,
	}
	for _, m := range mods {
		m(&cfg, &deps)
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	h := httpapi.Middleware(logger)(mux)
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return &fixture{srv: ts, oauth: s, handler: h, store: st, clock: clk, tokens: toks, revoker: rev,
		logs: logs, jwtKey: priv, issuer: issuer}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(k string) string { s, _ := r.body[k].(string); return s }

// post sends form to path; opts may adjust the request.
func (f *fixture) post(t testing.TB, path string, form url.Values, opts ...func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, o := range opts {
		o(req)
	}
	return f.do(t, req)
}

func (f *fixture) do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &out.body)
	}
	return out
}

func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// exchange performs a token exchange for app as user and returns the answer.
func (f *fixture) exchange(t testing.TB, client, user string) response {
	t.Helper()
	r := f.post(t, "/oauth2/token", url.Values{
		"grant_type": {GrantTokenExchange}, "client_id": {client},
		"subject_token": {"idt:" + user}, "subject_token_type": {TokenTypeIDToken},
	})
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.raw)
	}
	return r
}

func (f *fixture) refresh(t testing.TB, client, rt string) response {
	t.Helper()
	return f.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}})
}

// rows counts the rows of the tables a request may change.
func (f *fixture) rows(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"refresh_families", "refresh_tokens", "revocations", "replay"} {
		var n int
		if err := f.store.DB().QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	var revoked int
	if err := f.store.DB().QueryRow("SELECT COUNT(*) FROM refresh_families WHERE revoked_at <> 0").Scan(&revoked); err != nil {
		t.Fatal(err)
	}
	out["revoked_families"] = revoked
	var rotated int
	if err := f.store.DB().QueryRow("SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at <> 0").Scan(&rotated); err != nil {
		t.Fatal(err)
	}
	out["rotated_tokens"] = rotated
	return out
}

// wantError asserts an RFC 6749 §5.2 error answer.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("answer = %d %s, want %d error %q", r.status, r.raw, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
}

// assertion builds a client assertion for jwtc signed with key.
func (f *fixture) assertion(t testing.TB, mod func(*jwt.Claims, *jose.SignerOptions)) string {
	t.Helper()
	now := f.clock.now()
	c := jwt.Claims{Issuer: "jwtc", Subject: "jwtc", Audience: jwt.Audience{f.issuer + "/oauth2/token"},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1")
	if mod != nil {
		mod(&c, opts)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: f.jwtKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The concrete token, revocation and IdP types satisfy the narrow interfaces directly.
var (
	_ Signer              = (*token.Manager)(nil)
	_ AccessTokenVerifier = (*token.Verifier)(nil)
	_ Revoker             = (*token.Revocations)(nil)
	_ IDTokenVerifier     = (*idp.Verifier)(nil)
)
