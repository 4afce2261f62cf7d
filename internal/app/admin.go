package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/admin"
	"github.com/keygate/keygate/internal/audit"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// revocationSlack keeps an access-token revocation a little past the
// token's expiry (verifier clock skew).
const revocationSlack = time.Minute

// operatorCapabilityRevoker is what the capability service may offer so
// that the admin API can revoke a kgc_ token whatever client minted it
// (oauth.CapabilityRevoker only revokes a client's own tokens). found is
// false for an unknown token.
type operatorCapabilityRevoker interface {
	RevokeCapabilityByOperator(ctx context.Context, raw string) (found bool, err error)
}

// adminAPI is the admin API under /admin/ on the admin listener.
func (a *App) adminAPI() http.Handler {
	return admin.New(a.st, a.log, admin.Routes(admin.Backend{
		Families: a.st.ListFamilies,
		Revoke:   a.adminRevoke,
		Blocks: func(ctx context.Context) ([]store.Block, error) {
			return a.lim.blocker.ListBlocks(ctx)
		},
		Unblock: func(ctx context.Context, key string) error {
			if err := a.lim.blocker.Unblock(ctx, key); err != nil {
				return err
			}
			a.adminAudit(ctx, audit.Record{Kind: audit.KindUnblock, Detail: "key=" + key})
			return nil
		},
		Quotas: func(ctx context.Context, key string) ([]ratelimit.QuotaUsage, error) {
			return a.lim.limiter.Quotas(ctx, key)
		},
		ResetQuota: func(ctx context.Context, name, key string) error {
			if err := a.lim.limiter.ResetQuota(ctx, name, key); err != nil {
				return err
			}
			a.log.InfoContext(ctx, "quota reset", "quota", name, "key", key, "admin", admin.Caller(ctx))
			return nil
		},
		Audit: func(ctx context.Context, since time.Time, limit int) ([]store.AuditRecord, error) {
			return audit.Tail(ctx, a.st, since, limit)
		},
		Secrets: a.vault.List,
	}))
}

// adminRevoke revokes by subject, family or client (token.RevokeAll), or
// one raw token. The revocation and its audit record are two transactions
// for the bulk kinds (RevokeAll owns its transaction); the record follows
// the commit synchronously.
func (a *App) adminRevoke(ctx context.Context, kind, value string) (admin.RevokeResult, error) {
	ttl := a.cfg.Tokens.AccessTokenTTL.Std()
	res := admin.RevokeResult{Revoked: kind}
	rec := audit.Record{Kind: audit.KindTokenRevoke}
	switch kind {
	case admin.RevokeSubject, admin.RevokeFamily, admin.RevokeClient:
		n, err := token.RevokeAll(ctx, a.st, a.revocations, kind, value, a.now(), ttl)
		if err != nil {
			return res, err
		}
		res.Families = n
		rec.Detail = fmt.Sprintf("%s=%s families=%d", kind, value, n)
		switch kind {
		case admin.RevokeSubject:
			rec.Subject = value
		case admin.RevokeClient:
			rec.ClientID = value
		}
		a.adminAudit(ctx, rec)
		a.lim.metrics.TokenEvent("revoke")
		return res, nil
	}

	// A raw token. Its value never reaches the log or the audit record.
	switch {
	case strings.HasPrefix(value, oauth.RefreshTokenPrefix):
		res.TokenKind = "refresh"
		h := sha256.Sum256([]byte(value))
		tok, err := a.st.RefreshTokenByHash(ctx, h[:])
		if errors.Is(err, store.ErrNotFound) {
			return res, admin.ErrNoSuchToken
		}
		if err != nil {
			return res, err
		}
		n, err := token.RevokeAll(ctx, a.st, a.revocations, store.RevokeFamily, tok.FamilyID, a.now(), ttl)
		if err != nil {
			return res, err
		}
		res.Families = n
		rec.Detail = "refresh token: family=" + tok.FamilyID
		if fam, err := a.st.Family(ctx, tok.FamilyID); err == nil {
			rec.Subject, rec.ClientID = fam.Subject, fam.ClientID
		}
	case strings.HasPrefix(value, oauth.CapabilityTokenPrefix):
		res.TokenKind = "capability"
		cr, ok := a.capabilityRevoker.(operatorCapabilityRevoker)
		if !ok {
			return res, fmt.Errorf("revoke capability token: %w", admin.ErrUnsupported)
		}
		found, err := cr.RevokeCapabilityByOperator(ctx, value)
		if err != nil {
			return res, err
		}
		if !found {
			return res, admin.ErrNoSuchToken
		}
		rec.Detail = "capability token"
	default:
		res.TokenKind = "access"
		claims, err := a.verifier.Verify(ctx, value)
		if err != nil || claims.JTI == "" {
			return res, admin.ErrNoSuchToken
		}
		now := a.now()
		rv := store.Revocation{Kind: store.RevokeJTI, Value: claims.JTI, IssuedBefore: now,
			ExpiresAt: claims.Expiry.Add(revocationSlack), CreatedAt: now}
		rec.Subject, rec.ClientID = claims.Subject, claims.ClientID
		rec.Detail = "access token: jti=" + claims.JTI + " by admin " + admin.Caller(ctx)
		rec.Time, rec.RequestID = now, httpapi.RequestID(ctx)
		// The revocation and its record commit together.
		err = a.st.WithTx(ctx, func(tx store.Tx) error {
			if err := a.revocations.Add(ctx, tx, rv); err != nil {
				return err
			}
			return audit.Append(ctx, tx, rec)
		})
		if err != nil {
			return res, fmt.Errorf("revoke access token: %w", err)
		}
		a.revocations.Apply(rv)
		a.lim.metrics.TokenEvent("revoke")
		return res, nil
	}
	a.adminAudit(ctx, rec)
	a.lim.metrics.TokenEvent("revoke")
	return res, nil
}

// adminAudit writes the record of an admin action synchronously, naming
// the admin token that did it. A failed write is logged: the action has
// already happened.
func (a *App) adminAudit(ctx context.Context, rec audit.Record) {
	rec.Time = a.now()
	rec.RequestID = httpapi.RequestID(ctx)
	if rec.Detail != "" {
		rec.Detail += " "
	}
	rec.Detail += "by admin " + admin.Caller(ctx)
	if err := audit.Append(ctx, a.st, rec); err != nil {
		a.log.ErrorContext(ctx, "audit admin action failed", "kind", rec.Kind, "error", err)
	}
}
