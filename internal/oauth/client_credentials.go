package oauth

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// auditTimeout bounds the audit write of a grant that has no request
// context to inherit (client_credentials is called without one).
const auditTimeout = 10 * time.Second

// clientCredentials is the client credentials grant (RFC 6749 §4.4). The
// subject is "client:{client_id}".
func (s *Server) clientCredentials(c *client, f form, jkt string) (*tokenResponse, error) {
	// RFC 6749 §4.4: "The client credentials grant type MUST only be used
	// by confidential clients." New refuses such a configuration too.
	if c.Public {
		return nil, oauthErr("unauthorized_client", "public clients cannot use client_credentials")
	}
	scope, err := grantScope(f.get("scope"), c.Scopes)
	if err != nil {
		return nil, err
	}
	now := s.now()
	// RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
	resp, err := s.accessToken(token.AccessClaims{Subject: "client:" + c.ID, ClientID: c.ID, Scope: scope, JKT: jkt}, now)
	if err != nil {
		return nil, err
	}
	// Nothing is stored for this grant, so the audit record is its only
	// write; it is still made before the token is handed out.
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	if err := s.auditAlone(ctx, store.AuditRecord{Time: now, Kind: store.AuditTokenIssue, Subject: "client:" + c.ID,
		ClientID: c.ID, Detail: "grant=client_credentials scope=" + scope}); err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	s.event("issue")
	return resp, nil
}
