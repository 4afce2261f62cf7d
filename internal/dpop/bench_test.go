package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"
)

// nopStore accepts every id: the database's share of the work is not
// measured here.
type nopStore struct{}

func (nopStore) Remember(context.Context, string, string, time.Time) (bool, error) { return true, nil }

func benchmarkVerify(b *testing.B, key *testKey, baseline func()) {
	// Proofs are unique per iteration (the front cache would refuse
	// repeats), so they are made before the clock starts.
	proofs := make([]string, b.N)
	for i := range proofs {
		spec := newSpec(key, "POST", testURL, t0.Unix())
		spec.claims["ath"] = athOf(testToken)
		proofs[i] = spec.build(b)
	}
	base := measure(baseline)
	v := NewVerifier(Config{}, nopStore{}, fixedNow)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, Request{Proofs: proofs[i : i+1], Method: "POST", URL: testURL, AccessToken: testToken}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if b.N > 0 {
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(perOp/base, "x-bare-verify")
	}
}

// measure returns the ns per call of f over a fixed number of calls.
func measure(f func()) float64 {
	const n = 200
	start := time.Now()
	for range n {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / n
}

// BenchmarkVerifyES256 reports, besides ns/op, the ratio to one bare
// ecdsa.Verify of the same size: the cost of everything around the crypto.
func BenchmarkVerifyES256(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256([]byte("baseline"))
	r, s, _ := ecdsa.Sign(rand.Reader, priv, d[:])
	benchmarkVerify(b, newES256Key(b), func() { ecdsa.Verify(&priv.PublicKey, d[:], r, s) })
}

// BenchmarkVerifyEdDSA reports the ratio to one bare ed25519.Verify.
func BenchmarkVerifyEdDSA(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	sig := ed25519.Sign(priv, msg)
	benchmarkVerify(b, newEdDSAKey(b), func() { ed25519.Verify(pub, msg, sig) })
}
