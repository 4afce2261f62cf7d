package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// nameRE is the grammar of client ids, upstream names, identity provider names and limit names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// IDPAlgorithms are the JWS algorithms accepted for identity provider ID tokens. "none" and the
// HS* family are never accepted: an ID token must be signed with the provider's private key.
var IDPAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

var grantTypes = []string{GrantTokenExchange, GrantRefreshToken, GrantClientCredentials}

// Validate checks the meaning of the configuration and returns every problem found, joined with
// errors.Join; each is an *Error naming the key by its YAML path (and its line, for a parsed file).
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.top()
	v.tokens()
	v.identityProviders()
	v.clients()
	v.upstreams()
	v.cors("oauth_cors", c.OAuthCORS)
	for i, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			v.errf(fmt.Sprintf("trusted_proxies[%d]", i), "invalid IP address or CIDR prefix %q", s)
		}
	}
	if c.DPoP.ProofWindow <= 0 {
		v.errf("dpop.proof_window", "must be positive")
	}
	if c.Capabilities.MaxExpiresIn <= 0 {
		v.errf("capabilities.max_expires_in", "must be positive")
	}
	if c.Audit.Retention <= 0 {
		v.errf("audit.retention", "must be positive")
	}
	if c.Audit.Buffer < 1 {
		v.errf("audit.buffer", "must be at least 1")
	}
	v.limits()
	v.blocks()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errf(path, format string, args ...any) {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if s := v.c.src; s != nil {
		if env, ok := s.env[path]; ok {
			e.Path = path + " (from " + env + ")"
		} else {
			e.File = s.file
			e.Line = s.line(path)
		}
	}
	v.errs = append(v.errs, e)
}

