package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/admin"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/pgtest"
)

// Problem types the limits answer with.
const (
	typeBlocked     = "https://keygate.dev/problems/blocked"
	typeRateLimited = "https://keygate.dev/problems/rate-limited"
)

func mustRate(t *testing.T, s string) config.Rate {
	t.Helper()
	r, err := config.ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withLimits replaces the dev limits and blocks.
func withLimits(t *testing.T, limits []config.Limit, blocks []config.BlockRule) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits = limits
		c.Blocks = blocks
	}
}

// startNode starts a dev-mode keygate over an existing database dsn. When
// peer is set, the new node shares its issuer, master key and dev client
// secret, as the nodes of one deployment do.
func startNode(t *testing.T, dsn string, peer *server, modify func(*config.Config)) *server {
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
	cfg.Database = dsn
	if peer != nil {
		// One deployment, one issuer: tokens minted on one node are for all.
		cfg.Issuer = peer.Config.Issuer
	}
	if modify != nil {
		modify(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if peer != nil {
		for _, name := range []string{"master.key", "dev-backend.secret"} {
			b, err := os.ReadFile(filepath.Join(peer.DataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return startWith(t, cfg, dir, pubLn, admLn, true)
}

// flood sends GET /echo/x with tok, one request after another, across the
// given servers in turn, for d. It returns the admitted count, the time
// from the first to the last request, and fails the test on a refusal
// that is not a well-formed 429.
func flood(t *testing.T, servers []*server, tok string, d time.Duration, wantPolicy string) (admitted int, elapsed time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	start := time.Now()
	var last time.Time
	// Bounded: a loopback request takes well over 50 µs.
	for i := 0; i < 60000; i++ {
		now := time.Now()
		if now.Sub(start) >= d {
			break
		}
		s := servers[i%len(servers)]
		req, _ := http.NewRequest("GET", s.URL+"/echo/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = now
		switch res.StatusCode {
		case 200:
			admitted++
		case 429:
			// 10/s: the next unit is at most 100 ms away, which rounds up to 1 s.
			if ra := res.Header.Get("Retry-After"); ra != "1" {
				t.Fatalf("429 Retry-After = %q, want 1", ra)
			}
			if p := res.Header.Get("RateLimit-Policy"); p != wantPolicy {
				t.Fatalf("429 RateLimit-Policy = %q, want %q", p, wantPolicy)
			}
			if rl := res.Header.Get("RateLimit"); !strings.Contains(rl, ";r=0;") {
				t.Fatalf("429 RateLimit = %q, want r=0", rl)
			}
			if !strings.Contains(string(body), typeRateLimited) {
				t.Fatalf("429 body = %s", body)
			}
		default:
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
	}
	return admitted, last.Sub(start)
}

// checkFlood compares the admitted count with GCRA's promise: the burst at
// once, then one unit per emission interval. The count is taken against the
// measured elapsed time, so scheduling noise only matters at the edges: the
// first request may land just after a unit became due (+1) and the last
// just before the next one does (-1); ±2 covers both with a tick to spare
// for the server's clock read happening a little after ours.
func checkFlood(t *testing.T, admitted int, elapsed time.Duration, burst int, perSecond float64) {
	t.Helper()
	want := float64(burst) + perSecond*elapsed.Seconds()
	if d := float64(admitted) - want; d > 2 || d < -2 {
		t.Errorf("admitted %d in %v, want %.1f ± 2 (burst %d + %.0f/s)", admitted, elapsed, want, burst, perSecond)
	}
	t.Logf("admitted %d in %v (want %.1f)", admitted, elapsed, want)
}

func TestRateLimitFlood(t *testing.T) {
	t.Parallel()
	s := startDev(t, "sqlite", withLimits(t, []config.Limit{
		{Name: "per-user", Key: config.KeySubject, Rate: mustRate(t, "10/s"), Burst: 10},
	}, nil))
	tok := s.exchange(t, "flood", nil)
	admitted, elapsed := flood(t, []*server{s}, tok.AccessToken, 3*time.Second, `"per-user";q=10;w=1`)
	checkFlood(t, admitted, elapsed, 10, 10)
}

// Two nodes over one PostgreSQL database, the limit shared: together they
// admit what one node would.
func TestSharedRateLimitTwoNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	limits := withLimits(t, []config.Limit{
		{Name: "shared-user", Key: config.KeySubject, Rate: mustRate(t, "10/s"), Burst: 10, Shared: true},
	}, nil)
	a := startNode(t, dsn, nil, limits)
	b := startNode(t, dsn, a, limits)
	tok := a.exchange(t, "flood", nil)
	// The token works on both nodes (same signing keys).
	if res, body := b.get(t, "/echo/x", "Bearer "+tok.AccessToken); res.StatusCode != 200 {
		t.Fatalf("node b: %d %s", res.StatusCode, body)
	}
	// Let the unit just spent come back, so both nodes start from a full burst.
	time.Sleep(150 * time.Millisecond)
	admitted, elapsed := flood(t, []*server{a, b}, tok.AccessToken, 3*time.Second, `"shared-user";q=10;w=1`)
	checkFlood(t, admitted, elapsed, 10, 10)
}

func TestQuota(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			quota, err := config.ParseQuota("5/1h")
			if err != nil {
				t.Fatal(err)
			}
			s := startDev(t, backend, withLimits(t, []config.Limit{
				{Name: "per-user", Key: config.KeySubject, Rate: mustRate(t, "100/s"), Burst: 100},
				{Name: "hourly", Key: config.KeySubject, Upstream: "echo", Quota: quota},
			}, nil))
			adminTok := s.adminToken(t)
			tok := s.exchange(t, "quota", nil)
			for i := range 5 {
				if res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken); res.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i+1, res.StatusCode, body)
				}
			}
			res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken)
			now := time.Now()
			if res.StatusCode != 429 || !strings.Contains(string(body), typeRateLimited) {
				t.Fatalf("6th request: %d %s", res.StatusCode, body)
			}
			// Retry-After is the time to the end of the hour window (aligned to the epoch).
			windowEnd := now.Truncate(time.Hour).Add(time.Hour)
			want := int(windowEnd.Sub(now).Seconds())
			if got, _ := strconv.Atoi(res.Header.Get("Retry-After")); got < want-2 || got > want+2 {
				t.Errorf("Retry-After = %q, want about %d", res.Header.Get("Retry-After"), want)
			}
			if p := res.Header.Get("RateLimit-Policy"); p != `"hourly";q=5;w=3600` {
				t.Errorf("RateLimit-Policy = %q", p)
			}

			subject := "dev|quota"
			var usage struct {
				Quotas []struct {
					Name  string `json:"name"`
					Key   string `json:"key"`
					Used  int64  `json:"used"`
					Limit int64  `json:"limit"`
				} `json:"quotas"`
			}
			s.adminJSON(t, "GET", "/admin/v1/quotas?key="+url.QueryEscape(subject), adminTok, "", 200, &usage)
			if len(usage.Quotas) != 1 || usage.Quotas[0].Name != "hourly" || usage.Quotas[0].Used != 5 || usage.Quotas[0].Limit != 5 {
				t.Fatalf("quota usage = %+v", usage)
			}
			s.adminJSON(t, "DELETE", "/admin/v1/quotas/hourly/"+url.PathEscape(subject), adminTok, "", 204, nil)
			s.adminJSON(t, "DELETE", "/admin/v1/quotas/nope/"+url.PathEscape(subject), adminTok, "", 404, nil)
			if res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken); res.StatusCode != 200 {
				t.Fatalf("after reset: %d %s", res.StatusCode, body)
			}
			s.adminJSON(t, "GET", "/admin/v1/quotas?key="+url.QueryEscape(subject), adminTok, "", 200, &usage)
			if len(usage.Quotas) != 1 || usage.Quotas[0].Used != 1 {
				t.Fatalf("quota usage after reset = %+v", usage)
			}
			s.adminJSON(t, "GET", "/admin/v1/quotas", adminTok, "", 400, nil)
		})
	}
}

