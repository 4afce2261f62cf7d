package dpop

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is an in-memory ReplayStore with the store's semantics: exactly
// one caller sees fresh for a live id.
type memStore struct {
	mu    sync.Mutex
	m     map[string]time.Time
	now   func() time.Time
	calls atomic.Int64
}

func newMemStore(now func() time.Time) *memStore {
	return &memStore{m: map[string]time.Time{}, now: now}
}

func (s *memStore) Remember(_ context.Context, ns, id string, exp time.Time) (bool, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ns + "\x00" + id
	if old, ok := s.m[k]; ok && old.After(s.now()) {
		return false, nil
	}
	s.m[k] = exp
	return true, nil
}

// storeFunc adapts a function to ReplayStore.
type storeFunc func(ctx context.Context, ns, id string, exp time.Time) (bool, error)

func (f storeFunc) Remember(ctx context.Context, ns, id string, exp time.Time) (bool, error) {
	return f(ctx, ns, id, exp)
}

var t0 = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return t0 }

const (
	testURL    = "https://api.example.com/openai/v1/chat/completions"
	testMethod = "POST"
	testToken  = "eyJhbGciOiJFUzI1NiJ9.access.token"
)

func newTestVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	return NewVerifier(cfg, newMemStore(fixedNow), fixedNow)
}

