package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// serve runs one request through the full handler stack in memory.
func (f *fixture) serve(b *testing.B, form url.Values, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, o := range opts {
		o(req)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return w
}

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkTokenRefresh rotates a chain of refresh tokens: each iteration
// presents the token the previous one returned (one SQLite transaction
// with a read, a conditional update and an insert).
func BenchmarkTokenRefresh(b *testing.B) {
	f := newFixture(b)
	rt := f.exchange(b, "app", "alice").str("refresh_token")
	b.ReportAllocs()
	for b.Loop() {
		w := f.serve(b, refreshForm("app", rt))
		body := w.Body.String()
		i := strings.Index(body, `"refresh_token":"`)
		rt = body[i+len(`"refresh_token":"`) : i+len(`"refresh_token":"`)+refreshTokenLen]
	}
	reportOps(b)
}

// BenchmarkTokenClientCredentials is the baseline: client_secret_basic
// authentication and signing, no database write.
func BenchmarkTokenClientCredentials(b *testing.B) {
	f := newFixture(b)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"echo"}}
	b.ReportAllocs()
	for b.Loop() {
		f.serve(b, form, basic("backend", backendSecret))
	}
	reportOps(b)
}
