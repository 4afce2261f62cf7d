package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/keygate/keygate/internal/capability"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/proxy"
)

// setupCapabilities configures capability tokens: minting at
// /oauth2/capabilities, the proxy authenticator for kgc_ tokens, and the
// per-request use counting.
//
// The use is spent by the last pre-forward check: setupCapabilities runs
// after setupDPoP and setupLimits, so every check they add (signatures,
// blocks, limits) has passed before a use goes.
//
// DPoP-bound capabilities (minted with dpop_jkt) need a proof of their key
// with every request, checked by the proxy's DPoP verifier.
func (a *App) setupCapabilities(ctx context.Context, mux *http.ServeMux) error {
	opts := capability.Options{Now: a.now, Logger: a.log}
	if d, ok := a.dpopAuth.(*proxy.DPoPAuth); ok {
		// A capability minted with dpop_jkt is presented as Bearer with a
		// DPoP proof of that key over the capability token.
		opts.ProofCheck = func(r *http.Request, raw, jkt string) error {
			if len(r.Header.Values("DPoP")) == 0 {
				// Capabilities travel with the Bearer scheme (RFC 6750), so
				// the refusal is a Bearer challenge; the description says
				// what is missing.
				return &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_token",
					Description: "the capability token is DPoP-bound: send a DPoP proof of its key", Challenge: "Bearer"}
			}
			return d.CheckProof(r, raw, jkt)
		}
	}
	svc := capability.New(a.st, opts)
	clients, err := oauthClients(a.cfg.Clients)
	if err != nil {
		return err
	}
	upstreams := make([]string, 0, len(a.cfg.Upstreams))
	for _, u := range a.cfg.Upstreams {
		upstreams = append(upstreams, u.Name)
	}
	ep, err := oauth.NewCapabilityEndpoint(oauth.CapabilityConfig{
		Issuer:       a.cfg.Issuer,
		Clients:      clients,
		Upstreams:    upstreams,
		MaxExpiresIn: a.cfg.Capabilities.MaxExpiresIn.Std(),
	}, oauth.CapabilityDeps{
		Store:      a.st,
		Secrets:    oauth.SecretFunc(a.secret),
		ClientKeys: a.clientKeys,
		Minter:     svc,
		Now:        a.now,
		Logger:     a.log,
		Audit:      a.oauthAuditor(),
	})
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	ep.Register(mux)
	a.capabilityAuth = svc
	a.capabilityRevoker = svc
	a.capabilityIntro = svc
	a.checks = append(a.checks, svc.Consume)
	a.background = append(a.background, func(ctx context.Context) { svc.Prune(ctx, pruneInterval) })
	return nil
}
