package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/vault"
)

const (
	testIssuer = "https://keygate.test"
	testSecret = "sk-live-0123456789abcdef/+="
	goodToken  = "good.token.sig"
)

// fakeVerifier accepts the tokens in its table.
type fakeVerifier struct {
	verify func(ctx context.Context, raw string) (*token.AccessClaims, error)
}

func (f fakeVerifier) Verify(ctx context.Context, raw string) (*token.AccessClaims, error) {
	return f.verify(ctx, raw)
}

var errRevoked = errors.New("token revoked")

func tableVerifier(now time.Time) fakeVerifier {
	claims := func(scope string) *token.AccessClaims {
		return &token.AccessClaims{Issuer: testIssuer, Subject: "dev|alice", Audience: testIssuer, ClientID: "app",
			Scope: scope, JTI: "jti-1", IssuedAt: now, Expiry: now.Add(5 * time.Minute)}
	}
	table := map[string]func() (*token.AccessClaims, error){
		goodToken:       func() (*token.AccessClaims, error) { return claims("echo chat"), nil },
		"other.scope.x": func() (*token.AccessClaims, error) { return claims("weather"), nil },
		"expired.tok.x": func() (*token.AccessClaims, error) {
			c := claims("echo")
			c.Expiry = now.Add(-time.Second)
			return c, nil
		},
		"revoked.tok.x": func() (*token.AccessClaims, error) { return nil, errRevoked },
		"wrong.aud.x": func() (*token.AccessClaims, error) {
			c := claims("echo")
			c.Audience = "https://elsewhere"
			return c, nil
		},
		"dpop.bound.x": func() (*token.AccessClaims, error) {
			c := claims("echo")
			c.JKT = "thumbprint"
			return c, nil
		},
	}
	return fakeVerifier{verify: func(_ context.Context, raw string) (*token.AccessClaims, error) {
		if f, ok := table[raw]; ok {
			return f()
		}
		return nil, errors.New("invalid token")
	}}
}

// memSecrets is a SecretSource over a map, whose values can be rotated.
type memSecrets struct {
	mu      sync.Mutex
	values  map[string]string
	version map[string]int
	gets    atomic.Int64
}

func newMemSecrets(kv ...string) *memSecrets {
	m := &memSecrets{values: map[string]string{}, version: map[string]int{}}
	for i := 0; i < len(kv); i += 2 {
		m.put(kv[i], kv[i+1])
	}
	return m
}

func (m *memSecrets) put(name, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[name] = value
	m.version[name]++
}

var errNoSecret = errors.New("secret not found")

func (m *memSecrets) Get(_ context.Context, name string) (vault.Secret, int, error) {
	m.gets.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[name]
	if !ok {
		return vault.Secret{}, 0, errNoSecret
	}
	return vault.NewSecret([]byte(v)), m.version[name], nil
}

func (m *memSecrets) LatestVersion(_ context.Context, name string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.version[name]
	if !ok {
		return 0, errNoSecret
	}
	return v, nil
}

// received is what the test upstream saw.
type received struct {
	Method, Path, RawPath, RequestURI, RawQuery, Host string
	Header                                            http.Header
	Body                                              []byte
}

// upstreamServer is a real loopback upstream that records every request.
type upstreamServer struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	count atomic.Int64
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstreamServer {
	t.Helper()
	u := &upstreamServer{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, received{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath,
			RequestURI: r.RequestURI, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamServer) last(t *testing.T) received {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

// syncBuffer collects log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	proxy   *Proxy
	server  *httptest.Server
	secrets *memSecrets
	logs    *syncBuffer
}

type harnessOpt func(*Config, *Deps)

// newHarness runs the proxy behind the error-boundary middleware on a loopback server.
func newHarness(t *testing.T, ups []config.Upstream, opts ...harnessOpt) *harness {
	t.Helper()
	now := time.Now()
	logs := &syncBuffer{}
	h := &harness{secrets: newMemSecrets("upstream-key", testSecret), logs: logs}
	cfg := Config{Issuer: testIssuer, Upstreams: ups}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := Deps{Tokens: tableVerifier(now), Secrets: h.secrets, Logger: logger, Now: func() time.Time { return now }}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = p
	h.server = httptest.NewServer(httpapi.Middleware(logger)(p))
	t.Cleanup(h.server.Close)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testSecret) {
			t.Errorf("the upstream secret appears in the log:\n%s", logs.String())
		}
	})
	return h
}

func upstreamConfig(name, rawURL string, auth config.UpstreamAuth, routes ...config.Route) config.Upstream {
	if auth.Secret == "" {
		auth.Secret = "upstream-key"
	}
	if len(routes) == 0 {
		routes = []config.Route{{Methods: []string{"GET", "POST", "PUT"}, Path: "/**", Scope: "echo"}}
	}
	return config.Upstream{Name: name, URL: rawURL, Auth: auth, Routes: routes,
		Timeout: config.Duration(5 * time.Second), MaxRequestBody: 1024}
}

