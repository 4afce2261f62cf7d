package oauth

import (
	"bytes"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func TestRefreshRotates(t *testing.T) {
	f := newFixture(t)
	ex := f.exchange(t, "app", "alice")
	sid := f.tokens.claims(ex.str("access_token")).SID
	rt1 := ex.str("refresh_token")
	f.clock.advance(time.Minute)
	r := f.refresh(t, "app", rt1)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	rt2 := r.str("refresh_token")
	if !refreshTokenRE.MatchString(rt2) || rt2 == rt1 {
		t.Fatalf("new refresh token = %q", rt2)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("headers = %v", r.header)
	}
	c := f.tokens.claims(r.str("access_token"))
	if c.SID != sid || c.Subject != "dev|alice" || c.ACR != "urn:acr:silver" || c.AuthTime != 1700000000 || c.Scope != "echo chat" {
		t.Errorf("refreshed claims = %+v, want sid %s and the exchange's acr/auth_time", c, sid)
	}
	// Narrowing the scope is allowed; widening is not (RFC 6749 §6).
	r = f.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt2}, "scope": {"chat"}})
	if r.status != http.StatusOK || r.str("scope") != "chat" {
		t.Fatalf("narrowed refresh: %d %s", r.status, r.raw)
	}
	rt3 := r.str("refresh_token")
	before := f.rows(t)
	r = f.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt3}, "scope": {"echo admin"}})
	wantError(t, r, 400, "invalid_scope")
	if after := f.rows(t); !maps.Equal(before, after) {
		t.Errorf("store changed: %v -> %v", before, after)
	}
	// The family still holds the full original grant.
	if r := f.refresh(t, "app", rt3); r.status != http.StatusOK || r.str("scope") != "echo chat" {
		t.Fatalf("refresh after narrowing: %d %s", r.status, r.raw)
	}
	toks, _ := f.store.FamilyTokens(t.Context(), sid)
	if live := liveTokens(toks); len(toks) != 4 || live != 1 {
		t.Errorf("family has %d tokens, %d live; want 4, 1", len(toks), live)
	}
}

func liveTokens(toks []store.RefreshToken) int {
	n := 0
	for _, t := range toks {
		if t.RotatedAt.IsZero() {
			n++
		}
	}
	return n
}

// TestRefreshParallel: 32 clients present one refresh token at once. The
// grace window makes every answer carry the identical successor, and the
// family ends with exactly one live token.
func TestRefreshParallel(t *testing.T) {
	const workers = 32
	f := newFixture(t)
	ex := f.exchange(t, "app", "alice")
	rt := ex.str("refresh_token")
	sid := f.tokens.claims(ex.str("access_token")).SID
	var wg sync.WaitGroup
	start := make(chan struct{})
	answers := make([]response, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = f.refresh(t, "app", rt)
		}()
	}
	close(start)
	wg.Wait()
	next := ""
	jtis := map[string]bool{}
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Fatalf("answer %d = %d %s", i, a.status, a.raw)
		}
		if next == "" {
			next = a.str("refresh_token")
		}
		if a.str("refresh_token") != next {
			t.Fatalf("answer %d refresh token differs", i)
		}
		c := f.tokens.claims(a.str("access_token"))
		if c.SID != sid {
			t.Errorf("answer %d sid = %q, want %q", i, c.SID, sid)
		}
		jtis[c.JTI] = true
	}
	if len(jtis) != workers {
		t.Errorf("%d distinct access tokens, want %d (each answer mints its own)", len(jtis), workers)
	}
	rows := f.rows(t)
	if rows["refresh_families"] != 1 || rows["refresh_tokens"] != 2 || rows["revoked_families"] != 0 {
		t.Errorf("rows = %v, want one family with two tokens", rows)
	}
	toks, _ := f.store.FamilyTokens(t.Context(), sid)
	if liveTokens(toks) != 1 {
		t.Errorf("live tokens = %d, want 1", liveTokens(toks))
	}
	if r := f.refresh(t, "app", next); r.status != http.StatusOK {
		t.Errorf("refresh with the successor: %d %s", r.status, r.raw)
	}
}

