package dpop

import (
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary DPoP header values to a Verifier. Whatever the
// input, Verify must not panic and must not accept it: the seeds are real
// proofs, but for another URI, so only a forged signature could pass.
func FuzzVerify(f *testing.F) {
	es, ed := newES256Key(f), newEdDSAKey(f)
	const seedURL = "https://seed.example/token"
	for _, k := range []*testKey{es, ed} {
		spec := newSpec(k, "POST", seedURL, t0.Unix())
		spec.claims["ath"] = athOf(testToken)
		f.Add(spec.build(f))
	}
	spec := newSpec(es, "POST", seedURL, t0.Unix())
	spec.header["jwk"].(map[string]any)["d"] = "AAAA"
	f.Add(spec.build(f))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.")
	f.Add(`eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.eyJqdGkiOiJ4In0.AAAA`)

	v := NewVerifier(Config{}, newMemStore(fixedNow), fixedNow)
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := v.Verify(t.Context(), Request{Proofs: []string{proof}, Method: "POST", URL: testURL, AccessToken: testToken})
		if err == nil {
			t.Fatalf("accepted %q: %+v", proof, p)
		}
		if !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("error %v does not wrap ErrInvalidProof", err)
		}
	})
}
