package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/sqlite"
	"github.com/keygate/keygate/internal/vault"
)

const (
	testIssuer = "https://keygate.test"
)

var testT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testT0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeVault keeps secrets in memory.
type fakeVault struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newFakeVault() *fakeVault { return &fakeVault{m: map[string][]byte{}} }

func (f *fakeVault) Put(_ context.Context, name string, v vault.Secret) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[name] = append([]byte(nil), v.Reveal()...)
	return 1, nil
}

func (f *fakeVault) Get(_ context.Context, name string) (vault.Secret, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.m[name]
	if !ok {
		return vault.Secret{}, 0, fmt.Errorf("get %s: %w", name, vault.ErrNotFound)
	}
	return vault.NewSecret(b), 1, nil
}

func (f *fakeVault) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[name]; !ok {
		return fmt.Errorf("delete %s: %w", name, vault.ErrNotFound)
	}
	delete(f.m, name)
	return nil
}

func (f *fakeVault) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func loadedManager(t testing.TB, st store.Store, v SecretVault, alg string, clk *clock) *Manager {
	t.Helper()
	m := NewManager(st, v, ManagerConfig{Alg: alg, AccessTTL: 5 * time.Minute, Rotation: 24 * time.Hour}, clk.Now, nil)
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func validClaims(now time.Time) AccessClaims {
	return AccessClaims{
		Issuer: testIssuer, Subject: "google|alice", Audience: testIssuer, ClientID: "ios-app",
		Scope: "chat", JTI: NewJTI(), IssuedAt: now, Expiry: now.Add(5 * time.Minute),
	}
}

// staticKeys is a KeySource over a fixed map.
type staticKeys map[string]PublicKey

func (s staticKeys) VerificationKey(_ context.Context, kid string) (PublicKey, bool) {
	k, ok := s[kid]
	return k, ok
}

// craft builds a compact JWS from arbitrary header and claims, signed by sign.
func craft(t testing.TB, hdr, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	hb, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64e(hb) + "." + b64e(cb)
	return input + "." + b64e(sign([]byte(input)))
}

func b64e(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func es256Signer(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		d := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func edSigner(k ed25519.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte { return ed25519.Sign(k, input) }
}

// testKeys makes an ES256 and an EdDSA key with their kids.
type testKeys struct {
	ec       *ecdsa.PrivateKey
	ed       ed25519.PrivateKey
	ecKID    string
	edKID    string
	source   staticKeys
	ecPubJWK []byte
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKeys{ec: ec, ed: ed}
	k.ecKID, _ = thumbprint(ec.Public())
	k.edKID, _ = thumbprint(ed.Public())
	k.ecPubJWK, _ = publicJWK(ec.Public(), k.ecKID, AlgES256)
	k.source = staticKeys{
		k.ecKID: {Alg: AlgES256, Key: ec.Public()},
		k.edKID: {Alg: AlgEdDSA, Key: ed.Public()},
	}
	return k
}

func ecdsaSignASN1(k *testKeys, digest []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, k.ec, digest)
}
