package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
)

// Capability minting (DESIGN.md "Capability tokens"). The endpoint is not
// an RFC; it follows the token endpoint's rules: the same form parsing
// (RFC 6749 §3.1, §3.2), the same client authentication (§2.3, RFC 7523),
// and RFC 6749 §5.2 errors.

// Scopes with a meaning to keygate itself (DESIGN.md).
const (
	capabilityMintScope = "capability:mint"
)

// Limits of a capability request.
const (
	// DefaultCapabilityExpiresIn is the lifetime when expires_in is omitted.
	DefaultCapabilityExpiresIn = 5 * time.Minute
	// MaxCapabilityUses bounds max_uses.
	MaxCapabilityUses = 1_000_000
	// maxSubjectLen: OpenID Connect Core §2 "sub ... MUST NOT exceed 255
	// ASCII characters"; keygate's subjects have the same bound.
	maxSubjectLen = 255
	// jktLen is an unpadded base64url SHA-256 thumbprint (RFC 7638).
	jktLen = 43
)

// CapabilityRequest is a validated request for a capability token.
type CapabilityRequest struct {
	ClientID  string
	Subject   string
	Scope     string // space-separated, within the client's scopes
	Upstream  string // "" for any upstream
	MaxUses   int64
	ExpiresIn time.Duration
	DPoPJKT   string // "" when unbound
}

// CapabilityMinter stores a capability token through tx and returns its
// value (capability.Service). The endpoint appends the audit record of the
// minting in the same transaction.
type CapabilityMinter interface {
	MintCapabilityTx(ctx context.Context, tx store.Tx, req CapabilityRequest) (string, error)
}

// CapabilityConfig configures the capability endpoint.
type CapabilityConfig struct {
	Issuer  string
	Clients []Client
	// Upstreams are the configured upstream names an upstream restriction
	// may name.
	Upstreams []string
	// MaxExpiresIn caps expires_in (capabilities.max_expires_in).
	MaxExpiresIn time.Duration
}

// CapabilityDeps are the capability endpoint's collaborators; all but Now,
// Logger and Audit are required.
type CapabilityDeps struct {
	Store   store.Store // the client assertion jti replay cache, and the minting transaction
	Secrets SecretSource
	// ClientKeys is required when a client has a JWKSURI.
	ClientKeys ClientKeySource
	Minter     CapabilityMinter
	Now        func() time.Time
	Logger     *slog.Logger
	// Audit, when set, records each minting (store.AuditCapabilityMint) in
	// the transaction that stores the capability, as Deps.Audit does for
	// the token endpoint.
	Audit Auditor
}

// CapabilityEndpoint serves POST /oauth2/capabilities.
type CapabilityEndpoint struct {
	auth      *Server // client authentication only, over the same clients as the token endpoint
	minter    CapabilityMinter
	upstreams []string
	maxTTL    time.Duration
}

// NewCapabilityEndpoint returns the capability endpoint. It authenticates
// clients with the token endpoint's code, over the same client list and
// the same assertion replay cache, so a client assertion accepted at one
// endpoint is refused at the other.
func NewCapabilityEndpoint(cfg CapabilityConfig, deps CapabilityDeps) (*CapabilityEndpoint, error) {
	u, err := url.Parse(cfg.Issuer)
	switch {
	case cfg.Issuer == "" || err != nil || u.Host == "":
		return nil, fmt.Errorf("oauth: issuer %q must be an http(s) URL", cfg.Issuer)
	case deps.Store == nil:
		return nil, errors.New("oauth: capabilities: no store")
	case deps.Minter == nil:
		return nil, errors.New("oauth: capabilities: no minter")
	case cfg.MaxExpiresIn < time.Second:
		return nil, errors.New("oauth: capabilities: max expires_in must be at least a second")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: Config{Issuer: cfg.Issuer},
		deps: Deps{Store: deps.Store, Secrets: deps.Secrets, Now: deps.Now, Rand: rand.Reader, Logger: deps.Logger,
			Audit: deps.Audit, ClientKeys: deps.ClientKeys},
		clients: make(map[string]*client, len(cfg.Clients)),
	}
	s.baseURL = strings.TrimSuffix(cfg.Issuer, "/")
	s.tokenURL = s.baseURL + "/oauth2/token"
	for _, c := range cfg.Clients {
		// Grant types do not matter here (and token exchange would want
		// an ID token verifier this endpoint never uses).
		c.GrantTypes = nil
		cl, err := newClient(c, s.deps)
		if err != nil {
			return nil, fmt.Errorf("oauth: client %q: %w", c.ID, err)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("oauth: client %q: duplicate id", c.ID)
		}
		s.clients[c.ID] = cl
	}
	return &CapabilityEndpoint{auth: s, minter: deps.Minter,
		upstreams: slices.Clone(cfg.Upstreams), maxTTL: cfg.MaxExpiresIn}, nil
}

// Register adds POST /oauth2/capabilities to mux.
func (e *CapabilityEndpoint) Register(mux *http.ServeMux) {
	mux.Handle("POST /oauth2/capabilities", httpapi.Handle(e.auth.deps.Logger, e.handle))
}