func TestVerify(t *testing.T) {
	es := newES256Key(t)
	ed := newEdDSAKey(t)
	rs := newRS256Key(t)
	other := newES256Key(t)

	type tc struct {
		name  string
		key   *testKey
		edit  func(p *proofSpec)
		req   func(r *Request) // edits the request after the proof is built
		proof func(s string) string
		want  error // nil: accepted
	}
	cases := []tc{
		{name: "valid ES256"},
		{name: "valid EdDSA", key: ed},
		{name: "valid Ed25519 (RFC 9864 name)", key: ed, edit: func(p *proofSpec) { p.header["alg"] = "Ed25519" }},
		{name: "Ed25519 with a P-256 jwk", edit: func(p *proofSpec) { p.header["alg"] = "Ed25519" }, want: errJWKType},
		{name: "valid fractional iat", edit: func(p *proofSpec) { p.claims["iat"] = float64(t0.Unix()) + 0.5 }},
		{name: "valid without access token and ath", req: func(r *Request) { r.AccessToken = "" }, edit: func(p *proofSpec) { delete(p.claims, "ath") }},
		{name: "valid htu with query and fragment", edit: func(p *proofSpec) { p.claims["htu"] = testURL + "?stream=true#frag" }},
		{name: "valid request URL with query", req: func(r *Request) { r.URL = testURL + "?x=1" }},
		{name: "valid normalised htu", req: func(r *Request) { r.URL = "http://example.com/a/c" },
			edit: func(p *proofSpec) { p.claims["htu"] = "HTTP://Example.COM:80/a/./b/../c" }},
		{name: "valid percent-encoding case", req: func(r *Request) { r.URL = "https://example.com/a%2Fb/~x" },
			edit: func(p *proofSpec) { p.claims["htu"] = "https://example.com:443/a%2fb/%7Ex" }},
		{name: "valid extra header and jwk members", edit: func(p *proofSpec) {
			p.header["kid"] = "k1"
			p.header["jwk"].(map[string]any)["use"] = "sig"
		}},

		{name: "no proof", req: func(r *Request) { r.Proofs = nil }, want: errNoProof},
		{name: "two DPoP headers", req: func(r *Request) { r.Proofs = append(r.Proofs, r.Proofs[0]) }, want: errManyProofs},
		{name: "oversize", edit: func(p *proofSpec) { p.claims["pad"] = strings.Repeat("a", MaxProofSize) }, want: errTooLarge},
		{name: "two parts", proof: func(s string) string { return s[:strings.LastIndexByte(s, '.')] }, want: errNotJWS},
		{name: "four parts", proof: func(s string) string { return s + ".x" }, want: errNotJWS},
		{name: "padded base64", proof: func(s string) string { return s + "==" }, want: errEncoding},
		{name: "newline in base64", proof: func(s string) string { return s[:5] + "\n" + s[5:] }, want: errEncoding},
		{name: "header not JSON", edit: func(p *proofSpec) { p.rawHeader = "not json" }, want: errHeaderJSON},
		{name: "claims not JSON", edit: func(p *proofSpec) { p.rawClaims = `{"jti":"a",}` }, want: errClaimsJSON},

		{name: "wrong typ", edit: func(p *proofSpec) { p.header["typ"] = "JWT" }, want: errTyp},
		{name: "typ in other case", edit: func(p *proofSpec) { p.header["typ"] = "DPoP+JWT" }, want: errTyp},
		{name: "typ member name in other case", edit: func(p *proofSpec) { delete(p.header, "typ"); p.header["TYP"] = "dpop+jwt" }, want: errTyp},
		{name: "typ not a string", edit: func(p *proofSpec) { p.header["typ"] = 1 }, want: errMemberType},
		{name: "duplicate alg", edit: func(p *proofSpec) {
			p.rawHeader = `{"typ":"dpop+jwt","alg":"none","alg":"ES256","jwk":` + mustJSON(t, p.header["jwk"]) + `}`
		}, want: errDuplicate},
		{name: "alg none signed", edit: func(p *proofSpec) { p.header["alg"] = "none" }, want: errAlg},
		{name: "alg none unsigned", edit: func(p *proofSpec) { p.header["alg"] = "none" },
			proof: func(s string) string { return s[:strings.LastIndexByte(s, '.')+1] }, want: errEncoding},
		{name: "HS256", edit: func(p *proofSpec) {
			p.header["alg"] = "HS256"
			p.sign = hs256Sign([]byte("0123456789abcdef0123456789abcdef"))
		}, want: errAlg},
		{name: "RS256", key: rs, want: errAlg},
		{name: "ES384 label", edit: func(p *proofSpec) { p.header["alg"] = "ES384" }, want: errAlg},
		{name: "crit", edit: func(p *proofSpec) { p.header["crit"] = []string{"exp"}; p.header["exp"] = 1 }, want: errCrit},
		{name: "no jwk", edit: func(p *proofSpec) { delete(p.header, "jwk") }, want: errNoJWK},
		{name: "jwk not an object", edit: func(p *proofSpec) { p.header["jwk"] = "key" }, want: errMemberType},
		{name: "jwk with d", edit: func(p *proofSpec) { p.header["jwk"].(map[string]any)["d"] = enc.EncodeToString(make([]byte, 32)) }, want: errPrivateJWK},
		{name: "EdDSA jwk with d", key: ed, edit: func(p *proofSpec) { p.header["jwk"].(map[string]any)["d"] = enc.EncodeToString(make([]byte, 32)) }, want: errPrivateJWK},
		{name: "jwk with k", edit: func(p *proofSpec) { p.header["jwk"].(map[string]any)["k"] = "c2VjcmV0" }, want: errPrivateJWK},
		{name: "off-curve point", edit: func(p *proofSpec) {
			jwk := p.header["jwk"].(map[string]any)
			y, _ := enc.DecodeString(jwk["y"].(string))
			y[31] ^= 1
			jwk["y"] = enc.EncodeToString(y)
		}, want: errJWKKey},
		{name: "short x", edit: func(p *proofSpec) {
			jwk := p.header["jwk"].(map[string]any)
			x, _ := enc.DecodeString(jwk["x"].(string))
			jwk["x"] = enc.EncodeToString(x[1:])
		}, want: errJWKKey},
		{name: "ES256 with OKP jwk", edit: func(p *proofSpec) { p.header["jwk"] = ed.jwk }, want: errJWKType},
		{name: "EdDSA with EC jwk", key: ed, edit: func(p *proofSpec) { p.header["jwk"] = es.jwk }, want: errJWKType},
		{name: "ES256 with crv P-384", edit: func(p *proofSpec) { p.header["jwk"].(map[string]any)["crv"] = "P-384" }, want: errJWKType},
		{name: "EdDSA with crv X25519", key: ed, edit: func(p *proofSpec) { p.header["jwk"].(map[string]any)["crv"] = "X25519" }, want: errJWKType},
		{name: "signed by another key", edit: func(p *proofSpec) { p.sign = other.sign }, want: errSignature},
		{name: "EdDSA signed by another key", key: ed, edit: func(p *proofSpec) { p.sign = newEdDSAKey(t).sign }, want: errSignature},
		{name: "signature flipped bit", proof: func(s string) string { return flipLastSigByte(t, s) }, want: errSignature},
		{name: "signature DER", edit: func(p *proofSpec) {
			p.sign = func(_ testing.TB, _ []byte) []byte { return append([]byte{0x30, 0x44}, make([]byte, 68)...) }
		}, want: errSignature},
		{name: "signature s = n", edit: func(p *proofSpec) {
			p.sign = func(_ testing.TB, _ []byte) []byte { return append(append([]byte{}, p256Order...), p256Order...) }
		}, want: errSignature},
		{name: "signature zero", edit: func(p *proofSpec) { p.sign = func(_ testing.TB, _ []byte) []byte { return make([]byte, 64) } }, want: errSignature},

		{name: "missing jti", edit: func(p *proofSpec) { delete(p.claims, "jti") }, want: errNoJTI},
		{name: "long jti", edit: func(p *proofSpec) { p.claims["jti"] = strings.Repeat("j", MaxJTILength+1) }, want: errLongJTI},
		{name: "missing htm", edit: func(p *proofSpec) { delete(p.claims, "htm") }, want: errNoHTM},
		{name: "missing htu", edit: func(p *proofSpec) { delete(p.claims, "htu") }, want: errNoHTU},
		{name: "missing iat", edit: func(p *proofSpec) { delete(p.claims, "iat") }, want: errNoIAT},
		{name: "iat a string", edit: func(p *proofSpec) { p.claims["iat"] = "1700000000" }, want: errMemberType},
		{name: "jti a number", edit: func(p *proofSpec) { p.claims["jti"] = 7 }, want: errMemberType},
		{name: "htm mismatch", edit: func(p *proofSpec) { p.claims["htm"] = "GET" }, want: errHTM},
		{name: "htm lowercase", edit: func(p *proofSpec) { p.claims["htm"] = "post" }, want: errHTM},
		{name: "htu other path", edit: func(p *proofSpec) { p.claims["htu"] = "https://api.example.com/openai/v1/models" }, want: errHTU},
		{name: "htu other host", edit: func(p *proofSpec) { p.claims["htu"] = "https://evil.example.com/openai/v1/chat/completions" }, want: errHTU},
		{name: "htu other port", edit: func(p *proofSpec) { p.claims["htu"] = "https://api.example.com:8443/openai/v1/chat/completions" }, want: errHTU},
		{name: "htu other scheme", edit: func(p *proofSpec) { p.claims["htu"] = "http://api.example.com/openai/v1/chat/completions" }, want: errHTU},
		{name: "htu trailing slash", edit: func(p *proofSpec) { p.claims["htu"] = testURL + "/" }, want: errHTU},
		{name: "htu relative", edit: func(p *proofSpec) { p.claims["htu"] = "/openai/v1/chat/completions" }, want: errBadHTU},
		{name: "htu with userinfo", edit: func(p *proofSpec) { p.claims["htu"] = "https://user@api.example.com/openai/v1/chat/completions" }, want: errBadHTU},
		{name: "iat 10 minutes ahead", edit: func(p *proofSpec) { p.claims["iat"] = t0.Add(10 * time.Minute).Unix() }, want: errIATFuture},
		{name: "iat 10 minutes ago", edit: func(p *proofSpec) { p.claims["iat"] = t0.Add(-10 * time.Minute).Unix() }, want: errIATOld},
		{name: "iat just outside window", edit: func(p *proofSpec) { p.claims["iat"] = t0.Add(-DefaultWindow - time.Second).Unix() }, want: errIATOld},
		{name: "valid iat at window edge", edit: func(p *proofSpec) { p.claims["iat"] = t0.Add(-DefaultWindow).Unix() }},
		{name: "ath missing", edit: func(p *proofSpec) { delete(p.claims, "ath") }, want: errNoATH},
		{name: "ath of another token", edit: func(p *proofSpec) { p.claims["ath"] = athOf("another.access.token") }, want: errATH},
		{name: "ath unencoded", edit: func(p *proofSpec) { p.claims["ath"] = testToken }, want: errATH},
	}
	// warm has accepted a proof of each test key, so its key cache holds
	// their headers: every case must get the same answer from it as from
	// a fresh Verifier.
	warm := newTestVerifier(t, Config{})
	for _, k := range []struct {
		key *testKey
		alg string
	}{{es, "ES256"}, {ed, "EdDSA"}, {ed, "Ed25519"}, {other, "ES256"}} {
		spec := newSpec(k.key, testMethod, testURL, t0.Unix())
		spec.header["alg"] = k.alg
		spec.claims["ath"] = athOf(testToken)
		req := Request{Proofs: []string{spec.build(t)}, Method: testMethod, URL: testURL, AccessToken: testToken}
		if _, err := warm.Verify(t.Context(), req); err != nil {
			t.Fatalf("warm up %s: %v", k.alg, err)
		}
	}
	for _, c := range cases {
		for _, w := range []struct {
			name string
			v    func() *Verifier
		}{{"fresh", func() *Verifier { return newTestVerifier(t, Config{}) }}, {"warm", func() *Verifier { return warm }}} {
			t.Run(c.name+"/"+w.name, func(t *testing.T) {
				verifyCase(t, w.v(), es, c.key, c.edit, c.req, c.proof, c.want)
			})
		}
	}
}

