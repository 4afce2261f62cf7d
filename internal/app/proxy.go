package app

import (
	"context"
	"fmt"
	"net/http"
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

// proxyAuth is the authenticator chain of the proxy: DPoP and capability
// tokens are added here as they are configured; nil means the proxy's
// built-in bearer access-token check.
func (a *App) proxyAuth() proxy.Authenticator { return nil }

// authorize runs after authentication and scope, before forwarding.
func (a *App) authorize(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error { return nil }

// observe records a finished proxied request.
func (a *App) observe(upstream string, status int, dur time.Duration, bytesIn, bytesOut int64) {}
