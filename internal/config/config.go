// Package config loads and checks keygate.yaml, the one configuration file of keygate.
//
// Decoding is strict: the YAML tree is walked by hand (go.yaml.in/yaml/v3 parses, this package
// decodes) so that an unknown key, a duplicate key or a value of the wrong type is reported with the
// file, the line and the key's path, e.g.
//
//	keygate.yaml:12: unknown key "listn" in top level (did you mean "listen"?)
//	keygate.yaml:40: limits[0].rate: invalid rate "60/d": unit must be s, m or h
//
// Parse decodes and fills defaults (the Default* constants); Validate checks meaning and reports every
// problem at once (errors.Join), each naming the key by its YAML path. Load does both and applies the
// KEYGATE_DATABASE override. The small grammars of the file (sizes such as 1MiB, rates such as 60/m,
// quotas such as 1000/24h and block conditions such as "limit_hits > 100 in 10m") have no library, so
// they are parsed here. Client key sets are checked with go-jose (RFC 7517: public keys only).
//
// Secret values never appear in the config: it names vault secrets (see SecretNames), and database
// DSNs are redacted in every error (see ParseDSN).
package config

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// Defaults applied by Parse and DevConfig to settings left out of the file.
const (
	DefaultConfigFile             = "keygate.yaml"
	DefaultListen                 = ":8080"
	DefaultAdminListen            = "127.0.0.1:9090"
	DefaultDatabase               = "sqlite://keygate.db"
	DefaultSigningAlg             = "ES256"
	DefaultAccessTokenTTL         = 5 * time.Minute
	DefaultRefreshTokenTTL        = 720 * time.Hour
	DefaultRefreshIdleTTL         = 168 * time.Hour
	DefaultRefreshReuseGrace      = 10 * time.Second
	DefaultKeyRotation            = 720 * time.Hour
	DefaultProofWindow            = 60 * time.Second
	DefaultCapabilityMaxExpiresIn = 24 * time.Hour
	DefaultAuditRetention         = 720 * time.Hour
	DefaultAuditBuffer            = 10000
	DefaultUpstreamTimeout        = 60 * time.Second
	DefaultMaxRequestBody         = 1 * MiB
)

// DefaultIDPAlgorithms is used for an identity provider that lists no algorithms.
var DefaultIDPAlgorithms = []string{"RS256"}

// Accepted values of enumerated settings.
const (
	SigningAlgES256 = "ES256"
	SigningAlgEdDSA = "EdDSA"

	ClientPublic       = "public"
	ClientConfidential = "confidential"

	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"

	// Grant types as written in the config; the token endpoint maps GrantTokenExchange to
	// urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693).
	GrantTokenExchange     = "token-exchange"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"

	UpstreamAuthBearer = "bearer"
	UpstreamAuthHeader = "header"
	UpstreamAuthBasic  = "basic"
	UpstreamAuthQuery  = "query"

	// SecretPlaceholder is replaced by the secret value in a header auth template.
	SecretPlaceholder = "{{secret}}"

	KeySubject = "subject"
	KeyClient  = "client"
	KeyIP      = "ip"
	KeyToken   = "token"

	MetricLimitHits    = "limit_hits"
	MetricAuthFailures = "auth_failures"

	// ScopeCapabilityMint lets a confidential client mint capability tokens.
	ScopeCapabilityMint = "capability:mint"
	// ScopeIntrospect lets a confidential client call the introspection endpoint (RFC 7662).
	ScopeIntrospect = "introspect"
)

// ReservedUpstreamNames are first path segments of the public listener that are not proxied.
var ReservedUpstreamNames = []string{"oauth2", ".well-known", "admin", "healthz", "readyz", "metrics", "dev"}

