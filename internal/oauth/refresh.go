package oauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// refreshTokenLen is "kgr_" + 43 base64url characters of 32 bytes.
const refreshTokenLen = len(RefreshTokenPrefix) + 43

// refreshInput is one refresh request. dpopJKT is the key the request
// proved possession of ("" for Bearer).
type refreshInput struct {
	client  *client
	token   string
	scope   string
	dpopJKT string
}

// refreshOutcome is what the rotation transaction decided. The
// transaction commits even when the request fails, because reuse detection
// must persist the family revocation while answering invalid_grant.
type refreshOutcome struct {
	fail       *httpapi.OAuthError
	family     store.RefreshFamily
	scope      string
	resp       *tokenResponse
	reuse      bool
	revocation store.Revocation
}

func (s *Server) newRefreshToken() (string, error) {
	r, err := s.randomString(32)
	if err != nil {
		return "", err
	}
	return RefreshTokenPrefix + r, nil
}

// successor derives the token that replaces presented: the same input
// always yields the same successor, so a repeated presentation within the
// grace window can be answered with the identical token although only its
// hash is stored.
func (s *Server) successor(presented string) string {
	m := hmac.New(sha256.New, s.cfg.RefreshKey)
	m.Write([]byte(presented))
	return RefreshTokenPrefix + b64.EncodeToString(m.Sum(nil))
}

// wellFormedRefreshToken checks the shape before any lookup.
func wellFormedRefreshToken(t string) bool {
	if len(t) != refreshTokenLen || !strings.HasPrefix(t, RefreshTokenPrefix) {
		return false
	}
	_, err := b64.DecodeString(t[len(RefreshTokenPrefix):])
	return err == nil
}

// refresh is the refresh token grant (RFC 6749 §6) with rotation (RFC 9700
// §4.14.2). See the package documentation for the grace window and reuse.
func (s *Server) refresh(ctx context.Context, in refreshInput) (*tokenResponse, error) {
	if in.token == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	if !wellFormedRefreshToken(in.token) {
		return nil, invalidGrant("refresh token is invalid")
	}
	now := s.now()
	next := s.successor(in.token)
	var out refreshOutcome
	err := s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		out = refreshOutcome{} // WithTx may retry fn
		return s.rotate(ctx, tx, in, hashToken(in.token), hashToken(next), now, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if out.reuse {
		s.event("reuse")
		s.applyRevocation(out.revocation)
		s.deps.Logger.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse",
			slog.String("family", out.family.ID), slog.String("client", out.family.ClientID),
			slog.String("subject", out.family.Subject), slog.String("request_id", httpapi.RequestID(ctx)))
	}
	if out.fail != nil {
		return nil, out.fail
	}
	s.event("refresh")
	out.resp.RefreshToken = next
	return out.resp, nil
}

