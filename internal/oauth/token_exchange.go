package oauth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// tokenExchange is the RFC 8693 grant: an ID token of a configured IdP in,
// a keygate access token (and, when the client may refresh, a refresh
// token starting a new family) out.
//
// The ID token's audience is the app's client id at the IdP, not keygate's
// client_id, so the two are not compared: IDTokenVerifier checks iss, aud
// against the IdP's configured audiences, exp and the signature, and its
// acceptance is what counts.
func (s *Server) tokenExchange(ctx context.Context, c *client, f form, jkt string) (*tokenResponse, error) {
	subjectToken := f.get("subject_token")
	switch typ := f.get("subject_token_type"); {
	case subjectToken == "":
		return nil, invalidRequest("subject_token is required")
	case typ == "":
		return nil, invalidRequest("subject_token_type is required")
	case typ != TokenTypeIDToken:
		return nil, invalidRequest("subject_token_type must be " + TokenTypeIDToken)
	}
	if f.get("actor_token") != "" || f.get("actor_token_type") != "" {
		return nil, invalidRequest("actor_token is not supported: delegation is not offered")
	}
	if rt := f.get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, invalidRequest("requested_token_type must be " + TokenTypeAccessToken)
	}
	// keygate's proxy is the only resource server: its issuer is the only
	// acceptable target. RFC 8693 §2.2.2: "If the authorization server is
	// unwilling or unable to issue a token for any target service indicated
	// by the resource or audience parameters, the invalid_target error code
	// SHOULD be used in the error response."
	for _, p := range []string{"resource", "audience"} {
		for _, v := range f.all(p) {
			if v != s.cfg.Issuer {
				return nil, oauthErr("invalid_target", p+" must be "+s.cfg.Issuer)
			}
		}
	}
	scope, err := grantScope(f.get("scope"), c.Scopes)
	if err != nil {
		return nil, err
	}
	if len(subjectToken) > maxTokenBytes {
		return nil, invalidRequest("subject_token is too large")
	}
	id, err := s.deps.IDTokens.Verify(ctx, subjectToken)
	if err != nil {
		// RFC 8693 §2.2.2: "If the request itself is not valid or if either
		// the subject_token or actor_token are invalid for any reason, or
		// are unacceptable based on policy, [...] The value of the error
		// parameter MUST be the invalid_request error code."
		return nil, &httpapi.OAuthError{Status: http.StatusBadRequest, Code: "invalid_request",
			Description: "subject_token is invalid", Cause: err}
	}
	now := s.now()
	claims := token.AccessClaims{Subject: id.KeygateSubject(), ClientID: c.ID, Scope: scope,
		ACR: id.ACR, AuthTime: id.AuthTime, JKT: jkt}
	issued := store.AuditRecord{Time: now, RequestID: httpapi.RequestID(ctx), Kind: store.AuditTokenIssue,
		Subject: claims.Subject, ClientID: c.ID, Detail: "grant=token-exchange scope=" + scope}
	if !c.allows(GrantRefreshToken) {
		resp, err := s.accessToken(claims, now)
		if err != nil {
			return nil, err
		}
		if err := s.auditAlone(ctx, issued); err != nil {
			return nil, fmt.Errorf("token exchange: %w", err)
		}
		s.event("issue")
		resp.IssuedTokenType = TokenTypeAccessToken
		return resp, nil
	}
	fam := store.RefreshFamily{ClientID: c.ID, Subject: claims.Subject, Scope: scope, DPoPJKT: jkt,
		ACR: id.ACR, AuthTime: id.AuthTime, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	if fam.ID, err = s.randomString(16); err != nil {
		return nil, err
	}
	rt, err := s.newRefreshToken()
	if err != nil {
		return nil, err
	}
	claims.SID = fam.ID
	resp, err := s.accessToken(claims, now)
	if err != nil {
		return nil, err
	}
	err = s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateFamily(ctx, fam); err != nil {
			return err
		}
		if err := tx.InsertRefreshToken(ctx, store.RefreshToken{Hash: hashToken(rt), FamilyID: fam.ID,
			CreatedAt: now, IdleExpiresAt: s.idleExpiry(fam, now)}); err != nil {
			return err
		}
		rec := issued
		rec.Detail += " family=" + fam.ID
		return s.audit(ctx, tx, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("token exchange: %w", err)
	}
	s.event("issue")
	resp.IssuedTokenType = TokenTypeAccessToken
	resp.RefreshToken = rt
	return resp, nil
}

// idleExpiry is when a token issued at now expires unused: never after the
// family's absolute expiry.
func (s *Server) idleExpiry(fam store.RefreshFamily, now time.Time) time.Time {
	t := now.Add(s.cfg.RefreshIdleTTL)
	if t.After(fam.ExpiresAt) {
		return fam.ExpiresAt
	}
	return t
}
