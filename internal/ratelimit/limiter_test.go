package ratelimit

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/pgtest"
	"github.com/keygate/keygate/internal/store/postgres"
	"github.com/keygate/keygate/internal/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clock is a controlled clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresDSN(t testing.TB, dsn string) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t testing.TB) store.Store { return openPostgresDSN(t, pgtest.DSN(t)) }

// backends lists where a limit can live: in memory (no store needed, but
// one is given so quotas work) or shared through each database.
var backends = []struct {
	name   string
	shared bool
	open   func(testing.TB) store.Store
}{
	{"memory", false, openSQLite},
	{"sqlite", true, openSQLite},
	{"postgres", true, openPostgres},
}

func rateCfg(t testing.TB, name, key, rate string, burst int, shared bool) config.Limit {
	t.Helper()
	r, err := config.ParseRate(rate)
	if err != nil {
		t.Fatal(err)
	}
	return config.Limit{Name: name, Key: key, Rate: r, Burst: burst, Shared: shared}
}

func quotaCfg(t testing.TB, name, key, quota string) config.Limit {
	t.Helper()
	q, err := config.ParseQuota(quota)
	if err != nil {
		t.Fatal(err)
	}
	return config.Limit{Name: name, Key: key, Quota: q}
}

func check(t testing.TB, l *Limiter, in Input) Decision {
	t.Helper()
	d, err := l.Check(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// flood sends a request every step for total and counts the admitted ones.
func flood(t *testing.T, ls []*Limiter, clk *clock, step, total time.Duration) int {
	t.Helper()
	admitted := 0
	for elapsed := time.Duration(0); elapsed <= total; elapsed += step {
		for _, l := range ls {
			if check(t, l, Input{Subject: "alice"}).Allowed {
				admitted++
			}
		}
		clk.Advance(step)
	}
	return admitted
}

func TestGCRAFlood(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			l := New([]config.Limit{rateCfg(t, "per-user", config.KeySubject, "10/s", 10, b.shared)}, b.open(t), clk.Now)

			// A fresh key gets the burst at once, then is refused with the
			// time until the next emission (T = 100ms).
			for i := range 10 {
				if d := check(t, l, Input{Subject: "alice"}); !d.Allowed {
					t.Fatalf("request %d refused: %+v", i+1, d)
				}
			}
			d := check(t, l, Input{Subject: "alice"})
			if d.Allowed || d.Limit != "per-user" || d.RetryAfter != 100*time.Millisecond {
				t.Fatalf("over burst = %+v, want refusal by per-user with RetryAfter 100ms", d)
			}
			clk.Advance(99 * time.Millisecond)
			if d := check(t, l, Input{Subject: "alice"}); d.Allowed || d.RetryAfter != time.Millisecond {
				t.Fatalf("1ms early = %+v, want refusal with RetryAfter 1ms", d)
			}
			clk.Advance(time.Millisecond)
			if d := check(t, l, Input{Subject: "alice"}); !d.Allowed {
				t.Fatalf("at RetryAfter = %+v, want admitted", d)
			}

			// A 3-second flood (a request every 10ms) on a fresh key admits
			// burst + rate × 3s.
			l = New([]config.Limit{rateCfg(t, "per-user", config.KeySubject, "10/s", 10, b.shared)}, b.open(t), clk.Now)
			step := 10 * time.Millisecond
			if got, want := flood(t, []*Limiter{l}, clk, step, 3*time.Second), 10+10*3; got < want-1 || got > want+1 {
				t.Errorf("3s flood admitted %d, want %d ±1", got, want)
			}
		})
	}
}

// Two limiters ("nodes") on one PostgreSQL database admit together what
// one admits alone.
func TestSharedTwoNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	clk := newClock()
	lim := []config.Limit{rateCfg(t, "shared-user", config.KeySubject, "10/s", 10, true)}
	a := New(lim, openPostgresDSN(t, dsn), clk.Now)
	b := New(lim, openPostgresDSN(t, dsn), clk.Now)
	if got, want := flood(t, []*Limiter{a, b}, clk, 10*time.Millisecond, 3*time.Second), 40; got < want-1 || got > want+1 {
		t.Errorf("two nodes admitted %d in a 3s flood, want %d ±1 (as one node)", got, want)
	}
}

