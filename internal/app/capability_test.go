package app_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/vault"
)

type capabilityResponse struct {
	CapabilityToken  string `json:"capability_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	MaxUses          int64  `json:"max_uses"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

var capabilityTokenRE = regexp.MustCompile(`^kgc_[A-Za-z0-9_-]{43}$`)

// backendAuth is dev-backend's client_secret_basic header.
func (s *server) backendAuth() http.Header {
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth("dev-backend", s.BackendSecret)
	return http.Header{"Authorization": {req.Header.Get("Authorization")}}
}

// mintCapability posts form to /oauth2/capabilities with header.
func (s *server) mintCapability(t *testing.T, form url.Values, header http.Header) (*http.Response, capabilityResponse) {
	t.Helper()
	var out capabilityResponse
	res := s.postForm(t, "/oauth2/capabilities", form, header, &out)
	return res, out
}

// mustMint mints as dev-backend and fails the test unless it gets 201.
func (s *server) mustMint(t *testing.T, form url.Values) capabilityResponse {
	t.Helper()
	res, out := s.mintCapability(t, form, s.backendAuth())
	if res.StatusCode != http.StatusCreated || !capabilityTokenRE.MatchString(out.CapabilityToken) {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("mint: %d %s", res.StatusCode, body)
	}
	return out
}

// fire sends n concurrent GETs of path with the capability and returns
// the responses' status codes, the WWW-Authenticate of the refusals and the
// bodies of the 200s.
func fire(t *testing.T, s *server, n int, path, capability string) (statuses map[int]int, challenges []string, bodies [][]byte) {
	t.Helper()
	statuses = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", s.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+capability)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[res.StatusCode]++
			if res.StatusCode == http.StatusOK {
				bodies = append(bodies, body)
			} else {
				challenges = append(challenges, res.Header.Get("WWW-Authenticate"))
			}
		}()
	}
	close(start)
	wg.Wait()
	return statuses, challenges, bodies
}

// countingUpstream is a second upstream, "counted", that counts what it
// receives.
func countingUpstream(t *testing.T, hits *atomic.Int64) func(*config.Config) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("counted upstream got an Authorization header")
		}
		io.WriteString(w, "counted")
	}))
	t.Cleanup(up.Close)
	return func(c *config.Config) {
		c.Upstreams = append(c.Upstreams, config.Upstream{
			Name: "counted", URL: up.URL, Timeout: config.Duration(config.DefaultUpstreamTimeout), MaxRequestBody: config.DefaultMaxRequestBody,
			Auth: config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "X-Api-Key", Template: config.SecretPlaceholder, Secret: "echo-key"},
			Routes: []config.Route{
				{Methods: []string{"GET"}, Path: "/**", Scope: "echo"},
				{Methods: []string{"GET"}, Path: "/premium/**", Scope: "premium"},
			},
		})
	}
}

func isInvalidToken(challenge string) bool {
	return strings.HasPrefix(challenge, "Bearer") && strings.Contains(challenge, `error="invalid_token"`)
}

func TestCapabilityTokens(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testCapabilityTokens(t, b) })
	}
}