// verifyCase runs one case of TestVerify against v; key defaults to es.
func verifyCase(t *testing.T, v *Verifier, es, key *testKey, edit func(p *proofSpec), editReq func(r *Request),
	editProof func(s string) string, want error) {
	t.Helper()
	if key == nil {
		key = es
	}
	spec := newSpec(key, testMethod, testURL, t0.Unix())
	spec.claims["ath"] = athOf(testToken)
	if edit != nil {
		edit(spec)
	}
	s := spec.build(t)
	if editProof != nil {
		s = editProof(s)
	}
	req := Request{Proofs: []string{s}, Method: testMethod, URL: testURL, AccessToken: testToken}
	if editReq != nil {
		editReq(&req)
	}
	got, err := v.Verify(t.Context(), req)
	if want == nil {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if want := thumbprintOf(spec.header["jwk"].(map[string]any)); got.JKT != want {
			t.Errorf("JKT = %q, want %q", got.JKT, want)
		}
		if got.JTI != spec.claims["jti"] || got.Alg != spec.header["alg"] {
			t.Errorf("proof = %+v", got)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify error = %v, want %v", err, want)
	}
	if !errors.Is(err, ErrInvalidProof) {
		t.Errorf("error %v does not wrap ErrInvalidProof", err)
	}
	if got != nil {
		t.Errorf("proof = %+v on error", got)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func flipLastSigByte(t testing.TB, s string) string {
	t.Helper()
	i := strings.LastIndexByte(s, '.')
	sig, err := enc.DecodeString(s[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	return s[:i+1] + enc.EncodeToString(sig)
}

func TestVerifyAlgorithmPolicy(t *testing.T) {
	ed := newEdDSAKey(t)
	v := newTestVerifier(t, Config{Algorithms: []string{"ES256"}})
	_, err := v.Verify(t.Context(), Request{Proofs: []string{newSpec(ed, "GET", testURL, t0.Unix()).build(t)}, Method: "GET", URL: testURL})
	if !errors.Is(err, errAlg) {
		t.Fatalf("EdDSA with ES256 only: err = %v, want %v", err, errAlg)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != "ES256" {
		t.Errorf("Algorithms() = %v", got)
	}
}

func TestVerifyReplaySequential(t *testing.T) {
	es := newES256Key(t)
	store := newMemStore(fixedNow)
	v := NewVerifier(Config{}, store, fixedNow)
	proof := newSpec(es, "GET", testURL, t0.Unix()).build(t)
	req := Request{Proofs: []string{proof}, Method: "GET", URL: testURL}
	if _, err := v.Verify(t.Context(), req); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	_, err := v.Verify(t.Context(), req)
	if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("second Verify = %v, want ErrReplay", err)
	}
	if got := store.calls.Load(); got != 1 {
		t.Errorf("store calls = %d, want 1 (the front cache answers the replay)", got)
	}

	// Another node, with its own cache, asks the store and is refused too.
	node2 := NewVerifier(Config{}, store, fixedNow)
	if _, err := node2.Verify(t.Context(), req); !errors.Is(err, ErrReplay) {
		t.Fatalf("other node Verify = %v, want ErrReplay", err)
	}
}

func TestVerifyReplayParallel(t *testing.T) {
	es := newES256Key(t)
	store := newMemStore(fixedNow)
	nodes := []*Verifier{NewVerifier(Config{}, store, fixedNow), NewVerifier(Config{}, store, fixedNow)}
	proof := newSpec(es, "GET", testURL, t0.Unix()).build(t)
	var ok, replay atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			<-start
			_, err := nodes[i%2].Verify(context.Background(), Request{Proofs: []string{proof}, Method: "GET", URL: testURL})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replay.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 19 {
		t.Fatalf("accepted %d, replays %d; want 1 and 19", ok.Load(), replay.Load())
	}
}

func TestVerifyReplayEntryLifetime(t *testing.T) {
	es := newES256Key(t)
	var gotNS, gotID string
	var gotExp time.Time
	store := storeFunc(func(_ context.Context, ns, id string, exp time.Time) (bool, error) {
		gotNS, gotID, gotExp = ns, id, exp
		return true, nil
	})
	v := NewVerifier(Config{Window: 30 * time.Second}, store, fixedNow)
	iat := t0.Add(-10 * time.Second)
	if _, err := v.Verify(t.Context(), Request{Proofs: []string{newSpec(es, "GET", testURL, iat.Unix()).build(t)}, Method: "GET", URL: testURL}); err != nil {
		t.Fatal(err)
	}
	if gotNS != "dpop" || len(gotID) != 43 {
		t.Errorf("Remember(%q, %q)", gotNS, gotID)
	}
	if want := iat.Add(31 * time.Second); !gotExp.Equal(want) {
		t.Errorf("expiresAt = %v, want %v (iat + window + 1s)", gotExp, want)
	}
}

func TestVerifyStoreError(t *testing.T) {
	es := newES256Key(t)
	boom := errors.New("database down")
	v := NewVerifier(Config{}, storeFunc(func(context.Context, string, string, time.Time) (bool, error) { return false, boom }), fixedNow)
	_, err := v.Verify(t.Context(), Request{Proofs: []string{newSpec(es, "GET", testURL, t0.Unix()).build(t)}, Method: "GET", URL: testURL})
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidProof) {
		t.Fatalf("err = %v, want the store's error and not ErrInvalidProof", err)
	}
}

func TestVerifyBadRequestURL(t *testing.T) {
	es := newES256Key(t)
	v := newTestVerifier(t, Config{})
	_, err := v.Verify(t.Context(), Request{Proofs: []string{newSpec(es, "GET", testURL, t0.Unix()).build(t)}, Method: "GET", URL: "/no/origin"})
	if err == nil || errors.Is(err, ErrInvalidProof) {
		t.Fatalf("err = %v, want a caller error", err)
	}
}

func nonceKey(t testing.TB) []byte {
	k := make([]byte, NonceKeySize)
	rand.Read(k)
	return k
}

func TestNonces(t *testing.T) {
	es := newES256Key(t)
	key := nonceKey(t)
	now := t0
	clock := func() time.Time { return now }
	store := newMemStore(clock)
	node1 := NewVerifier(Config{NonceKey: key, RequireNonce: true}, store, clock)
	node2 := NewVerifier(Config{NonceKey: key, RequireNonce: true}, store, clock)
	stranger := NewVerifier(Config{NonceKey: nonceKey(t), RequireNonce: true}, store, clock)

	verify := func(v *Verifier, nonce string) (*Proof, error) {
		spec := newSpec(es, "POST", testURL, now.Unix())
		if nonce != "" {
			spec.claims["nonce"] = nonce
		}
		return v.Verify(t.Context(), Request{Proofs: []string{spec.build(t)}, Method: "POST", URL: testURL})
	}

	t.Run("missing", func(t *testing.T) {
		_, err := verify(node1, "")
		if !errors.Is(err, ErrUseNonce) || !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("err = %v, want ErrUseNonce", err)
		}
	})
	t.Run("same node", func(t *testing.T) {
		p, err := verify(node1, node1.NewNonce())
		if err != nil {
			t.Fatal(err)
		}
		if p.NextNonce != "" {
			t.Errorf("NextNonce = %q for a fresh nonce", p.NextNonce)
		}
	})
	t.Run("other node", func(t *testing.T) {
		if _, err := verify(node2, node1.NewNonce()); err != nil {
			t.Fatalf("nonce from another node: %v", err)
		}
	})
	t.Run("another key", func(t *testing.T) {
		if _, err := verify(stranger, node1.NewNonce()); !errors.Is(err, ErrUseNonce) {
			t.Fatalf("err = %v, want ErrUseNonce", err)
		}
	})
	for _, garbage := range []string{"x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 200), "nonce with spaces"} {
		t.Run("garbage "+garbage[:1], func(t *testing.T) {
			if _, err := verify(node1, garbage); !errors.Is(err, ErrUseNonce) {
				t.Fatalf("err = %v, want ErrUseNonce", err)
			}
		})
	}
	t.Run("tampered", func(t *testing.T) {
		n := []byte(node1.NewNonce())
		n[3] ^= 'A' ^ 'B'
		if _, err := verify(node1, string(n)); !errors.Is(err, ErrUseNonce) {
			t.Fatalf("err = %v, want ErrUseNonce", err)
		}
	})
	t.Run("stale gets a next nonce", func(t *testing.T) {
		n := node1.NewNonce()
		now = t0.Add(NonceLifetime/2 + time.Second)
		defer func() { now = t0 }()
		p, err := verify(node2, n)
		if err != nil {
			t.Fatal(err)
		}
		if p.NextNonce == "" || p.NextNonce == n {
			t.Errorf("NextNonce = %q, want a fresh nonce", p.NextNonce)
		}
	})
	t.Run("expired", func(t *testing.T) {
		n := node1.NewNonce()
		now = t0.Add(NonceLifetime + time.Second)
		defer func() { now = t0 }()
		if _, err := verify(node1, n); !errors.Is(err, errNonceExpired) {
			t.Fatalf("err = %v, want %v", err, errNonceExpired)
		}
	})
	t.Run("from the future", func(t *testing.T) {
		now = t0.Add(time.Hour)
		n := node1.NewNonce()
		now = t0
		if _, err := verify(node1, n); !errors.Is(err, errNonceInvalid) {
			t.Fatalf("err = %v, want %v", err, errNonceInvalid)
		}
	})
	t.Run("optional", func(t *testing.T) {
		v := NewVerifier(Config{NonceKey: key}, store, clock)
		p, err := verify(v, "")
		if err != nil {
			t.Fatal(err)
		}
		if p.NextNonce == "" {
			t.Error("no NextNonce offered")
		}
		if _, err := verify(v, "bogus"); !errors.Is(err, ErrUseNonce) {
			t.Fatalf("bad optional nonce: err = %v, want ErrUseNonce", err)
		}
	})
	t.Run("off", func(t *testing.T) {
		v := NewVerifier(Config{}, store, clock)
		if v.NewNonce() != "" {
			t.Error("NewNonce with nonces off")
		}
		if _, err := verify(v, "ignored"); err != nil {
			t.Fatalf("nonce ignored when off: %v", err)
		}
	})
}

func TestNewVerifierPanics(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown alg":         {Algorithms: []string{"HS256"}},
		"short nonce key":     {NonceKey: make([]byte, 16)},
		"require without key": {RequireNonce: true},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewVerifier(cfg, newMemStore(fixedNow), fixedNow)
		})
	}
}

// TestRFC9449Example verifies the proof of RFC 9449 §4.1 Figure 4 at its
// own iat.
func TestRFC9449Example(t *testing.T) {
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19" +
		".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ" +
		".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	at := func() time.Time { return time.Unix(1562262616, 0) }
	v := NewVerifier(Config{}, newMemStore(at), at)
	p, err := v.Verify(t.Context(), Request{Proofs: []string{proof}, Method: "POST", URL: "https://server.example.com/token"})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// RFC 9449 §6.1: the jkt of this key.
	if want := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"; p.JKT != want {
		t.Errorf("JKT = %q, want %q", p.JKT, want)
	}
}