// line returns where path, or failing that its nearest parent, was read; 0 if nowhere.
func (s *source) line(path string) int {
	for path != "" {
		if l, ok := s.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (v *validator) top() {
	c := v.c
	if c.Issuer == "" {
		v.errf("issuer", "required")
	} else if err := checkURL(c.Issuer, true); err != nil {
		v.errf("issuer", "%s", err)
	} else if strings.HasSuffix(c.Issuer, "/") {
		v.errf("issuer", "must not end with /")
	}
	if err := checkListen(c.Listen); err != nil {
		v.errf("listen", "%s", err)
	}
	if err := checkListen(c.AdminListen); err != nil {
		v.errf("admin_listen", "%s", err)
	} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.errf("admin_listen", "must differ from listen (admin is never on the public listener)")
	}
	if _, err := ParseDSN(c.Database); err != nil {
		v.errf("database", "%s", err)
	}
	if strings.ContainsRune(c.MasterKeyFile, 0) {
		v.errf("master_key_file", "must not contain NUL bytes")
	}
}

func (v *validator) tokens() {
	t := v.c.Tokens
	if t.SigningAlg != SigningAlgES256 && t.SigningAlg != SigningAlgEdDSA {
		v.errf("tokens.signing_alg", "must be %s or %s", SigningAlgES256, SigningAlgEdDSA)
	}
	for _, d := range []struct {
		path string
		val  Duration
	}{
		{"tokens.access_token_ttl", t.AccessTokenTTL},
		{"tokens.refresh_token_ttl", t.RefreshTokenTTL},
		{"tokens.refresh_idle_ttl", t.RefreshIdleTTL},
		{"tokens.key_rotation", t.KeyRotation},
	} {
		if d.val <= 0 {
			v.errf(d.path, "must be positive")
		}
	}
	switch {
	case t.RefreshReuseGrace < 0:
		v.errf("tokens.refresh_reuse_grace", "must not be negative")
	case t.AccessTokenTTL > 0 && t.RefreshReuseGrace >= t.AccessTokenTTL:
		v.errf("tokens.refresh_reuse_grace", "must be shorter than access_token_ttl (%s)", t.AccessTokenTTL)
	}
	if t.AccessTokenTTL > 0 && t.RefreshTokenTTL > 0 && t.AccessTokenTTL > t.RefreshTokenTTL {
		v.errf("tokens.access_token_ttl", "must not exceed refresh_token_ttl (%s)", t.RefreshTokenTTL)
	}
	if t.AccessTokenTTL > 0 && t.KeyRotation > 0 && t.KeyRotation <= t.AccessTokenTTL {
		v.errf("tokens.key_rotation", "must be longer than access_token_ttl (%s)", t.AccessTokenTTL)
	}
}

func (v *validator) identityProviders() {
	seen := map[string]bool{}
	for i, p := range v.c.IdentityProviders {
		at := fmt.Sprintf("identity_providers[%d]", i)
		switch {
		case p.Name == "":
			v.errf(at+".name", "required")
		case !nameRE.MatchString(p.Name):
			v.errf(at+".name", "%q must match [A-Za-z0-9._-]+", p.Name)
		case seen[p.Name]:
			v.errf(at+".name", "duplicate identity provider %q", p.Name)
		}
		seen[p.Name] = true
		if p.Issuer == "" {
			v.errf(at+".issuer", "required")
		} else if err := checkURL(p.Issuer, true); err != nil {
			v.errf(at+".issuer", "%s", err)
		}
		if len(p.Audiences) == 0 {
			v.errf(at+".audiences", "at least one audience required")
		}
		for j, a := range p.Audiences {
			if a == "" {
				v.errf(fmt.Sprintf("%s.audiences[%d]", at, j), "must not be empty")
			}
		}
		if p.JWKSURI != "" {
			if err := checkURL(p.JWKSURI, true); err != nil {
				v.errf(at+".jwks_uri", "%s", err)
			}
		}
		if len(p.Algorithms) == 0 {
			v.errf(at+".algorithms", "at least one algorithm required")
		}
		for j, a := range p.Algorithms {
			if !slices.Contains(IDPAlgorithms, a) {
				v.errf(fmt.Sprintf("%s.algorithms[%d]", at, j), "%q is not allowed; must be one of %s", a, strings.Join(IDPAlgorithms, ", "))
			}
		}
	}
}

func (v *validator) clients() {
	seen := map[string]bool{}
	for i, cl := range v.c.Clients {
		at := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			v.errf(at+".id", "required")
		case !nameRE.MatchString(cl.ID):
			v.errf(at+".id", "%q must match [A-Za-z0-9._-]+", cl.ID)
		case seen[cl.ID]:
			v.errf(at+".id", "duplicate client id %q", cl.ID)
		}
		seen[cl.ID] = true

		switch cl.Type {
		case "":
			v.errf(at+".type", "required (public or confidential)")
		case ClientPublic:
			if cl.Auth != "" {
				v.errf(at+".auth", "public clients do not authenticate; remove auth or make the client confidential")
			}
			if cl.Secret != "" {
				v.errf(at+".secret", "public clients cannot keep a secret; remove it or make the client confidential")
			}
			if len(cl.JWKS) > 0 || cl.JWKSURI != "" {
				v.errf(at+".jwks", "only confidential clients have registered keys")
			}
			if cl.HMACSecret != "" {
				v.errf(at+".hmac_secret", "public clients cannot keep a secret; remove it or make the client confidential")
			}
		case ClientConfidential:
			v.clientAuth(at, cl)
		default:
			v.errf(at+".type", "must be public or confidential")
		}
		if cl.HMACSecret != "" {
			v.secretName(at+".hmac_secret", cl.HMACSecret)
		}

		if len(cl.GrantTypes) == 0 {
			v.errf(at+".grant_types", "at least one grant type required (%s)", strings.Join(grantTypes, ", "))
		}
		for j, g := range cl.GrantTypes {
			gp := fmt.Sprintf("%s.grant_types[%d]", at, j)
			switch {
			case !slices.Contains(grantTypes, g):
				v.errf(gp, "%q must be one of %s", g, strings.Join(grantTypes, ", "))
			case slices.Index(cl.GrantTypes, g) != j:
				v.errf(gp, "duplicate grant type %q", g)
			case g == GrantClientCredentials && cl.Type == ClientPublic:
				v.errf(gp, "public clients cannot use client_credentials")
			case g == GrantRefreshToken && !cl.HasGrant(GrantTokenExchange):
				v.errf(gp, "refresh_token needs token-exchange, the only grant that issues refresh tokens")
			}
		}

		for j, s := range cl.Scopes {
			sp := fmt.Sprintf("%s.scopes[%d]", at, j)
			switch {
			case !validScope(s):
				v.errf(sp, "invalid scope %q (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)", s)
			case slices.Index(cl.Scopes, s) != j:
				v.errf(sp, "duplicate scope %q", s)
			case (s == ScopeCapabilityMint || s == ScopeIntrospect) && cl.Type == ClientPublic:
				v.errf(sp, "%s is for confidential clients only", s)
			}
		}
	}
}

