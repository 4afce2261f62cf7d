package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
)

// handleRevoke is the revocation endpoint (RFC 7009 §2). Clients
// authenticate as at the token endpoint; public clients by client_id. The
// answer is 200 with an empty body whether or not anything was revoked:
// RFC 7009 §2.2: "The authorization server responds with HTTP status code
// 200 if the token has been revoked successfully or if the client
// submitted an invalid token." token_type_hint is not needed (each token
// kind has its own shape) and unknown hints are ignored.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	c, err := s.authenticateClient(r.Context(), r, f)
	if err != nil {
		return err
	}
	raw := f.get("token")
	if raw == "" {
		return invalidRequest("token is required")
	}
	if err := s.revoke(r.Context(), c, raw); err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, nil)
	return nil
}

func (s *Server) revoke(ctx context.Context, c *client, raw string) error {
	switch {
	case len(raw) > maxTokenBytes:
		return nil
	case strings.HasPrefix(raw, RefreshTokenPrefix):
		return s.revokeRefresh(ctx, c, raw)
	case strings.HasPrefix(raw, CapabilityTokenPrefix):
		return s.revokeCapability(ctx, c, raw)
	default:
		return s.revokeAccess(ctx, c, raw)
	}
}

// revokeRefresh revokes the family of a refresh token. RFC 7009 §2.1: "If
// the token passed to the request is a refresh token and the authorization
// server supports the revocation of access tokens, then the authorization
// server SHOULD also invalidate all access tokens based on the same
// authorization grant" — the family revocation entry does that by sid.
func (s *Server) revokeRefresh(ctx context.Context, c *client, raw string) error {
	if !wellFormedRefreshToken(raw) {
		return nil
	}
	now := s.now()
	var rev *store.Revocation
	err := s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		rev = nil
		tok, err := tx.RefreshTokenByHash(ctx, hashToken(raw))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		fam, err := tx.Family(ctx, tok.FamilyID)
		if err != nil {
			return err
		}
		// RFC 7009 §2.1: "The authorization server first validates the
		// client credentials [...] and then verifies whether the token was
		// issued to the client making the revocation request. If this
		// validation fails, the request is refused" — and still answered
		// 200, so a client cannot probe other clients' tokens.
		if fam.ClientID != c.ID {
			return nil
		}
		changed, err := tx.RevokeFamily(ctx, fam.ID, now, "revoked")
		if err != nil || !changed {
			return err
		}
		r := s.familyRevocation(fam.ID, now)
		if err := s.addRevocation(ctx, tx, r); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, refreshRecord(ctx, store.AuditTokenRevoke, fam, now, "revoked by client")); err != nil {
			return err
		}
		rev = &r
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	if rev != nil {
		s.event("revoke")
		s.applyRevocation(*rev)
	}
	return nil
}

// revokeCapability revokes a capability token the client minted, and
// records it in the same transaction.
func (s *Server) revokeCapability(ctx context.Context, c *client, raw string) error {
	if s.deps.Capabilities == nil {
		return nil
	}
	now := s.now()
	var revoked bool
	err := s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		capability, ok, err := s.deps.Capabilities.RevokeCapabilityTx(ctx, tx, c.ID, raw)
		revoked = ok
		if err != nil || !ok {
			return err
		}
		return s.audit(ctx, tx, store.AuditRecord{Time: now, RequestID: httpapi.RequestID(ctx), Kind: store.AuditTokenRevoke,
			Subject: capability.Subject, ClientID: capability.ClientID, Detail: "capability token revoked by client"})
	})
	if err != nil {
		return fmt.Errorf("revoke capability token: %w", err)
	}
	if revoked {
		s.event("revoke")
	}
	return nil
}

// revokeAccess revokes one access token by jti, when it verifies and was
// issued to the client.
func (s *Server) revokeAccess(ctx context.Context, c *client, raw string) error {
	if s.deps.AccessTokens == nil {
		return nil
	}
	claims, err := s.deps.AccessTokens.Verify(ctx, raw)
	if err != nil || claims.ClientID != c.ID || claims.JTI == "" {
		return nil
	}
	now := s.now()
	r := store.Revocation{Kind: store.RevokeJTI, Value: claims.JTI, IssuedBefore: now,
		ExpiresAt: claims.Expiry.Add(clockSkew), CreatedAt: now}
	err = s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		if err := s.addRevocation(ctx, tx, r); err != nil {
			return err
		}
		return s.audit(ctx, tx, store.AuditRecord{Time: now, RequestID: httpapi.RequestID(ctx), Kind: store.AuditTokenRevoke,
			Subject: claims.Subject, ClientID: claims.ClientID, Detail: "access token revoked by client jti=" + claims.JTI})
	})
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.event("revoke")
	s.applyRevocation(r)
	return nil
}

// audit appends rec through tx when an Auditor is configured.
func (s *Server) audit(ctx context.Context, tx store.Tx, rec store.AuditRecord) error {
	if s.deps.Audit == nil {
		return nil
	}
	return s.deps.Audit.Append(ctx, tx, rec)
}

// auditAlone appends rec in a transaction of its own, for events that
// change nothing else in the database.
func (s *Server) auditAlone(ctx context.Context, rec store.AuditRecord) error {
	if s.deps.Audit == nil {
		return nil
	}
	return s.deps.Store.WithTx(ctx, func(tx store.Tx) error { return s.deps.Audit.Append(ctx, tx, rec) })
}

// event counts a committed token event.
func (s *Server) event(e string) {
	if s.deps.Audit != nil {
		s.deps.Audit.Event(e)
	}
}
