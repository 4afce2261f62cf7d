package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
)

// introspection is an RFC 7662 §2.2 response.
type introspection struct {
	Active    bool              `json:"active"`
	Scope     string            `json:"scope,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	Subject   string            `json:"sub,omitempty"`
	Expiry    int64             `json:"exp,omitempty"`
	IssuedAt  int64             `json:"iat,omitempty"`
	Issuer    string            `json:"iss,omitempty"`
	Audience  string            `json:"aud,omitempty"`
	JTI       string            `json:"jti,omitempty"`
	TokenType string            `json:"token_type,omitempty"`
	Cnf       map[string]string `json:"cnf,omitempty"`
	SID       string            `json:"sid,omitempty"`
	// Extension members for capability tokens (RFC 7662 §2.2 allows
	// "other members"): a live capability has at least one use left, so
	// omitempty never hides a meaningful zero.
	MaxUses       int64 `json:"max_uses,omitempty"`
	UsesRemaining int64 `json:"uses_remaining,omitempty"`
}

var inactive = &introspection{Active: false}

// handleIntrospect is the introspection endpoint (RFC 7662 §2). Only
// confidential clients holding the introspect scope may call it: other
// authenticated clients get 403 insufficient_scope (RFC 7662 §4: "the
// authorization server MUST require authentication of protected resources
// that need to access the introspection endpoint"), unauthenticated ones
// invalid_client 401. Any token that is not valid, for whatever reason, is
// {"active": false} (§2.2), saying nothing about why.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	c, err := s.authenticateClient(r.Context(), r, f)
	if err != nil {
		return err
	}
	if c.Public {
		return invalidClient(false, "introspection requires a confidential client")
	}
	if !slices.Contains(c.Scopes, introspectScope) {
		return &httpapi.OAuthError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "client lacks the introspect scope"}
	}
	raw := f.get("token")
	if raw == "" {
		return invalidRequest("token is required")
	}
	resp, err := s.introspect(r.Context(), raw)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, resp)
	return nil
}

func (s *Server) introspect(ctx context.Context, raw string) (*introspection, error) {
	switch {
	case len(raw) > maxTokenBytes:
		return inactive, nil
	case strings.HasPrefix(raw, RefreshTokenPrefix):
		return s.introspectRefresh(ctx, raw)
	case strings.HasPrefix(raw, CapabilityTokenPrefix):
		return s.introspectCapability(ctx, raw)
	}
	if s.deps.AccessTokens == nil {
		return inactive, nil
	}
	claims, err := s.deps.AccessTokens.Verify(ctx, raw)
	if err != nil || !s.now().Before(claims.Expiry) {
		return inactive, nil
	}
	if claims.SID != "" {
		// The verifier applies the revocation log; checking the family as
		// well keeps this node exact before the log reaches it.
		fam, err := s.deps.Store.Family(ctx, claims.SID)
		if errors.Is(err, store.ErrNotFound) {
			return inactive, nil
		}
		if err != nil {
			return nil, fmt.Errorf("introspect: %w", err)
		}
		if !fam.RevokedAt.IsZero() {
			return inactive, nil
		}
	}
	out := &introspection{Active: true, Scope: claims.Scope, ClientID: claims.ClientID,
		Subject: claims.Subject, Expiry: claims.Expiry.Unix(), IssuedAt: claims.IssuedAt.Unix(),
		Issuer: claims.Issuer, Audience: claims.Audience, JTI: claims.JTI, TokenType: "Bearer", SID: claims.SID}
	if claims.JKT != "" {
		out.TokenType = "DPoP"
		out.Cnf = map[string]string{"jkt": claims.JKT}
	}
	return out, nil
}

// introspectRefresh reports a refresh token active while it is the live
// member of a live family.
func (s *Server) introspectRefresh(ctx context.Context, raw string) (*introspection, error) {
	if !wellFormedRefreshToken(raw) {
		return inactive, nil
	}
	tok, err := s.deps.Store.RefreshTokenByHash(ctx, hashToken(raw))
	if errors.Is(err, store.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	fam, err := s.deps.Store.Family(ctx, tok.FamilyID)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	now := s.now()
	if !tok.RotatedAt.IsZero() || !fam.RevokedAt.IsZero() || !now.Before(fam.ExpiresAt) || !now.Before(tok.IdleExpiresAt) {
		return inactive, nil
	}
	exp := tok.IdleExpiresAt
	if fam.ExpiresAt.Before(exp) {
		exp = fam.ExpiresAt
	}
	out := &introspection{Active: true, Scope: fam.Scope, ClientID: fam.ClientID, Subject: fam.Subject,
		Expiry: exp.Unix(), IssuedAt: tok.CreatedAt.Unix(), Issuer: s.cfg.Issuer,
		TokenType: "refresh_token", SID: fam.ID}
	if fam.DPoPJKT != "" {
		out.Cnf = map[string]string{"jkt": fam.DPoPJKT}
	}
	return out, nil
}

// introspectCapability reports a capability token active while it is not
// revoked, expired or spent, with the uses it has left. Any client holding
// the introspect scope may ask, as for access tokens. A capability is sent
// with the Bearer scheme even when DPoP-bound (DESIGN.md), so token_type
// stays "Bearer" and the binding shows in cnf.jkt.
func (s *Server) introspectCapability(ctx context.Context, raw string) (*introspection, error) {
	if s.deps.CapabilityIntrospector == nil {
		return inactive, nil
	}
	c, ok, err := s.deps.CapabilityIntrospector.IntrospectCapability(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if !ok {
		return inactive, nil
	}
	out := &introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject,
		Expiry: c.ExpiresAt.Unix(), IssuedAt: c.CreatedAt.Unix(), Issuer: s.cfg.Issuer, TokenType: "Bearer",
		MaxUses: c.MaxUses, UsesRemaining: c.MaxUses - c.Uses}
	if c.DPoPJKT != "" {
		out.Cnf = map[string]string{"jkt": c.DPoPJKT}
	}
	return out, nil
}
