package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/vault"
)

// 32 parallel refreshes of one refresh token (a flaky mobile network
// retrying) all get the same new refresh token, and exactly one family
// with exactly one live token remains: never two valid branches.
func TestParallelRefresh(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			tok := s.exchange(t, "dora", nil)
			const n = 32
			var wg sync.WaitGroup
			results := make([]tokenResponse, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"},
						"refresh_token": {tok.RefreshToken}}, nil, &results[i])
				}()
			}
			wg.Wait()
			for i, r := range results {
				if r.RefreshToken == "" || r.RefreshToken != results[0].RefreshToken {
					t.Fatalf("answer %d = %+v; want every answer to carry the one successor %q", i, r, results[0].RefreshToken)
				}
			}
			fams, err := s.Store.ListFamilies(context.Background(), "dev|dora")
			if err != nil || len(fams) != 1 {
				t.Fatalf("families = %d, %v; want exactly 1", len(fams), err)
			}
			toks, err := s.Store.FamilyTokens(context.Background(), fams[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			live := 0
			for _, rt := range toks {
				if rt.RotatedAt.IsZero() {
					live++
				}
			}
			if len(toks) != 2 || live != 1 {
				t.Errorf("family has %d tokens, %d live; want 2 and 1", len(toks), live)
			}
			// The successor works, and rotates on.
			var next tokenResponse
			s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"},
				"refresh_token": {results[0].RefreshToken}}, nil, &next)
			if next.RefreshToken == "" || next.RefreshToken == results[0].RefreshToken {
				t.Errorf("refresh of the successor = %+v", next)
			}
		})
	}
}

// `keygate secret rotate` while requests flow: none fails, and the new
// key reaches the upstream within seconds, without a restart.
func TestSecretRotationUnderLoad(t *testing.T) {
	// No rate limit: the dev limit (100/s) would answer this loop 429.
	s := startDev(t, "sqlite", func(c *config.Config) { c.Limits = nil })
	tok := s.exchange(t, "erin", nil)
	const newKey = "rotated-upstream-key-2"
	var failures, requests atomic.Int64
	var sawNew atomic.Int64 // unix nanos of the first answer with the new key
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken)
				requests.Add(1)
				if res.StatusCode != 200 {
					if failures.Add(1) == 1 {
						t.Logf("first failure: %d %s", res.StatusCode, body)
					}
					continue
				}
				var e proxy.EchoRequest
				if json.Unmarshal(body, &e) == nil && len(e.Headers["X-Api-Key"]) == 1 && e.Headers["X-Api-Key"][0] == newKey {
					sawNew.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	rotated := time.Now()
	if _, err := s.Vault.Put(context.Background(), "echo-key", vault.NewSecret([]byte(newKey))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sawNew.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during rotation", f, requests.Load())
	}
	if sawNew.Load() == 0 {
		t.Fatal("the new key never reached the upstream")
	}
	if lag := time.Unix(0, sawNew.Load()).Sub(rotated); lag > 5*time.Second {
		t.Errorf("new key used after %v, want within seconds", lag)
	} else {
		t.Logf("%d requests, new key in use %v after rotation", requests.Load(), lag.Round(time.Millisecond))
	}
}