func (v *validator) clientAuth(at string, cl Client) {
	switch cl.Auth {
	case "":
		v.errf(at+".auth", "required for confidential clients (%s, %s or %s)", AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT)
	case AuthClientSecretBasic, AuthClientSecretPost:
		if cl.Secret == "" {
			v.errf(at+".secret", "required with %s: the name of the vault secret holding the client secret", cl.Auth)
		} else {
			v.secretName(at+".secret", cl.Secret)
		}
	case AuthPrivateKeyJWT:
		if cl.Secret != "" {
			v.errf(at+".secret", "not used with private_key_jwt")
		}
		if (len(cl.JWKS) > 0) == (cl.JWKSURI != "") {
			v.errf(at+".jwks", "private_key_jwt needs exactly one of jwks or jwks_uri")
		}
	default:
		v.errf(at+".auth", "must be one of %s, %s, %s", AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT)
	}
	if len(cl.JWKS) > 0 {
		if err := checkJWKS(cl.JWKS); err != nil {
			v.errf(at+".jwks", "%s", err)
		}
	}
	if cl.JWKSURI != "" {
		if err := checkURL(cl.JWKSURI, true); err != nil {
			v.errf(at+".jwks_uri", "%s", err)
		}
	}
}

// checkJWKS accepts a JWK set (RFC 7517 §5) of valid public keys.
func checkJWKS(raw json.RawMessage) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("invalid JWK set: %v", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("JWK set has no keys")
	}
	kids := map[string]bool{}
	for i, k := range set.Keys {
		switch {
		case !k.IsPublic():
			return fmt.Errorf("key %d is private or symmetric; register public keys only", i)
		case !k.Valid():
			return fmt.Errorf("key %d is not a valid JWK", i)
		case k.KeyID == "":
			return fmt.Errorf("key %d has no kid", i)
		case kids[k.KeyID]:
			return fmt.Errorf("duplicate kid %q", k.KeyID)
		}
		kids[k.KeyID] = true
	}
	return nil
}

func (v *validator) upstreams() {
	seen := map[string]bool{}
	for i, u := range v.c.Upstreams {
		at := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case u.Name == "":
			v.errf(at+".name", "required")
		case !nameRE.MatchString(u.Name) || strings.Trim(u.Name, ".") == "":
			v.errf(at+".name", "%q must match [A-Za-z0-9._-]+ and not be only dots", u.Name)
		case slices.ContainsFunc(ReservedUpstreamNames, func(r string) bool { return strings.EqualFold(r, u.Name) }):
			v.errf(at+".name", "%q is reserved (%s)", u.Name, strings.Join(ReservedUpstreamNames, ", "))
		case seen[u.Name]:
			v.errf(at+".name", "duplicate upstream %q", u.Name)
		}
		seen[u.Name] = true
		if u.URL == "" {
			v.errf(at+".url", "required")
		} else if err := checkURL(u.URL, false); err != nil {
			v.errf(at+".url", "%s", err)
		}
		v.upstreamAuth(at+".auth", u.Auth)
		if len(u.Routes) == 0 {
			v.errf(at+".routes", "at least one route required")
		}
		type routeKey struct{ method, path string }
		routes := map[routeKey]bool{}
		for j, r := range u.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", at, j)
			if len(r.Methods) == 0 {
				v.errf(rp+".methods", "at least one method required")
			}
			for k, m := range r.Methods {
				mp := fmt.Sprintf("%s.methods[%d]", rp, k)
				if !validMethod(m) {
					v.errf(mp, "%q is not an upper-case HTTP method", m)
				} else if routes[routeKey{m, r.Path}] {
					v.errf(mp, "%s %s is already routed", m, r.Path)
				}
				routes[routeKey{m, r.Path}] = true
			}
			if err := checkPathPattern(r.Path); err != nil {
				v.errf(rp+".path", "%s", err)
			}
			switch {
			case r.Scope == "":
				v.errf(rp+".scope", "required")
			case !validScope(r.Scope):
				v.errf(rp+".scope", "invalid scope %q", r.Scope)
			}
		}
		if u.Timeout <= 0 {
			v.errf(at+".timeout", "must be positive")
		}
		if u.MaxRequestBody <= 0 {
			v.errf(at+".max_request_body", "must be positive")
		}
		v.cors(at+".cors", u.CORS)
	}
}

