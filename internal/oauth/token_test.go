package oauth

import (
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var refreshTokenRE = regexp.MustCompile(`^kgr_[A-Za-z0-9_-]{43}$`)

func TestTokenExchange(t *testing.T) {
	f := newFixture(t)
	r := f.exchange(t, "app", "alice")
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := r.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
	want := map[string]any{"issued_token_type": TokenTypeAccessToken, "token_type": "Bearer",
		"expires_in": float64(300), "scope": "echo chat"}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.body[k], v)
		}
	}
	if !refreshTokenRE.MatchString(r.str("refresh_token")) {
		t.Errorf("refresh_token = %q, want kgr_ + 43 base64url", r.str("refresh_token"))
	}
	c := f.tokens.claims(r.str("access_token"))
	if c.Subject != "dev|alice" || c.ClientID != "app" || c.Audience != f.issuer || c.Issuer != f.issuer ||
		c.SID == "" || c.ACR != "urn:acr:silver" || c.AuthTime != 1700000000 || !c.Expiry.Equal(f.clock.now().Add(accessTTL)) {
		t.Errorf("access token claims = %+v", c)
	}
	fams, err := f.store.ListFamilies(t.Context(), "dev|alice")
	if err != nil || len(fams) != 1 || fams[0].ID != c.SID || fams[0].ACR != c.ACR || fams[0].Scope != "echo chat" {
		t.Errorf("families = %+v, %v", fams, err)
	}
	// The refresh token is stored as its hash only.
	var n int
	f.store.DB().QueryRow("SELECT COUNT(*) FROM refresh_tokens WHERE hash = ?", []byte(r.str("refresh_token"))).Scan(&n)
	if n != 0 {
		t.Error("refresh token stored in plaintext")
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	f := newFixture(t)
	base := url.Values{"grant_type": {GrantTokenExchange}, "client_id": {"app"},
		"subject_token": {"idt:alice"}, "subject_token_type": {TokenTypeIDToken}}
	tests := []struct {
		name   string
		change url.Values // "" deletes
		code   string
	}{
		{"no subject_token", url.Values{"subject_token": {""}}, "invalid_request"},
		{"no subject_token_type", url.Values{"subject_token_type": {""}}, "invalid_request"},
		{"access token as subject", url.Values{"subject_token_type": {TokenTypeAccessToken}}, "invalid_request"},
		{"actor token", url.Values{"actor_token": {"idt:bob"}, "actor_token_type": {TokenTypeIDToken}}, "invalid_request"},
		{"requested refresh token", url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, "invalid_request"},
		{"foreign resource", url.Values{"resource": {"https://evil.example"}}, "invalid_target"},
		{"foreign audience", url.Values{"audience": {"someone-else"}}, "invalid_target"},
		{"invalid id token", url.Values{"subject_token": {"forged"}}, "invalid_request"},
		{"scope beyond client", url.Values{"scope": {"echo admin"}}, "invalid_scope"},
		{"malformed scope", url.Values{"scope": {"echo  chat"}}, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := maps.Clone(base)
			for k, v := range tt.change {
				form[k] = v
			}
			before := f.rows(t)
			r := f.post(t, "/oauth2/token", form)
			wantError(t, r, http.StatusBadRequest, tt.code)
			if after := f.rows(t); !maps.Equal(before, after) {
				t.Errorf("store changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("resource is the issuer", func(t *testing.T) {
		form := maps.Clone(base)
		form["resource"] = []string{f.issuer, f.issuer}
		form["scope"] = []string{"chat"}
		r := f.post(t, "/oauth2/token", form)
		if r.status != http.StatusOK || r.str("scope") != "chat" {
			t.Fatalf("answer = %d %s", r.status, r.raw)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t)
	r := f.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"echo"}}, basic("backend", backendSecret))
	if r.status != http.StatusOK {
		t.Fatalf("answer = %d %s", r.status, r.raw)
	}
	if r.str("refresh_token") != "" || r.str("issued_token_type") != "" || r.str("scope") != "echo" || r.str("token_type") != "Bearer" {
		t.Errorf("body = %s", r.raw)
	}
	if c := f.tokens.claims(r.str("access_token")); c.Subject != "client:backend" || c.SID != "" || c.ClientID != "backend" {
		t.Errorf("claims = %+v", c)
	}
	// Without scope: every scope of the client (RFC 6749 §3.3 default).
	r = f.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"poster"}, "client_secret": {posterSecret}})
	if r.status != http.StatusOK || r.str("scope") != "echo" {
		t.Fatalf("client_secret_post answer = %d %s", r.status, r.raw)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	tests := []struct {
		name      string
		body      string
		ctype     string
		query     string
		opts      []func(*http.Request)
		status    int
		code      string
		challenge bool
	}{
		{name: "repeated parameter", body: "grant_type=client_credentials&scope=echo&scope=echo", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "repeated grant_type", body: "grant_type=client_credentials&grant_type=refresh_token", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "json body", body: `{"grant_type":"client_credentials"}`, ctype: "application/json", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "no content type", body: cc.Encode(), ctype: "-", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "oversize body", body: "grant_type=client_credentials&pad=" + strings.Repeat("a", maxFormBytes), opts: []func(*http.Request){basic("backend", backendSecret)}, status: 413, code: "invalid_request"},
		{name: "secret in query", body: "grant_type=client_credentials&client_id=poster", query: "client_secret=" + posterSecret, status: 400, code: "invalid_request"},
		{name: "missing grant_type", body: "scope=echo", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "unsupported grant", body: "grant_type=password&username=a&password=b", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "unsupported_grant_type"},
		{name: "bad secret basic", body: cc.Encode(), opts: []func(*http.Request){basic("backend", "wrong")}, status: 401, code: "invalid_client", challenge: true},
		{name: "unknown client basic", body: cc.Encode(), opts: []func(*http.Request){basic("nobody", "x")}, status: 401, code: "invalid_client", challenge: true},
		{name: "malformed basic", body: cc.Encode(), opts: []func(*http.Request){func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }}, status: 401, code: "invalid_client", challenge: true},
		{name: "bad secret post", body: "grant_type=client_credentials&client_id=poster&client_secret=nope", status: 401, code: "invalid_client"},
		{name: "basic client using post", body: "grant_type=client_credentials&client_id=backend&client_secret=" + url.QueryEscape(backendSecret), status: 401, code: "invalid_client"},
		{name: "confidential without credentials", body: "grant_type=client_credentials&client_id=backend", status: 401, code: "invalid_client"},
		{name: "no client at all", body: cc.Encode(), status: 401, code: "invalid_client"},
		{name: "public client with secret", body: "grant_type=refresh_token&client_id=app&client_secret=x&refresh_token=kgr_x", status: 401, code: "invalid_client"},
		{name: "public client with basic", body: "grant_type=refresh_token&refresh_token=kgr_x", opts: []func(*http.Request){basic("app", "x")}, status: 401, code: "invalid_client", challenge: true},
		{name: "two methods", body: "grant_type=client_credentials&client_id=poster&client_secret=" + posterSecret, opts: []func(*http.Request){basic("poster", posterSecret)}, status: 400, code: "invalid_request"},
		{name: "basic and other client_id", body: "grant_type=client_credentials&client_id=poster", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_request"},
		{name: "public client not allowed grant", body: "grant_type=client_credentials&client_id=app", status: 400, code: "unauthorized_client"},
		{name: "confidential client not allowed exchange", body: "grant_type=" + url.QueryEscape(GrantTokenExchange) + "&subject_token=idt:a&subject_token_type=" + url.QueryEscape(TokenTypeIDToken), opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "unauthorized_client"},
		{name: "invalid scope", body: "grant_type=client_credentials&scope=admin", opts: []func(*http.Request){basic("backend", backendSecret)}, status: 400, code: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := f.srv.URL + "/oauth2/token"
			if tt.query != "" {
				target += "?" + tt.query
			}
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(tt.body))
			switch tt.ctype {
			case "":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.ctype)
			}
			for _, o := range tt.opts {
				o(req)
			}
			before := f.rows(t)
			r := f.do(t, req)
			wantError(t, r, tt.status, tt.code)
			www := r.header.Get("WWW-Authenticate")
			if tt.challenge != strings.HasPrefix(www, `Basic realm="keygate"`) {
				t.Errorf("WWW-Authenticate = %q, want Basic challenge: %v", www, tt.challenge)
			}
			if after := f.rows(t); !maps.Equal(before, after) {
				t.Errorf("store changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/oauth2/token", nil)
		if r := f.do(t, req); r.status != http.StatusMethodNotAllowed {
			t.Errorf("GET status = %d, want 405", r.status)
		}
	})
}

