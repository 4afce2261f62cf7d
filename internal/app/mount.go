package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/devidp"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/idp"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/vault"
)

// RefreshKeySecret is the vault secret holding the HMAC key from which a
// rotated refresh token's successor is derived (so a retry within the grace
// window gets the same token without any usable token being stored).
const RefreshKeySecret = "keygate/refresh-hmac"

// pruneInterval is how often expired rows are deleted.
const pruneInterval = time.Hour

// mount adds the token service and proxy to the public mux.
func (a *App) mount(ctx context.Context, mux *http.ServeMux) error {
	cfg := a.cfg
	a.keys = token.NewManager(a.st, a.vault, token.ManagerConfig{
		Alg:       cfg.Tokens.SigningAlg,
		AccessTTL: cfg.Tokens.AccessTokenTTL.Std(),
		Rotation:  cfg.Tokens.KeyRotation.Std(),
	}, a.now, a.log)
	if err := a.keys.Load(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	a.revocations = token.NewRevocations(a.st, a.now, a.log)
	if err := a.revocations.Sync(ctx); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	a.verifier = token.NewVerifier(a.keys, a.revocations, token.VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Issuer}, a.now)
	a.background = append(a.background,
		func(ctx context.Context) { _ = a.keys.Run(ctx) },
		func(ctx context.Context) { _ = a.revocations.Run(ctx) },
		a.prune,
	)

	// Order matters: the pre-forward checks run in the order these add them.
	if err := a.setupDPoP(ctx, mux); err != nil {
		return err
	}
	if err := a.setupLimits(ctx, mux); err != nil {
		return err
	}
	if err := a.setupCapabilities(ctx, mux); err != nil {
		return err
	}

	refreshKey, err := a.refreshKey(ctx)
	if err != nil {
		return err
	}
	clients, err := oauthClients(cfg.Clients)
	if err != nil {
		return err
	}
	idps := idp.New(cfg.IdentityProviders, &http.Client{Timeout: 10 * time.Second}, a.now, a.log)
	oa, err := oauth.New(oauth.Config{
		Issuer:         cfg.Issuer,
		AccessTTL:      cfg.Tokens.AccessTokenTTL.Std(),
		RefreshTTL:     cfg.Tokens.RefreshTokenTTL.Std(),
		RefreshIdleTTL: cfg.Tokens.RefreshIdleTTL.Std(),
		ReuseGrace:     cfg.Tokens.RefreshReuseGrace.Std(),
		RefreshKey:     refreshKey,
		Clients:        clients,
	}, oauth.Deps{
		Store:                  a.st,
		Signer:                 a.keys,
		IDTokens:               idps,
		AccessTokens:           a.verifier,
		Revoker:                a.revocations,
		DPoP:                   a.dpopTokenEndpoint,
		Capabilities:           a.capabilityRevoker,
		CapabilityIntrospector: a.capabilityIntro,
		ClientKeys:             a.clientKeys,
		Secrets:                oauth.SecretFunc(a.secret),
		Now:                    a.now,
		Logger:                 a.log,
		Audit:                  a.oauthAuditor(),
	})
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	oa.Register(mux)
	mux.Handle("GET /.well-known/jwks.json", a.keys.JWKSHandler())

	if err := a.mountProxy(mux); err != nil {
		return err
	}

	if a.opts.Dev {
		dev, err := devidp.New(cfg.Issuer+"/dev", "dev-app", a.now)
		if err != nil {
			return err
		}
		for pattern, h := range dev.Handlers() {
			mux.Handle(pattern, httpapi.Handle(a.log, h))
		}
	}
	return nil
}

// secret reads a vault secret's current value.
func (a *App) secret(ctx context.Context, name string) ([]byte, error) {
	s, _, err := a.vault.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Reveal(), nil
}

// refreshKey loads the refresh-token HMAC key, creating it on first start.
// Two nodes starting together may both create one; the later version wins
// on every node after restart, and until then each node's grace replies are
// its own (a retry that lands on the other node within the grace window is
// treated as reuse only if the successor differs, which it then does; this
// window closes on first start only).
func (a *App) refreshKey(ctx context.Context) ([]byte, error) {
	s, _, err := a.vault.Get(ctx, RefreshKeySecret)
	if errors.Is(err, vault.ErrNotFound) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if _, err := a.vault.Put(ctx, RefreshKeySecret, vault.NewSecret(b)); err != nil {
			return nil, fmt.Errorf("create refresh key: %w", err)
		}
		s, _, err = a.vault.Get(ctx, RefreshKeySecret)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh key: %w", err)
	}
	return s.Reveal(), nil
}

// oauthClients translates configured clients for the token service.
func oauthClients(in []config.Client) ([]oauth.Client, error) {
	out := make([]oauth.Client, 0, len(in))
	for _, c := range in {
		oc := oauth.Client{
			ID:          c.ID,
			Public:      c.Type == config.ClientPublic,
			AuthMethod:  c.Auth,
			SecretName:  c.Secret,
			GrantTypes:  c.GrantTypes,
			Scopes:      c.Scopes,
			RequireDPoP: c.RequireDPoP,
		}
		if oc.Public {
			oc.AuthMethod = oauth.AuthNone
		}
		if len(c.JWKS) > 0 {
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(c.JWKS, &set); err != nil {
				return nil, fmt.Errorf("clients %s: jwks: %w", c.ID, err)
			}
			oc.JWKS = &set
		}
		if c.Auth == config.AuthPrivateKeyJWT {
			oc.JWKSURI = c.JWKSURI
		}
		out = append(out, oc)
	}
	return out, nil
}

// prune deletes expired rows once an hour.
func (a *App) prune(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := a.now()
		for name, f := range map[string]func(context.Context, time.Time) (int, error){
			"refresh":     a.st.PruneRefresh,
			"replay":      a.st.PruneReplay,
			"revocations": a.st.PruneRevocations,
		} {
			if n, err := f(ctx, now); err != nil {
				a.log.Warn("prune failed", "table", name, "error", err)
			} else if n > 0 {
				a.log.Info("pruned expired rows", "table", name, "rows", n)
			}
		}
	}
}