func (v *validator) upstreamAuth(at string, a UpstreamAuth) {
	used := map[string]bool{
		"name": a.Name != "", "template": a.Template != "", "username": a.Username != "", "param": a.Param != "",
	}
	var needs []string
	switch a.Type {
	case UpstreamAuthBearer:
	case UpstreamAuthHeader:
		needs = []string{"name", "template"}
		if a.Name != "" && !validHeaderName(a.Name) {
			v.errf(at+".name", "%q is not a header name keygate may set", a.Name)
		}
		if a.Template != "" && !strings.Contains(a.Template, SecretPlaceholder) {
			v.errf(at+".template", "must contain %s", SecretPlaceholder)
		}
		if strings.ContainsAny(a.Template, "\r\n\x00") {
			v.errf(at+".template", "must not contain line breaks or NUL")
		}
	case UpstreamAuthBasic:
		needs = []string{"username"}
		if strings.ContainsAny(a.Username, ":\r\n\x00") {
			v.errf(at+".username", "must not contain a colon (RFC 7617 §2), line breaks or NUL")
		}
	case UpstreamAuthQuery:
		needs = []string{"param"}
	case "":
		v.errf(at+".type", "required (bearer, header, basic or query)")
		return
	default:
		v.errf(at+".type", "must be one of bearer, header, basic, query")
		return
	}
	for _, f := range needs {
		if !used[f] {
			v.errf(at+"."+f, "required with type %s", a.Type)
		}
	}
	for _, f := range []string{"name", "template", "username", "param"} {
		if used[f] && !slices.Contains(needs, f) {
			v.errf(at+"."+f, "not used with type %s", a.Type)
		}
	}
	if a.Secret == "" {
		v.errf(at+".secret", "required: the name of the vault secret holding the credential")
	} else {
		v.secretName(at+".secret", a.Secret)
	}
}