var headerAuth = config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "X-Api-Key", Template: "{{secret}}"}

func (h *harness) do(t *testing.T, method, path string, hdr http.Header, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := h.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	ID     string `json:"id"`
}

func readProblem(t *testing.T, res *http.Response, wantStatus int) problemBody {
	t.Helper()
	body := readBody(t, res)
	if res.StatusCode != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", res.StatusCode, wantStatus, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var p problemBody
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != wantStatus || p.Type == "" || p.ID == "" {
		t.Errorf("problem = %+v", p)
	}
	return p
}

func TestInjectsCredential(t *testing.T) {
	basicWant := "Basic " + base64.StdEncoding.EncodeToString([]byte("acct:"+testSecret))
	tests := []struct {
		name  string
		auth  config.UpstreamAuth
		check func(t *testing.T, got received)
	}{
		{"bearer", config.UpstreamAuth{Type: config.UpstreamAuthBearer}, func(t *testing.T, got received) {
			if v := got.Header.Values("Authorization"); len(v) != 1 || v[0] != "Bearer "+testSecret {
				t.Errorf("Authorization = %q", v)
			}
		}},
		{"header", config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "x-api-key", Template: "Key {{secret}}"},
			func(t *testing.T, got received) {
				if v := got.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != "Key "+testSecret {
					t.Errorf("X-Api-Key = %q", v)
				}
				if v := got.Header.Get("Authorization"); v != "" {
					t.Errorf("Authorization = %q, want none", v)
				}
			}},
		{"basic", config.UpstreamAuth{Type: config.UpstreamAuthBasic, Username: "acct"}, func(t *testing.T, got received) {
			if v := got.Header.Values("Authorization"); len(v) != 1 || v[0] != basicWant {
				t.Errorf("Authorization = %q, want %q", v, basicWant)
			}
		}},
		{"query", config.UpstreamAuth{Type: config.UpstreamAuthQuery, Param: "key"}, func(t *testing.T, got received) {
			q, err := url.ParseQuery(got.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			if v := q["key"]; len(v) != 1 || v[0] != testSecret {
				t.Errorf("key = %q (query %q)", v, got.RawQuery)
			}
			if v := q["q"]; len(v) != 1 || v[0] != "a b" {
				t.Errorf("q = %q, want the client's parameter kept", v)
			}
			if v := got.Header.Get("Authorization"); v != "" {
				t.Errorf("Authorization = %q, want none", v)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			h := newHarness(t, []config.Upstream{upstreamConfig("maps", up.URL+"/api", tt.auth)})
			hdr := bearer(goodToken)
			hdr.Set("Cookie", "session=client")
			hdr.Set("DPoP", "proof")
			hdr.Set("X-Api-Key", "client-supplied")
			hdr.Set("X-Forwarded-For", "6.6.6.6")
			hdr.Set("X-Forwarded-Host", "evil.example")
			hdr.Set("X-Forwarded-Proto", "https")
			hdr.Set("X-Forwarded-Prefix", "/admin")
			hdr.Set("Forwarded", "for=6.6.6.6")
			hdr.Set("X-Real-IP", "6.6.6.6")
			hdr["X_forwarded_for"] = []string{"6.6.6.6"}
			hdr.Set("Signature", "sig")
			hdr.Set("Signature-Input", "sig=()")
			hdr.Set("Proxy-Authorization", "Basic eA==")
			hdr.Set("Connection", "X-Hop")
			hdr.Set("X-Hop", "hop")
			hdr.Set("X-Custom", "kept")
			res := h.do(t, "GET", "/maps/a%20b/c?q=a+b&key=attacker&k%65y=attacker2", hdr, nil)
			if body := readBody(t, res); res.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("status %d body %q", res.StatusCode, body)
			}
			got := up.last(t)
			tt.check(t, got)
			if got.Path != "/api/a b/c" || got.RequestURI[:len("/api/a%20b/c")] != "/api/a%20b/c" {
				t.Errorf("path = %q, request URI = %q; want /api/a%%20b/c", got.Path, got.RequestURI)
			}
			if tt.auth.Type != config.UpstreamAuthQuery && !strings.Contains(got.RawQuery, "key=attacker") {
				t.Errorf("query = %q: the client's own parameters must pass when not the credential", got.RawQuery)
			}
			wantHost := strings.TrimPrefix(up.URL, "http://")
			if got.Host != wantHost {
				t.Errorf("Host = %q, want %q", got.Host, wantHost)
			}
			for _, k := range []string{"Cookie", "Dpop", "Forwarded", "X-Real-Ip", "X_forwarded_for", "X-Forwarded-Prefix",
				"Signature", "Signature-Input", "Proxy-Authorization", "X-Hop", "Connection"} {
				if v, ok := got.Header[k]; ok {
					t.Errorf("upstream received %s: %q", k, v)
				}
			}
			if v := got.Header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q, want keygate's own 127.0.0.1", v)
			}
			if v := got.Header.Get("X-Forwarded-Proto"); v != "http" {
				t.Errorf("X-Forwarded-Proto = %q, want http", v)
			}
			if v := got.Header.Get("X-Forwarded-Host"); v != strings.TrimPrefix(h.server.URL, "http://") {
				t.Errorf("X-Forwarded-Host = %q", v)
			}
			if v := got.Header.Get("X-Custom"); v != "kept" {
				t.Errorf("X-Custom = %q, want end-to-end headers kept", v)
			}
		})
	}
}