func TestAutoBlock(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			when, err := config.ParseBlockCondition("limit_hits > 3 in 1m")
			if err != nil {
				t.Fatal(err)
			}
			s := startDev(t, backend, withLimits(t,
				[]config.Limit{{Name: "tight", Key: config.KeySubject, Rate: mustRate(t, "5/s"), Burst: 2}},
				[]config.BlockRule{{Name: "abusive", Key: config.KeySubject, When: when, BlockFor: config.Duration(2 * time.Second)}}))
			adminTok := s.adminToken(t)
			tok := s.exchange(t, "mallory", nil)
			subject := "dev|mallory"
			auth := "Bearer " + tok.AccessToken

			// 2 admitted, then 429s; the 4th hit (> 3) blocks.
			var statuses []int
			for range 6 {
				res, _ := s.get(t, "/echo/x", auth)
				statuses = append(statuses, res.StatusCode)
			}
			if fmt.Sprint(statuses) != "[200 200 429 429 429 429]" {
				t.Fatalf("statuses = %v", statuses)
			}
			// Within the rate again, but blocked.
			time.Sleep(500 * time.Millisecond)
			res, body := s.get(t, "/echo/x", auth)
			blockedAt := time.Now()
			if res.StatusCode != 403 || !strings.Contains(string(body), `"type":"`+typeBlocked+`"`) ||
				!strings.Contains(string(body), "blocked until") || res.Header.Get("Retry-After") == "" {
				t.Fatalf("blocked caller: %d %v %s", res.StatusCode, res.Header, body)
			}

			var blocks struct {
				Blocks []store.Block `json:"blocks"`
			}
			s.adminJSON(t, "GET", "/admin/v1/blocks", adminTok, "", 200, &blocks)
			if len(blocks.Blocks) != 1 || blocks.Blocks[0].Key != subject || blocks.Blocks[0].Rule != "abusive" || blocks.Blocks[0].KeyKind != "subject" {
				t.Fatalf("blocks = %+v", blocks)
			}

			// It lifts by itself after block_for.
			time.Sleep(time.Until(blockedAt.Add(2 * time.Second)))
			waitFor(t, 2*time.Second, func() bool {
				res, _ := s.get(t, "/echo/x", auth)
				return res.StatusCode == 200
			})

			// Block again; DELETE lifts it at once.
			time.Sleep(500 * time.Millisecond)
			for range 8 {
				s.get(t, "/echo/x", auth)
			}
			if res, _ := s.get(t, "/echo/x", auth); res.StatusCode != 403 {
				t.Fatalf("second block: %d", res.StatusCode)
			}
			s.adminJSON(t, "DELETE", "/admin/v1/blocks/"+url.PathEscape(subject), adminTok, "", 204, nil)
			s.adminJSON(t, "DELETE", "/admin/v1/blocks/"+url.PathEscape(subject), adminTok, "", 404, nil)
			time.Sleep(500 * time.Millisecond) // the rate limit refills
			if res, body := s.get(t, "/echo/x", auth); res.StatusCode != 200 {
				t.Fatalf("after unblock: %d %s", res.StatusCode, body)
			}

			// The audit log has the blocks, the unblock and the requests.
			recs := s.waitAudit(t, adminTok, func(recs []store.AuditRecord) bool {
				return countKind(recs, "block") >= 2 && countKind(recs, "unblock") >= 1 && countStatus(recs, 403) >= 2
			})
			for _, r := range recs {
				if r.Kind == "block" && (r.Subject != subject || !strings.Contains(r.Detail, "rule=abusive")) {
					t.Errorf("block record %+v", r)
				}
				if r.Kind == "request" && (r.Subject != subject || r.Upstream != "echo") {
					t.Errorf("request record %+v", r)
				}
			}
			metrics := s.metrics(t)
			if !strings.Contains(metrics, `keygate_blocks_total{rule="abusive"} 2`) || !strings.Contains(metrics, `keygate_limit_hits_total{limit="tight"}`) {
				t.Errorf("metrics lack blocks or limit hits:\n%s", grepLines(metrics, "keygate_"))
			}
		})
	}
}

