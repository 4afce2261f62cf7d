package app_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/vault"
)

// A DPoP client written from RFC 9449 §4 with the standard library only, so
// that keygate's own proof parser is checked against an independent
// implementation.

var b64 = base64.RawURLEncoding

type dpopKey struct {
	alg  string // ES256 or EdDSA
	priv crypto.Signer
	jwk  map[string]string
	jkt  string // RFC 7638 thumbprint
}

func newES256Key(t testing.TB) *dpopKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ecPoint(t, &priv.PublicKey)
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y)}
	// RFC 7638 §3.2: required members in lexicographic order, no whitespace.
	tp := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, jwk["x"], jwk["y"])
	sum := sha256.Sum256([]byte(tp))
	return &dpopKey{alg: "ES256", priv: priv, jwk: jwk, jkt: b64.EncodeToString(sum[:])}
}

func newEd25519Key(t testing.TB) *dpopKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	tp := fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, jwk["x"])
	sum := sha256.Sum256([]byte(tp))
	return &dpopKey{alg: "EdDSA", priv: priv, jwk: jwk, jkt: b64.EncodeToString(sum[:])}
}

// proofOpts are the optional claims of a proof.
type proofOpts struct {
	accessToken string    // ath = base64url(SHA-256(token)) when set
	nonce       string    // nonce claim when set
	iat         time.Time // now when zero
}

// proof returns a DPoP proof JWT for method and htu (RFC 9449 §4.2).
func (k *dpopKey) proof(t testing.TB, method, htu string, o proofOpts) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	iat := o.iat
	if iat.IsZero() {
		iat = time.Now()
	}
	claims := map[string]any{"jti": b64.EncodeToString(jti), "htm": method, "htu": htu, "iat": iat.Unix()}
	if o.accessToken != "" {
		sum := sha256.Sum256([]byte(o.accessToken))
		claims["ath"] = b64.EncodeToString(sum[:])
	}
	if o.nonce != "" {
		claims["nonce"] = o.nonce
	}
	hdr, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk})
	body, _ := json.Marshal(claims)
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	var sig []byte
	switch priv := k.priv.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(priv, []byte(input))
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		// RFC 7518 §3.4: R || S, 32 bytes each.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64.EncodeToString(sig)
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func cnfJKT(t testing.TB, at string) string {
	t.Helper()
	cnf, _ := jwtClaims(t, at)["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// exchangeForm is dev-app's token exchange request for sub.
func (s *server) exchangeForm(t testing.TB, sub string) url.Values {
	return url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"client_id":          {"dev-app"},
		"subject_token":      {s.idToken(t, sub)},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
	}
}

// dpopExchange exchanges an ID token for sub with a proof of k.
func (s *server) dpopExchange(t testing.TB, sub string, k *dpopKey) tokenResponse {
	t.Helper()
	var out tokenResponse
	proof := k.proof(t, "POST", s.URL+"/oauth2/token", proofOpts{})
	res := s.postForm(t, "/oauth2/token", s.exchangeForm(t, sub), http.Header{"DPoP": {proof}}, &out)
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("token exchange with DPoP: %d %s", res.StatusCode, body)
	}
	return out
}

