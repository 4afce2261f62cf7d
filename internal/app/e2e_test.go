package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keygate/keygate/internal/proxy"
)

func TestEndToEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			tok := s.exchange(t, "alice", nil)
			if tok.TokenType != "Bearer" || !strings.HasPrefix(tok.RefreshToken, "kgr_") || tok.Scope != "echo" {
				t.Fatalf("token exchange answer = %+v", tok)
			}

			// The upstream gets the injected key, never the app's token.
			res, body := s.get(t, "/echo/hello?x=1", "Bearer "+tok.AccessToken)
			if res.StatusCode != 200 {
				t.Fatalf("proxied call: %d %s", res.StatusCode, body)
			}
			var echo proxy.EchoRequest
			if err := json.Unmarshal(body, &echo); err != nil {
				t.Fatal(err)
			}
			key, _, _ := s.Vault.Get(context.Background(), "echo-key")
			if got := echo.Headers["X-Api-Key"]; len(got) != 1 || got[0] != string(key.Reveal()) {
				t.Errorf("upstream X-Api-Key = %v, want the vault's echo-key", got)
			}
			if _, ok := echo.Headers["Authorization"]; ok || echo.Path != "/hello" || echo.Query != "x=1" {
				t.Errorf("upstream saw %+v", echo)
			}

			// Refresh, then revoke the refresh token: the family's access tokens die at once.
			var refreshed tokenResponse
			s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {tok.RefreshToken}}, nil, &refreshed)
			if refreshed.AccessToken == "" || refreshed.RefreshToken == tok.RefreshToken {
				t.Fatalf("refresh = %+v", refreshed)
			}
			if res := s.postForm(t, "/oauth2/revoke", url.Values{"client_id": {"dev-app"}, "token": {refreshed.RefreshToken}}, nil, nil); res.StatusCode != 200 {
				t.Fatalf("revoke: %d", res.StatusCode)
			}
			for _, at := range []string{tok.AccessToken, refreshed.AccessToken} {
				res, _ := s.get(t, "/echo/hello", "Bearer "+at)
				if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("after revoke: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// golang.org/x/oauth2, unmodified, against the running server.
func TestGoOAuth2Client(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			cc := clientcredentials.Config{ClientID: "dev-backend", ClientSecret: s.BackendSecret, TokenURL: s.URL + "/oauth2/token", Scopes: []string{"echo"}}
			tok, err := cc.Token(t.Context())
			if err != nil {
				t.Fatalf("client_credentials: %v", err)
			}
			res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken)
			if res.StatusCode != 200 {
				t.Fatalf("proxied call with client_credentials token: %d %s", res.StatusCode, body)
			}

			// Refresh through x/oauth2's TokenSource: an expired token is refreshed transparently.
			ex := s.exchange(t, "carol", nil)
			conf := &oauth2.Config{ClientID: "dev-app", Endpoint: oauth2.Endpoint{TokenURL: s.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
			old := &oauth2.Token{AccessToken: ex.AccessToken, RefreshToken: ex.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
			fresh, err := conf.TokenSource(t.Context(), old).Token()
			if err != nil {
				t.Fatalf("refresh via x/oauth2: %v", err)
			}
			if fresh.AccessToken == ex.AccessToken || fresh.RefreshToken == ex.RefreshToken {
				t.Errorf("refresh did not rotate: %+v", fresh)
			}
		})
	}
}

// The Node clients (oauth4webapi, dpop) from test/node, unmodified.
func TestNodeClients(t *testing.T) {
	dir, _ := filepath.Abs("../../test/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("test/node/node_modules missing: make test installs it (scripts/test-deps.sh)")
		}
		t.Skip("SKIP Node client tests: run make test (or npm ci in test/node) first")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required with CI=true")
		}
		t.Skip("SKIP Node client tests: node not installed")
	}
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			files, _ := filepath.Glob(filepath.Join(dir, "*.test.mjs"))
			cmd := exec.CommandContext(t.Context(), node, append([]string{"--test"}, files...)...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "KEYGATE_ISSUER="+s.URL)
			out, err := cmd.CombinedOutput()
			t.Logf("node --test:\n%s", out)
			if err != nil {
				t.Fatalf("node tests failed: %v", err)
			}
		})
	}
}
