package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/vault"
)

// secretSource serves the proxy's secret cache: values from the vault, and
// the cheap version probe it polls to notice `keygate secret rotate`.
type secretSource struct{ a *App }

func (s secretSource) Get(ctx context.Context, name string) (vault.Secret, int, error) {
	return s.a.vault.Get(ctx, name)
}

func (s secretSource) LatestVersion(ctx context.Context, name string) (int, error) {
	v, err := s.a.st.LatestSecretVersion(ctx, name)
	if err != nil {
		return 0, err
	}
	return v.Version, nil
}

// mountProxy builds the proxy. It is not a mux pattern: it wraps the whole
// public mux (see proxy.Wrap), so that paths the mux would "clean" with a
// redirect reach the proxy's own, stricter checks.
func (a *App) mountProxy(mux *http.ServeMux) error {
	deps := proxy.Deps{
		Tokens:    a.verifier,
		Secrets:   secretSource{a},
		Logger:    a.log,
		Now:       a.now,
		Authorize: a.authorize,
		Observe:   a.observe,
	}
	deps.Auth = a.proxyAuth()
	if a.opts.Dev {
		deps.UpstreamTransports = map[string]http.RoundTripper{"echo": proxy.EchoTransport()}
	}
	p, err := proxy.New(proxy.Config{
		Issuer:         a.cfg.Issuer,
		Upstreams:      a.cfg.Upstreams,
		TrustedProxies: a.cfg.TrustedProxyPrefixes(),
	}, deps)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	a.proxy = p
	a.background = append(a.background, p.Run)
	// Anything that is neither an upstream nor a route of keygate's own.
	mux.Handle("/", httpapi.Handle(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.NotFound("no such endpoint or upstream")
	}))
	return nil
}

// proxyAuth picks the authenticator by credential: "DPoP" scheme → DPoP
// (RFC 9449 §7), a "Bearer kgc_" capability token → capabilities, any other
// bearer token → the access-token check (which refuses DPoP-bound tokens).
func (a *App) proxyAuth() proxy.Authenticator {
	return authChain{dpop: a.dpopAuth, capability: a.capabilityAuth, bearer: proxy.NewBearerAuth(a.verifier, a.cfg.Issuer, a.now)}
}

type authChain struct {
	dpop, capability, bearer proxy.Authenticator
}

func (c authChain) Authenticate(r *http.Request) (*proxy.Caller, error) {
	if v := r.Header.Get("Authorization"); len(v) > 5 {
		switch {
		case c.dpop != nil && strings.EqualFold(v[:5], "DPoP "):
			return c.dpop.Authenticate(r)
		case c.capability != nil && len(v) > 11 && strings.EqualFold(v[:7], "Bearer ") && strings.HasPrefix(v[7:], "kgc_"):
			return c.capability.Authenticate(r)
		}
	}
	return c.bearer.Authenticate(r)
}

// authorize runs after authentication and scope, before forwarding, in
// this order: request signature (routes that require one), blocks and
// limits, and last the capability use, so a refused request never spends one.
func (a *App) authorize(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error {
	for _, check := range a.checks {
		if err := check(r, c, route); err != nil {
			return err
		}
	}
	return nil
}

// observe records a finished proxied request.
func (a *App) observe(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch, status int, dur time.Duration, bytesIn, bytesOut int64) {
	for _, o := range a.observers {
		o(r, c, route, status, dur, bytesIn, bytesOut)
	}
}
