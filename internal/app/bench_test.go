package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	benchDuration = 3 * time.Second
)

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
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
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

// benchCases returns the cases to compare; each extra case registers here.
var extraBenchCases []func(b *testing.B, upstream string) []benchCase

func BenchmarkGateway(b *testing.B) {
	upstream := smallUpstream(b)
	cases := []benchCase{{name: "bare-reverseproxy", url: bareProxy(b, upstream.URL) + "/x"}}

	s := startDev(b, "sqlite", benchUpstreamConfig(upstream.URL, nil))
	tok := s.exchange(b, "bench-user", nil)
	cases = append(cases, benchCase{name: "keygate-bearer", url: s.URL + "/bench/x", setup: func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}})
	for _, extra := range extraBenchCases {
		cases = append(cases, extra(b, upstream.URL)...)
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
	for _, c := range cases {
		if c.prepare != nil {
			c.prepare(expect)
		}
		results = append(results, load(b, c, benchDuration))
	}
	bare := results[0]
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-28s %12s %14s %12s %12s\n", "case", "req/s", "CPU µs/req", "req/s ×bare", "CPU ×bare")
	for _, r := range results {
		fmt.Fprintf(&sb, "%-28s %12.0f %14.1f %12.2f %12.2f\n", r.name, r.rps, float64(r.cpuPerReq.Nanoseconds())/1e3,
			r.rps/bare.rps, float64(r.cpuPerReq)/float64(bare.cpuPerReq))
		b.ReportMetric(r.rps/bare.rps, r.name+"-x-bare")
	}
	b.Log(sb.String())
}

// DPoP cases. A proof is single-use, so every request needs a fresh one.
// The client's signing would otherwise be timed together with keygate (one
// process, two cores), so proofs are signed before each measured run: the
// figures are keygate's cost of checking a proof, not a client's of making it.
func init() {
	extraBenchCases = append(extraBenchCases, func(b *testing.B, upstream string) []benchCase {
		s := startDev(b, "sqlite", benchUpstreamConfig(upstream, nil))
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