func TestPrivateKeyJWT(t *testing.T) {
	f := newFixture(t)
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}
	}
	a := f.assertion(t, nil)
	r := f.post(t, "/oauth2/token", form(a))
	if r.status != http.StatusOK || r.str("scope") != "echo introspect" {
		t.Fatalf("answer = %d %s", r.status, r.raw)
	}
	if c := f.tokens.claims(r.str("access_token")); c.Subject != "client:jwtc" {
		t.Errorf("claims = %+v", c)
	}
	// RFC 7523 §3: the jti is accepted once.
	wantError(t, f.post(t, "/oauth2/token", form(a)), 401, "invalid_client")

	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("01234567890123456789012345678901")}, nil)
	hsRaw, _ := jwt.Signed(hs).Claims(jwt.Claims{Issuer: "jwtc", Subject: "jwtc", Audience: jwt.Audience{f.issuer},
		Expiry: jwt.NewNumericDate(f.clock.now().Add(time.Minute)), ID: "hs"}).Serialize()
	bad := []struct {
		name string
		raw  string
	}{
		{"embedded jwk", f.assertion(t, func(_ *jwt.Claims, o *jose.SignerOptions) { o.EmbedJWK = true })},
		{"jku header", f.assertion(t, func(_ *jwt.Claims, o *jose.SignerOptions) { o.WithHeader("jku", "https://evil/jwks") })},
		{"crit header", f.assertion(t, func(_ *jwt.Claims, o *jose.SignerOptions) { o.WithHeader("crit", []string{"exp"}) })},
		{"hs256", hsRaw},
		{"wrong audience", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Audience = jwt.Audience{f.issuer + "/other"} })},
		{"no exp", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Expiry = nil })},
		{"expired", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) {
			c.Expiry = jwt.NewNumericDate(f.clock.now().Add(-time.Minute))
		})},
		{"lives too long", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) {
			c.Expiry = jwt.NewNumericDate(f.clock.now().Add(time.Hour))
		})},
		{"no jti", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.ID = "" })},
		{"iss differs from sub", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Issuer = "backend" })},
		{"other client's id", f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Issuer, c.Subject = "backend", "backend" })},
		{"unknown kid", f.assertion(t, func(_ *jwt.Claims, o *jose.SignerOptions) { o.WithHeader("kid", "k2") })},
		{"oversize", strings.Repeat("a", maxTokenBytes+1)},
		{"garbage", "not.a.jwt"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.rows(t)
			wantError(t, f.post(t, "/oauth2/token", form(tt.raw)), 401, "invalid_client")
			if after := f.rows(t); !maps.Equal(before, after) {
				t.Errorf("store changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("wrong assertion type", func(t *testing.T) {
		v := form(f.assertion(t, nil))
		v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		wantError(t, f.post(t, "/oauth2/token", v), 401, "invalid_client")
	})
	t.Run("issuer as audience", func(t *testing.T) {
		a := f.assertion(t, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Audience = jwt.Audience{f.issuer} })
		if r := f.post(t, "/oauth2/token", form(a)); r.status != http.StatusOK {
			t.Fatalf("answer = %d %s", r.status, r.raw)
		}
	})
}

