package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/config"
)

// The gateway benchmark: keygate and a bare httputil.ReverseProxy in front
// of the same small upstream, on loopback, under the same closed-loop load
// generator, measured in one run. It reports requests/s and process CPU µs
// per request of each case and their ratio to the bare proxy. The load
// generator and upstream run in the same process, so CPU figures include
// their (identical) share; the ratios are what to compare across machines.

const (
	benchWorkers  = 32
	benchDuration = 2 * time.Second
	benchRounds   = 3
)

// median returns the round with the median throughput.
func median(rs []benchResult) benchResult {
	sorted := append([]benchResult(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rps < sorted[j].rps })
	return sorted[len(sorted)/2]
}

type benchCase struct {
	name  string
	url   string
	setup func(req *http.Request) // adds credentials per request
	// prepare, when set, runs untimed before a run expected to send about n requests.
	prepare func(n int)
}

type benchResult struct {
	name      string
	reqs      int64
	rps       float64
	cpuPerReq time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load drives url with benchWorkers concurrent clients for d.
func load(tb testing.TB, c benchCase, d time.Duration) benchResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConns: benchWorkers * 2, MaxIdleConnsPerHost: benchWorkers * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var n, failures atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	cpu0, t0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for w := 0; w < benchWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", c.url, nil)
				if c.setup != nil {
					c.setup(req)
				}
				res, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", res.StatusCode))
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	if f := failures.Load(); f > 0 {
		tb.Fatalf("%s: %d failed requests (first: %v)", c.name, f, firstErr.Load())
	}
	reqs := n.Load()
	return benchResult{name: c.name, reqs: reqs, rps: float64(reqs) / elapsed.Seconds(), cpuPerReq: cpu / time.Duration(max(reqs, 1))}
}

func smallUpstream(tb testing.TB) *httptest.Server {
	body := strings.Repeat("x", 128)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func bareProxy(tb testing.TB, upstream string) string {
	u, _ := url.Parse(upstream)
	// The same connection pool sizes as keygate's upstream transport, so
	// the baseline is not measuring connection churn.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 256
	rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// benchUpstreamConfig points a "bench" upstream at url with no limits, so
// that the proxy path alone is measured.
func benchUpstreamConfig(upstream string, limits []config.Limit) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits = limits
		c.Upstreams = append(c.Upstreams, config.Upstream{
			Name: "bench", URL: upstream,
			Timeout: config.Duration(config.DefaultUpstreamTimeout), MaxRequestBody: config.DefaultMaxRequestBody,
			Auth:   config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "X-Api-Key", Template: config.SecretPlaceholder, Secret: "echo-key"},
			Routes: []config.Route{{Methods: []string{"GET"}, Path: "/**", Scope: "echo"}},
		})
	}
}

// benchLimits is a per-subject limit high enough never to refuse: its
// check runs on every request without changing the outcome.
func benchLimits() []config.Limit {
	rate, _ := config.ParseRate("1000000/s")
	return []config.Limit{{Name: "per-subject", Key: config.KeySubject, Rate: rate, Burst: 1000000}}
}

// benchCases returns the cases to compare; each extra case registers here.
var extraBenchCases []func(b *testing.B, upstream string) []benchCase

