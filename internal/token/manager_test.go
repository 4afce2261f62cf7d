package token

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

type jwksDoc struct {
	Keys []map[string]any `json:"keys"`
}

func parseJWKS(t *testing.T, b []byte) (kids []string) {
	t.Helper()
	var doc jwksDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	for _, k := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v has private member %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || k["alg"] == nil {
			t.Errorf("JWKS key %v lacks use/alg", k["kid"])
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func states(t *testing.T, st store.Store) map[string][]string {
	t.Helper()
	keys, err := st.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range keys {
		out[k.State] = append(out[k.State], k.KID)
	}
	return out
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			m := loadedManager(t, openStore(t), newFakeVault(), alg, clk)
			c := validClaims(clk.Now())
			c.SID, c.ACR, c.AuthTime, c.JKT = "fam", "urn:mace:incommon:iap:silver", 1700000000, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
			tok, err := m.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseHeader(strings.Split(tok, ".")[0])
			if err != nil {
				t.Fatalf("header of a minted token: %v", err)
			}
			if h.Typ != "at+jwt" || h.Alg != alg || h.Kid != m.CurrentKID() {
				t.Errorf("header = %+v, want typ at+jwt, alg %s, kid %s", h, alg, m.CurrentKID())
			}
			v := NewVerifier(m, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
			got, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			c.IssuedAt, c.Expiry = c.IssuedAt.Truncate(time.Second), c.Expiry.Truncate(time.Second)
			if *got != c {
				t.Errorf("Verify = %+v\nwant      %+v", *got, c)
			}
		})
	}
}