func testCapabilityTokens(t *testing.T, backendName string) {
	var counted atomic.Int64
	withCounted := countingUpstream(t, &counted)
	s := startDev(t, backendName, func(c *config.Config) {
		withCounted(c)
		c.Capabilities.MaxExpiresIn = config.Duration(10 * time.Minute)
		// A confidential client without capability:mint, on client_secret_post.
		c.Clients = append(c.Clients, config.Client{ID: "no-mint", Type: config.ClientConfidential,
			Auth: config.AuthClientSecretPost, Secret: "clients/no-mint",
			GrantTypes: []string{config.GrantClientCredentials}, Scopes: []string{"echo"}})
	})
	if _, err := s.Vault.Put(t.Context(), "clients/no-mint", vault.NewSecret([]byte("no-mint-secret"))); err != nil {
		t.Fatal(err)
	}
	echoKey, _, err := s.Vault.Get(t.Context(), "echo-key")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("exactly max_uses under concurrency", func(t *testing.T) {
		res, c := s.mintCapability(t, url.Values{"subject": {"dev|alice"}, "scope": {"echo"}, "max_uses": {"5"}}, s.backendAuth())
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("mint status = %d (%s)", res.StatusCode, c.ErrorDescription)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		if !capabilityTokenRE.MatchString(c.CapabilityToken) || c.TokenType != "Bearer" || c.MaxUses != 5 ||
			c.Scope != "echo" || c.ExpiresIn != 300 {
			t.Errorf("mint answer = %+v", c)
		}
		statuses, challenges, bodies := fire(t, s, 64, "/echo/x", c.CapabilityToken)
		if statuses[200] != 5 || statuses[401] != 59 || len(statuses) != 2 {
			t.Fatalf("statuses = %v, want 5×200 and 59×401", statuses)
		}
		for _, ch := range challenges {
			if !isInvalidToken(ch) {
				t.Errorf("refusal challenge = %q, want Bearer error=\"invalid_token\"", ch)
			}
		}
		// What the upstream received: five requests, each with the vault's
		// key and without the capability token.
		for _, body := range bodies {
			var echo struct {
				Path    string              `json:"path"`
				Headers map[string][]string `json:"headers"`
			}
			if err := json.Unmarshal(body, &echo); err != nil {
				t.Fatalf("echo body %s: %v", body, err)
			}
			if echo.Path != "/x" || len(echo.Headers["X-Api-Key"]) != 1 || echo.Headers["X-Api-Key"][0] != string(echoKey.Reveal()) {
				t.Errorf("upstream saw path %q, X-Api-Key %v", echo.Path, echo.Headers["X-Api-Key"])
			}
			if strings.Contains(string(body), c.CapabilityToken) {
				t.Error("the capability token reached the upstream")
			}
		}
		// Spent: the next request is refused too, as invalid_token.
		res, body := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
		if res.StatusCode != 401 || !isInvalidToken(res.Header.Get("WWW-Authenticate")) {
			t.Errorf("spent token: %d %q %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
		}
	})

	t.Run("mint refusals", func(t *testing.T) {
		ok := url.Values{"subject": {"dev|bob"}, "scope": {"echo"}}
		with := func(k, v string) url.Values {
			f := url.Values{}
			for key, vs := range ok {
				f[key] = vs
			}
			f.Set(k, v)
			return f
		}
		wrongBasic := http.Header{}
		{
			req, _ := http.NewRequest("POST", "/", nil)
			req.SetBasicAuth("dev-backend", "kgs_wrong")
			wrongBasic.Set("Authorization", req.Header.Get("Authorization"))
		}
		noMintPost := func(f url.Values) url.Values {
			g := url.Values{"client_id": {"no-mint"}, "client_secret": {"no-mint-secret"}}
			for k, vs := range f {
				g[k] = vs
			}
			return g
		}
		repeated := url.Values{"subject": {"dev|bob", "dev|eve"}, "scope": {"echo"}}
		tests := []struct {
			name       string
			form       url.Values
			header     http.Header
			wantStatus int
			wantError  string
		}{
			{"no credentials", ok, nil, 401, "invalid_client"},
			{"wrong secret", ok, wrongBasic, 401, "invalid_client"},
			{"public client", with("client_id", "dev-app"), nil, 401, "invalid_client"},
			{"client without capability:mint", noMintPost(ok), nil, 403, "insufficient_scope"},
			{"scope outside the client's", with("scope", "echo other"), s.backendAuth(), 400, "invalid_scope"},
			{"scope capability:mint", with("scope", "echo capability:mint"), s.backendAuth(), 400, "invalid_scope"},
			{"scope introspect", with("scope", "introspect"), s.backendAuth(), 400, "invalid_scope"},
			{"no scope", url.Values{"subject": {"dev|bob"}}, s.backendAuth(), 400, "invalid_request"},
			{"no subject", url.Values{"scope": {"echo"}}, s.backendAuth(), 400, "invalid_request"},
			{"subject with a space", with("subject", "dev|bob smith"), s.backendAuth(), 400, "invalid_request"},
			{"subject too long", with("subject", "dev|"+strings.Repeat("b", 252)), s.backendAuth(), 400, "invalid_request"},
			{"client subject", with("subject", "client:dev-backend"), s.backendAuth(), 400, "invalid_request"},
			{"max_uses 0", with("max_uses", "0"), s.backendAuth(), 400, "invalid_request"},
			{"max_uses too large", with("max_uses", "1000001"), s.backendAuth(), 400, "invalid_request"},
			{"max_uses not a number", with("max_uses", "5x"), s.backendAuth(), 400, "invalid_request"},
			{"max_uses negative", with("max_uses", "-1"), s.backendAuth(), 400, "invalid_request"},
			{"expires_in 0", with("expires_in", "0"), s.backendAuth(), 400, "invalid_request"},
			{"unknown upstream", with("upstream", "nope"), s.backendAuth(), 400, "invalid_request"},
			{"bad dpop_jkt", with("dpop_jkt", "short"), s.backendAuth(), 400, "invalid_request"},
			{"repeated parameter", repeated, s.backendAuth(), 400, "invalid_request"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, out := s.mintCapability(t, tt.form, tt.header)
				if res.StatusCode != tt.wantStatus || out.Error != tt.wantError || out.CapabilityToken != "" {
					t.Errorf("got %d %q (%s), want %d %q", res.StatusCode, out.Error, out.ErrorDescription, tt.wantStatus, tt.wantError)
				}
			})
		}
		t.Run("wrong content type", func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.URL+"/oauth2/capabilities", strings.NewReader(ok.Encode()))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", s.backendAuth().Get("Authorization"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 400 {
				t.Errorf("status = %d, want 400", res.StatusCode)
			}
		})
		// client_secret_post is accepted like at the token endpoint: the
		// no-mint client authenticates and only then lacks the scope; the
		// same client with Basic is refused as the token endpoint would.
		t.Run("registered method only", func(t *testing.T) {
			req, _ := http.NewRequest("POST", "/", nil)
			req.SetBasicAuth("no-mint", "no-mint-secret")
			res, out := s.mintCapability(t, ok, http.Header{"Authorization": {req.Header.Get("Authorization")}})
			if res.StatusCode != 401 || out.Error != "invalid_client" {
				t.Errorf("basic for a post client: %d %q", res.StatusCode, out.Error)
			}
		})
	})

	t.Run("expires_in capped", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|bob"}, "scope": {"echo"}, "expires_in": {"86400"}})
		if c.ExpiresIn != 600 || c.MaxUses != 1 {
			t.Errorf("expires_in = %d, max_uses = %d; want 600 (the configured maximum), 1 (the default)", c.ExpiresIn, c.MaxUses)
		}
		c = s.mustMint(t, url.Values{"subject": {"dev|bob"}, "scope": {"echo"}, "expires_in": {"42"}})
		if c.ExpiresIn != 42 {
			t.Errorf("expires_in = %d, want 42", c.ExpiresIn)
		}
	})

	t.Run("expired", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|bob"}, "scope": {"echo"}, "expires_in": {"1"}, "max_uses": {"10"}})
		time.Sleep(1100 * time.Millisecond)
		res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
		if res.StatusCode != 401 || !isInvalidToken(res.Header.Get("WWW-Authenticate")) {
			t.Errorf("expired token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		for _, tok := range []string{"kgc_" + strings.Repeat("A", 43), "kgc_short"} {
			res, _ := s.get(t, "/echo/x", "Bearer "+tok)
			if res.StatusCode != 401 || !isInvalidToken(res.Header.Get("WWW-Authenticate")) {
				t.Errorf("%s: %d %q", tok, res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("revoke at /oauth2/revoke", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|dave"}, "scope": {"echo"}, "max_uses": {"10"}})
		if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
			t.Fatalf("first use: %d", res.StatusCode)
		}
		// Another client cannot revoke it: 200, and nothing happens.
		res := s.postForm(t, "/oauth2/revoke", url.Values{"token": {c.CapabilityToken},
			"client_id": {"no-mint"}, "client_secret": {"no-mint-secret"}}, nil, nil)
		if res.StatusCode != 200 {
			t.Fatalf("revoke by another client: %d", res.StatusCode)
		}
		if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
			t.Fatalf("use after another client's revocation: %d", res.StatusCode)
		}
		res = s.postForm(t, "/oauth2/revoke", url.Values{"token": {c.CapabilityToken}}, s.backendAuth(), nil)
		if res.StatusCode != 200 {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		got, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
		if got.StatusCode != 401 || !isInvalidToken(got.Header.Get("WWW-Authenticate")) {
			t.Errorf("use after revocation: %d %q", got.StatusCode, got.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("upstream restriction", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|erin"}, "scope": {"echo"}, "max_uses": {"2"}, "upstream": {"counted"}})
		before := counted.Load()
		res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
		if res.StatusCode != 403 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("other upstream: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		// The refusal spent nothing: both uses are left for counted.
		for i := range 2 {
			if res, body := s.get(t, "/counted/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 || string(body) != "counted" {
				t.Errorf("use %d on the allowed upstream: %d %s", i+1, res.StatusCode, body)
			}
		}
		if res, _ := s.get(t, "/counted/x", "Bearer "+c.CapabilityToken); res.StatusCode != 401 {
			t.Errorf("third use: %d, want 401", res.StatusCode)
		}
		if got := counted.Load() - before; got != 2 {
			t.Errorf("counted upstream saw %d requests, want 2", got)
		}
	})

	t.Run("scope checked by the proxy", func(t *testing.T) {
		// A route needing a scope the capability lacks is 403 and spends nothing.
		c := s.mustMint(t, url.Values{"subject": {"dev|frank"}, "scope": {"echo"}, "max_uses": {"1"}})
		res, _ := s.get(t, "/counted/premium/x", "Bearer "+c.CapabilityToken)
		if res.StatusCode != 403 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("route needing another scope: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
			t.Errorf("the one use after a scope refusal: %d, want 200", res.StatusCode)
		}
	})

	t.Run("DPoP-bound refused as bearer", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|gina"}, "scope": {"echo"},
			"dpop_jkt": {"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
		res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
		if res.StatusCode != 401 || !isInvalidToken(res.Header.Get("WWW-Authenticate")) {
			t.Errorf("bound token as bearer: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("token revoke --subject and --client", func(t *testing.T) {
		carol := s.mustMint(t, url.Values{"subject": {"dev|carol"}, "scope": {"echo"}, "max_uses": {"10"}})
		other := s.mustMint(t, url.Values{"subject": {"dev|henry"}, "scope": {"echo"}, "max_uses": {"10"}})
		for _, c := range []capabilityResponse{carol, other} {
			if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
				t.Fatalf("use before revocation: %d", res.StatusCode)
			}
		}
		revokeAll(t, s, store.RevokeSubject, "dev|carol")
		if res, _ := s.get(t, "/echo/x", "Bearer "+carol.CapabilityToken); res.StatusCode != 401 {
			t.Errorf("carol's capability after revoke --subject: %d, want 401", res.StatusCode)
		}
		if res, _ := s.get(t, "/echo/x", "Bearer "+other.CapabilityToken); res.StatusCode != 200 {
			t.Errorf("another subject's capability after revoke --subject: %d, want 200", res.StatusCode)
		}
		revokeAll(t, s, store.RevokeClient, "dev-backend")
		if res, _ := s.get(t, "/echo/x", "Bearer "+other.CapabilityToken); res.StatusCode != 401 {
			t.Errorf("capability after revoke --client of its minter: %d, want 401", res.StatusCode)
		}
	})
}

func revokeAll(t *testing.T, s *server, kind, value string) {
	t.Helper()
	rev := token.NewRevocations(s.Store, time.Now, slog.New(slog.DiscardHandler))
	r, err := token.Revoke(t.Context(), s.Store, rev, kind, value, time.Now(), s.Config.Tokens.AccessTokenTTL.Std())
	if err != nil {
		t.Fatal(err)
	}
	if r.Capabilities < 1 {
		t.Errorf("revoke %s %s: %+v, want capability tokens revoked", kind, value, r)
	}
}

// A restart loses no count: 3 uses before, and of 64 racing requests
// after the restart over the same database and data directory, exactly 2.
func TestCapabilityRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			c := s.mustMint(t, url.Values{"subject": {"dev|alice"}, "scope": {"echo"}, "max_uses": {"5"}})
			for i := range 3 {
				if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
					t.Fatalf("use %d: %d", i+1, res.StatusCode)
				}
			}
			s.stop()
			s2 := restart(t, s)
			statuses, _, _ := fire(t, s2, 64, "/echo/x", c.CapabilityToken)
			if statuses[200] != 2 || statuses[401] != 62 {
				t.Errorf("after restart statuses = %v, want 2×200 and 62×401", statuses)
			}
		})
	}
}

// restart starts a new keygate over s's config, database and data
// directory, on the same addresses (the issuer names the public one).
func restart(t *testing.T, s *server) *server {
	t.Helper()
	listen := func(addr string) net.Listener {
		var ln net.Listener
		var err error
		for range 50 { // the old listener's port may take a moment to free
			if ln, err = net.Listen("tcp", addr); err == nil {
				return ln
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("listen again on %s: %v", addr, err)
		return nil
	}
	pub, adm := listen(s.Config.Listen), listen(s.Config.AdminListen)
	return startWith(t, s.Config, s.DataDir, pub, adm, true)
}