// capabilityResponse is the 201 answer (DESIGN.md).
type capabilityResponse struct {
	CapabilityToken string `json:"capability_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	MaxUses         int64  `json:"max_uses"`
	Scope           string `json:"scope"`
}

func (e *CapabilityEndpoint) handle(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	c, err := e.auth.authenticateClient(r.Context(), r, f)
	if err != nil {
		return err
	}
	if c.Public {
		return invalidClient(false, "capability tokens are minted by confidential clients only")
	}
	if !slices.Contains(c.Scopes, capabilityMintScope) {
		return &httpapi.OAuthError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "client lacks the capability:mint scope"}
	}
	req, err := e.request(c, f)
	if err != nil {
		return err
	}
	raw, err := e.mint(r.Context(), req)
	if err != nil {
		return err
	}
	writeNoStore(w, http.StatusCreated, capabilityResponse{CapabilityToken: raw, TokenType: "Bearer",
		ExpiresIn: int64(req.ExpiresIn / time.Second), MaxUses: req.MaxUses, Scope: req.Scope})
	return nil
}

// mint stores the capability and its audit record in one transaction. The
// record says who minted what for whom, never the token.
func (e *CapabilityEndpoint) mint(ctx context.Context, req CapabilityRequest) (string, error) {
	s := e.auth
	rec := store.AuditRecord{Time: s.now(), RequestID: httpapi.RequestID(ctx), Kind: store.AuditCapabilityMint,
		Subject: req.Subject, ClientID: req.ClientID, Upstream: req.Upstream,
		Detail: fmt.Sprintf("capability scope=%q max_uses=%d upstream=%q expires_in=%ds dpop_bound=%t",
			req.Scope, req.MaxUses, req.Upstream, int64(req.ExpiresIn/time.Second), req.DPoPJKT != "")}
	var raw string
	err := s.deps.Store.WithTx(ctx, func(tx store.Tx) error {
		var err error
		if raw, err = e.minter.MintCapabilityTx(ctx, tx, req); err != nil {
			return err
		}
		return s.audit(ctx, tx, rec)
	})
	if err != nil {
		return "", fmt.Errorf("mint capability: %w", err)
	}
	s.event("mint")
	return raw, nil
}

// request validates the form of a mint request by client c.
func (e *CapabilityEndpoint) request(c *client, f form) (CapabilityRequest, error) {
	req := CapabilityRequest{ClientID: c.ID, MaxUses: 1}
	req.Subject = f.get("subject")
	switch {
	case req.Subject == "":
		return req, invalidRequest("subject is required")
	case len(req.Subject) > maxSubjectLen || !printable(req.Subject):
		return req, invalidRequest("subject must be at most 255 printable ASCII characters")
	case strings.HasPrefix(req.Subject, "client:"):
		// client:{id} is the subject of client_credentials tokens; a
		// capability speaks for a user.
		return req, invalidRequest("subject must be a user subject, not a client")
	}

	// Least privilege: a capability names its scope, there is no default.
	requested := f.get("scope")
	if requested == "" {
		return req, invalidRequest("scope is required")
	}
	scopes, ok := parseScope(requested)
	if !ok {
		return req, oauthErr("invalid_scope", "scope is malformed")
	}
	for _, sc := range scopes {
		if sc == capabilityMintScope || sc == introspectScope {
			return req, oauthErr("invalid_scope", "scope "+sc+" cannot be delegated to a capability token")
		}
	}
	scope, err := grantScope(strings.Join(scopes, " "), c.Scopes)
	if err != nil {
		return req, err
	}
	req.Scope = scope

	if up := f.get("upstream"); up != "" {
		if !slices.Contains(e.upstreams, up) {
			return req, invalidRequest("upstream is not a configured upstream")
		}
		req.Upstream = up
	}
	if v := f.get("max_uses"); v != "" {
		n, ok := decimal(v)
		if !ok || n < 1 || n > MaxCapabilityUses {
			return req, invalidRequest("max_uses must be an integer from 1 to 1000000")
		}
		req.MaxUses = n
	}
	// expires_in above the configured maximum is capped, not refused; the
	// answer reports the lifetime actually granted.
	req.ExpiresIn = DefaultCapabilityExpiresIn
	if v := f.get("expires_in"); v != "" {
		n, ok := decimal(v)
		if !ok || n < 1 {
			return req, invalidRequest("expires_in must be a positive number of seconds")
		}
		if n > int64(e.maxTTL/time.Second) {
			n = int64(e.maxTTL / time.Second)
		}
		req.ExpiresIn = time.Duration(n) * time.Second
	}
	if req.ExpiresIn > e.maxTTL {
		req.ExpiresIn = e.maxTTL.Truncate(time.Second)
	}
	if jkt := f.get("dpop_jkt"); jkt != "" {
		if b, err := b64.DecodeString(jkt); err != nil || len(jkt) != jktLen || len(b) != 32 {
			return req, invalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
		}
		req.DPoPJKT = jkt
	}
	return req, nil
}

// decimal parses a non-negative integer of at most 10 digits, nothing
// else (no sign, space or exponent).
func decimal(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// printable reports whether s is printable ASCII without spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
