package oauth

import (
	"net/http"
	"slices"

	"github.com/keygate/keygate/internal/httpapi"
)

// metadata is the RFC 8414 §2 document.
type metadata struct {
	Issuer                       string   `json:"issuer"`
	TokenEndpoint                string   `json:"token_endpoint"`
	JWKSURI                      string   `json:"jwks_uri"`
	RevocationEndpoint           string   `json:"revocation_endpoint"`
	IntrospectionEndpoint        string   `json:"introspection_endpoint"`
	ScopesSupported              []string `json:"scopes_supported"`
	ResponseTypesSupported       []string `json:"response_types_supported"`
	GrantTypesSupported          []string `json:"grant_types_supported"`
	TokenAuthMethods             []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthSigningAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationAuthMethods        []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationAuthSigningAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IntrospectionAuthMethods     []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionAuthSigningAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	DPoPSigningAlgs              []string `json:"dpop_signing_alg_values_supported"`
}

// handleMetadata serves the authorization server metadata (RFC 8414 §3).
//
// response_types_supported is REQUIRED by RFC 8414 §2 although keygate
// has no authorization endpoint; it is therefore present and empty.
// authorization_endpoint is omitted: "This is REQUIRED unless no grant
// types are supported that use the authorization endpoint."
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) error {
	var algs []string
	for _, a := range assertionAlgs {
		algs = append(algs, string(a))
	}
	scopes := []string{}
	for _, c := range s.clients {
		for _, sc := range c.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	slices.Sort(scopes)
	secretMethods := []string{AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT}
	m := metadata{
		// RFC 8414 §3.3: the issuer value returned "MUST be identical to the
		// authorization server's issuer identifier value".
		Issuer:                       s.cfg.Issuer,
		TokenEndpoint:                s.tokenURL,
		JWKSURI:                      s.baseURL + "/.well-known/jwks.json",
		RevocationEndpoint:           s.baseURL + "/oauth2/revoke",
		IntrospectionEndpoint:        s.baseURL + "/oauth2/introspect",
		ScopesSupported:              scopes,
		ResponseTypesSupported:       []string{},
		GrantTypesSupported:          []string{GrantTokenExchange, GrantRefreshToken, GrantClientCredentials},
		TokenAuthMethods:             append(slices.Clone(secretMethods), AuthNone),
		TokenAuthSigningAlgs:         algs,
		RevocationAuthMethods:        append(slices.Clone(secretMethods), AuthNone),
		RevocationAuthSigningAlgs:    algs,
		IntrospectionAuthMethods:     secretMethods,
		IntrospectionAuthSigningAlgs: algs,
		DPoPSigningAlgs:              []string{"ES256", "EdDSA"},
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpapi.WriteJSON(w, http.StatusOK, m)
	return nil
}
