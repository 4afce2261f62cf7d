// Package admin is keygate's admin API (DESIGN.md "Admin listener"), served
// only on the admin listener. Every route needs `Authorization: Bearer
// kga_...`; admin tokens are created by `keygate admin token create` and
// only their SHA-256 hashes are stored. Wrong tokens are rate limited per
// client address, so the API cannot be used to guess tokens.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
)

// TokenPrefix marks admin tokens so secret scanners can find leaked ones.
const TokenPrefix = "kga_"

// Wrong-token limits per client address.
const (
	failureRate  = rate.Limit(1.0 / 6) // one every 6 s on average
	failureBurst = 10
	maxTokenLen  = 256
)

// NewToken returns a fresh admin token and the hash to store.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is the stored form of an admin token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Route is one admin API route: a mux pattern and its handler.
type Route struct {
	Pattern string
	Handler httpapi.HandlerFunc
}

// API is the admin API handler.
type API struct {
	tokens store.AdminTokenStore
	log    *slog.Logger
	mux    *http.ServeMux

	mu       sync.Mutex
	failures map[string]*rate.Limiter
}

// New returns the admin API serving routes, each behind admin-token auth.
func New(tokens store.AdminTokenStore, logger *slog.Logger, routes []Route) *API {
	a := &API{tokens: tokens, log: logger, mux: http.NewServeMux(), failures: map[string]*rate.Limiter{}}
	for _, r := range routes {
		a.mux.Handle(r.Pattern, httpapi.Handle(logger, a.authenticated(r.Handler)))
	}
	a.mux.Handle("/admin/", httpapi.Handle(logger, a.authenticated(func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.NotFound("no such admin route")
	})))
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

type ctxKey struct{}

// Caller returns the admin token name that authenticated the request.
func Caller(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}

func (a *API) authenticated(next httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ip := remoteIP(r)
		if !a.allowAttempt(ip) {
			return &httpapi.Problem{Status: http.StatusTooManyRequests, Type: httpapi.ProblemTypeBase + "rate-limited",
				Title: "Too Many Requests", Detail: "too many failed admin authentications", Header: http.Header{"Retry-After": {"10"}}}
		}
		tok, ok := bearer(r)
		if !ok {
			a.recordFailure(ip)
			return unauthorized("admin token required")
		}
		t, err := a.tokens.AdminTokenByHash(r.Context(), HashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			a.recordFailure(ip)
			a.log.Warn("admin authentication failed", "remote", ip)
			return unauthorized("invalid admin token")
		}
		if err != nil {
			return err
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t.Name)))
	}
}

func unauthorized(detail string) *httpapi.Problem {
	return &httpapi.Problem{Status: http.StatusUnauthorized, Type: httpapi.ProblemTypeBase + "unauthorized",
		Title: "Unauthorized", Detail: detail, Header: http.Header{"WWW-Authenticate": {`Bearer realm="keygate-admin"`}}}
}

func bearer(r *http.Request) (string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(tok) > maxTokenLen || !strings.HasPrefix(tok, TokenPrefix) {
		return "", false
	}
	return tok, true
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowAttempt reports whether ip may try to authenticate: its failure
// bucket must not be empty. Successful requests do not spend tokens.
func (a *API) allowAttempt(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.failures[ip]
	return !ok || l.Tokens() >= 1
}

func (a *API) recordFailure(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.failures[ip]
	if !ok {
		if len(a.failures) > 10000 {
			// Bounded memory: forget everyone rather than grow forever.
			a.failures = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(failureRate, failureBurst)
		a.failures[ip] = l
	}
	l.AllowN(time.Now(), 1)
}