// Config is the whole of keygate.yaml.
type Config struct {
	Issuer            string             `yaml:"issuer"`
	Listen            string             `yaml:"listen"`
	AdminListen       string             `yaml:"admin_listen"`
	Database          string             `yaml:"database"`
	MasterKeyFile     string             `yaml:"master_key_file"`
	Tokens            Tokens             `yaml:"tokens"`
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`
	Clients           []Client           `yaml:"clients"`
	Upstreams         []Upstream         `yaml:"upstreams"`
	OAuthCORS         CORS               `yaml:"oauth_cors"`
	TrustedProxies    []string           `yaml:"trusted_proxies"`
	DPoP              DPoP               `yaml:"dpop"`
	Capabilities      Capabilities       `yaml:"capabilities"`
	Audit             Audit              `yaml:"audit"`
	Limits            []Limit            `yaml:"limits"`
	Blocks            []BlockRule        `yaml:"blocks"`

	// src remembers where each key was read, so that Validate can name the line.
	src *source
}

// Tokens configures token signing and lifetimes.
type Tokens struct {
	SigningAlg      string   `yaml:"signing_alg"`
	AccessTokenTTL  Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	RefreshIdleTTL  Duration `yaml:"refresh_idle_ttl"`
	// RefreshReuseGrace is the window in which a just-rotated refresh token may be presented again.
	// Unlike the other durations, an explicit 0s in the file is kept: it disables the grace.
	RefreshReuseGrace Duration `yaml:"refresh_reuse_grace"`
	KeyRotation       Duration `yaml:"key_rotation"`
}

// IdentityProvider is an issuer whose ID tokens may be exchanged (RFC 8693).
type IdentityProvider struct {
	Name       string   `yaml:"name"`
	Issuer     string   `yaml:"issuer"`
	Audiences  []string `yaml:"audiences"`
	JWKSURI    string   `yaml:"jwks_uri"`
	Algorithms []string `yaml:"algorithms"`
}

// Client is an OAuth client registration.
type Client struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
	Auth string `yaml:"auth"`
	// Secret names the vault secret that holds the client secret.
	Secret string `yaml:"secret"`
	// JWKS is the client's public JWK set (RFC 7517) as JSON; the file may write it as a YAML
	// mapping or as a JSON string.
	JWKS    json.RawMessage `yaml:"jwks"`
	JWKSURI string          `yaml:"jwks_uri"`
	// HMACSecret names the vault secret for hmac-sha256 request signatures.
	HMACSecret  string   `yaml:"hmac_secret"`
	GrantTypes  []string `yaml:"grant_types"`
	Scopes      []string `yaml:"scopes"`
	RequireDPoP bool     `yaml:"require_dpop"`
}

// HasGrant reports whether the client may use the grant type (as written in the config).
func (c *Client) HasGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// HasScope reports whether scope is among the client's scopes.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Upstream is a proxied API, reached at /{name}/...
type Upstream struct {
	Name           string       `yaml:"name"`
	URL            string       `yaml:"url"`
	Auth           UpstreamAuth `yaml:"auth"`
	Routes         []Route      `yaml:"routes"`
	Timeout        Duration     `yaml:"timeout"`
	MaxRequestBody Size         `yaml:"max_request_body"`
	CORS           CORS         `yaml:"cors"`
	// AllowSetCookie passes upstream Set-Cookie headers to the caller; they are dropped otherwise.
	AllowSetCookie bool `yaml:"pass_set_cookie"`
}

// UpstreamAuth says how the upstream credential is added to a forwarded request.
type UpstreamAuth struct {
	Type     string `yaml:"type"`
	Secret   string `yaml:"secret"`
	Name     string `yaml:"name"`     // header: header name
	Template string `yaml:"template"` // header: value, with {{secret}}
	Username string `yaml:"username"` // basic
	Param    string `yaml:"param"`    // query: parameter name
}

// Route is a method and path pattern of an upstream, and the scope it needs.
// In Path, "*" matches one segment and a final "**" matches the rest.
type Route struct {
	Methods          []string `yaml:"methods"`
	Path             string   `yaml:"path"`
	Scope            string   `yaml:"scope"`
	RequireSignature bool     `yaml:"require_signature"`
}

// CORS lists the origins allowed to call from a browser. "*" alone allows any origin.
type CORS struct {
	Origins []string `yaml:"origins"`
}

// DPoP configures proof checks (RFC 9449).
type DPoP struct {
	ProofWindow Duration `yaml:"proof_window"`
	Nonce       bool     `yaml:"nonce"`
}

// Capabilities configures capability tokens.
type Capabilities struct {
	MaxExpiresIn Duration `yaml:"max_expires_in"`
}

// Audit configures the audit log.
type Audit struct {
	Retention Duration `yaml:"retention"`
	Buffer    int      `yaml:"buffer"`
}

// Limit is a rate limit (token bucket: Rate, Burst) or a quota (Quota.N per Quota.Window).
type Limit struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Rate     Rate   `yaml:"rate"`
	Burst    int    `yaml:"burst"`
	Quota    Quota  `yaml:"quota"`
	Upstream string `yaml:"upstream"`
	// Shared makes the limit exact across nodes by counting in the database.
	Shared bool `yaml:"shared"`
}

// BlockRule blocks a key for BlockFor once When holds.
type BlockRule struct {
	Name     string         `yaml:"name"`
	Key      string         `yaml:"key"`
	When     BlockCondition `yaml:"when"`
	BlockFor Duration       `yaml:"block_for"`
}

// Default returns a Config holding every top-level default and nothing else (no issuer).
func Default() *Config {
	c := &Config{}
	c.Tokens.RefreshReuseGrace = Duration(DefaultRefreshReuseGrace)
	c.applyDefaults()
	return c
}

// applyDefaults fills zero values with the Default* constants.
// Tokens.RefreshReuseGrace is left alone: zero is a meaningful value there, and Default sets it.
func (c *Config) applyDefaults() {
	setString(&c.Listen, DefaultListen)
	setString(&c.AdminListen, DefaultAdminListen)
	setString(&c.Database, DefaultDatabase)
	setString(&c.Tokens.SigningAlg, DefaultSigningAlg)
	setDuration(&c.Tokens.AccessTokenTTL, DefaultAccessTokenTTL)
	setDuration(&c.Tokens.RefreshTokenTTL, DefaultRefreshTokenTTL)
	setDuration(&c.Tokens.RefreshIdleTTL, DefaultRefreshIdleTTL)
	setDuration(&c.Tokens.KeyRotation, DefaultKeyRotation)
	setDuration(&c.DPoP.ProofWindow, DefaultProofWindow)
	setDuration(&c.Capabilities.MaxExpiresIn, DefaultCapabilityMaxExpiresIn)
	setDuration(&c.Audit.Retention, DefaultAuditRetention)
	if c.Audit.Buffer == 0 {
		c.Audit.Buffer = DefaultAuditBuffer
	}
	for i := range c.IdentityProviders {
		if len(c.IdentityProviders[i].Algorithms) == 0 {
			c.IdentityProviders[i].Algorithms = slices.Clone(DefaultIDPAlgorithms)
		}
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		setDuration(&u.Timeout, DefaultUpstreamTimeout)
		if u.MaxRequestBody == 0 {
			u.MaxRequestBody = DefaultMaxRequestBody
		}
	}
	for i := range c.Limits {
		l := &c.Limits[i]
		if l.Burst == 0 && !l.Rate.IsZero() {
			l.Burst = l.Rate.DefaultBurst()
		}
	}
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDuration(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}

// Client returns the client with the given id.
func (c *Config) Client(id string) (*Client, bool) {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i], true
		}
	}
	return nil, false
}

// Upstream returns the upstream with the given name.
func (c *Config) Upstream(name string) (*Upstream, bool) {
	for i := range c.Upstreams {
		if c.Upstreams[i].Name == name {
			return &c.Upstreams[i], true
		}
	}
	return nil, false
}

// SecretNames lists every vault secret the config refers to, sorted and without duplicates:
// upstream credentials, client secrets and client HMAC secrets.
func (c *Config) SecretNames() []string {
	var names []string
	add := func(s string) {
		if s != "" {
			names = append(names, s)
		}
	}
	for _, u := range c.Upstreams {
		add(u.Auth.Secret)
	}
	for _, cl := range c.Clients {
		add(cl.Secret)
		add(cl.HMACSecret)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TrustedProxyPrefixes returns TrustedProxies as prefixes; a single address becomes a /32 or /128.
// Entries that do not parse are skipped (Validate reports them).
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// DevConfig returns the configuration of `keygate serve --dev` (DESIGN.md "Dev mode"): a dev identity
// provider and an echo upstream served by keygate itself under /dev on listen, and data in dataDir.
// The echo URL is a placeholder; the server wires the built-in echo in its place.
func DevConfig(listen, adminListen, dataDir string) *Config {
	issuer := "http://" + listen
	c := Default()
	c.Issuer = issuer
	c.Listen = listen
	c.AdminListen = adminListen
	c.Database = "sqlite://" + dataDir + "/keygate.db"
	c.MasterKeyFile = dataDir + "/master.key"
	c.IdentityProviders = []IdentityProvider{{
		Name:       "dev",
		Issuer:     issuer + "/dev",
		Audiences:  []string{"dev-app"},
		JWKSURI:    issuer + "/dev/jwks.json",
		Algorithms: []string{"ES256"},
	}}
	c.Clients = []Client{
		{
			ID:         "dev-app",
			Type:       ClientPublic,
			GrantTypes: []string{GrantTokenExchange, GrantRefreshToken},
			Scopes:     []string{"echo"},
		},
		{
			ID:         "dev-backend",
			Type:       ClientConfidential,
			Auth:       AuthClientSecretBasic,
			Secret:     "clients/dev-backend",
			GrantTypes: []string{GrantClientCredentials},
			Scopes:     []string{"echo", ScopeCapabilityMint, ScopeIntrospect},
		},
	}
	c.Upstreams = []Upstream{{
		Name: "echo",
		URL:  "http://echo.invalid", // served in-process by the built-in echo; .invalid never resolves (RFC 6761)
		Auth: UpstreamAuth{Type: UpstreamAuthHeader, Name: "X-Api-Key", Template: SecretPlaceholder, Secret: "echo-key"},
		Routes: []Route{{
			Methods: []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
			Path:    "/**",
			Scope:   "echo",
		}},
	}}
	rate, _ := ParseRate("100/s")
	c.Limits = []Limit{{Name: "per-subject", Key: KeySubject, Rate: rate, Burst: 100}}
	c.applyDefaults()
	return c
}
