package oauth

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keygate/keygate/internal/httpapi"
)

func FuzzParseForm(f *testing.F) {
	for _, seed := range []struct{ ct, query, body string }{
		{"application/x-www-form-urlencoded", "", "grant_type=client_credentials&scope=a+b"},
		{"application/x-www-form-urlencoded; charset=UTF-8", "x=1", "a=1&a=2"},
		{"application/x-www-form-urlencoded", "client_secret=s", "a=%zz"},
		{"application/json", "", `{"a":1}`},
		{"application/x-www-form-urlencoded", "", "resource=x&resource=y&=&a;b=c"},
		{"", "", ""},
	} {
		f.Add(seed.ct, seed.query, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		err := checkContentType(ct)
		if err == nil {
			err = checkQuery(query)
		}
		var fm form
		if err == nil {
			fm, err = parseBody(body, "resource")
		}
		if err != nil {
			if _, ok := errors.AsType[*httpapi.OAuthError](err); !ok {
				t.Fatalf("error %v is not an OAuth error", err)
			}
			return
		}
		// Every accepted single parameter occurred exactly once.
		vals, perr := url.ParseQuery(string(body))
		if perr != nil {
			t.Fatalf("accepted a body url.ParseQuery refuses: %v", perr)
		}
		for k, v := range fm.one {
			if len(vals[k]) != 1 || vals[k][0] != v || v == "" {
				t.Fatalf("parameter %q = %q from %q", k, v, vals[k])
			}
		}
		if q, _ := url.ParseQuery(query); q.Has("client_secret") {
			t.Fatal("client_secret in the query was accepted")
		}
	})
}

func FuzzClientAssertion(f *testing.F) {
	fx := newFixture(f)
	fx.clock.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := fx.assertion(f, nil)
	f.Add(valid)
	f.Add(fx.assertion(f, func(_ *jwt.Claims, o *jose.SignerOptions) { o.EmbedJWK = true }))
	f.Add(fx.assertion(f, func(c *jwt.Claims, _ *jose.SignerOptions) { c.Audience = jwt.Audience{"x"} }))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJqd3RjIiwic3ViIjoiand0YyJ9.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		c, claims, err := fx.oauth.verifyAssertion(t.Context(), raw, "", fx.clock.now())
		if err != nil {
			if c != nil || claims != nil {
				t.Fatal("error with a result")
			}
			if oe, ok := errors.AsType[*httpapi.OAuthError](err); !ok || oe.Code != "invalid_client" {
				t.Fatalf("error %v is not invalid_client", err)
			}
			return
		}
		// Only a token signed by jwtc's key can verify: the seed itself.
		if c.ID != "jwtc" || raw != valid {
			t.Fatalf("accepted %q for %s", raw, c.ID)
		}
	})
}
