package idp

import (
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keygate/keygate/internal/config"
)

// FuzzVerify: no input panics, and nothing but the one signed seed token
// verifies. The provider's keys are preloaded so no network is involved.
func FuzzVerify(f *testing.F) {
	rs, _, es := testKeys(f)
	iss := "https://idp.example.test"
	claims := map[string]any{"iss": iss, "sub": "alice", "aud": "app", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	valid := craft(f, hdr(es), claims, es.sign)
	f.Add(valid)
	f.Add(craft(f, with(hdr(rs), "alg", "none"), claims, func([]byte) []byte { return nil }))
	f.Add(craft(f, with(hdr(es), "jku", "https://x"), claims, es.sign))
	f.Add("a.b.c")
	f.Add("..")
	v := New([]config.IdentityProvider{{Name: "x", Issuer: iss, Audiences: []string{"app"}, Algorithms: []string{"RS256", "ES256"}}},
		nil, func() time.Time { return t0 }, nil)
	p := v.byIssuer[iss]
	p.keys = []jose.JSONWebKey{
		{Key: rs.priv.Public(), KeyID: rs.kid, Algorithm: rs.alg, Use: "sig"},
		{Key: es.priv.Public(), KeyID: es.kid, Algorithm: es.alg, Use: "sig"},
	}
	p.fetchedAt, p.lastAttempt = t0, t0 // no fetches during the run
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(t.Context(), raw)
		if raw == valid {
			return
		}
		if err == nil || id != nil {
			t.Fatalf("verified an input that is not the signed token: %q", raw)
		}
		if !errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("error %v does not wrap ErrInvalidIDToken", err)
		}
	})
}
