// Package app assembles a running keygate from its parts: configuration,
// store, vault, token service, proxy, and the public and admin listeners.
// It is the only package that knows all the others.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate/internal/clientkeys"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/vault"
)

// Server timeouts. Write has no overall timeout because proxied responses
// stream (SSE); the proxy bounds idle streams itself.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 32 << 10
	shutdownGrace     = 25 * time.Second
)

// Options are the parts that do not come from the config file.
type Options struct {
	Dev    bool
	Logger *slog.Logger
	Now    func() time.Time
	// Ready, when set, receives the bound public and admin addresses once
	// both listeners accept connections.
	Ready func(public, admin net.Addr)
	// WithoutRequestLimitsAndAudit leaves rate limits, blocks and
	// per-request audit records out of the proxy path. It exists to measure
	// what they cost (make bench); a server should never run so.
	WithoutRequestLimitsAndAudit bool
}

// App is a configured keygate.
type App struct {
	cfg      *config.Config
	st       store.Store
	vault    *vault.Vault
	log      *slog.Logger
	now      func() time.Time
	opts     Options
	registry *prometheus.Registry

	public http.Handler
	admin  http.Handler

	background []func(ctx context.Context)

	keys        *token.Manager
	revocations *token.Revocations
	verifier    *token.Verifier
	proxy       *proxy.Proxy

	// Set by setupDPoP (dpop.go), setupCapabilities (capability.go) and
	// setupLimits (limits.go); nil when not configured.
	dpopAuth          proxy.Authenticator
	dpopTokenEndpoint oauth.DPoPVerifier
	clientKeys        *clientkeys.Cache // keys at client jwks_uris, shared by the token endpoint and request signatures
	capabilityRevoker oauth.CapabilityRevoker
	capabilityIntro   oauth.CapabilityIntrospector
	capabilityAuth    proxy.Authenticator
	checks            []func(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error
	observers         []func(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch, status int, dur time.Duration, bytesIn, bytesOut int64)
	lim               *limits // limits.go; the admin API (admin.go) uses it too
}

// New builds the handlers over an open store and vault.
func New(ctx context.Context, cfg *config.Config, st store.Store, v *vault.Vault, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &App{cfg: cfg, st: st, vault: v, log: opts.Logger, now: opts.Now, opts: opts,
		registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pub := http.NewServeMux()
	pub.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	pub.Handle("GET /readyz", httpapi.Handle(a.log, a.readyz))
	if err := a.mount(ctx, pub); err != nil {
		return nil, err
	}
	// Browser apps call the token endpoints cross-origin: oauth_cors
	// governs /oauth2/* and /.well-known/* (the proxy has its own per
	// upstream policy).
	oauthCORS := proxy.CORS(cfg.OAuthCORS.Origins)(pub)
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth2/") || strings.HasPrefix(r.URL.Path, "/.well-known/") {
			oauthCORS.ServeHTTP(w, r)
			return
		}
		pub.ServeHTTP(w, r)
	})
	a.public = httpapi.Middleware(a.log)(a.proxy.Wrap(site))

	adm := http.NewServeMux()
	adm.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	adm.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	adm.HandleFunc("/debug/pprof/", pprof.Index)
	adm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	adm.HandleFunc("/debug/pprof/profile", pprof.Profile)
	adm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	adm.HandleFunc("/debug/pprof/trace", pprof.Trace)
	adm.Handle("/admin/", a.adminAPI())
	a.admin = httpapi.Middleware(a.log)(adm)
	return a, nil
}

// Public is the public listener's handler (tokens and proxy).
func (a *App) Public() http.Handler { return a.public }

// Admin is the admin listener's handler.
func (a *App) Admin() http.Handler { return a.admin }

func (a *App) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.st.Ping(ctx); err != nil {
		return &httpapi.Problem{Status: http.StatusServiceUnavailable, Type: httpapi.ProblemTypeBase + "not-ready",
			Title: "Service Unavailable", Detail: "database unreachable", Cause: err}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// Run serves until ctx is cancelled, then shuts down gracefully: the
// listeners stop accepting, in-flight requests finish (up to a grace
// period), background work stops.
func (a *App) Run(ctx context.Context) error {
	pubLn, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
	}
	admLn, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("admin listen %s: %w", a.cfg.AdminListen, err)
	}
	return a.Serve(ctx, pubLn, admLn)
}

// Serve is Run on listeners the caller opened.
func (a *App) Serve(ctx context.Context, pubLn, admLn net.Listener) error {
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
	}
	pub, adm := newServer(a.public), newServer(a.admin)

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, f := range a.background {
		bg.Add(1)
		go func() { defer bg.Done(); f(bgCtx) }()
	}

	errc := make(chan error, 2)
	go func() { errc <- pub.Serve(pubLn) }()
	go func() { errc <- adm.Serve(admLn) }()
	a.log.Info("keygate listening", "public", pubLn.Addr().String(), "admin", admLn.Addr().String(), "database", a.st.Backend())
	if a.opts.Ready != nil {
		a.opts.Ready(pubLn.Addr(), admLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err1 := pub.Shutdown(sctx)
	err2 := adm.Shutdown(sctx)
	stopBackground()
	bg.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return errors.Join(err1, err2)
}
