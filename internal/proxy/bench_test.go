package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
)

// The benchmarks compare keygate's proxy with a bare httputil.ReverseProxy: same loopback upstream,
// same client, same transport tuning, b.RunParallel. BenchmarkProxy runs both and reports
// keygate's cost as a multiple of the bare proxy's (x-bare).

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(up.Close)
	return up
}

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func bareHandler(b *testing.B, upstreamURL string) http.Handler {
	target, err := url.Parse(upstreamURL)
	if err != nil {
		b.Fatal(err)
	}
	tr := newTransport(time.Minute)
	b.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: newBufferPool(),
	}
}

func keygateHandler(b *testing.B, upstreamURL string) http.Handler {
	now := time.Now()
	p, err := New(Config{Issuer: testIssuer, Upstreams: []config.Upstream{{
		Name: "echo", URL: upstreamURL,
		Auth:    config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "X-Api-Key", Template: "{{secret}}", Secret: "upstream-key"},
		Routes:  []config.Route{{Methods: []string{"GET"}, Path: "/v1/**", Scope: "echo"}},
		Timeout: config.Duration(time.Minute), MaxRequestBody: config.MiB,
	}}}, Deps{
		Tokens:  tableVerifier(now),
		Secrets: newMemSecrets("upstream-key", testSecret),
		Logger:  slog.New(slog.DiscardHandler),
		Now:     func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, t := range p.owned {
			t.CloseIdleConnections()
		}
	})
	return p
}

// runProxyBench sends GETs through h in parallel and returns ns/op.
func runProxyBench(b *testing.B, h http.Handler, path string) float64 {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	client := benchClient(b)
	u := srv.URL + path
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Authorization", "Bearer "+goodToken)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

func BenchmarkProxyBare(b *testing.B) {
	up := benchUpstream(b)
	runProxyBench(b, bareHandler(b, up.URL), "/v1/models/x")
}

func BenchmarkProxyKeygate(b *testing.B) {
	up := benchUpstream(b)
	runProxyBench(b, keygateHandler(b, up.URL), "/echo/v1/models/x")
}

// BenchmarkProxy runs both in one process and reports keygate's ns/op as a multiple of the bare
// proxy's.
func BenchmarkProxy(b *testing.B) {
	up := benchUpstream(b)
	var bare float64
	b.Run("bare", func(b *testing.B) {
		bare = runProxyBench(b, bareHandler(b, up.URL), "/v1/models/x")
	})
	b.Run("keygate", func(b *testing.B) {
		ns := runProxyBench(b, keygateHandler(b, up.URL), "/echo/v1/models/x")
		if bare > 0 {
			b.ReportMetric(ns/bare, "x-bare")
		}
	})
}