func TestTrustedProxyChain(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)}, func(c *Config, _ *Deps) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	hdr := bearer(goodToken)
	hdr.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.1")
	hdr.Set("X-Forwarded-Proto", "https")
	res := h.do(t, "GET", "/echo/x", hdr, nil)
	readBody(t, res)
	got := up.last(t)
	if v := got.Header.Get("X-Forwarded-For"); v != "203.0.113.9, 10.0.0.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want the trusted proxy's https", v)
	}

	r := httptest.NewRequest("GET", "/echo/x", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.9")
	if got := h.proxy.ClientIP(r); got != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("ClientIP = %v, want the rightmost untrusted 203.0.113.9", got)
	}
	r.RemoteAddr = "192.0.2.1:5555"
	if got := h.proxy.ClientIP(r); got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("ClientIP = %v, want the untrusted peer", got)
	}
}

func TestAuthFailures(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	long := strings.Repeat("a", MaxTokenLength+1)
	tests := []struct {
		name      string
		path      string
		hdr       http.Header
		want      int
		challenge string // substring of WWW-Authenticate
	}{
		{"missing", "/echo/x", nil, 401, `Bearer realm="keygate"`},
		{"other scheme", "/echo/x", http.Header{"Authorization": {"Basic eDp5"}}, 401, `Bearer realm="keygate"`},
		{"invalid", "/echo/x", bearer("nope.nope.nope"), 401, `error="invalid_token"`},
		{"expired", "/echo/x", bearer("expired.tok.x"), 401, `error="invalid_token"`},
		{"revoked", "/echo/x", bearer("revoked.tok.x"), 401, `error="invalid_token"`},
		{"wrong audience", "/echo/x", bearer("wrong.aud.x"), 401, `error="invalid_token"`},
		{"dpop-bound as bearer", "/echo/x", bearer("dpop.bound.x"), 401, `error="invalid_token"`},
		{"capability without support", "/echo/x", bearer("kgc_abc"), 401, `error="invalid_token"`},
		{"too long", "/echo/x", bearer(long), 401, `error="invalid_token"`},
		{"wrong scope", "/echo/x", bearer("other.scope.x"), 403, `error="insufficient_scope"`},
		{"two spaces", "/echo/x", http.Header{"Authorization": {"Bearer  " + goodToken}}, 400, `error="invalid_request"`},
		{"empty token", "/echo/x", http.Header{"Authorization": {"Bearer "}}, 400, `error="invalid_request"`},
		{"bad characters", "/echo/x", bearer("a b"), 400, `error="invalid_request"`},
		{"two headers", "/echo/x", http.Header{"Authorization": {"Bearer " + goodToken, "Bearer " + goodToken}}, 400, `error="invalid_request"`},
		{"query token", "/echo/x?access_token=" + goodToken, nil, 400, `error="invalid_request"`},
		{"query token encoded", "/echo/x?access%5Ftoken=" + goodToken, bearer(goodToken), 400, `error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count.Load()
			res := h.do(t, "GET", tt.path, tt.hdr, nil)
			body := readBody(t, res)
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tt.want, body)
			}
			if ch := res.Header.Get("WWW-Authenticate"); !strings.Contains(ch, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", ch, tt.challenge)
			}
			if tt.name == "missing" && strings.Contains(res.Header.Get("WWW-Authenticate"), "error=") {
				t.Errorf("no credentials must get a challenge without an error code (RFC 6750 §3.1)")
			}
			if tt.want == 403 && !strings.Contains(res.Header.Get("WWW-Authenticate"), `scope="echo"`) {
				t.Errorf("WWW-Authenticate = %q, want the needed scope", res.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, goodToken) {
				t.Errorf("body repeats the token: %s", body)
			}
			if n := up.count.Load() - before; n != 0 {
				t.Errorf("upstream received %d requests, want none", n)
			}
		})
	}
	// Scheme names are case-insensitive (RFC 9110 §11.1).
	res := h.do(t, "GET", "/echo/x", http.Header{"Authorization": {"bEaReR " + goodToken}}, nil)
	if readBody(t, res); res.StatusCode != 200 {
		t.Errorf("lower-case scheme: status %d, want 200", res.StatusCode)
	}
}

func TestRouting(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("openai", up.URL, config.UpstreamAuth{Type: config.UpstreamAuthBearer},
		config.Route{Methods: []string{"POST"}, Path: "/v1/chat/completions", Scope: "chat"},
		config.Route{Methods: []string{"GET"}, Path: "/v1/models/**", Scope: "chat"},
	)})
	tests := []struct {
		name, method, path string
		want               int
		allow              string
	}{
		{"unknown upstream", "GET", "/nope/v1/models", 404, ""},
		{"no route", "GET", "/openai/v2/x", 404, ""},
		{"no route root", "GET", "/openai", 404, ""},
		{"method not allowed", "GET", "/openai/v1/chat/completions", 405, "POST"},
		{"method not allowed rest", "DELETE", "/openai/v1/models/gpt", 405, "GET, HEAD"},
		{"ok literal", "POST", "/openai/v1/chat/completions", 200, ""},
		{"ok rest empty", "GET", "/openai/v1/models", 200, ""},
		{"ok rest deep", "GET", "/openai/v1/models/x/y", 200, ""},
		{"head on get route", "HEAD", "/openai/v1/models/x", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count.Load()
			res := h.do(t, tt.method, tt.path, bearer(goodToken), nil)
			if tt.want != 200 {
				readProblem(t, res, tt.want)
				if n := up.count.Load() - before; n != 0 {
					t.Errorf("upstream received %d requests, want none", n)
				}
			} else if readBody(t, res); res.StatusCode != 200 {
				t.Errorf("status = %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// rawRequest sends a request line as written, which an http.Client would normalise.
func rawRequest(t *testing.T, addr, requestLine string, hdr http.Header) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	b.WriteString(requestLine + "\r\nHost: " + addr + "\r\nConnection: close\r\n")
	for k, vs := range hdr {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestPathHygiene(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	addr := strings.TrimPrefix(h.server.URL, "http://")
	tests := []struct {
		name, line string
		want       int
	}{
		{"dotdot", "GET /echo/../admin HTTP/1.1", 400},
		{"dotdot to other upstream", "GET /echo/../../other/x HTTP/1.1", 400},
		{"encoded dotdot", "GET /echo/%2e%2e/x HTTP/1.1", 400},
		{"mixed encoded dotdot", "GET /echo/%2E./x HTTP/1.1", 400},
		{"dot", "GET /echo/./x HTTP/1.1", 400},
		{"dotdot semicolon", "GET /echo/..;/x HTTP/1.1", 400},
		{"encoded slash", "GET /echo/a%2fb HTTP/1.1", 400},
		{"encoded slash upper", "GET /echo/a%2Fb HTTP/1.1", 400},
		{"encoded backslash", "GET /echo/a%5cb HTTP/1.1", 400},
		{"double encoded", "GET /echo/%252e%252e/x HTTP/1.1", 400},
		{"empty segment", "GET /echo//x HTTP/1.1", 400},
		{"backslash", "GET /echo/a\\b HTTP/1.1", 400},
		{"nul", "GET /echo/a%00b HTTP/1.1", 400},
		{"absolute form", "GET http://evil.example/echo/x HTTP/1.1", 400},
		{"absolute form same host", "GET http://" + addr + "/echo/x HTTP/1.1", 400},
		{"connect", "CONNECT evil.example:443 HTTP/1.1", 400},
		{"clean", "GET /echo/a/b HTTP/1.1", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count.Load()
			res := rawRequest(t, addr, tt.line, bearer(goodToken))
			body := readBody(t, res)
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tt.want, body)
			}
			wantCount := int64(0)
			if tt.want == 200 {
				wantCount = 1
			}
			if n := up.count.Load() - before; n != wantCount {
				t.Errorf("upstream received %d requests, want %d", n, wantCount)
			}
		})
	}
}

func TestHopByHopAndUpgrade(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	addr := strings.TrimPrefix(h.server.URL, "http://")
	hdr := bearer(goodToken)
	hdr.Set("Keep-Alive", "timeout=5")
	hdr.Set("Te", "gzip")
	hdr.Set("Upgrade", "websocket")
	hdr.Set("Proxy-Connection", "keep-alive")
	hdr.Set("Trailer", "X-T")
	res := rawRequest(t, addr, "GET /echo/x HTTP/1.1", hdr)
	if body := readBody(t, res); res.StatusCode != 200 {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}
	got := up.last(t)
	for _, k := range []string{"Keep-Alive", "Te", "Upgrade", "Proxy-Connection", "Trailer"} {
		if v, ok := got.Header[k]; ok {
			t.Errorf("upstream received hop-by-hop %s: %q", k, v)
		}
	}
	if v := got.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "upgrade") {
		t.Errorf("Connection = %q, want no upgrade", v)
	}
}

func TestResponsesPassThrough(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/limited":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, "slow down")
		case "/redirect":
			w.Header().Set("Location", "https://elsewhere.example/next?x=1")
			w.WriteHeader(http.StatusFound)
		case "/cookie":
			w.Header().Add("Set-Cookie", "a=b")
			w.Header().Set("Access-Control-Allow-Origin", "*")
			_, _ = io.WriteString(w, "ok")
		}
	})
	h := newHarness(t, []config.Upstream{
		upstreamConfig("echo", up.URL, headerAuth),
		func() config.Upstream {
			u := upstreamConfig("cookies", up.URL, headerAuth)
			u.AllowSetCookie = true
			return u
		}(),
	})
	client := h.server.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	res := h.do(t, "GET", "/echo/limited", bearer(goodToken), nil)
	if body := readBody(t, res); res.StatusCode != 429 || res.Header.Get("Retry-After") != "7" || body != "slow down" {
		t.Errorf("429: status %d, Retry-After %q, body %q", res.StatusCode, res.Header.Get("Retry-After"), body)
	}

	before := up.count.Load()
	req, _ := http.NewRequest("GET", h.server.URL+"/echo/redirect", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, res)
	res.Body.Close()
	if res.StatusCode != 302 || res.Header.Get("Location") != "https://elsewhere.example/next?x=1" {
		t.Errorf("redirect: status %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	if n := up.count.Load() - before; n != 1 {
		t.Errorf("upstream received %d requests, want 1 (keygate must not follow redirects)", n)
	}

	res = h.do(t, "GET", "/echo/cookie", bearer(goodToken), nil)
	readBody(t, res)
	if v := res.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Errorf("Set-Cookie = %q, want stripped", v)
	}
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("Access-Control-Allow-Origin = %q, want the upstream's dropped", v)
	}
	res = h.do(t, "GET", "/cookies/cookie", bearer(goodToken), nil)
	readBody(t, res)
	if v := res.Header.Values("Set-Cookie"); len(v) != 1 || v[0] != "a=b" {
		t.Errorf("Set-Cookie = %q, want passed with pass_set_cookie", v)
	}
}

// echoError answers 400 with everything it received, in a header and in the body.
func echoError(encoding string, pad int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dump, _ := json.Marshal(map[string]any{"url": r.URL.String(), "headers": r.Header})
		body := append([]byte(strings.Repeat("x", pad)), dump...)
		w.Header().Set("X-Debug-Auth", r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"))
		w.Header().Set("Content-Type", "application/json")
		switch encoding {
		case "gzip":
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(buf.Bytes())
		case "br":
			w.Header().Set("Content-Encoding", "br")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(body)
		case "chunked":
			w.WriteHeader(http.StatusBadRequest)
			for i := 0; i < len(body); i += 1000 {
				_, _ = w.Write(body[i:min(i+1000, len(body))])
				w.(http.Flusher).Flush()
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(body)
		}
	}
}

func TestSecretNotReflected(t *testing.T) {
	auths := map[string]config.UpstreamAuth{
		"bearer": {Type: config.UpstreamAuthBearer},
		"header": headerAuth,
		"basic":  {Type: config.UpstreamAuthBasic, Username: "acct"},
		"query":  {Type: config.UpstreamAuthQuery, Param: "key"},
	}
	bodies := []struct {
		name     string
		encoding string
		pad      int
	}{
		{"small", "", 0},
		{"large", "", 100 << 10},
		{"chunked", "chunked", 3000},
		{"gzip", "gzip", 0},
		{"unknown encoding", "br", 0},
	}
	basic := base64.StdEncoding.EncodeToString([]byte("acct:" + testSecret))
	forms := []string{testSecret, url.QueryEscape(testSecret), basic, "sk-live-0123456789abcdef"}
	for authName, auth := range auths {
		for _, b := range bodies {
			t.Run(authName+"/"+b.name, func(t *testing.T) {
				up := newUpstream(t, echoError(b.encoding, b.pad))
				h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, auth)})
				res := h.do(t, "GET", "/echo/x?y=1", bearer(goodToken), nil)
				body := readBody(t, res)
				if res.StatusCode != 400 {
					t.Fatalf("status = %d", res.StatusCode)
				}
				var dump strings.Builder
				for k, vs := range res.Header {
					fmt.Fprintf(&dump, "%s: %s\n", k, strings.Join(vs, ","))
				}
				dump.WriteString(body)
				for _, f := range forms {
					if strings.Contains(dump.String(), f) {
						t.Fatalf("response contains the credential (%q):\n%s", f, dump.String())
					}
				}
				if b.encoding != "br" && !strings.Contains(body, redactedText) {
					t.Errorf("body has no %s marker; body starts %q", redactedText, body[:min(200, len(body))])
				}
				if b.encoding == "br" && body != "" {
					t.Errorf("an error body in an unreadable encoding must be withheld, got %d bytes", len(body))
				}
				if cl := res.Header.Get("Content-Length"); cl != "" && cl != fmt.Sprint(len(body)) {
					t.Errorf("Content-Length = %s, body has %d bytes", cl, len(body))
				}
			})
		}
	}
}

func TestRedactReaderBoundaries(t *testing.T) {
	c := newCredential(&config.UpstreamAuth{Type: config.UpstreamAuthBearer}, &secretEntry{version: 1, value: vault.NewSecret([]byte("SECRET"))})
	in := strings.Repeat("ab SECRET cd ", 50) + "SECRE"
	want := strings.ReplaceAll(in, "SECRET", redactedText)
	for _, chunk := range []int{1, 2, 5, 6, 7, 13, 100} {
		r := newRedactReader(io.NopCloser(&chunkReader{s: in, n: chunk}), c)
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("chunk %d: got %q, want %q", chunk, got, want)
		}
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func TestSSEStreams(t *testing.T) {
	const events = 5
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	})
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	res := h.do(t, "GET", "/echo/stream", bearer(goodToken), nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	var arrivals []time.Time
	for len(arrivals) < events {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(arrivals), err)
		}
		if strings.HasPrefix(line, "data: ") {
			arrivals = append(arrivals, time.Now())
		}
	}
	for i := 1; i < len(arrivals); i++ {
		if gap := arrivals[i].Sub(arrivals[i-1]); gap < 150*time.Millisecond {
			t.Errorf("event %d arrived %v after the previous one: buffered, not streamed", i, gap)
		}
	}
}

func TestStreamIdleCut(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	h.proxy.idle = 300 * time.Millisecond
	start := time.Now()
	res := h.do(t, "GET", "/echo/stream", bearer(goodToken), nil)
	body, err := io.ReadAll(res.Body)
	if err == nil {
		t.Errorf("read succeeded, want the stream cut off (got %q)", body)
	}
	if !strings.Contains(string(body), "data: first") {
		t.Errorf("body = %q, want the first event", body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stream cut after %v, want about 300ms", d)
	}
}

func TestRequestBodyLimit(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})

	t.Run("content-length", func(t *testing.T) {
		before := up.count.Load()
		res := h.do(t, "POST", "/echo/x", bearer(goodToken), strings.NewReader(strings.Repeat("a", 1025)))
		readProblem(t, res, 413)
		if n := up.count.Load() - before; n != 0 {
			t.Errorf("upstream received %d requests, want none", n)
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		res := h.do(t, "POST", "/echo/x", bearer(goodToken), strings.NewReader(strings.Repeat("a", 1024)))
		if readBody(t, res); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if got := up.last(t); len(got.Body) != 1024 {
			t.Errorf("upstream got %d bytes", len(got.Body))
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// io.MultiReader hides the length: the client sends chunked.
		body := io.MultiReader(strings.NewReader(strings.Repeat("a", 600)), strings.NewReader(strings.Repeat("b", 600)))
		res := h.do(t, "POST", "/echo/x", bearer(goodToken), body)
		readProblem(t, res, 413)
	})
	t.Run("chunked within limit", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader(strings.Repeat("a", 500)), strings.NewReader(strings.Repeat("b", 500)))
		res := h.do(t, "PUT", "/echo/x", bearer(goodToken), body)
		if readBody(t, res); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if got := up.last(t); len(got.Body) != 1000 {
			t.Errorf("upstream got %d bytes", len(got.Body))
		}
	})
}

func TestUpstreamFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String()
	ln.Close()

	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	slowCfg := upstreamConfig("slow", slow.URL, headerAuth)
	slowCfg.Timeout = config.Duration(200 * time.Millisecond)
	h := newHarness(t, []config.Upstream{upstreamConfig("down", downURL, headerAuth), slowCfg})

	res := h.do(t, "GET", "/down/x", bearer(goodToken), nil)
	if p := readProblem(t, res, 502); p.Type != ProblemUpstreamUnavailable {
		t.Errorf("type = %q", p.Type)
	}
	start := time.Now()
	res = h.do(t, "GET", "/slow/x", bearer(goodToken), nil)
	if p := readProblem(t, res, 504); p.Type != ProblemUpstreamTimeout {
		t.Errorf("type = %q", p.Type)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timed out after %v, want about 200ms", d)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "request_id=") {
		t.Errorf("the cause is not logged with the request id:\n%s", logs)
	}
}

func TestMissingSecret(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := upstreamConfig("echo", up.URL, config.UpstreamAuth{Type: config.UpstreamAuthBearer, Secret: "absent"})
	h := newHarness(t, []config.Upstream{cfg})
	res := h.do(t, "GET", "/echo/x", bearer(goodToken), nil)
	readProblem(t, res, 502)
	if up.count.Load() != 0 {
		t.Error("upstream contacted without a credential")
	}
	if !strings.Contains(h.logs.String(), "absent") {
		t.Errorf("the cause is not logged:\n%s", h.logs.String())
	}
}

func TestSecretRotation(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Api-Key"))
	})
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var runDone sync.WaitGroup
	runDone.Go(func() { h.proxy.Run(ctx) })
	defer runDone.Wait()
	defer cancel()

	const newKey = "sk-rotated-9876543210"
	var (
		failures atomic.Int64
		total    atomic.Int64
		mu       sync.Mutex
		firstNew time.Time
	)
	stop := time.Now().Add(5 * time.Second)
	var rotatedAt time.Time
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", h.server.URL+"/echo/x", nil)
				req.Header.Set("Authorization", "Bearer "+goodToken)
				res, err := h.server.Client().Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				total.Add(1)
				switch {
				case res.StatusCode != 200:
					failures.Add(1)
				case string(b) == newKey:
					mu.Lock()
					if firstNew.IsZero() {
						firstNew = time.Now()
					}
					mu.Unlock()
				case string(b) != testSecret:
					failures.Add(1)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	rotatedAt = time.Now()
	mu.Unlock()
	h.secrets.put("upstream-key", newKey)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during rotation", n, total.Load())
	}
	if firstNew.IsZero() {
		t.Fatal("the rotated key was never used")
	}
	if d := firstNew.Sub(rotatedAt); d > 3*time.Second {
		t.Errorf("the rotated key was first used %v after the rotation, want within 3s", d)
	}
	if got := up.last(t).Header.Get("X-Api-Key"); got != newKey {
		t.Errorf("last request used %q, want the rotated key", got)
	}
	t.Logf("%d requests; new key in use %v after rotation", total.Load(), firstNew.Sub(rotatedAt).Round(time.Millisecond))
}

func TestCORS(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := upstreamConfig("echo", up.URL, headerAuth,
		config.Route{Methods: []string{"POST"}, Path: "/v1/chat", Scope: "echo"},
		config.Route{Methods: []string{"GET"}, Path: "/v1/**", Scope: "echo"})
	cfg.CORS.Origins = []string{"https://app.example.com"}
	h := newHarness(t, []config.Upstream{cfg})

	t.Run("preflight", func(t *testing.T) {
		hdr := http.Header{
			"Origin":                         {"https://app.example.com"},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization, dpop, content-type, x-evil"},
		}
		res := h.do(t, "OPTIONS", "/echo/v1/chat", hdr, nil)
		readBody(t, res)
		if res.StatusCode != 204 {
			t.Fatalf("status %d", res.StatusCode)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":  "https://app.example.com",
			"Access-Control-Allow-Methods": "POST, GET, HEAD",
			"Access-Control-Allow-Headers": "authorization, dpop, content-type",
			"Access-Control-Max-Age":       "600",
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("Access-Control-Allow-Credentials must not be sent")
		}
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary = %q", res.Header.Values("Vary"))
		}
		if up.count.Load() != 0 {
			t.Error("a preflight reached the upstream")
		}
	})
	t.Run("preflight unlisted origin", func(t *testing.T) {
		hdr := http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}
		res := h.do(t, "OPTIONS", "/echo/v1/chat", hdr, nil)
		readProblem(t, res, 403)
		if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("Access-Control-Allow-Origin = %q", v)
		}
	})
	t.Run("preflight unknown route", func(t *testing.T) {
		hdr := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}
		readProblem(t, h.do(t, "OPTIONS", "/echo/v2/x", hdr, nil), 404)
	})
	t.Run("actual", func(t *testing.T) {
		hdr := bearer(goodToken)
		hdr.Set("Origin", "https://app.example.com")
		res := h.do(t, "POST", "/echo/v1/chat", hdr, strings.NewReader("{}"))
		readBody(t, res)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if v := res.Header.Get("Access-Control-Allow-Origin"); v != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin = %q", v)
		}
		if v := res.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(v, "WWW-Authenticate") || !strings.Contains(v, "Retry-After") {
			t.Errorf("Access-Control-Expose-Headers = %q", v)
		}
	})
	t.Run("actual auth failure readable", func(t *testing.T) {
		res := h.do(t, "POST", "/echo/v1/chat", http.Header{"Origin": {"https://app.example.com"}}, nil)
		readBody(t, res)
		if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Errorf("status %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("actual unlisted origin", func(t *testing.T) {
		hdr := bearer(goodToken)
		hdr.Set("Origin", "https://evil.example")
		res := h.do(t, "GET", "/echo/v1/x", hdr, nil)
		readBody(t, res)
		if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("Access-Control-Allow-Origin = %q, want none", v)
		}
	})
}

func TestCORSMiddleware(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	h := CORS([]string{"https://app.example.com"})(next)

	r := httptest.NewRequest("OPTIONS", "/oauth2/token", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}

	r = httptest.NewRequest("OPTIONS", "/oauth2/token", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("unlisted preflight: %d", w.Code)
	}

	r = httptest.NewRequest("POST", "/oauth2/token", nil)
	r.Header.Set("Origin", "https://app.example.com")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("actual: %d %v", w.Code, w.Header())
	}
}

func TestEchoUpstream(t *testing.T) {
	cfg := upstreamConfig("echo", "http://127.0.0.1:8080/dev/echo", headerAuth)
	h := newHarness(t, []config.Upstream{cfg}, func(_ *Config, d *Deps) {
		d.UpstreamTransports = map[string]http.RoundTripper{"echo": EchoTransport()}
	})
	hdr := bearer(goodToken)
	hdr.Set("Cookie", "c=1")
	res := h.do(t, "POST", "/echo/hello%20world/x?a=1&b=2", hdr, strings.NewReader("body"))
	body := readBody(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}
	var got EchoRequest
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.Path != "/dev/echo/hello%20world/x" || got.Query != "a=1&b=2" {
		t.Errorf("echo = %+v", got)
	}
	if v := got.Headers["X-Api-Key"]; len(v) != 1 || v[0] != testSecret {
		t.Errorf("X-Api-Key = %q, want the injected demo key", v)
	}
	if v := got.Headers["Host"]; len(v) != 1 || v[0] != "127.0.0.1:8080" {
		t.Errorf("Host = %q", v)
	}
	for _, k := range []string{"Authorization", "Cookie", "User-Agent"} {
		if v, ok := got.Headers[k]; ok && (k != "User-Agent" || v[0] == "") {
			t.Errorf("echo received %s: %q", k, v)
		}
	}
}

func TestHooks(t *testing.T) {
	up := newUpstream(t, nil)
	type obs struct {
		upstream      string
		status        int
		bytesIn, bOut int64
	}
	var mu sync.Mutex
	var seen []obs
	errLimited := &httpapi.Problem{Status: http.StatusTooManyRequests, Type: httpapi.ProblemTypeBase + "rate-limited",
		Header: http.Header{"Retry-After": {"1"}}}
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)}, func(_ *Config, d *Deps) {
		d.Authorize = func(r *http.Request, c *Caller, m *RouteMatch) error {
			if c.Subject != "dev|alice" || m.Upstream != "echo" || m.Pattern != "/**" || m.Scope != "echo" {
				return fmt.Errorf("unexpected caller %+v route %+v", c, m)
			}
			if r.URL.Query().Get("limited") != "" {
				return errLimited
			}
			return nil
		}
		d.Observe = func(r *http.Request, c *Caller, m *RouteMatch, status int, _ time.Duration, in, out int64) {
			if (c == nil) != (status == 401) || r == nil || (status != 401 && m.Pattern != "/**") {
				t.Errorf("observe: caller %+v route %+v status %d", c, m, status)
			}
			mu.Lock()
			seen = append(seen, obs{m.Upstream, status, in, out})
			mu.Unlock()
		}
	})
	res := h.do(t, "POST", "/echo/x", bearer(goodToken), strings.NewReader("hello"))
	if readBody(t, res); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	before := up.count.Load()
	res = h.do(t, "GET", "/echo/x?limited=1", bearer(goodToken), nil)
	readProblem(t, res, 429)
	if res.Header.Get("Retry-After") != "1" || up.count.Load() != before {
		t.Errorf("Retry-After %q, upstream count %d", res.Header.Get("Retry-After"), up.count.Load()-before)
	}
	readBody(t, h.do(t, "GET", "/echo/x", nil, nil))

	mu.Lock()
	defer mu.Unlock()
	want := []obs{{"echo", 200, 5, 2}, {"echo", 429, 0, 0}, {"echo", 401, 0, 0}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := upstreamConfig("echo", "http://127.0.0.1:1", headerAuth)
	tests := map[string]func(u *config.Upstream){
		"bad url":     func(u *config.Upstream) { u.URL = "ftp://x" },
		"query url":   func(u *config.Upstream) { u.URL = "http://x/?a=1" },
		"bad pattern": func(u *config.Upstream) { u.Routes[0].Path = "/a/**/b" },
		"bad auth":    func(u *config.Upstream) { u.Auth.Type = "magic" },
		"no secret":   func(u *config.Upstream) { u.Auth.Secret = "" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			u := good
			u.Routes = append([]config.Route(nil), good.Routes...)
			mutate(&u)
			_, err := New(Config{Upstreams: []config.Upstream{u}}, Deps{Tokens: tableVerifier(time.Now()), Secrets: newMemSecrets()})
			if err == nil {
				t.Error("New accepted a bad upstream")
			}
		})
	}
}

func TestWrapBeforeServeMux(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "healthy") })
	mux.Handle("/", h.proxy)

	for _, tt := range []struct {
		name    string
		handler http.Handler
		want    int
	}{
		// ServeMux alone redirects to the cleaned path before the proxy runs.
		{"mux alone", mux, http.StatusTemporaryRedirect},
		{"wrapped", h.proxy.Wrap(mux), http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			addr := strings.TrimPrefix(srv.URL, "http://")
			res := rawRequest(t, addr, "GET /echo/../healthz HTTP/1.1", bearer(goodToken))
			readBody(t, res)
			if res.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.want)
			}
			res = rawRequest(t, addr, "GET /healthz HTTP/1.1", nil)
			if body := readBody(t, res); body != "healthy" {
				t.Errorf("/healthz = %d %q, want the mux's handler", res.StatusCode, body)
			}
		})
	}
	if up.count.Load() != 0 {
		t.Errorf("upstream received %d requests", up.count.Load())
	}
}

func TestTrailersRedacted(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Echo")
		_, _ = io.WriteString(w, "ok")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Echo", r.Header.Get("X-Api-Key"))
	})
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	res := h.do(t, "GET", "/echo/x", bearer(goodToken), nil)
	readBody(t, res)
	if got := res.Trailer.Get("X-Echo"); got != redactedText {
		t.Errorf("trailer X-Echo = %q, want %q", got, redactedText)
	}
}