// do sends a request with the given headers.
func (s *server) do(t *testing.T, method, path string, hdr http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if body == "" {
		req.Body = nil
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if h := hdr.Get("Host"); h != "" {
		req.Host = h
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func dpopAuth(at, proof string) http.Header {
	return http.Header{"Authorization": {"DPoP " + at}, "Dpop": {proof}}
}

// wantChallenge checks a 401 with a DPoP challenge carrying the error code.
func wantChallenge(t *testing.T, res *http.Response, body []byte, code string) {
	t.Helper()
	ch := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != 401 || !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="`+code+`"`) ||
		!strings.Contains(ch, `algs="ES256 EdDSA"`) {
		t.Errorf("got %d %q %s, want 401 with DPoP challenge error=%q", res.StatusCode, ch, body, code)
	}
}

func TestDPoP(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, nil)
			for _, newKey := range []func(testing.TB) *dpopKey{newES256Key, newEd25519Key} {
				k := newKey(t)
				t.Run(k.alg, func(t *testing.T) { testDPoPFlow(t, s, k) })
			}
		})
	}
}

func testDPoPFlow(t *testing.T, s *server, k *dpopKey) {
	tok := s.dpopExchange(t, "dpop-"+k.alg, k)
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type = %q, want DPoP (RFC 9449 §5)", tok.TokenType)
	}
	if got := cnfJKT(t, tok.AccessToken); got != k.jkt {
		t.Fatalf("cnf.jkt = %q, want the key's thumbprint %q", got, k.jkt)
	}
	at := tok.AccessToken
	hello := s.URL + "/echo/hello"

	t.Run("proxied call", func(t *testing.T) {
		res, body := s.do(t, "GET", "/echo/hello?x=1", dpopAuth(at, k.proof(t, "GET", hello+"?x=1", proofOpts{accessToken: at})), "")
		if res.StatusCode != 200 {
			t.Fatalf("proxied call: %d %s", res.StatusCode, body)
		}
		var echo proxy.EchoRequest
		if err := json.Unmarshal(body, &echo); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"Authorization", "Dpop"} {
			if v, ok := echo.Headers[h]; ok {
				t.Errorf("upstream received %s: %q", h, v)
			}
		}
		if echo.Path != "/hello" || echo.Query != "x=1" {
			t.Errorf("upstream saw %s?%s", echo.Path, echo.Query)
		}
	})

	t.Run("bound token as bearer", func(t *testing.T) {
		res, body := s.get(t, "/echo/hello", "Bearer "+at)
		wantChallenge(t, res, body, "invalid_token")
	})

	t.Run("empty proof", func(t *testing.T) {
		res, body := s.do(t, "GET", "/echo/hello", dpopAuth(at, ""), "")
		wantChallenge(t, res, body, "invalid_dpop_proof")
	})

	port := strings.TrimPrefix(s.URL[strings.LastIndexByte(s.URL, ':'):], ":")
	mismatches := []struct {
		name, method, htu string
		host              string // Host header sent
		o                 proofOpts
	}{
		{"other path", "GET", s.URL + "/echo/other", "", proofOpts{accessToken: at}},
		{"other method", "POST", hello, "", proofOpts{accessToken: at}},
		{"other host", "GET", "http://evil.example:" + port + "/echo/hello", "", proofOpts{accessToken: at}},
		{"other host, Host header to match", "GET", "http://evil.example:" + port + "/echo/hello", "evil.example:" + port, proofOpts{accessToken: at}},
		{"other port", "GET", "http://127.0.0.1:1/echo/hello", "", proofOpts{accessToken: at}},
		{"other scheme", "GET", "https" + strings.TrimPrefix(hello, "http"), "", proofOpts{accessToken: at}},
		{"iat 10 min ago", "GET", hello, "", proofOpts{accessToken: at, iat: time.Now().Add(-10 * time.Minute)}},
		{"iat in 10 min", "GET", hello, "", proofOpts{accessToken: at, iat: time.Now().Add(10 * time.Minute)}},
		{"no ath", "GET", hello, "", proofOpts{}},
	}
	for _, m := range mismatches {
		t.Run(m.name, func(t *testing.T) {
			hdr := dpopAuth(at, k.proof(t, m.method, m.htu, m.o))
			if m.host != "" {
				hdr.Set("Host", m.host)
			}
			res, body := s.do(t, "GET", "/echo/hello", hdr, "")
			wantChallenge(t, res, body, "invalid_dpop_proof")
		})
	}

	t.Run("replay", func(t *testing.T) {
		proof := k.proof(t, "GET", hello, proofOpts{accessToken: at})
		if res, body := s.do(t, "GET", "/echo/hello", dpopAuth(at, proof), ""); res.StatusCode != 200 {
			t.Fatalf("first use: %d %s", res.StatusCode, body)
		}
		res, body := s.do(t, "GET", "/echo/hello", dpopAuth(at, proof), "")
		wantChallenge(t, res, body, "invalid_dpop_proof")
	})

	t.Run("parallel replay", func(t *testing.T) {
		proof := k.proof(t, "GET", hello, proofOpts{accessToken: at})
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", hello, nil)
				req.Header = dpopAuth(at, proof)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case 200:
					ok.Add(1)
				case 401:
					refused.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 19 {
			t.Errorf("%d accepted, %d refused; want exactly one accepted", ok.Load(), refused.Load())
		}
	})

	t.Run("ath of another token", func(t *testing.T) {
		other := s.dpopExchange(t, "dpop-other-"+k.alg, k)
		res, body := s.do(t, "GET", "/echo/hello", dpopAuth(at, k.proof(t, "GET", hello, proofOpts{accessToken: other.AccessToken})), "")
		wantChallenge(t, res, body, "invalid_dpop_proof")
	})

	t.Run("proof by another key", func(t *testing.T) {
		thief := newES256Key(t)
		res, body := s.do(t, "GET", "/echo/hello", dpopAuth(at, thief.proof(t, "GET", hello, proofOpts{accessToken: at})), "")
		wantChallenge(t, res, body, "invalid_dpop_proof")
	})

	t.Run("unbound token with DPoP scheme", func(t *testing.T) {
		plain := s.exchange(t, "dpop-plain-"+k.alg, nil)
		res, body := s.do(t, "GET", "/echo/hello", dpopAuth(plain.AccessToken, k.proof(t, "GET", hello, proofOpts{accessToken: plain.AccessToken})), "")
		wantChallenge(t, res, body, "invalid_token")
	})

	t.Run("token endpoint refuses a bad proof", func(t *testing.T) {
		var out tokenResponse
		proof := k.proof(t, "POST", s.URL+"/oauth2/other", proofOpts{})
		res := s.postForm(t, "/oauth2/token", s.exchangeForm(t, "dpop-bad"), http.Header{"DPoP": {proof}}, &out)
		if res.StatusCode != 400 || out.Error != "invalid_dpop_proof" {
			t.Errorf("got %d %q, want 400 invalid_dpop_proof", res.StatusCode, out.Error)
		}
	})

	// RFC 9449 §5: "the authorization server MUST check that a DPoP proof
	// ... [is] using the same key as the one bound to the refresh token" for
	// public clients. Failures first: they must leave the token usable.
	t.Run("refresh", func(t *testing.T) {
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {tok.RefreshToken}}
		tokenURL := s.URL + "/oauth2/token"
		for name, hdr := range map[string]http.Header{
			"without proof":    nil,
			"with another key": {"DPoP": {newEd25519Key(t).proof(t, "POST", tokenURL, proofOpts{})}},
			"with a bad proof": {"DPoP": {k.proof(t, "GET", tokenURL, proofOpts{})}},
		} {
			var out tokenResponse
			res := s.postForm(t, "/oauth2/token", form, hdr, &out)
			want := "invalid_grant"
			if name == "with a bad proof" {
				want = "invalid_dpop_proof"
			}
			if res.StatusCode != 400 || out.Error != want {
				t.Errorf("refresh %s: %d %q, want 400 %s", name, res.StatusCode, out.Error, want)
			}
		}
		var out tokenResponse
		res := s.postForm(t, "/oauth2/token", form, http.Header{"DPoP": {k.proof(t, "POST", tokenURL, proofOpts{})}}, &out)
		if res.StatusCode != 200 || out.TokenType != "DPoP" || cnfJKT(t, out.AccessToken) != k.jkt {
			t.Fatalf("refresh with the bound key: %d %+v", res.StatusCode, out)
		}
		res2, body := s.do(t, "GET", "/echo/hello", dpopAuth(out.AccessToken, k.proof(t, "GET", hello, proofOpts{accessToken: out.AccessToken})), "")
		if res2.StatusCode != 200 {
			t.Errorf("refreshed token on the proxy: %d %s", res2.StatusCode, body)
		}
	})
}

// dpop.nonce: true — RFC 9449 §8 (token endpoint) and §9 (resource server).
func TestDPoPNonce(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			s := startDev(t, b, func(c *config.Config) { c.DPoP.Nonce = true })
			k := newEd25519Key(t)
			tokenURL := s.URL + "/oauth2/token"

			var first tokenResponse
			form := s.exchangeForm(t, "nonce-alice")
			res := s.postForm(t, "/oauth2/token", form, http.Header{"DPoP": {k.proof(t, "POST", tokenURL, proofOpts{})}}, &first)
			nonce := res.Header.Get("DPoP-Nonce")
			if res.StatusCode != 400 || first.Error != "use_dpop_nonce" || nonce == "" {
				t.Fatalf("token endpoint without nonce: %d %q nonce %q, want 400 use_dpop_nonce with DPoP-Nonce", res.StatusCode, first.Error, nonce)
			}
			var tok tokenResponse
			res = s.postForm(t, "/oauth2/token", form, http.Header{"DPoP": {k.proof(t, "POST", tokenURL, proofOpts{nonce: nonce})}}, &tok)
			if res.StatusCode != 200 || tok.TokenType != "DPoP" {
				t.Fatalf("token endpoint with nonce: %d %+v", res.StatusCode, tok)
			}

			var bad tokenResponse
			res = s.postForm(t, "/oauth2/token", s.exchangeForm(t, "nonce-bob"), http.Header{"DPoP": {k.proof(t, "POST", tokenURL, proofOpts{nonce: "forged"})}}, &bad)
			if res.StatusCode != 400 || bad.Error != "use_dpop_nonce" || res.Header.Get("DPoP-Nonce") == "" {
				t.Errorf("forged nonce: %d %q", res.StatusCode, bad.Error)
			}

			hello := s.URL + "/echo/hello"
			r1, body := s.do(t, "GET", "/echo/hello", dpopAuth(tok.AccessToken, k.proof(t, "GET", hello, proofOpts{accessToken: tok.AccessToken})), "")
			wantChallenge(t, r1, body, "use_dpop_nonce")
			rsNonce := r1.Header.Get("DPoP-Nonce")
			if rsNonce == "" {
				t.Fatal("no DPoP-Nonce with use_dpop_nonce")
			}
			r2, body := s.do(t, "GET", "/echo/hello", dpopAuth(tok.AccessToken, k.proof(t, "GET", hello, proofOpts{accessToken: tok.AccessToken, nonce: rsNonce})), "")
			if r2.StatusCode != 200 {
				t.Errorf("proxy with nonce: %d %s", r2.StatusCode, body)
			}
		})
	}
}

// Signed requests (RFC 9421) on a route with require_signature: true,
// signed here from the RFC with the standard library only.

type sigKey struct {
	keyid, alg string
	ed         ed25519.PrivateKey
	ec         *ecdsa.PrivateKey
	mac        []byte
}

func (k *sigKey) sign(t *testing.T, base []byte) []byte {
	t.Helper()
	switch {
	case k.ed != nil:
		return ed25519.Sign(k.ed, base)
	case k.ec != nil:
		d := sha256.Sum256(base)
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64) // RFC 9421 §3.3.4: r || s, not DER
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
	m := hmac.New(sha256.New, k.mac)
	m.Write(base)
	return m.Sum(nil)
}

type sigOpts struct {
	created    time.Time
	nonce      string
	targetURI  string // what is signed as @target-uri; the request's when empty
	digestBody *string
}

// signRequest adds Content-Digest (RFC 9530), Signature-Input and Signature
// (RFC 9421 §2.5, §4) covering @method, @target-uri and, with a body,
// content-digest.
func signRequest(t *testing.T, k *sigKey, method, target string, body string, o sigOpts) http.Header {
	t.Helper()
	h := http.Header{}
	components := []string{"@method", "@target-uri"}
	values := []string{method, target}
	if o.targetURI != "" {
		values[1] = o.targetURI
	}
	if body != "" || o.digestBody != nil {
		db := body
		if o.digestBody != nil {
			db = *o.digestBody
		}
		sum := sha256.Sum256([]byte(db))
		h.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
		components = append(components, "content-digest")
		values = append(values, h.Get("Content-Digest"))
	}
	created := o.created
	if created.IsZero() {
		created = time.Now()
	}
	nonce := o.nonce
	if nonce == "" {
		n := make([]byte, 16)
		_, _ = rand.Read(n)
		nonce = b64.EncodeToString(n)
	}
	quoted := make([]string, len(components))
	var base strings.Builder
	for i, c := range components {
		quoted[i] = `"` + c + `"`
		fmt.Fprintf(&base, "%s: %s\n", quoted[i], values[i])
	}
	params := fmt.Sprintf(`(%s);created=%d;nonce="%s";keyid="%s";alg="%s"`, strings.Join(quoted, " "), created.Unix(), nonce, k.keyid, k.alg)
	fmt.Fprintf(&base, `"@signature-params": %s`, params)
	h.Set("Signature-Input", "sig1="+params)
	h.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(k.sign(t, []byte(base.String())))+":")
	return h
}

func jwkJSON(t *testing.T, kid string, pub crypto.PublicKey) map[string]string {
	t.Helper()
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(p), "kid": kid}
	case *ecdsa.PublicKey:
		x, y := ecPoint(t, p)
		return map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y), "kid": kid}
	}
	t.Fatalf("unsupported key %T", pub)
	return nil
}

func TestSignedRequests(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testSignedRequests(t, b) })
	}
}

func testSignedRequests(t *testing.T, backendName string) {
	// A real upstream that records what it received.
	type seen struct {
		header http.Header
		body   string
		uri    string
	}
	var mu sync.Mutex
	var got []seen
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Clone(), string(b), r.RequestURI})
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	hmacSecret := []byte("billing-hmac-secret-0123456789abcdef")
	edKey := &sigKey{keyid: "b1", alg: "ed25519", ed: edPriv}
	ecKey := &sigKey{keyid: "e1", alg: "ecdsa-p256-sha256", ec: ecPriv}
	macKey := &sigKey{keyid: "hmac:billing", alg: "hmac-sha256", mac: hmacSecret}
	otherKey := &sigKey{keyid: "o1", alg: "ed25519", ed: otherPriv}

	jwks := func(keys ...map[string]string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	s := startDev(t, backendName, func(c *config.Config) {
		c.Clients = append(c.Clients,
			config.Client{ID: "billing", Type: config.ClientConfidential, Auth: config.AuthClientSecretBasic,
				Secret: "clients/dev-backend", HMACSecret: "clients/billing-hmac",
				JWKS:       jwks(jwkJSON(t, "b1", edPriv.Public()), jwkJSON(t, "e1", &ecPriv.PublicKey)),
				GrantTypes: []string{config.GrantClientCredentials}, Scopes: []string{"signed"}},
			config.Client{ID: "other", Type: config.ClientConfidential, Auth: config.AuthClientSecretBasic,
				Secret: "clients/dev-backend", JWKS: jwks(jwkJSON(t, "o1", otherPriv.Public())),
				GrantTypes: []string{config.GrantClientCredentials}, Scopes: []string{"signed"}},
		)
		c.Upstreams = append(c.Upstreams, config.Upstream{Name: "signed", URL: up.URL,
			Auth:    config.UpstreamAuth{Type: config.UpstreamAuthHeader, Name: "X-Api-Key", Template: config.SecretPlaceholder, Secret: "echo-key"},
			Routes:  []config.Route{{Methods: []string{"GET", "POST"}, Path: "/**", Scope: "signed", RequireSignature: true}},
			Timeout: config.Duration(5 * time.Second), MaxRequestBody: 1024})
	})
	if _, err := s.Vault.Put(t.Context(), "clients/billing-hmac", vault.NewSecret(hmacSecret)); err != nil {
		t.Fatal(err)
	}
	var tok tokenResponse
	res := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"signed"}},
		http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("billing:"+s.BackendSecret))}}, &tok)
	if res.StatusCode != 200 {
		t.Fatalf("client_credentials: %d %+v", res.StatusCode, tok)
	}
	bearer := "Bearer " + tok.AccessToken

	send := func(t *testing.T, method, path, body string, sig http.Header) (*http.Response, []byte) {
		t.Helper()
		hdr := http.Header{"Authorization": {bearer}}
		for k, v := range sig {
			hdr[k] = v
		}
		return s.do(t, method, path, hdr, body)
	}

	accepted := []struct {
		name         string
		key          *sigKey
		method, path string
		body         string
	}{
		{"ed25519 with body", edKey, "POST", "/signed/charge?amount=10&currency=eur", `{"amount":10}`},
		{"ecdsa p-256 without body", ecKey, "GET", "/signed/balance", ""},
		{"hmac-sha256", macKey, "POST", "/signed/refund", "refund=1"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			before := count()
			res, body := send(t, tt.method, tt.path, tt.body, signRequest(t, tt.key, tt.method, s.URL+tt.path, tt.body, sigOpts{}))
			if res.StatusCode != 200 || count() != before+1 {
				t.Fatalf("signed request: %d %s", res.StatusCode, body)
			}
			mu.Lock()
			last := got[len(got)-1]
			mu.Unlock()
			if last.body != tt.body || last.uri != strings.TrimPrefix(tt.path, "/signed") {
				t.Errorf("upstream got %q %q, want %q %q", last.uri, last.body, tt.path, tt.body)
			}
			for _, h := range []string{"Signature", "Signature-Input", "Authorization"} {
				if v, ok := last.header[h]; ok {
					t.Errorf("upstream received %s: %q", h, v)
				}
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		sig := signRequest(t, edKey, "GET", s.URL+"/signed/balance", "", sigOpts{nonce: "once-only"})
		if res, body := send(t, "GET", "/signed/balance", "", sig); res.StatusCode != 200 {
			t.Fatalf("first use: %d %s", res.StatusCode, body)
		}
		before := count()
		res, body := send(t, "GET", "/signed/balance", "", sig)
		if res.StatusCode != 401 || count() != before {
			t.Errorf("replay: %d %s, upstream contacted %d times", res.StatusCode, body, count()-before)
		}
	})

	tampered := `{"amount":1000}`
	refused := []struct {
		name   string
		method string
		body   string
		sig    http.Header
		auth   string
	}{
		{"missing signature", "POST", "x=1", nil, ""},
		{"digest of other content", "POST", tampered, signRequest(t, edKey, "POST", s.URL+"/signed/charge", tampered, sigOpts{digestBody: ptr(`{"amount":10}`)}), ""},
		{"content changed after signing", "POST", tampered, signRequest(t, edKey, "POST", s.URL+"/signed/charge", `{"amount":10}`, sigOpts{}), ""},
		{"body without digest", "POST", "x=1", signRequest(t, edKey, "POST", s.URL+"/signed/charge", "", sigOpts{}), ""},
		{"other method", "POST", "x=1", signRequest(t, edKey, "GET", s.URL+"/signed/charge", "x=1", sigOpts{}), ""},
		{"other target uri", "POST", "x=1", signRequest(t, edKey, "POST", s.URL+"/signed/charge", "x=1", sigOpts{targetURI: s.URL + "/signed/other"}), ""},
		{"other query", "POST", "x=1", signRequest(t, edKey, "POST", s.URL+"/signed/charge", "x=1", sigOpts{targetURI: s.URL + "/signed/charge?amount=1"}), ""},
		{"created too old", "POST", "x=1", signRequest(t, edKey, "POST", s.URL+"/signed/charge", "x=1", sigOpts{created: time.Now().Add(-10 * time.Minute)}), ""},
		{"unknown keyid", "POST", "x=1", signRequest(t, &sigKey{keyid: "nope", alg: "ed25519", ed: edPriv}, "POST", s.URL+"/signed/charge", "x=1", sigOpts{}), ""},
		{"wrong hmac secret", "POST", "x=1", signRequest(t, &sigKey{keyid: "hmac:billing", alg: "hmac-sha256", mac: []byte("guess")}, "POST", s.URL+"/signed/charge", "x=1", sigOpts{}), ""},
		{"another client's key", "POST", "x=1", signRequest(t, otherKey, "POST", s.URL+"/signed/charge", "x=1", sigOpts{}), ""},
		{"hmac of a client without one", "POST", "x=1", signRequest(t, &sigKey{keyid: "hmac:other", alg: "hmac-sha256", mac: hmacSecret}, "POST", s.URL+"/signed/charge", "x=1", sigOpts{}), ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := count()
			res, body := send(t, tt.method, "/signed/charge", tt.body, tt.sig)
			var p struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(body, &p)
			if res.StatusCode != 401 || p.Type != "https://keygate.dev/problems/invalid-signature" {
				t.Errorf("got %d %s, want 401 invalid-signature", res.StatusCode, body)
			}
			if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Signature ") {
				t.Errorf("WWW-Authenticate = %q", ch)
			}
			if n := count() - before; n != 0 {
				t.Errorf("upstream contacted %d times", n)
			}
		})
	}

	t.Run("signature does not replace the token", func(t *testing.T) {
		before := count()
		hdr := signRequest(t, edKey, "GET", s.URL+"/signed/balance", "", sigOpts{})
		res, body := s.do(t, "GET", "/signed/balance", hdr, "")
		if res.StatusCode != 401 || count() != before {
			t.Errorf("unauthenticated signed request: %d %s", res.StatusCode, body)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// ecPoint returns the 32-byte x and y coordinates of a P-256 public key,
// from its uncompressed SEC 1 encoding (0x04 || x || y).
func ecPoint(t testing.TB, pub *ecdsa.PublicKey) (x, y []byte) {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil || len(b) != 65 {
		t.Fatalf("encode P-256 key: %v", err)
	}
	return b[1:33], b[33:]
}
