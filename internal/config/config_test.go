package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFullExample(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "full.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "https://api.example.com"},
		{"listen", c.Listen, ":8080"},
		{"master_key_file", c.MasterKeyFile, "/etc/keygate/master.key"},
		{"access_token_ttl", c.Tokens.AccessTokenTTL.Std(), 5 * time.Minute},
		{"refresh_reuse_grace", c.Tokens.RefreshReuseGrace.Std(), 10 * time.Second},
		{"idp audiences", c.IdentityProviders[0].Audiences, []string{"1234.apps.googleusercontent.com"}},
		{"clients", len(c.Clients), 3},
		{"ios-app dpop", c.Clients[0].RequireDPoP, true},
		{"billing-backend auth", c.Clients[1].Auth, AuthClientSecretBasic},
		{"jwks", string(c.Clients[2].JWKS), `{"keys":[{"crv":"Ed25519","kid":"b1","kty":"OKP","x":"jawuTs9AX85EPz6lfyOdVsrkLwDm-Fc31vZbgW_b75E"}]}`},
		{"hmac_secret", c.Clients[2].HMACSecret, "clients/billing-backend-hmac"},
		{"openai auth", c.Upstreams[0].Auth, UpstreamAuth{Type: UpstreamAuthBearer, Secret: "openai-key"}},
		{"openai route 1", c.Upstreams[0].Routes[1], Route{Methods: []string{"GET"}, Path: "/v1/models/**", Scope: "chat"}},
		{"openai max body", c.Upstreams[0].MaxRequestBody, MiB},
		{"openai cors", c.Upstreams[0].CORS.Origins, []string{"https://app.example.com"}},
		{"maps timeout default", c.Upstreams[1].Timeout.Std(), DefaultUpstreamTimeout},
		{"maps auth", c.Upstreams[1].Auth, UpstreamAuth{Type: UpstreamAuthQuery, Param: "key", Secret: "maps-key"}},
		{"oauth cors", c.OAuthCORS.Origins, []string{"https://app.example.com"}},
		{"trusted proxies", c.TrustedProxyPrefixes(), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{"proof window", c.DPoP.ProofWindow.Std(), time.Minute},
		{"audit buffer", c.Audit.Buffer, 10000},
		{"rate per-user", c.Limits[0].Rate, Rate{Raw: "60/m", N: 60, Per: time.Minute, PerSecond: 1}},
		{"burst per-user", c.Limits[0].Burst, 20},
		{"quota daily-chat", c.Limits[2].Quota, Quota{Raw: "1000/24h", N: 1000, Window: 24 * time.Hour}},
		{"daily-chat upstream", c.Limits[2].Upstream, "openai"},
		{"shared", c.Limits[3].Shared, true},
		{"block abusive", c.Blocks[0].When, BlockCondition{Raw: "limit_hits > 100 in 10m", Metric: MetricLimitHits, Threshold: 100, Window: 10 * time.Minute}},
		{"block_for", c.Blocks[1].BlockFor.Std(), 15 * time.Minute},
		{"secret names", c.SecretNames(), []string{"clients/billing-backend", "clients/billing-backend-hmac", "maps-key", "openai-key"}},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestTestdataValidates(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, nil); err != nil {
				t.Errorf("Load:\n%v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, DefaultListen},
		{"admin_listen", c.AdminListen, DefaultAdminListen},
		{"database", c.Database, DefaultDatabase},
		{"signing_alg", c.Tokens.SigningAlg, DefaultSigningAlg},
		{"access_token_ttl", c.Tokens.AccessTokenTTL.Std(), DefaultAccessTokenTTL},
		{"refresh_token_ttl", c.Tokens.RefreshTokenTTL.Std(), DefaultRefreshTokenTTL},
		{"refresh_idle_ttl", c.Tokens.RefreshIdleTTL.Std(), DefaultRefreshIdleTTL},
		{"refresh_reuse_grace", c.Tokens.RefreshReuseGrace.Std(), DefaultRefreshReuseGrace},
		{"key_rotation", c.Tokens.KeyRotation.Std(), DefaultKeyRotation},
		{"proof_window", c.DPoP.ProofWindow.Std(), DefaultProofWindow},
		{"max_expires_in", c.Capabilities.MaxExpiresIn.Std(), DefaultCapabilityMaxExpiresIn},
		{"audit retention", c.Audit.Retention.Std(), DefaultAuditRetention},
		{"audit buffer", c.Audit.Buffer, DefaultAuditBuffer},
		{"upstream timeout", c.Upstreams[0].Timeout.Std(), DefaultUpstreamTimeout},
		{"max_request_body", c.Upstreams[0].MaxRequestBody, DefaultMaxRequestBody},
		{"idp algorithms", c.IdentityProviders[0].Algorithms, []string{"RS256"}},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestExplicitZeroReuseGraceKept(t *testing.T) {
	c, err := Load("testdata/postgres.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tokens.RefreshReuseGrace; got != 0 {
		t.Errorf("refresh_reuse_grace: got %v, want 0", got)
	}
	if got, want := c.Limits[0].Burst, 10; got != want {
		t.Errorf("default burst for 10/s: got %d, want %d", got, want)
	}
	if got, want := c.Upstreams[0].MaxRequestBody, 256*KiB; got != want {
		t.Errorf("max_request_body: got %v, want %v", got, want)
	}
	wantProxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if got := c.TrustedProxyPrefixes(); !slices.Equal(got, wantProxies) {
		t.Errorf("trusted proxies: got %v, want %v", got, wantProxies)
	}
}

// base is a valid config that the error cases extend.
const base = `issuer: https://kg.example.com
upstreams:
  - name: up
    url: https://up.example.com
    auth: { type: bearer, secret: k }
    routes: [{ methods: [GET], path: /x, scope: s }]
clients:
  - { id: app, type: public, grant_types: [token-exchange], scopes: [s] }
`

// inUpstream adds lines to the upstream of base.
func inUpstream(lines string) string {
	return strings.Replace(base, "clients:\n", lines+"clients:\n", 1)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"empty file", "", []string{"keygate.yaml: empty configuration"}},
		{"only comments", "# nothing\n", []string{"empty configuration"}},
		{"null document", "~\n", []string{"empty configuration"}},
		{"two documents", "issuer: a\n---\nissuer: b\n", []string{"keygate.yaml:2: multiple YAML documents"}},
		{"not a mapping", "- a\n- b\n", []string{"keygate.yaml:1: expected a mapping of settings at top level, got a list"}},
		{"syntax error", "issuer: [a\n", []string{"keygate.yaml:"}},
		{"unknown top-level key", "issuer: https://a.example\nlistn: :80\n", []string{`keygate.yaml:2: unknown key "listn" in top level (did you mean "listen"?)`}},
		{"unknown nested key", inUpstream("    timeot: 5s\n"), []string{`keygate.yaml:7: unknown key "timeot" in upstreams[0] (did you mean "timeout"?)`}},
		{"unknown key in flow mapping", "tokens: { signing_alg: ES256, ttl: 5m }\n", []string{`keygate.yaml:1: unknown key "ttl" in tokens`}},
		{"unknown key in list item", base + "limits:\n  - { name: a, key: ip, rate: 1/s, bogus: 1 }\n", []string{`keygate.yaml:10: unknown key "bogus" in limits[0]`}},
		{"all unknown keys reported", "a: 1\nb: 2\n", []string{`keygate.yaml:1: unknown key "a"`, `keygate.yaml:2: unknown key "b"`}},
		{"duplicate key", "issuer: a\nissuer: b\n", []string{`keygate.yaml:2: duplicate key "issuer" in top level (first at line 1)`}},
		{"merge key", "tokens:\n  <<: {signing_alg: ES256}\n", []string{"keygate.yaml:2: tokens: merge keys (<<) are not supported"}},
		{"string for int", "audit:\n  buffer: lots\n", []string{`keygate.yaml:2: audit.buffer: expected an integer, got string "lots"`}},
		{"list for string", "issuer: [a, b]\n", []string{"keygate.yaml:1: issuer: expected a string, got a list"}},
		{"bool for string", "database: true\n", []string{"keygate.yaml:1: database: expected a string, got boolean true"}},
		{"string for bool", "dpop: { nonce: maybe }\n", []string{`keygate.yaml:1: dpop.nonce: expected true or false, got string "maybe"`}},
		{"scalar for list", base + "trusted_proxies: 10.0.0.0/8\n", []string{`keygate.yaml:9: trusted_proxies: expected a list, got string "10.0.0.0/8"`}},
		{"scalar for struct", "tokens: 5m\n", []string{`keygate.yaml:1: tokens: expected a mapping, got string "5m"`}},
		{"bad duration", "tokens:\n  access_token_ttl: 5 minutes\n", []string{`keygate.yaml:2: tokens.access_token_ttl: invalid duration "5 minutes" (want a Go duration such as 90s, 5m or 24h)`}},
		{"duration without unit", "dpop: { proof_window: 60 }\n", []string{`dpop.proof_window: invalid duration "60"`}},
		{"bad size", inUpstream("    max_request_body: 1MB\n"), []string{`keygate.yaml:7: upstreams[0].max_request_body: invalid size "1MB" (want bytes, or a number with KiB, MiB or GiB)`}},
		{"negative size", inUpstream("    max_request_body: -1\n"), []string{`upstreams[0].max_request_body: invalid size "-1"`}},
		{"bad rate unit", "limits:\n  - { name: a, key: ip, rate: 60/d }\n", []string{`keygate.yaml:2: limits[0].rate: invalid rate "60/d": unit must be s, m or h`}},
		{"bad rate count", "limits:\n  - { name: a, key: ip, rate: 0/s }\n", []string{`limits[0].rate: invalid rate "0/s": count must be a positive integer`}},
		{"rate without slash", "limits:\n  - { name: a, key: ip, rate: 60 }\n", []string{`limits[0].rate: invalid rate "60" (want N/s, N/m or N/h)`}},
		{"bad quota", "limits:\n  - { name: a, key: ip, quota: 1000/day }\n", []string{`limits[0].quota: invalid quota "1000/day": window must be a positive Go duration`}},
		{"bad block condition", "blocks:\n  - { name: a, key: ip, when: \"errors > 5 in 1m\", block_for: 1h }\n", []string{`keygate.yaml:2: blocks[0].when: invalid condition "errors > 5 in 1m": metric must be limit_hits or auth_failures`}},
		{"garbled block condition", "blocks:\n  - { name: a, key: ip, when: \"limit_hits >= 5\", block_for: 1h }\n", []string{`blocks[0].when: invalid condition`}},
		{"jwks not a mapping", "clients:\n  - { id: a, jwks: [1] }\n", []string{"keygate.yaml:2: clients[0].jwks: expected a mapping, got a list"}},
		{"jwks string not json", "clients:\n  - { id: a, jwks: 'keys' }\n", []string{"clients[0].jwks: expected a JSON object or a YAML mapping"}},
		{"custom tag", "issuer: !foo bar\n", []string{"keygate.yaml:1: issuer: unsupported YAML tag !foo"}},
		{"int overflow", "audit: { buffer: 99999999999999999999 }\n", []string{"audit.buffer: expected an integer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "keygate.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error containing %q", c, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no issuer", strings.TrimPrefix(base, "issuer: https://kg.example.com\n"), "issuer: required"},
		{"issuer http", "issuer: http://kg.example.com\n", `keygate.yaml:1: issuer: "http://kg.example.com" must use https`},
		{"issuer query", "issuer: https://kg.example.com/?a=b\n", `issuer: "https://kg.example.com/?a=b" must not have a query`},
		{"issuer fragment", "issuer: https://kg.example.com#x\n", "must not have a fragment"},
		{"issuer relative", "issuer: /kg\n", "must be an absolute http or https URL"},
		{"issuer trailing slash", "issuer: https://kg.example.com/\n", "issuer: must not end with /"},
		{"bad listen", base + "listen: 8080\n", `keygate.yaml:9: listen: "8080" is not host:port`},
		{"same listeners", base + "listen: 127.0.0.1:9090\n", "admin_listen: must differ from listen"},
		{"bad database", base + "database: mysql://x\n", `database: unsupported database scheme "mysql"`},
		{"bad signing alg", base + "tokens: { signing_alg: RS256 }\n", "tokens.signing_alg: must be ES256 or EdDSA"},
		{"negative ttl", base + "tokens: { access_token_ttl: -5m }\n", "tokens.access_token_ttl: must be positive"},
		{"grace too long", base + "tokens: { refresh_reuse_grace: 10m }\n", "tokens.refresh_reuse_grace: must be shorter than access_token_ttl (5m0s)"},
		{"idp no audience", base + "identity_providers:\n  - { name: g, issuer: https://g.example }\n", "keygate.yaml:10: identity_providers[0].audiences: at least one audience required"},
		{"idp alg none", base + "identity_providers:\n  - { name: g, issuer: https://g.example, audiences: [a], algorithms: [none] }\n", `identity_providers[0].algorithms[0]: "none" is not allowed`},
		{"idp alg HS256", base + "identity_providers:\n  - { name: g, issuer: https://g.example, audiences: [a], algorithms: [RS256, HS256] }\n", `identity_providers[0].algorithms[1]: "HS256" is not allowed`},
		{"idp duplicate", base + "identity_providers:\n  - { name: g, issuer: https://g.example, audiences: [a] }\n  - { name: g, issuer: https://h.example, audiences: [a] }\n", `identity_providers[1].name: duplicate identity provider "g"`},
		{"duplicate client", base + "  - { id: app, type: public, grant_types: [token-exchange] }\n", `keygate.yaml:9: clients[1].id: duplicate client id "app"`},
		{"client bad id", strings.Replace(base, "id: app", "id: app/1", 1), `clients[0].id: "app/1" must match`},
		{"client no type", strings.Replace(base, "type: public, ", "", 1), "keygate.yaml:8: clients[0].type: required (public or confidential)"},
		{"public with secret", strings.Replace(base, "type: public,", "type: public, secret: s,", 1), "clients[0].secret: public clients cannot keep a secret"},
		{"public with auth", strings.Replace(base, "type: public,", "type: public, auth: client_secret_basic,", 1), "clients[0].auth: public clients do not authenticate"},
		{"public client_credentials", strings.Replace(base, "[token-exchange]", "[client_credentials]", 1), "clients[0].grant_types[0]: public clients cannot use client_credentials"},
		{"unknown grant", strings.Replace(base, "[token-exchange]", "[password]", 1), `clients[0].grant_types[0]: "password" must be one of token-exchange, refresh_token, client_credentials`},
		{"refresh without exchange", base + "  - { id: b, type: confidential, auth: client_secret_post, secret: b, grant_types: [refresh_token] }\n", "clients[1].grant_types[0]: refresh_token needs token-exchange"},
		{"bad scope", strings.Replace(base, "scopes: [s]", `scopes: [s, "a b"]`, 1), `clients[0].scopes[1]: invalid scope "a b"`},
		{"public mint", strings.Replace(base, "scopes: [s]", "scopes: [s, capability:mint]", 1), "clients[0].scopes[1]: capability:mint is for confidential clients only"},
		{"confidential no auth", base + "  - { id: b, type: confidential, grant_types: [client_credentials] }\n", "clients[1].auth: required for confidential clients"},
		{"confidential no secret", base + "  - { id: b, type: confidential, auth: client_secret_basic, grant_types: [client_credentials] }\n", "clients[1].secret: required with client_secret_basic"},
		{"private_key_jwt no keys", base + "  - { id: b, type: confidential, auth: private_key_jwt, grant_types: [client_credentials] }\n", "clients[1].jwks: private_key_jwt needs exactly one of jwks or jwks_uri"},
		{"private_key_jwt both", base + "  - { id: b, type: confidential, auth: private_key_jwt, jwks_uri: https://b.example/jwks, jwks: {keys: [{kty: OKP, crv: Ed25519, kid: a, x: jawuTs9AX85EPz6lfyOdVsrkLwDm-Fc31vZbgW_b75E}]}, grant_types: [client_credentials] }\n", "needs exactly one of jwks or jwks_uri"},
		{"private jwk", base + "  - { id: b, type: confidential, auth: private_key_jwt, jwks: {keys: [{kty: oct, kid: a, k: c2VjcmV0}]}, grant_types: [client_credentials] }\n", "clients[1].jwks: key 0 is private or symmetric"},
		{"bad jwk", base + "  - { id: b, type: confidential, auth: private_key_jwt, jwks: {keys: [{kty: OKP, crv: Ed25519, kid: a, x: '...'}]}, grant_types: [client_credentials] }\n", "clients[1].jwks: invalid JWK set"},
		{"bad client auth", base + "  - { id: b, type: confidential, auth: tls_client_auth, grant_types: [client_credentials] }\n", "clients[1].auth: must be one of client_secret_basic, client_secret_post, private_key_jwt"},
		{"reserved upstream", strings.Replace(base, "name: up", "name: oauth2", 1), `keygate.yaml:3: upstreams[0].name: "oauth2" is reserved`},
		{"reserved upstream any case", strings.Replace(base, "name: up", "name: Admin", 1), `upstreams[0].name: "Admin" is reserved`},
		{"dots upstream", strings.Replace(base, "name: up", "name: ..", 1), `upstreams[0].name: ".." must match`},
		{"upstream slash", strings.Replace(base, "name: up", "name: a/b", 1), `upstreams[0].name: "a/b" must match [A-Za-z0-9._-]+`},
		{"upstream url query", strings.Replace(base, "https://up.example.com", "https://up.example.com/?k=v", 1), "upstreams[0].url: \"https://up.example.com/?k=v\" must not have a query"},
		{"upstream url userinfo", strings.Replace(base, "https://up.example.com", "https://u:pw@up.example.com", 1), "upstreams[0].url: must not contain user info"},
		{"upstream auth type", strings.Replace(base, "type: bearer", "type: oauth", 1), "keygate.yaml:5: upstreams[0].auth.type: must be one of bearer, header, basic, query"},
		{"header auth without template", strings.Replace(base, "type: bearer", "type: header, name: X-Key", 1), "upstreams[0].auth.template: required with type header"},
		{"header template without placeholder", strings.Replace(base, "type: bearer", "type: header, name: X-Key, template: key", 1), "upstreams[0].auth.template: must contain {{secret}}"},
		{"header host", strings.Replace(base, "type: bearer", `type: header, name: Host, template: "{{secret}}"`, 1), `upstreams[0].auth.name: "Host" is not a header name keygate may set`},
		{"basic without username", strings.Replace(base, "type: bearer", "type: basic", 1), "upstreams[0].auth.username: required with type basic"},
		{"query without param", strings.Replace(base, "type: bearer", "type: query", 1), "upstreams[0].auth.param: required with type query"},
		{"bearer with param", strings.Replace(base, "type: bearer", "type: bearer, param: p", 1), "upstreams[0].auth.param: not used with type bearer"},
		{"no secret", strings.Replace(base, ", secret: k", "", 1), "upstreams[0].auth.secret: required"},
		{"no routes", strings.Replace(base, "    routes: [{ methods: [GET], path: /x, scope: s }]\n", "", 1), "upstreams[0].routes: at least one route required"},
		{"lowercase method", strings.Replace(base, "[GET]", "[get]", 1), `upstreams[0].routes[0].methods[0]: "get" is not an upper-case HTTP method`},
		{"relative path", strings.Replace(base, "path: /x", "path: x", 1), `upstreams[0].routes[0].path: "x" must start with /`},
		{"double star not last", strings.Replace(base, "path: /x", "path: /**/x", 1), "** is allowed only as the last segment"},
		{"partial star", strings.Replace(base, "path: /x", "path: /x*", 1), "* and ** must be whole segments"},
		{"dotdot path", strings.Replace(base, "path: /x", "path: /a/../b", 1), "must not contain . or .. segments"},
		{"no scope", strings.Replace(base, ", scope: s }", " }", 1), "upstreams[0].routes[0].scope: required"},
		{"duplicate route", strings.Replace(base, "[{ methods: [GET], path: /x, scope: s }]", "[{ methods: [GET], path: /x, scope: s }, { methods: [GET], path: /x, scope: s }]", 1), "upstreams[0].routes[1].methods[0]: GET /x is already routed"},
		{"bad origin", base + "oauth_cors: { origins: [https://app.example.com/path] }\n", `oauth_cors.origins[0]: "https://app.example.com/path" is not an origin`},
		{"bad proxy", base + "trusted_proxies: [10.0.0.0/33]\n", `keygate.yaml:9: trusted_proxies[0]: invalid IP address or CIDR prefix "10.0.0.0/33"`},
		{"negative proof window", base + "dpop: { proof_window: -1s }\n", "dpop.proof_window: must be positive"},
		{"audit buffer", base + "audit: { buffer: -1 }\n", "audit.buffer: must be at least 1"},
		{"limit both", base + "limits:\n  - { name: a, key: ip, rate: 1/s, quota: 5/1h }\n", "keygate.yaml:10: limits[0]: needs exactly one of rate or quota"},
		{"limit neither", base + "limits:\n  - { name: a, key: ip }\n", "limits[0]: needs exactly one of rate or quota"},
		{"limit bad key", base + "limits:\n  - { name: a, key: user, rate: 1/s }\n", "limits[0].key: must be one of subject, client, ip, token"},
		{"limit negative burst", base + "limits:\n  - { name: a, key: ip, rate: 1/s, burst: -1 }\n", "limits[0].burst: must be at least 1"},
		{"quota with burst", base + "limits:\n  - { name: a, key: ip, quota: 1/1h, burst: 3 }\n", "limits[0].burst: only used with rate"},
		{"limit unknown upstream", base + "limits:\n  - { name: a, key: ip, rate: 1/s, upstream: nope }\n", `limits[0].upstream: no upstream named "nope"`},
		{"duplicate limit", base + "limits:\n  - { name: a, key: ip, rate: 1/s }\n  - { name: a, key: ip, rate: 2/s }\n", `limits[1].name: duplicate limit "a"`},
		{"block bad key", base + "blocks:\n  - { name: a, key: client, when: limit_hits > 1 in 1m, block_for: 1h }\n", "blocks[0].key: must be subject or ip"},
		{"block no when", base + "blocks:\n  - { name: a, key: ip, block_for: 1h }\n", "blocks[0].when: required"},
		{"block no block_for", base + "blocks:\n  - { name: a, key: ip, when: limit_hits > 1 in 1m }\n", "blocks[0].block_for: must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "keygate.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = c.Validate()
			if err == nil {
				t.Fatalf("Validate succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tc.want)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not an *Error", err)
			}
		})
	}
}

func TestValidateBaseIsValid(t *testing.T) {
	c, err := Parse([]byte(base), "keygate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := Parse([]byte("issuer: ftp://x\nlisten: nope\naudit: { buffer: -2 }\n"), "keygate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`keygate.yaml:1: issuer: "ftp://x" must be an absolute http or https URL`,
		`keygate.yaml:2: listen: "nope" is not host:port`,
		`keygate.yaml:3: audit.buffer: must be at least 1`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEYGATE_DATABASE": "postgres://kg:hunter2hunter2@db/kg"}
	c, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Database, env["KEYGATE_DATABASE"]; got != want {
		t.Errorf("database: got %q, want %q", got, want)
	}

	env["KEYGATE_DATABASE"] = "postgres://kg:hunter2hunter2@/kg"
	_, err = Load(path, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("Load with a host-less DSN succeeded")
	}
	if got, want := err.Error(), "database (from KEYGATE_DATABASE): postgres URL has no host"; got != want {
		t.Errorf("error: got %q, want %q", got, want)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the password", err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

func TestDevConfig(t *testing.T) {
	c := DevConfig("127.0.0.1:8080", "127.0.0.1:9090", "./keygate-dev")
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "http://127.0.0.1:8080"},
		{"database", c.Database, "sqlite://./keygate-dev/keygate.db"},
		{"master key", c.MasterKeyFile, "./keygate-dev/master.key"},
		{"idp", c.IdentityProviders[0], IdentityProvider{Name: "dev", Issuer: "http://127.0.0.1:8080/dev", Audiences: []string{"dev-app"}, JWKSURI: "http://127.0.0.1:8080/dev/jwks.json", Algorithms: []string{"ES256"}}},
		{"echo url", c.Upstreams[0].URL, "http://echo.invalid"},
		{"secret names", c.SecretNames(), []string{"clients/dev-backend", "echo-key"}},
		{"limit", c.Limits[0].Rate.PerSecond, 100.0},
		{"burst", c.Limits[0].Burst, 100},
		{"reuse grace", c.Tokens.RefreshReuseGrace.Std(), DefaultRefreshReuseGrace},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	app, ok := c.Client("dev-app")
	if !ok || app.Type != ClientPublic || !app.HasGrant(GrantRefreshToken) || app.RequireDPoP {
		t.Errorf("dev-app: got %+v", app)
	}
	backend, ok := c.Client("dev-backend")
	if !ok || !backend.HasScope(ScopeCapabilityMint) || !backend.HasScope(ScopeIntrospect) {
		t.Errorf("dev-backend: got %+v", backend)
	}

	v6 := DevConfig("[::1]:8080", "[::1]:9090", "/tmp/kg")
	if err := v6.Validate(); err != nil {
		t.Errorf("IPv6 dev config: %v", err)
	}
}

func TestGrammar(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		tests := []struct {
			in      string
			want    Size
			wantErr bool
		}{
			{"0", 0, false},
			{"1024", 1024, false},
			{"512KiB", 512 * KiB, false},
			{"1MiB", MiB, false},
			{"2GiB", 2 * GiB, false},
			{"1MB", 0, true},
			{"1.5MiB", 0, true},
			{"MiB", 0, true},
			{" 1MiB", 0, true},
			{"+1", 0, true},
			{"99999999999GiB", 0, true},
			{"", 0, true},
		}
		for _, tc := range tests {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseSize(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err == nil {
				if back, _ := ParseSize(got.String()); back != got {
					t.Errorf("ParseSize(%q).String() = %q does not round-trip", tc.in, got.String())
				}
			}
		}
	})
	t.Run("rate", func(t *testing.T) {
		tests := []struct {
			in        string
			perSecond float64
			burst     int
			wantErr   bool
		}{
			{"60/m", 1, 1, false},
			{"600/m", 10, 10, false},
			{"100/s", 100, 100, false},
			{"1/h", 1.0 / 3600, 1, false},
			{"90/m", 1.5, 2, false},
			{"0/s", 0, 0, true},
			{"1/d", 0, 0, true},
			{"-1/s", 0, 0, true},
			{"1.5/s", 0, 0, true},
			{"/s", 0, 0, true},
			{"10", 0, 0, true},
		}
		for _, tc := range tests {
			got, err := ParseRate(tc.in)
			if (err != nil) != tc.wantErr {
				t.Errorf("ParseRate(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
				continue
			}
			if err == nil && (got.PerSecond != tc.perSecond || got.DefaultBurst() != tc.burst || got.Raw != tc.in) {
				t.Errorf("ParseRate(%q) = %+v (burst %d), want %v/s burst %d", tc.in, got, got.DefaultBurst(), tc.perSecond, tc.burst)
			}
		}
	})
	t.Run("quota", func(t *testing.T) {
		tests := []struct {
			in      string
			want    Quota
			wantErr bool
		}{
			{"1000/24h", Quota{Raw: "1000/24h", N: 1000, Window: 24 * time.Hour}, false},
			{"5/90s", Quota{Raw: "5/90s", N: 5, Window: 90 * time.Second}, false},
			{"5/0s", Quota{}, true},
			{"5/-1h", Quota{}, true},
			{"0/1h", Quota{}, true},
			{"1000", Quota{}, true},
		}
		for _, tc := range tests {
			got, err := ParseQuota(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseQuota(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		}
	})
	t.Run("block condition", func(t *testing.T) {
		tests := []struct {
			in      string
			want    BlockCondition
			wantErr bool
		}{
			{"limit_hits > 100 in 10m", BlockCondition{Raw: "limit_hits > 100 in 10m", Metric: MetricLimitHits, Threshold: 100, Window: 10 * time.Minute}, false},
			{"auth_failures>50 in 5m", BlockCondition{Raw: "auth_failures>50 in 5m", Metric: MetricAuthFailures, Threshold: 50, Window: 5 * time.Minute}, false},
			{"auth_failures > 50 within 5m", BlockCondition{}, true},
			{"auth_failures < 50 in 5m", BlockCondition{}, true},
			{"auth_failures > -1 in 5m", BlockCondition{}, true},
			{"auth_failures > 1 in 0s", BlockCondition{}, true},
			{"auth_failures > > 1 in 5m", BlockCondition{}, true},
			{"", BlockCondition{}, true},
		}
		for _, tc := range tests {
			got, err := ParseBlockCondition(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseBlockCondition(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		}
	})
}

func TestJWKSAsJSONString(t *testing.T) {
	y := base + `  - id: b
    type: confidential
    auth: private_key_jwt
    jwks: '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"jawuTs9AX85EPz6lfyOdVsrkLwDm-Fc31vZbgW_b75E"}]}'
    grant_types: [client_credentials]
`
	c, err := Parse([]byte(y), "keygate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := string(c.Clients[1].JWKS); !strings.HasPrefix(got, `{"keys"`) {
		t.Errorf("jwks: got %s", got)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("trusted_proxies: *a9\n")
	start := time.Now()
	if _, err := Parse([]byte(b.String()), "keygate.yaml"); err == nil {
		t.Fatal("Parse succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("alias expansion took %v", d)
	}
}
