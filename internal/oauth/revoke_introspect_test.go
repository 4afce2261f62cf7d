package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

type fakeCapabilities struct {
	revoke func(ctx context.Context, clientID, raw string) error
}

func (f fakeCapabilities) RevokeCapabilityTx(ctx context.Context, _ store.Tx, clientID, raw string) (store.Capability, bool, error) {
	return store.Capability{}, false, f.revoke(ctx, clientID, raw)
}

func TestRevokeRefreshTokenKillsFamily(t *testing.T) {
	f := newFixture(t)
	ex := f.exchange(t, "app", "alice")
	rt1, at := ex.str("refresh_token"), ex.str("access_token")
	sid := f.tokens.claims(at).SID
	rt2 := f.refresh(t, "app", rt1).str("refresh_token")

	// Another client's attempt answers 200 and changes nothing (§2.2).
	before := f.rows(t)
	r := f.post(t, "/oauth2/revoke", url.Values{"client_id": {"app2"}, "token": {rt2}})
	if r.status != 200 || r.raw != "" {
		t.Fatalf("revoke by other client = %d %q", r.status, r.raw)
	}
	if after := f.rows(t); after["revoked_families"] != before["revoked_families"] {
		t.Fatal("another client revoked the family")
	}

	r = f.post(t, "/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {rt2}, "token_type_hint": {"refresh_token"}})
	if r.status != 200 || r.raw != "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke = %d %q %v", r.status, r.raw, r.header)
	}
	wantError(t, f.refresh(t, "app", rt2), 400, "invalid_grant")
	wantError(t, f.refresh(t, "app", rt1), 400, "invalid_grant")
	fam, _ := f.store.Family(t.Context(), sid)
	if fam.RevokedAt.IsZero() {
		t.Error("family not revoked")
	}
	revs, _ := f.store.RevocationsSince(t.Context(), 0, f.clock.now())
	if len(revs) != 1 || revs[0].Kind != store.RevokeFamily || revs[0].Value != sid {
		t.Errorf("revocations = %+v", revs)
	}
	r = f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret))
	if r.body["active"] != false {
		t.Errorf("access token of revoked family introspects %s", r.raw)
	}
	// Revoking again is still 200 and appends nothing.
	f.post(t, "/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {rt2}})
	if revs, _ := f.store.RevocationsSince(t.Context(), 0, f.clock.now()); len(revs) != 1 {
		t.Errorf("second revoke appended: %d entries", len(revs))
	}
}

func TestRevokeAccessToken(t *testing.T) {
	var capCalls []string
	f := newFixture(t, func(_ *Config, d *Deps) {
		d.Capabilities = fakeCapabilities{revoke: func(_ context.Context, clientID, raw string) error {
			capCalls = append(capCalls, clientID+" "+raw)
			return nil
		}}
	})
	at := f.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("backend", backendSecret)).str("access_token")
	// Another client cannot revoke it.
	f.post(t, "/oauth2/revoke", url.Values{"token": {at}, "client_id": {"poster"}, "client_secret": {posterSecret}})
	if revs, _ := f.store.RevocationsSince(t.Context(), 0, f.clock.now()); len(revs) != 0 {
		t.Fatalf("another client's revocation took effect: %+v", revs)
	}
	r := f.post(t, "/oauth2/revoke", url.Values{"token": {at}, "token_type_hint": {"whatever"}}, basic("backend", backendSecret))
	if r.status != 200 {
		t.Fatalf("revoke = %d %s", r.status, r.raw)
	}
	revs, _ := f.store.RevocationsSince(t.Context(), 0, f.clock.now())
	jti := f.tokens.claims(at).JTI
	if len(revs) != 1 || revs[0].Kind != store.RevokeJTI || revs[0].Value != jti {
		t.Errorf("revocations = %+v, want jti %s", revs, jti)
	}
	if r := f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret)); r.body["active"] != false {
		t.Errorf("revoked access token introspects %s", r.raw)
	}
	for _, tok := range []string{"garbage", "kgr_nope", strings.Repeat("x", 9000)} {
		if r := f.post(t, "/oauth2/revoke", url.Values{"token": {tok}}, basic("backend", backendSecret)); r.status != 200 {
			t.Errorf("revoke %.10q = %d, want 200", tok, r.status)
		}
	}
	f.post(t, "/oauth2/revoke", url.Values{"token": {"kgc_abc"}}, basic("backend", backendSecret))
	if len(capCalls) != 1 || capCalls[0] != "backend kgc_abc" {
		t.Errorf("capability revoker calls = %q", capCalls)
	}
	wantError(t, f.post(t, "/oauth2/revoke", url.Values{}, basic("backend", backendSecret)), 400, "invalid_request")
	wantError(t, f.post(t, "/oauth2/revoke", url.Values{"token": {at}}, basic("backend", "wrong")), 401, "invalid_client")
	wantError(t, f.post(t, "/oauth2/revoke", url.Values{"token": {at}}), 401, "invalid_client")
}