func TestRefreshGraceAndReuse(t *testing.T) {
	f := newFixture(t)
	ex := f.exchange(t, "app", "alice")
	rt1 := ex.str("refresh_token")
	at0 := ex.str("access_token")
	sid := f.tokens.claims(at0).SID

	r := f.refresh(t, "app", rt1)
	rt2 := r.str("refresh_token")
	at1 := r.str("access_token")
	f.clock.advance(grace / 2)
	again := f.refresh(t, "app", rt1)
	if again.status != http.StatusOK || again.str("refresh_token") != rt2 {
		t.Fatalf("replay within grace = %d %s, want the same refresh token", again.status, again.raw)
	}
	if again.str("access_token") == at1 {
		t.Error("replay within grace reused the access token; want a fresh one")
	}

	f.clock.advance(grace) // now 1.5 × grace after the rotation
	r = f.refresh(t, "app", rt1)
	wantError(t, r, 400, "invalid_grant")
	logs := f.logs.String()
	if !strings.Contains(logs, "refresh token reuse") || !strings.Contains(logs, "family="+sid) || !strings.Contains(logs, "subject=dev|alice") {
		t.Errorf("no reuse warning with family and subject in logs:\n%s", logs)
	}
	for _, tok := range []string{rt1, rt2} {
		if strings.Contains(logs, tok) {
			t.Error("a refresh token appears in the logs")
		}
	}
	// The whole family is dead: its live token, and its access tokens.
	wantError(t, f.refresh(t, "app", rt2), 400, "invalid_grant")
	fam, _ := f.store.Family(t.Context(), sid)
	if fam.RevokedAt.IsZero() || fam.RevokeReason != "reuse" {
		t.Errorf("family = %+v, want revoked for reuse", fam)
	}
	revs, _ := f.store.RevocationsSince(t.Context(), 0, f.clock.now())
	if len(revs) != 1 || revs[0].Kind != store.RevokeFamily || revs[0].Value != sid || !revs[0].ExpiresAt.After(f.clock.now().Add(accessTTL)) {
		t.Errorf("revocation log = %+v, want one family entry for %s outliving the access tokens", revs, sid)
	}
	if len(f.revoker.applied) != 1 {
		t.Errorf("applied revocations = %d, want 1", len(f.revoker.applied))
	}
	for _, at := range []string{at0, at1} {
		r := f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret))
		if r.status != 200 || r.body["active"] != false {
			t.Errorf("introspect family access token = %s, want inactive", r.raw)
		}
	}
}

// A rotated token whose successor has itself been rotated is reuse even
// within the grace window.
func TestRefreshReuseAfterSuccessorRotated(t *testing.T) {
	f := newFixture(t)
	rt1 := f.exchange(t, "app", "alice").str("refresh_token")
	rt2 := f.refresh(t, "app", rt1).str("refresh_token")
	rt3 := f.refresh(t, "app", rt2).str("refresh_token")
	wantError(t, f.refresh(t, "app", rt1), 400, "invalid_grant")
	wantError(t, f.refresh(t, "app", rt3), 400, "invalid_grant")
	if rows := f.rows(t); rows["revoked_families"] != 1 {
		t.Errorf("rows = %v, want the family revoked", rows)
	}
}

func TestRefreshZeroGrace(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.ReuseGrace = 0 })
	rt1 := f.exchange(t, "app", "alice").str("refresh_token")
	if r := f.refresh(t, "app", rt1); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	wantError(t, f.refresh(t, "app", rt1), 400, "invalid_grant")
	if rows := f.rows(t); rows["revoked_families"] != 1 {
		t.Errorf("rows = %v, want the family revoked", rows)
	}
}

func TestRefreshErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fixture, rt string) url.Values
		status int
		code   string
	}{
		{"missing token", func(f *fixture, rt string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}}
		}, 400, "invalid_request"},
		{"malformed token", func(f *fixture, rt string) url.Values { return refreshForm("app", "kgr_short") }, 400, "invalid_grant"},
		{"unknown token", func(f *fixture, rt string) url.Values { return refreshForm("app", "kgr_"+strings.Repeat("A", 43)) }, 400, "invalid_grant"},
		{"other client's token", func(f *fixture, rt string) url.Values { return refreshForm("app2", rt) }, 400, "invalid_grant"},
		{"idle expired", func(f *fixture, rt string) url.Values { f.clock.advance(idleTTL); return refreshForm("app", rt) }, 400, "invalid_grant"},
		{"family expired", func(f *fixture, rt string) url.Values {
			for range refreshTTL / idleTTL {
				f.clock.advance(idleTTL - time.Hour)
				rt = f.refresh(f.t, "app", rt).str("refresh_token")
			}
			f.clock.advance(idleTTL - time.Hour)
			return refreshForm("app", rt)
		}, 400, "invalid_grant"},
		{"wider scope", func(f *fixture, rt string) url.Values {
			v := refreshForm("app", rt)
			v.Set("scope", "echo capability:mint")
			return v
		}, 400, "invalid_scope"},
		{"confidential client", func(f *fixture, rt string) url.Values { return refreshForm("backend", rt) }, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.t = t
			rt := f.exchange(t, "app", "alice").str("refresh_token")
			form := tt.setup(f, rt)
			before := f.rows(t)
			wantError(t, f.post(t, "/oauth2/token", form), tt.status, tt.code)
			if after := f.rows(t); !maps.Equal(before, after) {
				t.Errorf("store changed: %v -> %v", before, after)
			}
		})
	}
}

func refreshForm(client, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}}
}

func TestSuccessorIsDeterministic(t *testing.T) {
	f := newFixture(t)
	a, b := f.oauth.successor("kgr_x"), f.oauth.successor("kgr_x")
	if a != b || !refreshTokenRE.MatchString(a) || a == f.oauth.successor("kgr_y") {
		t.Errorf("successor: %q %q", a, b)
	}
	if bytes.Equal(hashToken(a), hashToken("kgr_x")) {
		t.Error("successor hash equals its predecessor's")
	}
}