func TestSignDefaultsAndRequired(t *testing.T) {
	clk := newClock()
	m := loadedManager(t, openStore(t), newFakeVault(), AlgES256, clk)
	v := NewVerifier(m, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
	tok, err := m.Sign(AccessClaims{Issuer: testIssuer, Subject: "client:b", Audience: testIssuer, ClientID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.JTI) != 22 || !got.IssuedAt.Equal(clk.Now()) || !got.Expiry.Equal(clk.Now().Add(5*time.Minute)) {
		t.Errorf("defaults: %+v", got)
	}
	if _, err := m.Sign(AccessClaims{Issuer: testIssuer, Subject: "s", Audience: testIssuer}); err == nil {
		t.Error("Sign without client_id succeeded")
	}
	if _, err := NewManager(openStore(t), newFakeVault(), ManagerConfig{}, nil, nil).Sign(validClaims(clk.Now())); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("Sign before Load: %v, want ErrNotLoaded", err)
	}
}

func TestLoadCreatesKeysOnce(t *testing.T) {
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	const nodes = 6
	ms := make([]*Manager, nodes)
	var wg sync.WaitGroup
	for i := range ms {
		ms[i] = NewManager(st, fv, ManagerConfig{}, clk.Now, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ms[i].Load(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s := states(t, st)
	if len(s[store.SigningKeyCurrent]) != 1 || len(s[store.SigningKeyNext]) != 1 || len(s[store.SigningKeyRetired]) != 0 {
		t.Fatalf("after concurrent Load: %v", s)
	}
	for i, m := range ms {
		if m.CurrentKID() != s[store.SigningKeyCurrent][0] {
			t.Errorf("node %d signs with %s, want %s", i, m.CurrentKID(), s[store.SigningKeyCurrent][0])
		}
	}
	if fv.Len() != 2 {
		t.Errorf("vault holds %d signing keys, want 2 (losers' keys discarded)", fv.Len())
	}
	// Loading again changes nothing.
	if err := ms[0].Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s2 := states(t, st); s2[store.SigningKeyCurrent][0] != s[store.SigningKeyCurrent][0] || s2[store.SigningKeyNext][0] != s[store.SigningKeyNext][0] {
		t.Errorf("second Load changed keys: %v → %v", s, s2)
	}
}

func TestRotation(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	m := loadedManager(t, st, fv, AlgES256, clk)
	v := NewVerifier(m, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer, CacheSize: -1}, clk.Now)
	old := m.CurrentKID()
	next := states(t, st)[store.SigningKeyNext][0]
	if kids := parseJWKS(t, m.JWKS()); len(kids) != 2 || kids[0] != old || kids[1] != next {
		t.Fatalf("JWKS kids = %v, want [current next] = [%s %s]", kids, old, next)
	}
	oldTok, err := m.Sign(validClaims(clk.Now()))
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	s := states(t, st)
	if m.CurrentKID() != next || s[store.SigningKeyCurrent][0] != next || s[store.SigningKeyRetired][0] != old {
		t.Fatalf("after Rotate: current %s, states %v; want next %s promoted and %s retired", m.CurrentKID(), s, next, old)
	}
	newNext := s[store.SigningKeyNext][0]
	if kids := parseJWKS(t, m.JWKS()); len(kids) != 3 || kids[0] != next || kids[1] != newNext || kids[2] != old {
		t.Errorf("JWKS kids = %v, want [current next retired]", kids)
	}
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
	newTok, _ := m.Sign(validClaims(clk.Now()))
	if h, _ := parseHeader(strings.Split(newTok, ".")[0]); h.Kid != next {
		t.Errorf("new tokens signed by %s, want %s", h.Kid, next)
	}

	// The retired key stays published for access TTL + grace, then goes.
	clk.Advance(5*time.Minute + RetiredGrace - time.Second)
	m.tick(ctx)
	if kids := parseJWKS(t, m.JWKS()); len(kids) != 3 {
		t.Errorf("retired key dropped early: %v", kids)
	}
	clk.Advance(2 * time.Second)
	m.tick(ctx)
	if kids := parseJWKS(t, m.JWKS()); len(kids) != 2 {
		t.Errorf("retired key still published after grace: %v", kids)
	}
	if s := states(t, st); len(s[store.SigningKeyRetired]) != 0 {
		t.Errorf("retired key not pruned from the table: %v", s)
	}
	if _, _, err := fv.Get(ctx, vaultPrefix+old); err == nil {
		t.Errorf("retired key's private key still in the vault")
	}
	if fv.Len() != 2 {
		t.Errorf("vault holds %d keys, want 2", fv.Len())
	}
}

func TestAutomaticRotation(t *testing.T) {
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	m := loadedManager(t, st, fv, AlgEdDSA, clk)
	first := m.CurrentKID()
	clk.Advance(24*time.Hour - time.Second)
	m.tick(t.Context())
	if m.CurrentKID() != first {
		t.Fatal("rotated before the rotation period")
	}
	clk.Advance(time.Second)
	m.tick(t.Context())
	if m.CurrentKID() == first {
		t.Fatal("did not rotate after the rotation period")
	}
	// A second node that has not refreshed yet runs its tick too: it must
	// not rotate again.
	other := NewManager(st, fv, ManagerConfig{Rotation: 24 * time.Hour}, clk.Now, nil)
	other.snap.Store(&keySet{kid: first, activatedAt: testT0})
	if _, err := other.rotateLocked(t.Context(), first, true); err != nil {
		t.Fatal(err)
	}
	if s := states(t, st); len(s[store.SigningKeyRetired]) != 1 {
		t.Errorf("stale node rotated again: %v", s)
	}
}

func TestConcurrentRotateRotatesOnce(t *testing.T) {
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	a := loadedManager(t, st, fv, AlgES256, clk)
	b := loadedManager(t, st, fv, AlgES256, clk)
	if a.CurrentKID() != b.CurrentKID() {
		t.Fatal("managers disagree after Load")
	}
	var wg sync.WaitGroup
	for _, m := range []*Manager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Rotate(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s := states(t, st)
	if len(s[store.SigningKeyRetired]) != 1 || len(s[store.SigningKeyCurrent]) != 1 || len(s[store.SigningKeyNext]) != 1 {
		t.Fatalf("after two concurrent rotations: %v, want exactly one rotation", s)
	}
	if a.CurrentKID() != s[store.SigningKeyCurrent][0] || b.CurrentKID() != a.CurrentKID() {
		t.Errorf("current: a %s, b %s, db %s", a.CurrentKID(), b.CurrentKID(), s[store.SigningKeyCurrent][0])
	}
	if fv.Len() != 3 {
		t.Errorf("vault holds %d keys, want 3 (loser's key discarded)", fv.Len())
	}
}

func TestManagersAgreeAfterRefresh(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	a := loadedManager(t, st, fv, AlgES256, clk)
	b := loadedManager(t, st, fv, AlgES256, clk)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if a.CurrentKID() == b.CurrentKID() {
		t.Fatal("b learned of the rotation without refreshing")
	}
	// Before b refreshes, a token from a's new key still verifies on b:
	// the unknown kid makes b reload.
	vb := NewVerifier(b, nil, VerifierConfig{Issuer: testIssuer, Audience: testIssuer}, clk.Now)
	tok, _ := a.Sign(validClaims(clk.Now()))
	if _, err := vb.Verify(ctx, tok); err != nil {
		t.Errorf("b verifying a's token after a's rotation: %v", err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a.CurrentKID() != b.CurrentKID() {
		t.Errorf("after Refresh: a %s, b %s", a.CurrentKID(), b.CurrentKID())
	}
	if string(a.JWKS()) != string(b.JWKS()) {
		t.Errorf("JWKS differ:\n%s\n%s", a.JWKS(), b.JWKS())
	}
}

func TestJWKSHandler(t *testing.T) {
	m := loadedManager(t, openStore(t), newFakeVault(), AlgES256, newClock())
	srv := httptest.NewServer(m.JWKSHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc jwksDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "public, max-age=300" || len(doc.Keys) != 2 {
		t.Errorf("status %d, headers %v, %d keys", resp.StatusCode, resp.Header, len(doc.Keys))
	}
	resp2, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", resp2.StatusCode)
	}
}

// TestPrivateKeyMismatch: a vault secret that is not the key its row
// names is refused rather than used to sign.
func TestPrivateKeyMismatch(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	st, fv := openStore(t), newFakeVault()
	m := loadedManager(t, st, fv, AlgES256, clk)
	cur := m.CurrentKID()
	next := states(t, st)[store.SigningKeyNext][0]
	fv.mu.Lock()
	fv.m[vaultPrefix+next] = fv.m[vaultPrefix+cur]
	fv.mu.Unlock()
	fresh := NewManager(st, fv, ManagerConfig{}, clk.Now, nil)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Rotate(ctx); err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Errorf("Rotate onto a swapped private key: err = %v, want a thumbprint mismatch", err)
	}
}
