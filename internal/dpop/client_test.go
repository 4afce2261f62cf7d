package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
)

// A small DPoP client, written independently of the verifier: it builds
// proofs with encoding/json and the stdlib signers, and lets a test bend
// any part of them.

var enc = base64.RawURLEncoding

type testKey struct {
	alg  string
	jwk  map[string]any
	sign func(t testing.TB, input []byte) []byte
}

func newES256Key(t testing.TB) *testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{
		alg: "ES256",
		jwk: map[string]any{"kty": "EC", "crv": "P-256", "x": enc.EncodeToString(pt[1:33]), "y": enc.EncodeToString(pt[33:])},
		sign: func(t testing.TB, input []byte) []byte {
			d := sha256.Sum256(input)
			r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
			if err != nil {
				t.Fatal(err)
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig
		},
	}
}

func newEdDSAKey(t testing.TB) *testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{
		alg:  "EdDSA",
		jwk:  map[string]any{"kty": "OKP", "crv": "Ed25519", "x": enc.EncodeToString(pub)},
		sign: func(_ testing.TB, input []byte) []byte { return ed25519.Sign(priv, input) },
	}
}

func newRS256Key(t testing.TB) *testKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{
		alg: "RS256",
		jwk: map[string]any{"kty": "RSA", "n": enc.EncodeToString(priv.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(priv.E)).Bytes())},
		sign: func(t testing.TB, input []byte) []byte {
			d := sha256.Sum256(input)
			sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:])
			if err != nil {
				t.Fatal(err)
			}
			return sig
		},
	}
}

func hs256Sign(key []byte) func(testing.TB, []byte) []byte {
	return func(_ testing.TB, input []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(input)
		return m.Sum(nil)
	}
}

// thumbprintOf computes the RFC 7638 thumbprint by hand from the jwk map.
func thumbprintOf(jwk map[string]any) string {
	var s string
	switch jwk["kty"] {
	case "EC":
		s = `{"crv":"` + jwk["crv"].(string) + `","kty":"EC","x":"` + jwk["x"].(string) + `","y":"` + jwk["y"].(string) + `"}`
	case "OKP":
		s = `{"crv":"` + jwk["crv"].(string) + `","kty":"OKP","x":"` + jwk["x"].(string) + `"}`
	case "RSA":
		s = `{"e":"` + jwk["e"].(string) + `","kty":"RSA","n":"` + jwk["n"].(string) + `"}`
	}
	sum := sha256.Sum256([]byte(s))
	return enc.EncodeToString(sum[:])
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return enc.EncodeToString(sum[:])
}

// proofSpec is one proof to build. The zero value of each hook leaves the
// proof valid.
type proofSpec struct {
	key       *testKey
	header    map[string]any // starts as typ, alg, jwk
	claims    map[string]any // starts as jti, htm, htu, iat
	rawHeader string         // when set, replaces the JSON header
	rawClaims string         // when set, replaces the JSON claims
	sign      func(testing.TB, []byte) []byte
}

func newSpec(key *testKey, htm, htu string, iat int64) *proofSpec {
	jwk := map[string]any{}
	for k, v := range key.jwk {
		jwk[k] = v
	}
	return &proofSpec{
		key:    key,
		header: map[string]any{"typ": "dpop+jwt", "alg": key.alg, "jwk": jwk},
		claims: map[string]any{"jti": randomJTI(), "htm": htm, "htu": htu, "iat": iat},
	}
}

func (p *proofSpec) build(t testing.TB) string {
	t.Helper()
	h, c := []byte(p.rawHeader), []byte(p.rawClaims)
	var err error
	if p.rawHeader == "" {
		if h, err = json.Marshal(p.header); err != nil {
			t.Fatal(err)
		}
	}
	if p.rawClaims == "" {
		if c, err = json.Marshal(p.claims); err != nil {
			t.Fatal(err)
		}
	}
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sign := p.sign
	if sign == nil {
		sign = p.key.sign
	}
	return input + "." + enc.EncodeToString(sign(t, []byte(input)))
}

func randomJTI() string {
	var b [12]byte
	rand.Read(b[:])
	return enc.EncodeToString(b[:])
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
