package app_test

import (
	"net/http"
	"net/url"
	"testing"
)

// A capability minted with dpop_jkt is used as Bearer with a DPoP proof of
// that key over the capability token; another key's proof or no proof is
// refused and spends nothing.
func TestDPoPBoundCapability(t *testing.T) {
	s := startDev(t, "sqlite", nil)
	k, other := newES256Key(t), newEd25519Key(t)
	c := s.mustMint(t, url.Values{"subject": {"dev|ivy"}, "scope": {"echo"}, "max_uses": {"2"}, "dpop_jkt": {k.jkt}})
	htu := s.URL + "/echo/x"
	call := func(proof string) int {
		h := http.Header{"Authorization": {"Bearer " + c.CapabilityToken}}
		if proof != "" {
			h.Set("DPoP", proof)
		}
		res, _ := s.do(t, "GET", "/echo/x", h, "")
		return res.StatusCode
	}
	if got := call(""); got != 401 {
		t.Errorf("without proof: %d, want 401", got)
	}
	if got := call(other.proof(t, "GET", htu, proofOpts{accessToken: c.CapabilityToken})); got != 401 {
		t.Errorf("proof of another key: %d, want 401", got)
	}
	if got := call(k.proof(t, "GET", htu, proofOpts{accessToken: "kgc_other"})); got != 401 {
		t.Errorf("proof for another token (ath): %d, want 401", got)
	}
	for i := 0; i < 2; i++ {
		if got := call(k.proof(t, "GET", htu, proofOpts{accessToken: c.CapabilityToken})); got != 200 {
			t.Fatalf("use %d with the bound key's proof: %d, want 200", i+1, got)
		}
	}
	if got := call(k.proof(t, "GET", htu, proofOpts{accessToken: c.CapabilityToken})); got != 401 {
		t.Errorf("third use of a 2-use token: %d, want 401", got)
	}
}
