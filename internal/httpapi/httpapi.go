// Package httpapi is keygate's error boundary and HTTP middleware.
//
// Handlers return errors; Handle turns them into responses. A *OAuthError
// becomes an RFC 6749 §5.2 JSON error (or an RFC 6750 §3 / RFC 9449 §7.1
// challenge for resource requests); a *Problem becomes RFC 9457
// application/problem+json. Anything else is logged with a fresh error id
// and answered as a 500 problem carrying only that id: clients never see
// err.Error(), SQL or a stack.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// HandlerFunc is an http handler that returns its failure.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// OAuthError is an OAuth 2.0 protocol error (RFC 6749 §5.2, RFC 6750 §3,
// RFC 9449 §7.1).
type OAuthError struct {
	Status      int    // HTTP status; 400 when zero
	Code        string // error code, e.g. "invalid_grant"
	Description string // human-readable, never internal detail
	// Challenge, when set, is the WWW-Authenticate scheme ("Bearer",
	// "DPoP", "Basic") and the error is sent as a challenge too.
	Challenge string
	// ChallengeParams are extra auth-params for the challenge, e.g. algs.
	ChallengeParams string
	// Header holds extra response headers (e.g. DPoP-Nonce).
	Header http.Header
	// Cause is logged, never sent.
	Cause error
}

func (e *OAuthError) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *OAuthError) Unwrap() error { return e.Cause }

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Status int    // HTTP status
	Type   string // URI reference; "about:blank" when empty
	Title  string
	Detail string // safe for clients
	Header http.Header
	Cause  error // logged, never sent
}

func (p *Problem) Error() string {
	s := p.Title
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	if p.Cause != nil {
		s += ": " + p.Cause.Error()
	}
	return s
}

func (p *Problem) Unwrap() error { return p.Cause }

// ProblemTypeBase prefixes keygate's problem type URIs.
const ProblemTypeBase = "https://keygate.dev/problems/"

// Common constructors.

// NewOAuthError builds an OAuthError with status 400.
func NewOAuthError(code, description string) *OAuthError {
	return &OAuthError{Status: http.StatusBadRequest, Code: code, Description: description}
}

// NotFound is a 404 problem.
func NotFound(detail string) *Problem {
	return &Problem{Status: http.StatusNotFound, Type: ProblemTypeBase + "not-found", Title: "Not Found", Detail: detail}
}

// BadRequest is a 400 problem.
func BadRequest(detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Type: ProblemTypeBase + "bad-request", Title: "Bad Request", Detail: detail}
}

// Handle adapts a HandlerFunc to http.Handler, writing its error.
func Handle(logger *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, logger, err)
		}
	})
}

// HandleOAuth is Handle for OAuth endpoints (token, revocation,
// introspection): an error that is neither an *OAuthError nor a *Problem
// is answered in the endpoint's own format, RFC 6749 JSON with error
// "server_error" (the code RFC 6749 §4.1.2.1 defines), status 500, and
// the cause logged beside the request id as usual.
func HandleOAuth(logger *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var oe *OAuthError
		var pe *Problem
		if !errors.As(err, &oe) && !errors.As(err, &pe) && !errors.Is(err, context.Canceled) {
			err = &OAuthError{Status: http.StatusInternalServerError, Code: "server_error",
				Description: "internal error; reference " + RequestID(r.Context()), Cause: err}
		}
		WriteError(w, r, logger, err)
	})
}

// WriteError writes err as the client should see it and logs what the
// client must not see.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	id := RequestID(r.Context())
	var oe *OAuthError
	var pe *Problem
	switch {
	case errors.As(err, &oe):
		if oe.Cause != nil || oe.Status >= 500 {
			logger.LogAttrs(r.Context(), levelFor(oe.Status), "oauth error", slog.String("request_id", id),
				slog.String("error", oe.Code), slog.Any("cause", errString(oe.Cause)))
		}
		writeOAuth(w, oe)
	case errors.As(err, &pe):
		if pe.Cause != nil || pe.Status >= 500 {
			logger.LogAttrs(r.Context(), levelFor(pe.Status), "request failed", slog.String("request_id", id),
				slog.Int("status", pe.Status), slog.Any("cause", errString(pe.Cause)))
		}
		WriteProblem(w, r, pe)
	default:
		status := http.StatusInternalServerError
		title := "Internal Server Error"
		if errors.Is(err, context.Canceled) {
			// The client went away; nobody reads this answer.
			status, title = 499, "Client Closed Request"
		}
		logger.LogAttrs(r.Context(), levelFor(status), "internal error", slog.String("request_id", id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("cause", errString(err)))
		WriteProblem(w, r, &Problem{Status: status, Type: ProblemTypeBase + "internal", Title: title})
	}
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeOAuth(w http.ResponseWriter, e *OAuthError) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	h := w.Header()
	copyHeader(h, e.Header)
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", Challenge(e.Challenge, e.Code, e.Description, e.ChallengeParams))
	}
	h.Set("Cache-Control", "no-store")
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	WriteJSON(w, status, body)
}

// Challenge formats a WWW-Authenticate value (RFC 6750 §3).
func Challenge(scheme, code, description, extra string) string {
	var parts []string
	if scheme != "Basic" {
		parts = append(parts, `realm="keygate"`)
	} else {
		parts = append(parts, `realm="keygate", charset="UTF-8"`)
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	if code != "" && scheme != "Basic" {
		parts = append(parts, `error="`+quoteSafe(code)+`"`)
		if description != "" {
			parts = append(parts, `error_description="`+quoteSafe(description)+`"`)
		}
	}
	return scheme + " " + strings.Join(parts, ", ")
}

// quoteSafe keeps only characters RFC 6750 §3 allows in error strings.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0x20 || r == 0x21 || (r >= 0x23 && r <= 0x5B) || (r >= 0x5D && r <= 0x7E) {
			return r
		}
		return -1
	}, s)
}

// WriteProblem writes an RFC 9457 problem with the request id.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	h := w.Header()
	copyHeader(h, p.Header)
	typ := p.Type
	if typ == "" {
		typ = "about:blank"
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	body := struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
		ID     string `json:"id"`
	}{typ, title, p.Status, p.Detail, RequestID(r.Context())}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request's id, or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random 80-bit id, e.g. for requests and errors.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// Middleware is the chain every listener uses: a request id (also in the
// X-Request-Id response header), panic recovery that answers a 500 problem
// and logs the stack server-side, and an access log line.
func Middleware(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := NewID()
			r = r.WithContext(WithRequestID(r.Context(), id))
			w.Header().Set("X-Request-Id", id)
			rec := &statusRecorder{ResponseWriter: w}
			start := time.Now()
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					logger.LogAttrs(r.Context(), slog.LevelError, "panic", slog.String("request_id", id),
						slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
					if !rec.wrote {
						WriteProblem(rec, r, &Problem{Status: http.StatusInternalServerError, Type: ProblemTypeBase + "internal", Title: "Internal Server Error"})
					}
				}
				logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", rec.statusOr200()), slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", time.Since(start)))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status = code
		s.wrote = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status = http.StatusOK
		s.wrote = true
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush forwards to the underlying writer so streaming works through the
// middleware.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if !s.wrote {
			s.status, s.wrote = http.StatusOK, true
		}
		f.Flush()
	}
}

// copyHeader sets src's values on dst under canonical names, so a literal
// map key such as "WWW-Authenticate" is found by Header.Get.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst.Del(k)
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}
