package proxy

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/token"
)

// MaxTokenLength is the longest token accepted: longer ones are refused before parsing
// (DESIGN.md "Tokens").
const MaxTokenLength = 8 << 10

// Kinds of Caller.
const (
	KindAccess     = "access"
	KindCapability = "capability"
)

// TokenVerifier checks an access token. Any error means the token is not acceptable; the proxy
// answers invalid_token whatever the error.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*token.AccessClaims, error)
}

// Authenticator decides who is calling. The default is bearer access tokens (NewBearerAuth);
// capability tokens (kgc_) and DPoP plug in here. An error that is an *httpapi.OAuthError or
// *httpapi.Problem is sent as is; any other error is sent as 401 invalid_token.
type Authenticator interface {
	Authenticate(r *http.Request) (*Caller, error)
}

// Caller is the authenticated party of a proxied request.
type Caller struct {
	Subject  string
	ClientID string
	Scope    string // space-separated (RFC 6749 §3.3)
	TokenID  string // jti of an access token, the id of a capability token
	Claims   *token.AccessClaims
	Kind     string // KindAccess or KindCapability
	// Scheme is the Authorization scheme the caller authenticated with:
	// "DPoP", or "" for Bearer. ChallengeParams are the extra auth-params of
	// that scheme's challenge (DPoP's algs). A refusal after authentication
	// challenges with the scheme of the request (RFC 9449 §7.1).
	Scheme          string
	ChallengeParams string
}

// HasScope reports whether scope is one of the caller's space-separated scopes.
func (c *Caller) HasScope(scope string) bool {
	if scope == "" {
		return false
	}
	s := c.Scope
	for s != "" {
		var tok string
		tok, s, _ = strings.Cut(s, " ")
		if tok == scope {
			return true
		}
	}
	return false
}

// BearerAuth authenticates RFC 6750 §2.1 bearer access tokens: exactly one
// "Authorization: Bearer <b64token>" header. It refuses tokens bound to a DPoP key (RFC 9449 §7.1:
// such a token must be presented with the DPoP scheme) and tokens whose aud is not the issuer.
type BearerAuth struct {
	tokens TokenVerifier
	issuer string
	now    func() time.Time
}

// NewBearerAuth returns the default Authenticator. issuer is the audience access tokens must carry;
// now may be nil.
func NewBearerAuth(tokens TokenVerifier, issuer string, now func() time.Time) *BearerAuth {
	if now == nil {
		now = time.Now
	}
	return &BearerAuth{tokens: tokens, issuer: issuer, now: now}
}

// Authenticate implements Authenticator.
func (a *BearerAuth) Authenticate(r *http.Request) (*Caller, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(raw, "kgc_") {
		// Capability tokens are verified by their own Authenticator; this one knows only JWTs.
		return nil, invalidToken("capability tokens are not accepted here", nil)
	}
	claims, err := a.tokens.Verify(r.Context(), raw)
	if err != nil {
		return nil, invalidToken("the access token is invalid, expired or revoked", err)
	}
	switch {
	case claims == nil:
		return nil, invalidToken("the access token is invalid", nil)
	case a.issuer != "" && claims.Audience != a.issuer:
		return nil, invalidToken("the access token is not for this resource server", nil)
	case !claims.Expiry.IsZero() && !a.now().Before(claims.Expiry):
		return nil, invalidToken("the access token expired", nil)
	case claims.JKT != "":
		// RFC 9449 §7.1: a DPoP-bound token presented as a bearer token is refused, with a DPoP
		// challenge naming the scheme the client must use.
		return nil, &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_token",
			Description: "the access token is DPoP-bound and must be sent with the DPoP scheme",
			Challenge:   "DPoP", ChallengeParams: dpopChallengeAlgs}
	}
	return &Caller{Subject: claims.Subject, ClientID: claims.ClientID, Scope: claims.Scope, TokenID: claims.JTI,
		Claims: claims, Kind: KindAccess}, nil
}

// BearerToken extracts the token of an "Authorization: Bearer" header (RFC 6750 §2.1):
//
//	credentials = "Bearer" 1*SP b64token
//
// keygate is stricter than the grammar and accepts exactly one space, and exactly one
// Authorization header. No credentials, or credentials of another scheme, is a 401 with a bare
// challenge (RFC 6750 §3.1: "If the request lacks any authentication information ..., the resource
// server SHOULD NOT include an error code"); a malformed header is 400 invalid_request; a token
// longer than MaxTokenLength is 401 invalid_token, refused before any parsing.
func BearerToken(r *http.Request) (string, error) {
	vals := r.Header["Authorization"]
	switch {
	case len(vals) == 0:
		return "", noCredentials()
	case len(vals) > 1:
		return "", invalidRequest("more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", noCredentials()
	}
	switch {
	case !ok || tok == "":
		return "", invalidRequest("the Authorization header has no token")
	case len(tok) > MaxTokenLength:
		return "", invalidToken("the token is too long", nil)
	case !isB64Token(tok):
		return "", invalidRequest("the Authorization header is malformed")
	}
	return tok, nil
}

// isB64Token checks b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
// (RFC 6750 §2.1).
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// hasQueryToken reports whether the query carries an access_token parameter (RFC 6750 §2.3),
// which keygate refuses: URLs end up in logs, histories and Referer headers.
func hasQueryToken(rawQuery string) bool {
	const name = "access_token"
	if !strings.Contains(rawQuery, "access_token") && !strings.Contains(rawQuery, "%") {
		return false
	}
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, _, _ := strings.Cut(kv, "=")
		if k == name || strings.ContainsAny(k, "%+") && unescapeQuery(k) == name {
			return true
		}
	}
	return false
}

func noCredentials() error {
	return &httpapi.Problem{Status: http.StatusUnauthorized, Type: httpapi.ProblemTypeBase + "unauthorized",
		Title: "Unauthorized", Detail: "an access token is required",
		Header: http.Header{"Www-Authenticate": {httpapi.Challenge("Bearer", "", "", "")}}}
}

func invalidRequest(desc string) error {
	return &httpapi.OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc, Challenge: "Bearer"}
}

func invalidToken(desc string, cause error) error {
	return &httpapi.OAuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc,
		Challenge: "Bearer", Cause: cause}
}

// insufficientScope refuses caller c a route that needs scope (RFC 6750 §3.1), challenging with
// the scheme c authenticated with: RFC 9449 §7.1 has a DPoP request answered with a DPoP challenge,
// e.g. `DPoP algs="ES256 EdDSA", error="insufficient_scope"`.
func insufficientScope(c *Caller, scope string) error {
	scheme, params := "Bearer", `scope="`+scope+`"`
	if c.Scheme != "" {
		scheme = c.Scheme
		if c.ChallengeParams != "" {
			params = c.ChallengeParams + ", " + params
		}
	}
	return &httpapi.OAuthError{Status: http.StatusForbidden, Code: "insufficient_scope",
		Description: "the access token lacks the scope this route needs", Challenge: scheme,
		ChallengeParams: params}
}
