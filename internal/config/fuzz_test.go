package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		base,
		"",
		"---\n---\n",
		"issuer: [a\n",
		"listn: :80\n",
		"tokens: { access_token_ttl: 5 minutes }\n",
		"upstreams: [{ name: dev, max_request_body: 99999999999GiB }]\n",
		"limits: [{ name: a, rate: 60/d, quota: 1/0s }]\n",
		"blocks: [{ when: 'limit_hits > > 1 in 1m' }]\n",
		"clients: [{ jwks: { keys: [{ kty: oct, k: AA }] } }]\n",
		"clients: [{ jwks: '{\"keys\": [1]}' }]\n",
		"clients: [{ jwks: { 1: 2, .inf: x } }]\n",
		"a: &a [1, 2]\nb: *a\ntrusted_proxies: *a\n",
		"tokens:\n  <<: { signing_alg: ES256 }\n",
		"issuer: !!binary aGVsbG8=\n",
		"audit: { buffer: 0x10 }\n",
		"dpop: { nonce: yes }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "keygate.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			return
		}
		// Validate and the helpers must cope with any config Parse accepts.
		_ = c.Validate()
		_ = c.SecretNames()
		_ = c.TrustedProxyPrefixes()
	})
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"sqlite://keygate.db",
		"sqlite:///var/lib/keygate/keygate.db",
		"sqlite://",
		"sqlite://a?b",
		"postgres://kg:pw@db:5432/kg?sslmode=disable",
		"postgresql://db/kg",
		"postgres:///kg?host=/tmp",
		"postgres://kg:p%zz@db/kg",
		"postgres://[::1/kg",
		"mysql://x",
		"",
		"\x00",
	} {
		f.Add(s)
	}
	const marker = "Zq8xPasswordMarker"
	f.Fuzz(func(t *testing.T, dsn string) {
		d, err := ParseDSN(dsn)
		if err == nil {
			switch d.Driver {
			case DriverSQLite:
				if d.Path == "" || "sqlite://"+d.Path != dsn {
					t.Fatalf("ParseDSN(%q) = %+v does not round-trip", dsn, d)
				}
			case DriverPostgres:
				if d.URL != dsn {
					t.Fatalf("ParseDSN(%q) = %+v does not keep the URL", dsn, d)
				}
			default:
				t.Fatalf("ParseDSN(%q) = %+v: unknown driver", dsn, d)
			}
			again, err := ParseDSN(dsn)
			if err != nil || again != d {
				t.Fatalf("ParseDSN(%q) not deterministic", dsn)
			}
		}
		// Wrap the input around a password: no error may ever show it.
		for _, wrapped := range []string{
			"postgres://u:" + marker + dsn,
			"postgres://u:" + dsn + marker + "@h/db",
			"postgresql://" + dsn + ":" + marker + "@" + dsn,
			dsn + "://u:" + marker + "@h",
		} {
			if _, err := ParseDSN(wrapped); err != nil && strings.Contains(err.Error(), marker) {
				t.Fatalf("ParseDSN(%q) error %q shows the password", wrapped, err)
			}
		}
	})
}
