// Package oauth is keygate's OAuth 2.0 authorization server: the token,
// revocation and introspection endpoints and the server metadata document.
// It is not an identity provider and has no authorization endpoint: users
// arrive with an ID token from a configured IdP and exchange it.
//
// Implemented, by specification section:
//
//   - RFC 6749 §2.3.1 client_secret_basic and client_secret_post, §3.1
//     empty parameters treated as omitted, §3.2 token endpoint (POST,
//     form-encoded, no repeated parameters), §3.3 scope syntax and default,
//     §4.4 client credentials grant, §5.1 and §5.2 token and error
//     responses, §6 refresh with rotation.
//   - RFC 7523 §2.2 and §3: private_key_jwt client authentication (JWT
//     bearer client assertions), with jti replay protection.
//   - RFC 8693 §2.1, §2.2.1, §2.2.2: token exchange of an IdP ID token for
//     an access and refresh token.
//   - RFC 7009 §2: token revocation (refresh tokens revoke their family,
//     access tokens by jti, capability tokens through a hook).
//   - RFC 7662 §2: token introspection for confidential clients.
//   - RFC 8414 §2 and §3: authorization server metadata.
//   - RFC 9700 §4.14.2: refresh token rotation with reuse detection that
//     revokes the whole grant.
//
// Refresh token rotation. Every use of a refresh token rotates it, in one
// transaction around a conditional UPDATE (store.RefreshStore), so two
// racing refreshes of one token can never both mint live tokens. The
// successor is not random but HMAC-SHA256(Config.RefreshKey, presented
// token): a client that presents the just-rotated token again within
// Config.ReuseGrace (a lost response, parallel requests) gets the same
// successor back, and only its hash is ever stored. The access token of
// such a repeated answer is minted afresh (same family sid, new jti). A
// presentation after the grace window, or once the successor has itself
// been rotated, is reuse: the family is revoked and a family revocation is
// appended to the revocation log in the same transaction, so access tokens
// carrying its sid die too.
//
// Client authentication, form parsing, the JWT header checks and scope
// syntax are written here by hand on the standard library (no OAuth server
// library fits keygate's store and token model); JWS verification is
// go-jose.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/idp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// Grant types (RFC 6749 §4.4, §6; RFC 8693 §2.1).
const (
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// Client authentication methods (RFC 7591 §2, RFC 7523 §2.2).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Token prefixes (DESIGN.md "Tokens").
const (
	RefreshTokenPrefix    = "kgr_"
	CapabilityTokenPrefix = "kgc_"
)

const (
	// maxTokenBytes: "Any token or proof longer than 8 KiB is refused
	// before parsing."
	maxTokenBytes = 8 << 10
	// clockSkew is the leeway for time claims of client assertions and for
	// revocation entries.
	clockSkew = 30 * time.Second
	// maxAssertionLifetime bounds exp - now of a client assertion, which
	// also bounds how long its jti must be remembered.
	maxAssertionLifetime = 5 * time.Minute
	// introspectScope lets a confidential client introspect (DESIGN.md).
	introspectScope = "introspect"
)

// Client is one registered client, as the app wiring translates it from
// the configuration.
type Client struct {
	ID string
	// Public clients identify with client_id alone (AuthMethod "none") and
	// must not present credentials.
	Public bool
	// AuthMethod is the one method a confidential client authenticates
	// with: client_secret_basic (the default), client_secret_post or
	// private_key_jwt.
	AuthMethod string
	// SecretName names the vault secret holding the client secret.
	SecretName string
	// JWKS holds the public keys of a private_key_jwt client, unless it
	// publishes them at JWKSURI (exactly one of the two).
	JWKS    *jose.JSONWebKeySet
	JWKSURI string
	// GrantTypes may use the short name "token-exchange" for
	// GrantTokenExchange.
	GrantTypes  []string
	Scopes      []string
	RequireDPoP bool
}

// Config is what the server needs from the configuration.
type Config struct {
	Issuer         string
	AccessTTL      time.Duration
	RefreshTTL     time.Duration // absolute lifetime of a refresh family
	RefreshIdleTTL time.Duration // a refresh token unused this long expires
	ReuseGrace     time.Duration // a rotated token may be presented again this long
	// RefreshKey (at least 32 bytes) derives successor refresh tokens. The
	// app wiring loads it from (or creates) vault secret keygate/refresh-hmac.
	// All nodes must share it.
	RefreshKey []byte
	Clients    []Client
}

// Signer mints access tokens (token.Manager).
type Signer interface {
	Sign(claims token.AccessClaims) (string, error)
}

// IDTokenVerifier verifies ID tokens of the configured IdPs (idp.Verifier).
type IDTokenVerifier interface {
	Verify(ctx context.Context, raw string) (*idp.Identity, error)
}

// AccessTokenVerifier verifies keygate access tokens (token.Verifier). It
// must refuse expired and revoked tokens; introspection reports what it
// refuses as inactive.
type AccessTokenVerifier interface {
	Verify(ctx context.Context, raw string) (*token.AccessClaims, error)
}

// Revoker appends to the revocation log (token.Revocations satisfies it).
// Add runs inside the store transaction that causes the revocation (a
// store.Tx is passed); Apply makes it effective on this node at once,
// after the commit.
type Revoker interface {
	Add(ctx context.Context, tx store.RevocationStore, r store.Revocation) error
	Apply(rs ...store.Revocation)
}

// SecretSource returns the current value of a vault secret. The caller
// compares it in constant time and does not keep it.
type SecretSource interface {
	Secret(ctx context.Context, name string) ([]byte, error)
}

// SecretFunc adapts a function to SecretSource, e.g. around vault.Get and
// Secret.Reveal.
type SecretFunc func(ctx context.Context, name string) ([]byte, error)

// Secret calls f.
func (f SecretFunc) Secret(ctx context.Context, name string) ([]byte, error) { return f(ctx, name) }

// CapabilityRevoker revokes a capability token (kgc_) on behalf of the
// authenticated client, through tx so that the revocation and its audit
// record commit together. It returns the capability and true when it
// revoked it now; false and no error for unknown tokens, tokens of other
// clients (RFC 7009 §2.2) and tokens already revoked.
type CapabilityRevoker interface {
	RevokeCapabilityTx(ctx context.Context, tx store.Tx, clientID, raw string) (store.Capability, bool, error)
}

// CapabilityIntrospector looks up a capability token (kgc_) for
// introspection (RFC 7662 §2.2). ok is false, with no error, for a token
// that is not active: malformed, unknown, revoked, expired or spent.
type CapabilityIntrospector interface {
	IntrospectCapability(ctx context.Context, raw string) (c store.Capability, ok bool, err error)
}

// DPoPVerifier checks the DPoP proof of a token request (RFC 9449 §5) and
// returns the JWK thumbprint of its key, or "" when the request carries no
// DPoP header. Its errors should be *httpapi.OAuthError.
type DPoPVerifier interface {
	TokenRequestJKT(r *http.Request) (string, error)
}

// ClientKeySource returns the keys a client publishes at its jwks_uri
// (clientkeys.Cache). When kid is not among them it refetches once, rate
// limited. An error means no keys could be had; its text is logged, never
// sent.
type ClientKeySource interface {
	Keys(ctx context.Context, uri, kid string) ([]jose.JSONWebKey, error)
}

// Deps are the server's collaborators. Store, Signer are required;
// IDTokens when a client may exchange tokens; Secrets when a client
// authenticates with a secret; AccessTokens for access-token revocation
// and introspection. Revoker defaults to appending with tx.AddRevocation.
// Capabilities, CapabilityIntrospector and DPoP may be nil; without
// CapabilityIntrospector every capability token introspects inactive.
type Deps struct {
	Store        store.Store
	Signer       Signer
	IDTokens     IDTokenVerifier
	AccessTokens AccessTokenVerifier
	Revoker      Revoker
	Secrets      SecretSource
	Capabilities CapabilityRevoker
	DPoP         DPoPVerifier
	// ClientKeys is required when a client has a JWKSURI.
	ClientKeys ClientKeySource
	// CapabilityIntrospector is kept apart from Capabilities so that each
	// endpoint's dependency stays one method wide.
	CapabilityIntrospector CapabilityIntrospector
	Now                    func() time.Time
	Rand                   io.Reader
	Logger                 *slog.Logger
	// Audit, when set, records security events (token issued, refreshed,
	// reused, revoked): Append inside the transaction that makes the
	// change, so both commit or neither does; Event once it committed.
	Audit Auditor
}

// Auditor records the token service's security events. A record never
// holds a token or secret.
type Auditor interface {
	Append(ctx context.Context, tx store.Tx, rec store.AuditRecord) error
	Event(event string) // "issue", "refresh", "reuse", "revoke", "mint" (a capability token)
}

// Server serves the OAuth endpoints.
type Server struct {
	cfg      Config
	deps     Deps
	clients  map[string]*client
	tokenURL string
	baseURL  string
}

// client is a Client with its grant types as a set.
type client struct {
	Client
	grants map[string]bool
}

func (c *client) allows(grant string) bool { return c.grants[grant] }

// New validates cfg and returns a server.
func New(cfg Config, deps Deps) (*Server, error) {
	u, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("oauth: issuer %q must be an http(s) URL without query or fragment", cfg.Issuer)
	}
	switch {
	case cfg.AccessTTL <= 0:
		return nil, errors.New("oauth: access token ttl must be positive")
	case cfg.RefreshTTL <= 0:
		return nil, errors.New("oauth: refresh token ttl must be positive")
	case cfg.RefreshIdleTTL <= 0:
		return nil, errors.New("oauth: refresh idle ttl must be positive")
	case cfg.ReuseGrace < 0:
		return nil, errors.New("oauth: refresh reuse grace must not be negative")
	case len(cfg.RefreshKey) < 32:
		return nil, errors.New("oauth: refresh key must be at least 32 bytes")
	case deps.Store == nil:
		return nil, errors.New("oauth: no store")
	case deps.Signer == nil:
		return nil, errors.New("oauth: no signer")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.RefreshKey = append([]byte(nil), cfg.RefreshKey...)
	s := &Server{cfg: cfg, deps: deps, clients: make(map[string]*client, len(cfg.Clients))}
	s.baseURL = strings.TrimSuffix(cfg.Issuer, "/")
	s.tokenURL = s.baseURL + "/oauth2/token"
	for _, c := range cfg.Clients {
		cl, err := newClient(c, deps)
		if err != nil {
			return nil, fmt.Errorf("oauth: client %q: %w", c.ID, err)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("oauth: client %q: duplicate id", c.ID)
		}
		s.clients[c.ID] = cl
	}
	return s, nil
}

func newClient(c Client, deps Deps) (*client, error) {
	if c.ID == "" {
		return nil, errors.New("empty id")
	}
	cl := &client{Client: c, grants: map[string]bool{}}
	cl.Scopes = append([]string(nil), c.Scopes...)
	for _, sc := range c.Scopes {
		if !validScopeToken(sc) {
			return nil, fmt.Errorf("invalid scope %q", sc)
		}
	}
	for _, g := range c.GrantTypes {
		switch g {
		case "token-exchange", GrantTokenExchange:
			cl.grants[GrantTokenExchange] = true
		case GrantRefreshToken, GrantClientCredentials:
			cl.grants[g] = true
		default:
			return nil, fmt.Errorf("unsupported grant type %q", g)
		}
	}
	if cl.grants[GrantTokenExchange] && deps.IDTokens == nil {
		return nil, errors.New("token exchange needs an ID token verifier")
	}
	if c.Public {
		if c.AuthMethod != "" && c.AuthMethod != AuthNone {
			return nil, fmt.Errorf("public client cannot use %s", c.AuthMethod)
		}
		if cl.grants[GrantClientCredentials] {
			// RFC 6749 §4.4: "The client credentials grant type MUST only
			// be used by confidential clients."
			return nil, errors.New("public client cannot use client_credentials")
		}
		cl.AuthMethod = AuthNone
		return cl, nil
	}
	switch c.AuthMethod {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
		if cl.AuthMethod == "" {
			cl.AuthMethod = AuthClientSecretBasic
		}
		if c.SecretName == "" {
			return nil, errors.New("no secret configured")
		}
		if deps.Secrets == nil {
			return nil, errors.New("client secrets need a secret source")
		}
	case AuthPrivateKeyJWT:
		if c.JWKSURI != "" {
			if c.JWKS != nil {
				return nil, errors.New("private_key_jwt needs exactly one of jwks and jwks_uri")
			}
			if deps.ClientKeys == nil {
				return nil, errors.New("jwks_uri needs a client key source")
			}
			break
		}
		if c.JWKS == nil || len(c.JWKS.Keys) == 0 {
			return nil, errors.New("private_key_jwt needs jwks")
		}
		for _, k := range c.JWKS.Keys {
			if !k.IsPublic() {
				return nil, errors.New("jwks must hold public keys only")
			}
		}
	default:
		return nil, fmt.Errorf("unsupported auth method %q", c.AuthMethod)
	}
	return cl, nil
}

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	l := s.deps.Logger
	mux.Handle("POST /oauth2/token", httpapi.HandleOAuth(l, s.handleToken))
	mux.Handle("POST /oauth2/revoke", httpapi.HandleOAuth(l, s.handleRevoke))
	mux.Handle("POST /oauth2/introspect", httpapi.HandleOAuth(l, s.handleIntrospect))
	mux.Handle("GET /.well-known/oauth-authorization-server", httpapi.Handle(l, s.handleMetadata))
}