func TestCapabilityRevokerErrorIs500(t *testing.T) {
	f := newFixture(t, func(_ *Config, d *Deps) {
		d.Capabilities = fakeCapabilities{revoke: func(context.Context, string, string) error { return errors.New("db down: secret-detail") }}
	})
	r := f.post(t, "/oauth2/revoke", url.Values{"token": {"kgc_abc"}}, basic("backend", backendSecret))
	if r.status != 500 || strings.Contains(r.raw, "secret-detail") {
		t.Errorf("answer = %d %s, want 500 without the cause", r.status, r.raw)
	}
}

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	ex := f.exchange(t, "app", "alice")
	at, rt := ex.str("access_token"), ex.str("refresh_token")
	c := f.tokens.claims(at)

	r := f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret))
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect = %d %s", r.status, r.raw)
	}
	want := map[string]any{"active": true, "scope": "echo chat", "client_id": "app", "sub": "dev|alice",
		"iss": f.issuer, "aud": f.issuer, "jti": c.JTI, "token_type": "Bearer", "sid": c.SID,
		"exp": float64(c.Expiry.Unix()), "iat": float64(c.IssuedAt.Unix())}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.body[k], v)
		}
	}
	r = f.post(t, "/oauth2/introspect", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, basic("rs", rsSecret))
	if r.body["active"] != true || r.str("token_type") != "refresh_token" || r.str("sid") != c.SID || r.str("client_id") != "app" {
		t.Errorf("introspect refresh token = %s", r.raw)
	}
	// private_key_jwt client with the introspect scope.
	r = f.post(t, "/oauth2/introspect", url.Values{"token": {at}, "client_assertion_type": {ClientAssertionType},
		"client_assertion": {f.assertion(t, nil)}})
	if r.body["active"] != true {
		t.Errorf("introspect as jwtc = %d %s", r.status, r.raw)
	}

	f.refresh(t, "app", rt) // rotated: no longer active
	for _, tok := range []string{rt, "garbage", "kgc_x", "kgr_" + strings.Repeat("A", 43)} {
		r := f.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, basic("rs", rsSecret))
		if r.status != 200 || r.raw != "{\"active\":false}\n" {
			t.Errorf("introspect %q = %d %s, want {\"active\":false}", tok, r.status, r.raw)
		}
	}
	f.clock.advance(accessTTL)
	if r := f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret)); r.body["active"] != false {
		t.Errorf("expired access token = %s", r.raw)
	}

	wantError(t, f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("backend", backendSecret)), 403, "insufficient_scope")
	wantError(t, f.post(t, "/oauth2/introspect", url.Values{"token": {at}, "client_id": {"app"}}), 401, "invalid_client")
	wantError(t, f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", "nope")), 401, "invalid_client")
	wantError(t, f.post(t, "/oauth2/introspect", url.Values{}, basic("rs", rsSecret)), 400, "invalid_request")
	if r := f.post(t, "/oauth2/introspect", url.Values{"token": {at}}, basic("rs", rsSecret), func(r *http.Request) {
		r.URL.RawQuery = "token=" + at
	}); r.status != 400 {
		t.Errorf("token in query = %d, want 400", r.status)
	}
}

type fakeIntrospector struct {
	introspect func(ctx context.Context, raw string) (store.Capability, bool, error)
}

func (f fakeIntrospector) IntrospectCapability(ctx context.Context, raw string) (store.Capability, bool, error) {
	return f.introspect(ctx, raw)
}

func TestIntrospectCapability(t *testing.T) {
	const live, bound, failing = "kgc_live", "kgc_bound", "kgc_fail"
	created := time.Unix(1_700_000_000, 0)
	capability := store.Capability{ClientID: "backend", Subject: "dev|alice", Scope: "echo", MaxUses: 5, Uses: 2,
		CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute)}
	f := newFixture(t, func(_ *Config, d *Deps) {
		d.CapabilityIntrospector = fakeIntrospector{introspect: func(_ context.Context, raw string) (store.Capability, bool, error) {
			switch raw {
			case live:
				return capability, true, nil
			case bound:
				c := capability
				c.DPoPJKT = strings.Repeat("j", 43)
				return c, true, nil
			case failing:
				return store.Capability{}, false, errors.New("db down: secret-detail")
			}
			return store.Capability{}, false, nil // revoked, expired, spent, unknown
		}}
	})

	r := f.post(t, "/oauth2/introspect", url.Values{"token": {live}}, basic("rs", rsSecret))
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect = %d %s", r.status, r.raw)
	}
	want := map[string]any{"active": true, "token_type": "Bearer", "scope": "echo", "sub": "dev|alice",
		"client_id": "backend", "iss": f.issuer, "exp": float64(created.Add(5 * time.Minute).Unix()),
		"iat": float64(created.Unix()), "max_uses": float64(5), "uses_remaining": float64(3)}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.body[k], v)
		}
	}
	if _, ok := r.body["cnf"]; ok {
		t.Errorf("unbound capability has cnf: %s", r.raw)
	}

	r = f.post(t, "/oauth2/introspect", url.Values{"token": {bound}}, basic("rs", rsSecret))
	if cnf, _ := r.body["cnf"].(map[string]any); r.body["token_type"] != "Bearer" || cnf["jkt"] != strings.Repeat("j", 43) {
		t.Errorf("bound capability = %s, want token_type Bearer and cnf.jkt", r.raw)
	}

	r = f.post(t, "/oauth2/introspect", url.Values{"token": {"kgc_gone"}}, basic("rs", rsSecret))
	if r.status != 200 || r.raw != "{\"active\":false}\n" {
		t.Errorf("inactive capability = %d %s", r.status, r.raw)
	}

	r = f.post(t, "/oauth2/introspect", url.Values{"token": {failing}}, basic("rs", rsSecret))
	if r.status != 500 || strings.Contains(r.raw, "secret-detail") {
		t.Errorf("introspector error = %d %s, want 500 without the cause", r.status, r.raw)
	}

	wantError(t, f.post(t, "/oauth2/introspect", url.Values{"token": {live}}, basic("backend", backendSecret)), 403, "insufficient_scope")
}
