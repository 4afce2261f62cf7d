package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/token"
)

// tokenResponse is RFC 6749 §5.1 plus RFC 8693 §2.2.1 issued_token_type.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
}

// handleToken is the token endpoint (RFC 6749 §3.2). The client is
// authenticated before the grant type is looked at, so an unauthenticated
// caller learns nothing about grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r, "resource", "audience")
	if err != nil {
		return err
	}
	grant := f.get("grant_type")
	if grant == "" {
		return invalidRequest("grant_type is required")
	}
	c, err := s.authenticateClient(r.Context(), r, f)
	if err != nil {
		return err
	}
	switch grant {
	case GrantTokenExchange, GrantRefreshToken, GrantClientCredentials:
	default:
		return oauthErr("unsupported_grant_type", "grant_type is not supported")
	}
	if !c.allows(grant) {
		return oauthErr("unauthorized_client", "client is not allowed this grant type")
	}
	jkt, err := s.dpopJKT(r, c)
	if err != nil {
		return err
	}
	var resp *tokenResponse
	switch grant {
	case GrantTokenExchange:
		resp, err = s.tokenExchange(r.Context(), c, f, jkt)
	case GrantRefreshToken:
		resp, err = s.refresh(r.Context(), refreshInput{client: c, token: f.get("refresh_token"), scope: f.get("scope"), dpopJKT: jkt})
	case GrantClientCredentials:
		resp, err = s.clientCredentials(c, f, jkt)
	}
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusOK, resp)
	return nil
}

// dpopJKT returns the key thumbprint the request proves possession of, or
// "" for a Bearer request. A client that requires DPoP fails closed when no
// proof verifier is configured.
func (s *Server) dpopJKT(r *http.Request, c *client) (string, error) {
	if s.deps.DPoP == nil {
		if c.RequireDPoP {
			return "", oauthErr("invalid_dpop_proof", "this client requires DPoP, which is not available")
		}
		return "", nil
	}
	jkt, err := s.deps.DPoP.TokenRequestJKT(r)
	if err != nil {
		if _, ok := errors.AsType[*httpapi.OAuthError](err); ok {
			return "", err
		}
		return "", &httpapi.OAuthError{Status: http.StatusBadRequest, Code: "invalid_dpop_proof",
			Description: "DPoP proof is invalid", Cause: err}
	}
	if jkt == "" && c.RequireDPoP {
		return "", oauthErr("invalid_dpop_proof", "this client requires a DPoP proof")
	}
	return jkt, nil
}

// accessToken mints an access token and its response.
func (s *Server) accessToken(claims token.AccessClaims, now time.Time) (*tokenResponse, error) {
	jti, err := s.randomString(16)
	if err != nil {
		return nil, err
	}
	claims.Issuer = s.cfg.Issuer
	claims.Audience = s.cfg.Issuer // DESIGN.md: "Access token aud is the issuer"
	claims.JTI = jti
	claims.IssuedAt = now
	claims.Expiry = now.Add(s.cfg.AccessTTL)
	raw, err := s.deps.Signer.Sign(claims)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	typ := "Bearer"
	if claims.JKT != "" {
		typ = "DPoP" // RFC 9449 §5: token_type "DPoP" for a bound token
	}
	return &tokenResponse{AccessToken: raw, TokenType: typ,
		ExpiresIn: int64(s.cfg.AccessTTL / time.Second), Scope: claims.Scope}, nil
}

// writeNoStore writes a JSON answer that must not be cached. RFC 6749
// §5.1: "The authorization server MUST include the HTTP "Cache-Control"
// response header field [RFC2616] with a value of "no-store" in any
// response containing tokens, credentials, or other sensitive information,
// as well as the "Pragma" response header field [RFC2616] with a value of
// "no-cache"."
func writeNoStore(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if v == nil {
		w.WriteHeader(status)
		return
	}
	httpapi.WriteJSON(w, status, v)
}