func (v *validator) cors(at string, c CORS) {
	for i, o := range c.Origins {
		op := fmt.Sprintf("%s.origins[%d]", at, i)
		if o == "*" {
			if len(c.Origins) > 1 {
				v.errf(op, `"*" must be the only origin`)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
			v.errf(op, "%q is not an origin (scheme://host[:port], no path)", o)
		}
	}
}

func (v *validator) limits() {
	seen := map[string]bool{}
	for i, l := range v.c.Limits {
		at := fmt.Sprintf("limits[%d]", i)
		switch {
		case l.Name == "":
			v.errf(at+".name", "required")
		case !nameRE.MatchString(l.Name):
			v.errf(at+".name", "%q must match [A-Za-z0-9._-]+", l.Name)
		case seen[l.Name]:
			v.errf(at+".name", "duplicate limit %q", l.Name)
		}
		seen[l.Name] = true
		switch l.Key {
		case KeySubject, KeyClient, KeyIP, KeyToken:
		case "":
			v.errf(at+".key", "required (subject, client, ip or token)")
		default:
			v.errf(at+".key", "must be one of subject, client, ip, token")
		}
		switch {
		case l.Rate.IsZero() == l.Quota.IsZero():
			v.errf(at, "needs exactly one of rate or quota")
		case !l.Rate.IsZero():
			if l.Rate.N <= 0 || l.Rate.Per <= 0 {
				v.errf(at+".rate", "must be positive")
			}
			if l.Burst < 1 {
				v.errf(at+".burst", "must be at least 1")
			}
		default:
			if l.Quota.N <= 0 || l.Quota.Window <= 0 {
				v.errf(at+".quota", "must be positive")
			}
			if l.Burst != 0 {
				v.errf(at+".burst", "only used with rate")
			}
		}
		if l.Upstream != "" {
			if _, ok := v.c.Upstream(l.Upstream); !ok {
				v.errf(at+".upstream", "no upstream named %q", l.Upstream)
			}
		}
	}
}

func (v *validator) blocks() {
	seen := map[string]bool{}
	for i, b := range v.c.Blocks {
		at := fmt.Sprintf("blocks[%d]", i)
		switch {
		case b.Name == "":
			v.errf(at+".name", "required")
		case !nameRE.MatchString(b.Name):
			v.errf(at+".name", "%q must match [A-Za-z0-9._-]+", b.Name)
		case seen[b.Name]:
			v.errf(at+".name", "duplicate block rule %q", b.Name)
		}
		seen[b.Name] = true
		switch b.Key {
		case KeySubject, KeyIP:
		case "":
			v.errf(at+".key", "required (subject or ip)")
		default:
			v.errf(at+".key", "must be subject or ip")
		}
		switch {
		case b.When.IsZero():
			v.errf(at+".when", `required, e.g. "limit_hits > 100 in 10m"`)
		case b.When.Metric != MetricLimitHits && b.When.Metric != MetricAuthFailures:
			v.errf(at+".when", "metric must be %s or %s", MetricLimitHits, MetricAuthFailures)
		case b.When.Threshold < 0 || b.When.Window <= 0:
			v.errf(at+".when", "threshold must not be negative and window must be positive")
		}
		if b.BlockFor <= 0 {
			v.errf(at+".block_for", "must be positive")
		}
	}
}

func (v *validator) secretName(at, name string) {
	if len(name) > 255 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		v.errf(at, "invalid vault secret name %q (no spaces or control characters, at most 255 bytes)", name)
	}
}

// checkURL accepts an absolute http(s) URL with a host and no user info, query or fragment.
// With httpsOnly, plain http is allowed only for loopback hosts.
func checkURL(s string, httpsOnly bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL") // the parse error would repeat s, which may hold a password
	case u.User != nil:
		return errors.New("must not contain user info; put credentials in the vault")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q must not have a fragment", s)
	case httpsOnly && u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("%q must use https (http is allowed for loopback hosts only)", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if strings.ContainsAny(host, " /\x00") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || (len(port) > 1 && port[0] == '0') || n > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}

// checkPathPattern accepts "/a/*/b" and "/a/**": "*" is one whole segment, "**" only the last.
func checkPathPattern(p string) error {
	switch {
	case p == "":
		return errors.New("required")
	case p[0] != '/':
		return fmt.Errorf("%q must start with /", p)
	case strings.ContainsAny(p, "?#%"):
		return fmt.Errorf("%q must not contain ?, # or %%", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("%q must not contain spaces or control characters", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && !last:
			return fmt.Errorf("%q has an empty segment", p)
		case s == "." || s == "..":
			return fmt.Errorf("%q must not contain . or .. segments", p)
		case s == "**" && !last:
			return fmt.Errorf("%q: ** is allowed only as the last segment", p)
		case s != "*" && s != "**" && strings.Contains(s, "*"):
			return fmt.Errorf("%q: * and ** must be whole segments", p)
		}
	}
	return nil
}

func isTchar(r rune) bool {
	return r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// validMethod accepts upper-case HTTP tokens (RFC 9110 §9.1).
func validMethod(m string) bool {
	return m != "" && m == strings.ToUpper(m) && !strings.ContainsFunc(m, func(r rune) bool { return !isTchar(r) })
}

func validHeaderName(h string) bool {
	if h == "" || strings.ContainsFunc(h, func(r rune) bool { return !isTchar(r) }) {
		return false
	}
	switch strings.ToLower(h) {
	case "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "proxy-connection":
		return false
	}
	return true
}

// validScope accepts a scope-token (RFC 6749 §3.3): 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
