package oauth

import "github.com/keygate/keygate/internal/token"

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
	// RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
	return s.accessToken(token.AccessClaims{Subject: "client:" + c.ID, ClientID: c.ID, Scope: scope, JKT: jkt}, s.now())
}
