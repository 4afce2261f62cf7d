package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/dpop"
	"github.com/keygate/keygate/internal/httpapi"
)

// fakeProofs is a ProofVerifier answering with verify and recording what it was asked.
type fakeProofs struct {
	verify func(req dpop.Request) (*dpop.Proof, error)
	mu     sync.Mutex
	got    []dpop.Request
}

func (f *fakeProofs) Verify(_ context.Context, req dpop.Request) (*dpop.Proof, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	f.mu.Unlock()
	return f.verify(req)
}

func (f *fakeProofs) NewNonce() string     { return "fresh-nonce" }
func (f *fakeProofs) Algorithms() []string { return []string{"ES256", "EdDSA"} }

func (f *fakeProofs) last(t *testing.T) dpop.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("the proof verifier was not called")
	}
	return f.got[len(f.got)-1]
}

var errStoreDown = errors.New("replay store unreachable")

// proofTable maps a proof value to an outcome: the JKT of the fake verifier's table
// ("thumbprint" matches tableVerifier's bound token).
func proofTable(req dpop.Request) (*dpop.Proof, error) {
	if len(req.Proofs) != 1 {
		return nil, dpop.ErrReplay // any rejection wrapping ErrInvalidProof
	}
	switch req.Proofs[0] {
	case "good-proof":
		return &dpop.Proof{JKT: "thumbprint"}, nil
	case "other-key":
		return &dpop.Proof{JKT: "another-thumbprint"}, nil
	case "needs-nonce":
		return nil, dpop.ErrUseNonce
	case "store-down":
		return nil, errStoreDown
	}
	return nil, dpop.ErrReplay
}

func dpopHeader(tok string, proofs ...string) http.Header {
	return http.Header{"Authorization": {"DPoP " + tok}, "Dpop": proofs}
}