func TestMetadata(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server", nil)
	r := f.do(t, req)
	if r.status != 200 || r.header.Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("answer = %d %v", r.status, r.header)
	}
	for k, want := range map[string]string{"issuer": f.issuer, "token_endpoint": f.issuer + "/oauth2/token",
		"revocation_endpoint": f.issuer + "/oauth2/revoke", "introspection_endpoint": f.issuer + "/oauth2/introspect",
		"jwks_uri": f.issuer + "/.well-known/jwks.json"} {
		if r.str(k) != want {
			t.Errorf("%s = %q, want %q", k, r.str(k), want)
		}
	}
	list := func(k string) string {
		var s []string
		for _, v := range r.body[k].([]any) {
			s = append(s, v.(string))
		}
		return strings.Join(s, " ")
	}
	for k, want := range map[string]string{
		"scopes_supported":                                 "capability:mint chat echo introspect",
		"grant_types_supported":                            GrantTokenExchange + " refresh_token client_credentials",
		"response_types_supported":                         "",
		"dpop_signing_alg_values_supported":                "ES256 EdDSA",
		"token_endpoint_auth_methods_supported":            "client_secret_basic client_secret_post private_key_jwt none",
		"introspection_endpoint_auth_methods_supported":    "client_secret_basic client_secret_post private_key_jwt",
		"token_endpoint_auth_signing_alg_values_supported": "ES256 EdDSA RS256 PS256",
	} {
		if got := list(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFixture(t)
	good := f.oauth.cfg
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }},
		{"short refresh key", func(c *Config) { c.RefreshKey = []byte("short") }},
		{"zero access ttl", func(c *Config) { c.AccessTTL = 0 }},
		{"public client credentials", func(c *Config) {
			c.Clients = []Client{{ID: "p", Public: true, GrantTypes: []string{"client_credentials"}}}
		}},
		{"duplicate client", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }},
		{"unknown grant", func(c *Config) { c.Clients = []Client{{ID: "p", Public: true, GrantTypes: []string{"password"}}} }},
		{"jwt without keys", func(c *Config) { c.Clients = []Client{{ID: "p", AuthMethod: AuthPrivateKeyJWT}} }},
		{"bad scope", func(c *Config) { c.Clients = []Client{{ID: "p", Public: true, Scopes: []string{`a"b`}}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Clients = append([]Client(nil), good.Clients...)
			tt.mod(&cfg)
			if _, err := New(cfg, f.oauth.deps); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}
