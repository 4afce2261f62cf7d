package devidp

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/httpapi"
)

func newMux(t *testing.T) *http.ServeMux {
	p, err := New("http://127.0.0.1:8080/dev", "dev-app", nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pat, h := range p.Handlers() {
		mux.Handle(pat, httpapi.Handle(slog.New(slog.NewTextHandler(io.Discard, nil)), h))
	}
	return mux
}

func TestIDTokenVerifiesWithJWKS(t *testing.T) {
	mux := newMux(t)
	req := httptest.NewRequest("POST", "/dev/id-token", strings.NewReader(url.Values{"sub": {"alice"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:5555"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body struct {
		IDToken string `json:"id_token"`
	}
	json.Unmarshal(rec.Body.Bytes(), &body)

	req = httptest.NewRequest("GET", "/dev/jwks.json", nil)
	req.RemoteAddr = "[::1]:5555"
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %s", err, rec.Body)
	}
	tok, err := jwt.ParseSigned(body.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := tok.Claims(set.Keys[0].Key, &c); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Issuer != "http://127.0.0.1:8080/dev" || !c.Audience.Contains("dev-app") {
		t.Errorf("claims = %+v", c)
	}
}

func TestLoopbackOnly(t *testing.T) {
	mux := newMux(t)
	req := httptest.NewRequest("POST", "/dev/id-token", strings.NewReader("sub=alice"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.7:5555"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("non-loopback caller got %d, want 404", rec.Code)
	}
}

func TestBadSubject(t *testing.T) {
	mux := newMux(t)
	for _, body := range []string{"", "sub=", "sub=a%7Cb", "sub=" + strings.Repeat("a", 65)} {
		req := httptest.NewRequest("POST", "/dev/id-token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Header().Get("Content-Type"), "problem+json") {
			t.Errorf("body %q: status %d %s", body, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
