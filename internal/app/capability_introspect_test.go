package app_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestCapabilityIntrospection: a resource server holding the introspect
// scope (dev-backend) sees a live capability with its remaining uses, and
// {"active": false} once it is spent or revoked (RFC 7662 §2.2).
func TestCapabilityIntrospection(t *testing.T) {
	s := startDev(t, "sqlite", nil)
	introspect := func(t *testing.T, tok string) map[string]any {
		t.Helper()
		var out map[string]any
		res := s.postForm(t, "/oauth2/introspect", url.Values{"token": {tok}}, s.backendAuth(), &out)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("introspect = %d %v", res.StatusCode, out)
		}
		return out
	}

	t.Run("live", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|quinn"}, "scope": {"echo"}, "max_uses": {"3"}})
		if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != http.StatusOK {
			t.Fatalf("use = %d", res.StatusCode)
		}
		got := introspect(t, c.CapabilityToken)
		want := map[string]any{"active": true, "token_type": "Bearer", "scope": "echo", "sub": "dev|quinn",
			"client_id": "dev-backend", "max_uses": float64(3), "uses_remaining": float64(2)}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		exp, _ := got["exp"].(float64)
		iat, _ := got["iat"].(float64)
		if exp-iat != float64(c.ExpiresIn) {
			t.Errorf("exp - iat = %v, want %d", exp-iat, c.ExpiresIn)
		}
		if _, ok := got["cnf"]; ok {
			t.Errorf("unbound capability has cnf: %v", got["cnf"])
		}
	})

	t.Run("spent", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|quinn"}, "scope": {"echo"}, "max_uses": {"1"}})
		if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != http.StatusOK {
			t.Fatalf("use = %d", res.StatusCode)
		}
		if got := introspect(t, c.CapabilityToken); len(got) != 1 || got["active"] != false {
			t.Errorf("spent capability introspects %v", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		c := s.mustMint(t, url.Values{"subject": {"dev|quinn"}, "scope": {"echo"}, "max_uses": {"5"}})
		if res := s.postForm(t, "/oauth2/revoke", url.Values{"token": {c.CapabilityToken}}, s.backendAuth(), nil); res.StatusCode != http.StatusOK {
			t.Fatalf("revoke = %d", res.StatusCode)
		}
		if got := introspect(t, c.CapabilityToken); len(got) != 1 || got["active"] != false {
			t.Errorf("revoked capability introspects %v", got)
		}
	})
}
