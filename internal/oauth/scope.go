package oauth

import (
	"slices"
	"strings"
)

// validScopeToken: RFC 6749 §3.3,
//
//	scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// parseScope splits a scope parameter: "scope = scope-token *( SP
// scope-token )" (RFC 6749 §3.3). Duplicates are dropped.
func parseScope(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	var out []string
	for _, t := range strings.Split(s, " ") {
		if !validScopeToken(t) {
			return nil, false
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, true
}

// grantScope decides the scope of a token from the requested scope and the
// scopes allowed. RFC 6749 §3.3: "If the client omits the scope parameter
// when requesting authorization, the authorization server MUST either
// process the request using a pre-defined default value or fail the request
// indicating an invalid scope" — keygate's default is every allowed scope.
// A requested scope outside allowed is invalid_scope. The result lists
// scopes in the order of allowed.
func grantScope(requested string, allowed []string) (string, error) {
	req, ok := parseScope(requested)
	if !ok {
		return "", oauthErr("invalid_scope", "scope is malformed")
	}
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	for _, r := range req {
		if !slices.Contains(allowed, r) {
			return "", oauthErr("invalid_scope", "scope "+r+" is not allowed for this client")
		}
	}
	var out []string
	for _, a := range allowed {
		if slices.Contains(req, a) {
			out = append(out, a)
		}
	}
	return strings.Join(out, " "), nil
}

// intersect returns the scopes of a that b also holds, in the order of a.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