func BenchmarkGateway(b *testing.B) {
	upstream := smallUpstream(b)
	cases := []benchCase{{name: "bare-reverseproxy", url: bareProxy(b, upstream.URL) + "/x"}}

	// keygate-bearer: the whole proxy path as deployed, with a per-subject
	// rate limit that admits everything and per-request audit records.
	// keygate-bearer-bare-path: the same without limits and audit, so the
	// difference is what those cost.
	full := startDev(b, "sqlite", benchUpstreamConfig(upstream.URL, benchLimits()))
	lean := startDev(b, "sqlite", benchUpstreamConfig(upstream.URL, nil), func(o *app.Options) { o.WithoutRequestLimitsAndAudit = true })
	for _, c := range []struct {
		name string
		s    *server
	}{{"keygate-bearer", full}, {"keygate-bearer-no-limits-audit", lean}} {
		tok := c.s.exchange(b, "bench-user", nil)
		cases = append(cases, benchCase{name: c.name, url: c.s.URL + "/bench/x", setup: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}})
	}
	for _, extra := range extraBenchCases {
		cases = append(cases, extra(b, upstream.URL)...)
	}

	// KEYGATE_BENCH_CASES (a regexp) narrows the run, e.g. for profiling
	// one case; the bare baseline always stays first.
	if pat := os.Getenv("KEYGATE_BENCH_CASES"); pat != "" {
		re := regexp.MustCompile(pat)
		kept := cases[:1]
		for _, c := range cases[1:] {
			if re.MatchString(c.name) {
				kept = append(kept, c)
			}
		}
		cases = kept
	}

	// Warm every path (connections, caches), then measure each in turn.
	const warmup = 300 * time.Millisecond
	var expect int
	results := make([]benchResult, 0, len(cases))
	for _, c := range cases {
		if c.prepare != nil {
			c.prepare(expect / 5)
		}
		w := load(b, c, warmup)
		if w.rps*benchDuration.Seconds() > float64(expect) {
			expect = int(w.rps * benchDuration.Seconds() * 1.5)
		}
	}
	// Interleaved rounds, median per case: load on a shared two-core
	// machine drifts, and interleaving spreads the drift over every case.
	rounds := make([][]benchResult, len(cases))
	for round := 0; round < benchRounds; round++ {
		for i, c := range cases {
			if c.prepare != nil {
				c.prepare(expect)
			}
			rounds[i] = append(rounds[i], load(b, c, benchDuration))
		}
	}
	for i := range cases {
		results = append(results, median(rounds[i]))
	}
	bare := results[0]
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-28s %12s %14s %12s %12s\n", "case", "req/s", "CPU µs/req", "req/s ×bare", "CPU ×bare")
	for _, r := range results {
		fmt.Fprintf(&sb, "%-28s %12.0f %14.1f %12.2f %12.2f\n", r.name, r.rps, float64(r.cpuPerReq.Nanoseconds())/1e3,
			r.rps/bare.rps, float64(r.cpuPerReq)/float64(bare.cpuPerReq))
		b.ReportMetric(r.rps/bare.rps, r.name+"-x-bare")
	}
	byName := map[string]benchResult{}
	for _, r := range results {
		byName[r.name] = r
	}
	if f, l := byName["keygate-bearer"], byName["keygate-bearer-no-limits-audit"]; f.reqs > 0 && l.reqs > 0 {
		extra := float64((f.cpuPerReq - l.cpuPerReq).Nanoseconds()) / 1e3
		fmt.Fprintf(&sb, "limits + audit: %+.1f µs CPU per request\n", extra)
		b.ReportMetric(extra, "limits-audit-µs/req")
	}
	b.Log(sb.String())
}

// DPoP cases. A proof is single-use, so every request needs a fresh one.
// The client's signing would otherwise be timed together with keygate (one
// process, two cores), so proofs are signed before each measured run: the
// figures are keygate's cost of checking a proof, not a client's of making it.
func init() {
	extraBenchCases = append(extraBenchCases, func(b *testing.B, upstream string) []benchCase {
		s := startDev(b, "sqlite", benchUpstreamConfig(upstream, benchLimits()))
		var cases []benchCase
		for _, k := range []struct {
			name string
			key  *dpopKey
		}{{"keygate-dpop-es256", newES256Key(b)}, {"keygate-dpop-eddsa", newEd25519Key(b)}} {
			tok := s.dpopExchange(b, "bench-"+k.name, k.key)
			htu := s.URL + "/bench/x"
			key := k.key
			var pool []string
			var next atomic.Int64
			cases = append(cases, benchCase{name: k.name, url: htu,
				prepare: func(n int) {
					pool = make([]string, n)
					for i := range pool {
						pool[i] = key.proof(b, "GET", htu, proofOpts{accessToken: tok.AccessToken})
					}
					next.Store(0)
				},
				setup: func(r *http.Request) {
					var p string
					if i := next.Add(1) - 1; i < int64(len(pool)) {
						p = pool[i]
					} else {
						p = key.proof(b, "GET", htu, proofOpts{accessToken: tok.AccessToken})
					}
					r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
					r.Header.Set("DPoP", p)
				}})
		}
		return cases
	})
}
