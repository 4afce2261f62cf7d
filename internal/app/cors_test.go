package app_test

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/internal/config"
)

// oauth_cors lets a listed browser origin call the token endpoint; other
// origins get no CORS grant.
func TestOAuthCORS(t *testing.T) {
	s := startDev(t, "sqlite", func(c *config.Config) { c.OAuthCORS.Origins = []string{"https://app.example.com"} })
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", s.URL+"/oauth2/token", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type, dpop")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := pre("https://app.example.com")
	if res.StatusCode >= 300 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight from the listed origin: %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	if res := pre("https://evil.example"); res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest("GET", s.URL+"/.well-known/oauth-authorization-server", nil)
	req.Header.Set("Origin", "https://app.example.com")
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != 200 || res2.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("metadata from the listed origin: %d %q", res2.StatusCode, res2.Header.Get("Access-Control-Allow-Origin"))
	}
}