func TestDPoPAuth(t *testing.T) {
	up := newUpstream(t, nil)
	proofs := &fakeProofs{verify: proofTable}
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)}, func(c *Config, d *Deps) {
		d.Auth = NewDPoPAuth(d.Tokens, proofs, c.Issuer+"/", d.Now)
	})
	long := strings.Repeat("a", MaxTokenLength+1)
	tests := []struct {
		name      string
		hdr       http.Header
		want      int
		challenge string // substring of WWW-Authenticate
		nonce     string // DPoP-Nonce header
	}{
		{"unbound token", dpopHeader(goodToken, "good-proof"), 401, `error="invalid_token"`, ""},
		{"expired", dpopHeader("expired.tok.x", "good-proof"), 401, `error="invalid_token"`, ""},
		{"revoked", dpopHeader("revoked.tok.x", "good-proof"), 401, `error="invalid_token"`, ""},
		{"wrong audience", dpopHeader("wrong.aud.x", "good-proof"), 401, `error="invalid_token"`, ""},
		{"capability token", dpopHeader("kgc_abc", "good-proof"), 401, `error="invalid_token"`, ""},
		{"too long", dpopHeader(long, "good-proof"), 401, `error="invalid_token"`, ""},
		{"no proof", dpopHeader("dpop.bound.x"), 401, `error="invalid_dpop_proof"`, ""},
		{"two proofs", dpopHeader("dpop.bound.x", "good-proof", "good-proof"), 401, `error="invalid_dpop_proof"`, ""},
		{"bad proof", dpopHeader("dpop.bound.x", "garbage"), 401, `error="invalid_dpop_proof"`, ""},
		{"proof by another key", dpopHeader("dpop.bound.x", "other-key"), 401, `error="invalid_dpop_proof"`, ""},
		{"nonce needed", dpopHeader("dpop.bound.x", "needs-nonce"), 401, `error="use_dpop_nonce"`, "fresh-nonce"},
		{"store down", dpopHeader("dpop.bound.x", "store-down"), 500, "", ""},
		{"empty token", http.Header{"Authorization": {"DPoP "}, "Dpop": {"good-proof"}}, 400, `error="invalid_request"`, ""},
		{"two spaces", http.Header{"Authorization": {"DPoP  dpop.bound.x"}, "Dpop": {"good-proof"}}, 400, `error="invalid_request"`, ""},
		{"bad characters", dpopHeader("a b", "good-proof"), 400, `error="invalid_request"`, ""},
		{"two headers", http.Header{"Authorization": {"DPoP dpop.bound.x", "DPoP dpop.bound.x"}, "Dpop": {"good-proof"}}, 400, `error="invalid_request"`, ""},
		{"other scheme", http.Header{"Authorization": {"Bearer dpop.bound.x"}, "Dpop": {"good-proof"}}, 401, `DPoP realm="keygate", algs="ES256 EdDSA"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count.Load()
			res := h.do(t, "GET", "/echo/x", tt.hdr, nil)
			body := readBody(t, res)
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tt.want, body)
			}
			ch := res.Header.Get("WWW-Authenticate")
			if !strings.Contains(ch, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", ch, tt.challenge)
			}
			if tt.challenge != "" && (!strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `algs="ES256 EdDSA"`)) {
				t.Errorf("WWW-Authenticate = %q, want a DPoP challenge with algs (RFC 9449 §7.1)", ch)
			}
			if got := res.Header.Get("DPoP-Nonce"); got != tt.nonce {
				t.Errorf("DPoP-Nonce = %q, want %q", got, tt.nonce)
			}
			if strings.Contains(body, errStoreDown.Error()) || strings.Contains(body, "dpop.bound.x") {
				t.Errorf("body leaks internals: %s", body)
			}
			if n := up.count.Load() - before; n != 0 {
				t.Errorf("upstream received %d requests, want none", n)
			}
		})
	}

	t.Run("accepted", func(t *testing.T) {
		hdr := dpopHeader("dpop.bound.x", "good-proof")
		res := h.do(t, "POST", "/echo/a%20b/c?q=1", hdr, strings.NewReader("body"))
		if body := readBody(t, res); res.StatusCode != 200 {
			t.Fatalf("status = %d; body %s", res.StatusCode, body)
		}
		req := proofs.last(t)
		want := dpop.Request{Proofs: []string{"good-proof"}, Method: "POST", URL: testIssuer + "/echo/a%20b/c", AccessToken: "dpop.bound.x"}
		if req.Method != want.Method || req.URL != want.URL || req.AccessToken != want.AccessToken || len(req.Proofs) != 1 || req.Proofs[0] != want.Proofs[0] {
			t.Errorf("proof checked against %+v, want %+v", req, want)
		}
		got := up.last(t)
		for _, k := range []string{"Authorization", "Dpop"} {
			if v, ok := got.Header[k]; ok {
				t.Errorf("upstream received %s: %q", k, v)
			}
		}
	})

	t.Run("scheme is case-insensitive", func(t *testing.T) {
		res := h.do(t, "GET", "/echo/x", http.Header{"Authorization": {"dpop dpop.bound.x"}, "Dpop": {"good-proof"}}, nil)
		if body := readBody(t, res); res.StatusCode != 200 {
			t.Fatalf("status = %d; body %s", res.StatusCode, body)
		}
	})
}

// A DPoP caller without the route's scope is refused with a DPoP challenge, not a Bearer one
// (RFC 9449 §7.1: the challenge uses the scheme of the request); a bearer caller still gets Bearer.
func TestInsufficientScopeChallengesWithRequestScheme(t *testing.T) {
	up := newUpstream(t, nil)
	route := config.Route{Methods: []string{"GET"}, Path: "/**", Scope: "chat"}
	proofs := &fakeProofs{verify: proofTable}
	dp := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth, route)}, func(c *Config, d *Deps) {
		d.Auth = NewDPoPAuth(d.Tokens, proofs, c.Issuer+"/", d.Now)
	})
	res := dp.do(t, "GET", "/echo/x", dpopHeader("dpop.bound.x", "good-proof"), nil)
	readBody(t, res)
	ch := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != 403 || !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `algs="ES256 EdDSA"`) ||
		!strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="chat"`) {
		t.Errorf("DPoP caller: %d %q, want 403 with a DPoP insufficient_scope challenge naming scope chat", res.StatusCode, ch)
	}

	br := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth, route)})
	res = br.do(t, "GET", "/echo/x", bearer("other.scope.x"), nil)
	readBody(t, res)
	ch = res.Header.Get("WWW-Authenticate")
	if res.StatusCode != 403 || !strings.HasPrefix(ch, "Bearer ") || strings.Contains(ch, "algs=") ||
		!strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="chat"`) {
		t.Errorf("bearer caller: %d %q, want 403 with a Bearer insufficient_scope challenge", res.StatusCode, ch)
	}
	if n := up.count.Load(); n != 0 {
		t.Errorf("upstream received %d requests, want none", n)
	}
}

// A DPoP-bound token sent as a bearer token is refused with a DPoP challenge (RFC 9449 §7.1).
func TestBearerRefusesBoundTokenWithDPoPChallenge(t *testing.T) {
	up := newUpstream(t, nil)
	h := newHarness(t, []config.Upstream{upstreamConfig("echo", up.URL, headerAuth)})
	res := h.do(t, "GET", "/echo/x", bearer("dpop.bound.x"), nil)
	readBody(t, res)
	ch := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != 401 || !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="invalid_token"`) ||
		!strings.Contains(ch, `algs="ES256 EdDSA"`) {
		t.Errorf("got %d %q, want 401 with a DPoP invalid_token challenge", res.StatusCode, ch)
	}
}

func FuzzDPoPAuthorization(f *testing.F) {
	for _, s := range []string{"DPoP dpop.bound.x", "DPoP ", "dpop  x", "DPoP a=b==", "DPoP kgc_x", "Bearer x", "DPoP \x00", ""} {
		f.Add(s, "good-proof")
	}
	proofs := &fakeProofs{verify: proofTable}
	now := time.Now()
	a := NewDPoPAuth(tableVerifier(now), proofs, testIssuer, func() time.Time { return now })
	f.Fuzz(func(t *testing.T, authz, proof string) {
		r := httptest.NewRequest("GET", "/echo/x", nil)
		r.Header["Authorization"] = []string{authz}
		r.Header["Dpop"] = []string{proof}
		c, err := a.Authenticate(r)
		if err == nil {
			if authz != "DPoP dpop.bound.x" && !strings.EqualFold(authz, "DPoP dpop.bound.x") || proof != "good-proof" {
				t.Fatalf("accepted %q with proof %q", authz, proof)
			}
			if c == nil || c.Subject == "" {
				t.Fatal("accepted without a caller")
			}
			return
		}
		var oe *httpapi.OAuthError
		var pe *httpapi.Problem
		if !errors.As(err, &oe) && !errors.As(err, &pe) {
			t.Fatalf("error %v is neither an OAuthError nor a Problem", err)
		}
	})
}
