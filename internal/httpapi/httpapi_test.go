package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestErrorBoundary(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantCT      string
		wantBody    []string // substrings the client sees
		notInBody   []string // substrings the client must never see
		wantLogged  []string // substrings in the server log
		wantWWWAuth string
	}{
		{
			name:       "internal error is hidden",
			err:        fmt.Errorf("query: %w", errors.New(`pq: relation "secrets" SELECT wrapped_key FROM`)),
			wantStatus: 500, wantCT: "application/problem+json",
			wantBody:   []string{`"status":500`, `"id":"`},
			notInBody:  []string{"SELECT", "secrets", "pq:"},
			wantLogged: []string{"SELECT wrapped_key"},
		},
		{
			name:       "oauth error",
			err:        &OAuthError{Status: 400, Code: "invalid_grant", Description: "refresh token expired", Cause: errors.New("row 42 expired")},
			wantStatus: 400, wantCT: "application/json",
			wantBody:   []string{`"error":"invalid_grant"`, `"error_description":"refresh token expired"`},
			notInBody:  []string{"row 42"},
			wantLogged: []string{"row 42"},
		},
		{
			name:        "oauth challenge",
			err:         &OAuthError{Status: 401, Code: "invalid_token", Description: "token expired", Challenge: "Bearer"},
			wantStatus:  401,
			wantCT:      "application/json",
			wantWWWAuth: `Bearer realm="keygate", error="invalid_token", error_description="token expired"`,
		},
		{
			name:       "problem",
			err:        &Problem{Status: 404, Type: ProblemTypeBase + "not-found", Title: "Not Found", Detail: "no upstream named x", Cause: errors.New("lookup detail")},
			wantStatus: 404, wantCT: "application/problem+json",
			wantBody:  []string{`"type":"https://keygate.dev/problems/not-found"`, `"detail":"no upstream named x"`},
			notInBody: []string{"lookup detail"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
			h := Middleware(logger)(Handle(logger, func(w http.ResponseWriter, r *http.Request) error { return tt.err }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			body := rec.Body.String()
			for _, s := range tt.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("body %s lacks %q", body, s)
				}
			}
			for _, s := range tt.notInBody {
				if strings.Contains(body, s) {
					t.Errorf("body %s leaks %q", body, s)
				}
			}
			for _, s := range tt.wantLogged {
				if !strings.Contains(logBuf.String(), s) {
					t.Errorf("log lacks %q: %s", s, logBuf.String())
				}
			}
			if tt.wantWWWAuth != "" && rec.Header().Get("WWW-Authenticate") != tt.wantWWWAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), tt.wantWWWAuth)
			}
			if ct := rec.Header().Get("Content-Type"); ct == "application/problem+json" {
				var p map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
					t.Fatal(err)
				}
				// The id in the body is the one in the log and the header.
				id, _ := p["id"].(string)
				if id == "" || id != rec.Header().Get("X-Request-Id") {
					t.Errorf("problem id %q, X-Request-Id %q", id, rec.Header().Get("X-Request-Id"))
				}
				if tt.wantStatus >= 500 && !strings.Contains(logBuf.String(), id) {
					t.Errorf("log lacks the error id %s", id)
				}
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	h := Middleware(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("secret-panic-detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret-panic-detail") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("panic answer = %d %s", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logBuf.String(), "secret-panic-detail") {
		t.Error("panic not logged server-side")
	}
}

func TestChallengeQuoting(t *testing.T) {
	got := Challenge("Bearer", "invalid_token", "bad \"quote\" \\ here\n", "")
	want := `Bearer realm="keygate", error="invalid_token", error_description="bad quote  here"`
	if got != want {
		t.Errorf("Challenge = %q, want %q", got, want)
	}
}

func TestHandleOAuthInternalError(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	h := Middleware(logger)(HandleOAuth(logger, func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("sql: INSERT INTO refresh_tokens failed")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/oauth2/token", nil))
	body := rec.Body.String()
	if rec.Code != 500 || !strings.Contains(body, `"error":"server_error"`) || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("answer = %d %s %s", rec.Code, rec.Header().Get("Content-Type"), body)
	}
	if strings.Contains(body, "INSERT") || !strings.Contains(logBuf.String(), "INSERT INTO refresh_tokens") {
		t.Errorf("the cause must be logged, never sent: body %s", body)
	}
	if id := rec.Header().Get("X-Request-Id"); id == "" || !strings.Contains(body, id) {
		t.Errorf("the description should carry the request id %q: %s", id, body)
	}
}
