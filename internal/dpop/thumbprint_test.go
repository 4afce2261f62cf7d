package dpop

import (
	"strings"
	"testing"
)

func TestThumbprint(t *testing.T) {
	cases := []struct {
		name, jwk, want string
	}{
		{
			// RFC 7638 §3.1.
			name: "RFC 7638 RSA example",
			jwk: `{"kty": "RSA",
      "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      "e": "AQAB",
      "alg": "RS256",
      "kid": "2011-04-29"}`,
			want: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		},
		{
			// RFC 9449 §4.1 proof key and its jkt in §6.1.
			name: "RFC 9449 EC example",
			jwk:  `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`,
			want: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		},
		{
			// RFC 8037 Appendix A.3.
			name: "RFC 8037 Ed25519 example",
			jwk:  `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`,
			want: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
		},
		{
			name: "private members do not count",
			jwk:  `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"sig"}`,
			want: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Thumbprint([]byte(c.jwk))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("Thumbprint = %q, want %q", got, c.want)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"kty":"oct","k":"c2VjcmV0"}`, `{"kty":"EC","crv":"P-256","x":"a"}`, `{"kty":"RSA","n":"x"}`, `{"kty":"EC","kty":"EC"}`, `{"kty":1}`} {
		if got, err := Thumbprint([]byte(bad)); err == nil {
			t.Errorf("Thumbprint(%s) = %q, want error", bad, got)
		}
	}
}

func TestThumbprintMatchesHandCanonicalisation(t *testing.T) {
	for _, k := range []*testKey{newES256Key(t), newEdDSAKey(t)} {
		got, err := Thumbprint([]byte(mustJSON(t, k.jwk)))
		if err != nil {
			t.Fatal(err)
		}
		if want := thumbprintOf(k.jwk); got != want {
			t.Errorf("%s: Thumbprint = %q, want %q", k.alg, got, want)
		}
	}
}

func TestNormalizeURI(t *testing.T) {
	cases := []struct{ in, want string }{
		{"HTTP://Example.COM:80/a/./b/../c", "http://example.com/a/c"},
		{"https://example.com", "https://example.com/"},
		{"https://example.com:443", "https://example.com/"},
		{"https://example.com:", "https://example.com/"},
		{"https://example.com:8443/x", "https://example.com:8443/x"},
		{"https://example.com:08443/x", "https://example.com:8443/x"},
		{"http://example.com:443/x", "http://example.com:443/x"},
		{"https://example.com/a?b=c#d", "https://example.com/a"},
		{"https://example.com?x", "https://example.com/"},
		{"https://example.com/%7euser/%2f%2Fx", "https://example.com/~user/%2F%2Fx"},
		{"https://example.com/%41%62", "https://example.com/Ab"},
		{"https://example.com/a/%2e%2E/b", "https://example.com/b"},
		{"https://example.com/a/b/..", "https://example.com/a/"},
		{"https://example.com/a/.", "https://example.com/a/"},
		{"https://example.com/../../x", "https://example.com/x"},
		{"https://example.com/a//b", "https://example.com/a//b"},
		{"https://example.com/.well-known/x", "https://example.com/.well-known/x"},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://[2001:db8::1]:8080", "https://[2001:db8::1]:8080/"},
	}
	for _, c := range cases {
		got, err := normalizeURI(c.in)
		if err != nil || got != c.want {
			t.Errorf("normalizeURI(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{
		"", "/path", "example.com/x", "ftp://example.com/", "https://", "https:///x", "https://u:p@example.com/",
		"https://example.com:99999/", "https://example.com:8a/", "https://exa mple.com/", "https://example.com/a b",
		"https://example.com/%zz", "https://example.com/%4", "https://exämple.com/", "https://example.com/\x00",
		"https://[::1/", "https://[::1]x/", "https://%41.com/",
	} {
		if got, err := normalizeURI(bad); err == nil {
			t.Errorf("normalizeURI(%q) = %q, want error", bad, got)
		}
	}
}

func FuzzNormalizeURI(f *testing.F) {
	for _, s := range []string{"HTTP://Example.COM:80/a/./b/../c", "https://[::1]:443/%2e%2E/%7e", "https://x/a/b/..?q#f", "http://h:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeURI(s)
		if err != nil {
			return
		}
		// The normal form is a fixed point.
		n2, err := normalizeURI(n)
		if err != nil || n2 != n {
			t.Fatalf("normalizeURI(%q) = %q, then %q, %v", s, n, n2, err)
		}
		if strings.ContainsAny(n, "?#") {
			t.Fatalf("normal form %q keeps query or fragment", n)
		}
	})
}
