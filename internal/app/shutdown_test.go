package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
)

// A shutdown lets in-flight requests finish: a proxied call that is still
// waiting for a slow upstream when the server is told to stop completes.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "slow answer")
	}))
	defer upstream.Close()
	s := startDev(t, "sqlite", func(c *config.Config) {
		c.Upstreams = append(c.Upstreams, config.Upstream{
			Name: "slow", URL: upstream.URL, Timeout: config.Duration(config.DefaultUpstreamTimeout), MaxRequestBody: config.DefaultMaxRequestBody,
			Auth:   config.UpstreamAuth{Type: config.UpstreamAuthBearer, Secret: "echo-key"},
			Routes: []config.Route{{Methods: []string{"GET"}, Path: "/**", Scope: "echo"}},
		})
	})
	tok := s.exchange(t, "alice", nil)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", s.URL+"/slow/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	<-started
	s.stop()
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "slow answer" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if _, err := http.Get(s.URL + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}