// With a frozen clock, racing requests on a shared limit admit exactly the burst.
func TestSharedConcurrent(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			l := New([]config.Limit{rateCfg(t, "ip", config.KeyIP, "100/s", 20, b.shared)}, b.open(t), clk.Now)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for range 3 {
						d, err := l.Check(t.Context(), Input{IP: "192.0.2.7"})
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != 20 {
				t.Errorf("admitted %d of 192 racing requests, want exactly the burst 20", got)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	for _, b := range backends[1:] {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock() // 05:06:07, so the 1h window ends in 53m53s
			l := New([]config.Limit{quotaCfg(t, "hourly", config.KeySubject, "5/1h")}, b.open(t), clk.Now)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					d, err := l.Check(t.Context(), Input{Subject: "alice"})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != 5 {
				t.Fatalf("admitted %d of 64 racing requests, want exactly 5", got)
			}
			d := check(t, l, Input{Subject: "alice"})
			wantRetry := 53*time.Minute + 53*time.Second
			if d.Allowed || d.Limit != "hourly" || d.RetryAfter != wantRetry {
				t.Fatalf("over quota = %+v, want refusal with RetryAfter %v", d, wantRetry)
			}
			if d.Policy != `"hourly";q=5;w=3600` || d.State != `"hourly";r=0;t=3233` {
				t.Errorf("headers = %q, %q", d.Policy, d.State)
			}
			// Others are counted apart.
			if d := check(t, l, Input{Subject: "bob"}); !d.Allowed || d.State != `"hourly";r=4;t=3233` {
				t.Errorf("bob = %+v", d)
			}

			usage, err := l.Quotas(t.Context(), "alice")
			if err != nil || len(usage) != 1 || usage[0].Used != 5 || usage[0].Limit != 5 || usage[0].Name != "hourly" ||
				!usage[0].WindowEnd.Equal(clk.Now().Add(wantRetry)) {
				t.Fatalf("Quotas(alice) = %+v, %v", usage, err)
			}

			if err := l.ResetQuota(t.Context(), "hourly", "alice"); err != nil {
				t.Fatal(err)
			}
			if d := check(t, l, Input{Subject: "alice"}); !d.Allowed {
				t.Fatalf("after reset = %+v, want admitted", d)
			}
			if err := l.ResetQuota(t.Context(), "nope", "alice"); !errors.Is(err, ErrUnknownLimit) || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ResetQuota(unknown) err = %v, want ErrUnknownLimit", err)
			}

			// Rollover: the next window starts from zero.
			for check(t, l, Input{Subject: "alice"}).Allowed {
			}
			clk.Advance(wantRetry)
			for i := range 5 {
				if d := check(t, l, Input{Subject: "alice"}); !d.Allowed {
					t.Fatalf("next window request %d = %+v, want admitted", i+1, d)
				}
			}
			if d := check(t, l, Input{Subject: "alice"}); d.Allowed || d.RetryAfter != time.Hour {
				t.Fatalf("next window over quota = %+v, want RetryAfter 1h", d)
			}
			if err := l.Prune(t.Context()); err != nil {
				t.Fatal(err)
			}
			if usage, _ := l.Quotas(t.Context(), "alice"); len(usage) != 1 || usage[0].Used != 5 {
				t.Errorf("Quotas after prune = %+v, want the current window only", usage)
			}
		})
	}
}

// A refusal by one limit gives back what the others took.
func TestRefusalDoesNotConsume(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			l := New([]config.Limit{
				rateCfg(t, "per-user", config.KeySubject, "1/h", 3, b.shared),
				rateCfg(t, "per-ip", config.KeyIP, "1/h", 1, b.shared),
				quotaCfg(t, "per-client", config.KeyClient, "2/24h"),
			}, b.open(t), clk.Now)
			in := Input{Subject: "alice", IP: "192.0.2.1", ClientID: "app"}
			if d := check(t, l, in); !d.Allowed {
				t.Fatalf("first = %+v", d)
			}
			// per-ip refuses: per-user must keep its 2 remaining units, and
			// the quota is not touched.
			for range 5 {
				if d := check(t, l, in); d.Allowed || d.Limit != "per-ip" {
					t.Fatalf("same ip = %+v, want refusal by per-ip", d)
				}
			}
			// From another ip: per-user has 2 left, the quota 1.
			if d := check(t, l, Input{Subject: "alice", IP: "192.0.2.2", ClientID: "app"}); !d.Allowed {
				t.Fatalf("second ip = %+v, want admitted", d)
			}
			// The quota refuses: per-user and per-ip get their units back.
			if d := check(t, l, Input{Subject: "alice", IP: "192.0.2.3", ClientID: "app"}); d.Allowed || d.Limit != "per-client" {
				t.Fatalf("third ip = %+v, want refusal by per-client", d)
			}
			if d := check(t, l, Input{Subject: "alice", IP: "192.0.2.3", ClientID: "other"}); !d.Allowed {
				t.Fatalf("after quota refusal = %+v, want per-user and per-ip units refunded", d)
			}
			if d := check(t, l, Input{Subject: "alice", IP: "192.0.2.4", ClientID: "other"}); d.Allowed || d.Limit != "per-user" {
				t.Fatalf("fourth = %+v, want per-user exhausted", d)
			}
		})
	}
}

