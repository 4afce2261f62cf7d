package token

import (
	"testing"
	"time"
)

// Baseline: a bare ES256 signature check, the floor for a cold Verify.
func benchSetup(b *testing.B, alg string) (*Manager, *Verifier, string) {
	clk := newClock()
	m := loadedManager(b, openStore(b), newFakeVault(), alg, clk)
	rev := NewRevocations(openStore(b), clk.Now, nil)
	v := NewVerifier(m, rev, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, time.Now)
	c := validClaims(time.Now())
	c.SID, c.JKT = "fam", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	tok, err := m.Sign(c)
	if err != nil {
		b.Fatal(err)
	}
	return m, v, tok
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			m, _, _ := benchSetup(b, alg)
			c := validClaims(time.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCold(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			_, v, tok := benchSetup(b, alg)
			v.cache = nil
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	_, v, tok := benchSetup(b, AlgES256)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyCachedSerial(b *testing.B) {
	_, v, tok := benchSetup(b, AlgES256)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