// Failed authentications from one address block that address, even for a
// caller with a good token.
func TestAuthFailureBlock(t *testing.T) {
	t.Parallel()
	when, err := config.ParseBlockCondition("auth_failures > 3 in 1m")
	if err != nil {
		t.Fatal(err)
	}
	s := startDev(t, "sqlite", func(c *config.Config) {
		c.Blocks = []config.BlockRule{{Name: "bad-auth", Key: config.KeyIP, When: when, BlockFor: config.Duration(time.Minute)}}
	})
	tok := s.exchange(t, "alice", nil)
	for range 4 {
		if res, _ := s.get(t, "/echo/x", "Bearer not-a-token"); res.StatusCode != 401 {
			t.Fatalf("bad token: %d", res.StatusCode)
		}
	}
	res, body := s.get(t, "/echo/x", "Bearer "+tok.AccessToken)
	if res.StatusCode != 403 || !strings.Contains(string(body), typeBlocked) {
		t.Fatalf("good token from a blocked address: %d %s", res.StatusCode, body)
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminToken creates an admin API token.
func (s *server) adminToken(t *testing.T) string {
	t.Helper()
	tok, hash := admin.NewToken()
	name := "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := s.Store.CreateAdminToken(context.Background(), store.AdminToken{Name: name, Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminJSON calls the admin API, checks the status and decodes the answer
// into out (if set). It returns the raw body.
func (s *server) adminJSON(t *testing.T, method, path, tok, body string, wantStatus int, out any) []byte {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.AdminURL+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, wantStatus)
	}
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: error content type %q", method, path, res.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return b
}

// waitAudit reads the audit log through the admin API until ok holds (the
// per-request records are written in batches).
func (s *server) waitAudit(t *testing.T, tok string, ok func([]store.AuditRecord) bool) []store.AuditRecord {
	t.Helper()
	var out struct {
		Records []store.AuditRecord `json:"records"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.adminJSON(t, "GET", "/admin/v1/audit?limit=1000&since="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), tok, "", 200, &out)
		if ok(out.Records) {
			return out.Records
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(out.Records, "", " ")
			t.Fatalf("audit log incomplete:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) metrics(t *testing.T) string {
	t.Helper()
	res, err := http.Get(s.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func countKind(recs []store.AuditRecord, kind string) int {
	n := 0
	for _, r := range recs {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

func countStatus(recs []store.AuditRecord, status int) int {
	n := 0
	for _, r := range recs {
		if r.Kind == "request" && r.Status == status {
			n++
		}
	}
	return n
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