// rotate runs inside the refresh transaction. It returns an error only for
// store failures; protocol outcomes go into out.
func (s *Server) rotate(ctx context.Context, tx store.Tx, in refreshInput, presented, next []byte, now time.Time, out *refreshOutcome) error {
	tok, err := tx.RefreshTokenByHash(ctx, presented)
	if errors.Is(err, store.ErrNotFound) {
		out.fail = invalidGrant("refresh token is invalid")
		return nil
	}
	if err != nil {
		return err
	}
	fam, err := tx.Family(ctx, tok.FamilyID)
	if err != nil {
		return err
	}
	out.family = fam
	// RFC 6749 §6: "[The authorization server MUST] validate the refresh
	// token and ensure that it was issued to the authenticated client", as
	// "the refresh token is bound to the client to which it was issued".
	if fam.ClientID != in.client.ID {
		out.fail = invalidGrant("refresh token was issued to another client")
		return nil
	}
	if fail := s.checkFamily(fam, in, now); fail != nil {
		out.fail = fail
		return nil
	}
	// RFC 6749 §6: "The requested scope MUST NOT include any scope not
	// originally granted by the resource owner, and if omitted is treated
	// as equal to the scope originally granted by the resource owner."
	// Scopes since withdrawn from the client are not granted again.
	granted, _ := parseScope(fam.Scope)
	out.scope, err = grantScope(in.scope, intersect(granted, in.client.Scopes))
	if oe, ok := errors.AsType[*httpapi.OAuthError](err); ok {
		out.fail = oe
		return nil
	} else if err != nil {
		return err
	}

	if tok.RotatedAt.IsZero() {
		if !now.Before(tok.IdleExpiresAt) {
			out.fail = invalidGrant("refresh token has expired")
			return nil
		}
		won, err := tx.RotateRefreshToken(ctx, presented, next, now)
		if err != nil {
			return err
		}
		if won {
			if err := tx.InsertRefreshToken(ctx, store.RefreshToken{Hash: next, FamilyID: fam.ID,
				CreatedAt: now, IdleExpiresAt: s.idleExpiry(fam, now)}); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, refreshRecord(ctx, store.AuditTokenRefresh, fam, now, "rotated")); err != nil {
				return err
			}
			return s.mint(fam, out, now)
		}
		// A concurrent request rotated the token (or revoked the family)
		// between our read and the conditional update: read what it left.
		if tok, err = tx.RefreshTokenByHash(ctx, presented); err != nil {
			return err
		}
		if fam, err = tx.Family(ctx, tok.FamilyID); err != nil {
			return err
		}
		if !fam.RevokedAt.IsZero() || tok.RotatedAt.IsZero() {
			out.fail = invalidGrant("refresh token has been revoked")
			return nil
		}
	}

	// The token was rotated already. Within the grace window, and while
	// its successor is still the live token, answer with that successor.
	if s.cfg.ReuseGrace > 0 && bytes.Equal(tok.SuccessorHash, next) && now.Sub(tok.RotatedAt) <= s.cfg.ReuseGrace {
		succ, err := tx.RefreshTokenByHash(ctx, next)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && succ.RotatedAt.IsZero() {
			if err := s.audit(ctx, tx, refreshRecord(ctx, store.AuditTokenRefresh, fam, now, "repeated within grace")); err != nil {
				return err
			}
			return s.mint(fam, out, now)
		}
	}

	// RFC 9700 §4.14.2: "If a refresh token is compromised and
	// subsequently used by both the attacker and the legitimate client, one
	// of them will present an invalidated refresh token, which will inform
	// the authorization server of the breach. The authorization server
	// cannot determine which party submitted the invalid refresh token, but
	// it will revoke the active refresh token."
	if _, err := tx.RevokeFamily(ctx, fam.ID, now, "reuse"); err != nil {
		return err
	}
	out.revocation = s.familyRevocation(fam.ID, now)
	if err := s.addRevocation(ctx, tx, out.revocation); err != nil {
		return err
	}
	if err := s.audit(ctx, tx, refreshRecord(ctx, store.AuditTokenReuse, fam, now, "reuse detected; family revoked")); err != nil {
		return err
	}
	out.reuse = true
	out.fail = invalidGrant("refresh token has already been used")
	return nil
}

// refreshRecord is the audit record of a refresh-family event.
func refreshRecord(ctx context.Context, kind string, fam store.RefreshFamily, now time.Time, what string) store.AuditRecord {
	return store.AuditRecord{Time: now, RequestID: httpapi.RequestID(ctx), Kind: kind, Subject: fam.Subject,
		ClientID: fam.ClientID, Detail: what + " family=" + fam.ID}
}

// checkFamily refuses revoked, expired and wrongly bound families.
func (s *Server) checkFamily(fam store.RefreshFamily, in refreshInput, now time.Time) *httpapi.OAuthError {
	switch {
	case !fam.RevokedAt.IsZero():
		return invalidGrant("refresh token has been revoked")
	case !now.Before(fam.ExpiresAt):
		return invalidGrant("refresh token has expired")
	case fam.DPoPJKT != in.dpopJKT:
		// RFC 9449 §5: a refresh token bound to a DPoP key is used only
		// with a proof of possession of that key.
		return invalidGrant("refresh token is bound to a different DPoP key")
	}
	return nil
}

// mint signs the access token for a refresh answer inside the transaction,
// so a signing failure rolls the rotation back.
func (s *Server) mint(fam store.RefreshFamily, out *refreshOutcome, now time.Time) error {
	resp, err := s.accessToken(token.AccessClaims{Subject: fam.Subject, ClientID: fam.ClientID,
		Scope: out.scope, SID: fam.ID, ACR: fam.ACR, AuthTime: fam.AuthTime, JKT: fam.DPoPJKT}, now)
	if err != nil {
		return err
	}
	out.resp = resp
	return nil
}
