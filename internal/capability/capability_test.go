package capability_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/capability"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/store/sqlite"
)

const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

func newService(t *testing.T, now *time.Time, proof capability.ProofCheck) *capability.Service {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return capability.New(st, capability.Options{Now: func() time.Time { return *now }, ProofCheck: proof})
}

func request(path, raw string) *http.Request {
	r := httptest.NewRequest("GET", path, nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return r
}

// status is the HTTP status an Authenticator or check error is answered with.
func status(err error) int {
	if oe, ok := errors.AsType[*httpapi.OAuthError](err); ok {
		return oe.Status
	}
	if err != nil {
		return 500
	}
	return 200
}

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newService(t, &now, nil)
	ctx := t.Context()
	raw, err := s.MintCapability(ctx, oauth.CapabilityRequest{ClientID: "backend", Subject: "google|alice",
		Scope: "echo", Upstream: "echo", MaxUses: 2, ExpiresIn: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "kgc_") || len(raw) != 47 {
		t.Fatalf("token %q", raw)
	}
	c, err := s.Authenticate(request("/echo/x", raw))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "google|alice" || c.ClientID != "backend" || c.Scope != "echo" || c.Kind != proxy.KindCapability || c.TokenID == "" {
		t.Errorf("caller = %+v", c)
	}
	if _, err := s.Authenticate(request("/other/x", raw)); status(err) != 403 {
		t.Errorf("other upstream: %v", err)
	}
	for i := range 2 {
		if err := s.Consume(request("/echo/x", raw), c, nil); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if err := s.Consume(request("/echo/x", raw), c, nil); status(err) != 401 {
		t.Errorf("third use: %v, want 401", err)
	}
	if _, err := s.Authenticate(request("/echo/x", raw)); status(err) != 401 {
		t.Errorf("spent token authenticates: %v", err)
	}
	// Access-token callers are none of Consume's business.
	if err := s.Consume(request("/echo/x", "x"), &proxy.Caller{Kind: proxy.KindAccess}, nil); err != nil {
		t.Errorf("access caller: %v", err)
	}
}

func TestRevokeAndExpiry(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newService(t, &now, nil)
	ctx := t.Context()
	mint := func() string {
		raw, err := s.MintCapability(ctx, oauth.CapabilityRequest{ClientID: "backend", Subject: "google|alice",
			Scope: "echo", MaxUses: 10, ExpiresIn: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw := mint()
	if err := s.RevokeCapability(ctx, "someone-else", raw); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(request("/any/x", raw)); err != nil {
		t.Errorf("revoked by another client: %v", err)
	}
	if err := s.RevokeCapability(ctx, "backend", raw); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(request("/any/x", raw)); status(err) != 401 {
		t.Errorf("revoked: %v", err)
	}
	for _, junk := range []string{"", "kgc_", "kgr_" + strings.Repeat("A", 43), "kgc_" + strings.Repeat("*", 43)} {
		if err := s.RevokeCapability(ctx, "backend", junk); err != nil {
			t.Errorf("revoke %q: %v", junk, err)
		}
	}

	raw = mint()
	c, err := s.Authenticate(request("/any/x", raw))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := s.Authenticate(request("/any/x", raw)); status(err) != 401 {
		t.Errorf("expired authenticates: %v", err)
	}
	// Expiry between authentication and consumption is caught too.
	if err := s.Consume(request("/any/x", raw), c, nil); status(err) != 401 {
		t.Errorf("expired consumes: %v", err)
	}
}

func TestDPoPBound(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mint := func(s *capability.Service) string {
		raw, err := s.MintCapability(t.Context(), oauth.CapabilityRequest{ClientID: "backend", Subject: "google|alice",
			Scope: "echo", MaxUses: 10, ExpiresIn: time.Minute, DPoPJKT: jkt})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	s := newService(t, &now, nil)
	raw := mint(s)
	if _, err := s.Authenticate(request("/echo/x", raw)); status(err) != 401 {
		t.Errorf("bound token without proof support: %v, want 401", err)
	}
	if _, err := s.AuthenticateBound(request("/echo/x", raw), raw, "other"); status(err) != 401 {
		t.Errorf("AuthenticateBound with another key: %v, want 401", err)
	}
	if _, err := s.AuthenticateBound(request("/echo/x", raw), raw, jkt); err != nil {
		t.Errorf("AuthenticateBound with its key: %v", err)
	}

	var gotJKT string
	s = newService(t, &now, func(r *http.Request, raw, jkt string) error {
		gotJKT = jkt
		if r.Header.Get("DPoP") == "" {
			return errors.New("no proof")
		}
		return nil
	})
	raw = mint(s)
	if _, err := s.Authenticate(request("/echo/x", raw)); status(err) != 401 {
		t.Errorf("bound token without a proof: %v, want 401", err)
	}
	r := request("/echo/x", raw)
	r.Header.Set("DPoP", "proof")
	if _, err := s.Authenticate(r); err != nil || gotJKT != jkt {
		t.Errorf("bound token with a proof: %v (checked jkt %q)", err, gotJKT)
	}
}
