package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzVerify(f *testing.F) {
	keys := newTestKeys(f)
	now := testT0
	valid := craft(f, map[string]any{"alg": "ES256", "kid": keys.ecKID, "typ": "at+jwt"},
		map[string]any{"iss": testIssuer, "sub": "s", "aud": testIssuer, "client_id": "c", "jti": "j",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, es256Signer(keys.ec))
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	v := NewVerifier(keys.source, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, func() time.Time { return now })
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(t.Context(), raw)
		if raw == valid {
			return
		}
		if err == nil || c != nil {
			t.Fatalf("Verify accepted an input that is not the signed token: %q", raw)
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error %v does not wrap ErrInvalidToken", err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`{"alg":"ES256","kid":"k","typ":"at+jwt"}`,
		`{"alg":"ES256","kid":"k","typ":"at+jwt","crit":["b64"],"b64":false}`,
		`{"alg":"none"}`, `{"ALG":"ES256","kid":"k","typ":"at+jwt"}`, `[]`, `null`, `{"alg":1}`,
	} {
		f.Add(b64e([]byte(s)))
	}
	f.Fuzz(func(t *testing.T, seg string) {
		h, err := parseHeader(seg)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if h.Alg != AlgES256 && h.Alg != AlgEdDSA || h.Kid == "" {
			t.Fatalf("accepted header %+v", h)
		}
	})
}