func TestApplicability(t *testing.T) {
	clk := newClock()
	l := New([]config.Limit{
		rateCfg(t, "per-user", config.KeySubject, "1/h", 1, false),
		{Name: "chat", Key: config.KeyToken, Rate: rateCfg(t, "", "", "1/h", 1, false).Rate, Burst: 1, Upstream: "openai"},
	}, nil, clk.Now)
	tests := []struct {
		name string
		in   Input
		want bool
	}{
		{"no subject skips per-user", Input{IP: "192.0.2.1"}, true},
		{"no subject again", Input{IP: "192.0.2.1"}, true},
		{"subject counted", Input{Subject: "a"}, true},
		{"subject refused", Input{Subject: "a"}, false},
		{"other upstream skips chat", Input{TokenID: "t1", Upstream: "maps"}, true},
		{"other upstream again", Input{TokenID: "t1", Upstream: "maps"}, true},
		{"chat counted", Input{TokenID: "t1", Upstream: "openai"}, true},
		{"chat refused", Input{TokenID: "t1", Upstream: "openai"}, false},
	}
	for _, tt := range tests {
		if got := check(t, l, tt.in); got.Allowed != tt.want {
			t.Errorf("%s: Allowed = %v, want %v (%+v)", tt.name, got.Allowed, tt.want, got)
		}
	}
	if d := check(t, l, Input{}); !d.Allowed || d.Policy != "" || d.State != "" {
		t.Errorf("no applicable limit = %+v, want admitted without headers", d)
	}
}

func TestHeaders(t *testing.T) {
	clk := newClock()
	l := New([]config.Limit{
		rateCfg(t, "per-user", config.KeySubject, "60/m", 20, false),
		rateCfg(t, "per-ip", config.KeyIP, "10/s", 10, false),
	}, nil, clk.Now)
	in := Input{Subject: "alice", IP: "192.0.2.1"}
	d := check(t, l, in)
	// per-ip has 9 left and is full again in 100ms (t rounds up to 1);
	// per-user has 19 left: per-ip is closer to refusing.
	if d.Policy != `"per-ip";q=10;w=1` || d.State != `"per-ip";r=9;t=1` {
		t.Errorf("admitted headers = %q, %q", d.Policy, d.State)
	}
	for i := range 19 { // per-user's burst, from as many ips
		d = check(t, l, Input{Subject: "alice", IP: "198.51.100." + string(rune('a'+i))})
	}
	if d.Policy != `"per-user";q=20;w=20` || d.State != `"per-user";r=0;t=20` {
		t.Errorf("after 20 = %q, %q", d.Policy, d.State)
	}
	clk.Advance(500 * time.Millisecond)
	d = check(t, l, in)
	if d.Allowed || d.Limit != "per-user" || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("21st = %+v", d)
	}
	rec := httptest.NewRecorder()
	WriteHeaders(rec, d)
	h := rec.Header()
	if h.Get("Retry-After") != "1" || h.Get("RateLimit-Policy") != `"per-user";q=20;w=20` || h.Get("RateLimit") != `"per-user";r=0;t=20` {
		t.Errorf("refusal headers = %v", h)
	}
	rec = httptest.NewRecorder()
	WriteHeaders(rec, Decision{Allowed: true, Policy: "p", State: "s"})
	if rec.Header().Get("Retry-After") != "" {
		t.Errorf("Retry-After on an admitted request")
	}

	for _, tt := range []struct {
		in   time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {53*time.Minute + 53*time.Second, 3233}} {
		if got := RetryAfterSeconds(tt.in); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestMemorySweep(t *testing.T) {
	clk := newClock()
	l := New([]config.Limit{rateCfg(t, "per-ip", config.KeyIP, "10/s", 10, false)}, nil, clk.Now)
	for i := range 1000 {
		check(t, l, Input{IP: string(rune('a'+i%26)) + string(rune(i))})
	}
	mem := l.rates[0].mem
	if mem.len() != 1000 {
		t.Fatalf("keys = %d, want 1000", mem.len())
	}
	clk.Advance(2 * time.Minute)
	for i := range 1000 { // touch every shard
		check(t, l, Input{IP: string(rune(i))})
	}
	if n := mem.len(); n > 1000 {
		t.Errorf("after sweep %d keys, want the stale 1000 gone (≤ 1000 fresh)", n)
	}
}

func BenchmarkCheckInMemory(b *testing.B) {
	clk := newClock()
	l := New([]config.Limit{
		rateCfg(b, "per-user", config.KeySubject, "1000000/s", 1000000, false),
	}, nil, func() time.Time { return clk.t })
	in := Input{Subject: "google|1234567890", IP: "192.0.2.1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Check(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckInMemoryParallel(b *testing.B) {
	l := New([]config.Limit{
		rateCfg(b, "per-user", config.KeySubject, "1000000/s", 1000000, false),
		rateCfg(b, "per-ip", config.KeyIP, "1000000/s", 1000000, false),
	}, nil, time.Now)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := Input{Subject: "user-" + string(rune('A'+n.Add(1))), IP: "192.0.2.1"}
		for pb.Next() {
			if _, err := l.Check(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCheckShared(b *testing.B) {
	l := New([]config.Limit{
		rateCfg(b, "per-user", config.KeySubject, "1000000/s", 1000000, true),
	}, openSQLite(b), time.Now)
	in := Input{Subject: "google|1234567890"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Check(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
