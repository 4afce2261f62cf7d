package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/backend"
	"github.com/keygate/keygate/internal/store/pgtest"
	"github.com/keygate/keygate/internal/vault"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends lists the databases every end-to-end test runs against.
var backends = []string{"sqlite", "postgres"}

// server is a running keygate: the real handler stack on loopback.
type server struct {
	URL           string // public origin, also the issuer
	AdminURL      string
	Config        *config.Config
	Store         store.Store
	Vault         *vault.Vault
	DataDir       string
	Logs          *syncBuffer
	BackendSecret string // dev-backend's client secret
	stop          func()
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

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// databaseDSN returns a fresh database of the named backend.
func databaseDSN(t testing.TB, backendName, dir string) string {
	t.Helper()
	if backendName == "postgres" {
		return pgtest.DSN(t)
	}
	return "sqlite://" + filepath.Join(dir, "keygate.db")
}

// startDev starts a dev-mode keygate (dev IdP, echo upstream, dev clients)
// on random loopback ports over the named backend. modify, when set, may
// change the config before start.
func startDev(t testing.TB, backendName string, modify func(*config.Config), opts ...func(*app.Options)) *server {
	t.Helper()
	dir := t.TempDir()
	pubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DevConfig(pubLn.Addr().String(), admLn.Addr().String(), dir)
	cfg.Database = databaseDSN(t, backendName, dir)
	if modify != nil {
		modify(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return startWith(t, cfg, dir, pubLn, admLn, true, opts...)
}

func startWith(t testing.TB, cfg *config.Config, dir string, pubLn, admLn net.Listener, dev bool, opts ...func(*app.Options)) *server {
	t.Helper()
	ctx := context.Background()
	if _, err := os.Stat(cfg.MasterKeyFile); os.IsNotExist(err) {
		if err := vault.GenerateMasterKeyFile(cfg.MasterKeyFile); err != nil {
			t.Fatal(err)
		}
	}
	kr, err := vault.LoadMasterKeyFile(cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := backend.Open(ctx, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(st, kr, nil)
	if err := v.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "dev-backend.secret")
	if err := app.SeedDev(ctx, v, secretFile); err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(secretFile)
	logs := &syncBuffer{}
	var logOut io.Writer = logs
	if _, ok := t.(*testing.B); ok {
		// Benchmarks format every log line but keep none: millions of
		// lines in memory would measure the buffer, not keygate.
		logOut = io.Discard
	}
	logger := slog.New(slog.NewJSONHandler(logOut, nil))
	o := app.Options{Dev: dev, Logger: logger}
	for _, f := range opts {
		f(&o)
	}
	a, err := app.New(ctx, cfg, st, v, o)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(runCtx, pubLn, admLn) }()
	s := &server{URL: "http://" + pubLn.Addr().String(), AdminURL: "http://" + admLn.Addr().String(),
		Config: cfg, Store: st, Vault: v, DataDir: dir, Logs: logs, BackendSecret: string(secret)}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("server did not stop")
			}
			st.Close()
		})
	}
	t.Cleanup(func() {
		s.stop()
		// No secret ever reaches the log.
		if echoKey, _, err := v.Get(context.Background(), "echo-key"); err == nil && strings.Contains(logs.String(), string(echoKey.Reveal())) {
			t.Error("the log contains the upstream key")
		}
		if s.BackendSecret != "" && strings.Contains(logs.String(), s.BackendSecret) {
			t.Error("the log contains a client secret")
		}
	})
	return s
}

// postForm posts form values and decodes a JSON answer into out (if set).
func (s *server) postForm(t testing.TB, path string, form url.Values, header http.Header, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if out != nil && len(body) > 0 {
		_ = json.Unmarshal(body, out)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res
}

// idToken mints a dev IdP ID token for sub.
func (s *server) idToken(t testing.TB, sub string) string {
	t.Helper()
	var out struct {
		IDToken string `json:"id_token"`
	}
	res := s.postForm(t, "/dev/id-token", url.Values{"sub": {sub}}, nil, &out)
	if res.StatusCode != 200 || out.IDToken == "" {
		t.Fatalf("dev id token: %d", res.StatusCode)
	}
	return out.IDToken
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

// exchange performs token exchange for sub as dev-app.
func (s *server) exchange(t testing.TB, sub string, header http.Header) tokenResponse {
	t.Helper()
	var out tokenResponse
	res := s.postForm(t, "/oauth2/token", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"client_id":          {"dev-app"},
		"subject_token":      {s.idToken(t, sub)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
	}, header, &out)
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("token exchange: %d %s", res.StatusCode, body)
	}
	return out
}

// get sends a GET with the given Authorization header value.
func (s *server) get(t testing.TB, path, authorization string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}