func (s *Server) now() time.Time { return s.deps.Now() }

// randomString returns n random bytes, base64url without padding.
func (s *Server) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.deps.Rand, b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return b64.EncodeToString(b), nil
}

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// addRevocation appends r to the revocation log inside tx.
func (s *Server) addRevocation(ctx context.Context, tx store.Tx, r store.Revocation) error {
	if s.deps.Revoker != nil {
		return s.deps.Revoker.Add(ctx, tx, r)
	}
	_, err := tx.AddRevocation(ctx, r)
	return err
}

// applyRevocation makes a committed revocation effective on this node.
func (s *Server) applyRevocation(r store.Revocation) {
	if s.deps.Revoker != nil {
		s.deps.Revoker.Apply(r)
	}
}

// familyRevocation covers every access token minted from family id: any of
// them expires within AccessTTL of now.
func (s *Server) familyRevocation(id string, now time.Time) store.Revocation {
	return store.Revocation{Kind: store.RevokeFamily, Value: id, IssuedBefore: now,
		ExpiresAt: now.Add(s.cfg.AccessTTL + clockSkew), CreatedAt: now}
}

// oauthErr builds an RFC 6749 §5.2 error.
func oauthErr(code, description string) *httpapi.OAuthError {
	return httpapi.NewOAuthError(code, description)
}

func invalidRequest(description string) *httpapi.OAuthError {
	return oauthErr("invalid_request", description)
}

func invalidGrant(description string) *httpapi.OAuthError {
	return oauthErr("invalid_grant", description)
}
