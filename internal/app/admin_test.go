package app_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/store"
)

func TestAdminAPIAuth(t *testing.T) {
	t.Parallel()
	s := startDev(t, "sqlite", nil)
	for _, path := range []string{"/admin/v1/blocks", "/admin/v1/audit", "/admin/v1/secrets", "/admin/v1/nope", "/admin/"} {
		for _, auth := range []string{"", "Bearer kga_wrong", "Bearer " + strings.Repeat("x", 10)} {
			req, _ := http.NewRequest("GET", s.AdminURL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			// 429 once the wrong-token limiter has had enough of us.
			if res.StatusCode != 401 && res.StatusCode != 429 {
				t.Errorf("GET %s with %q: %d, want 401", path, auth, res.StatusCode)
			}
		}
	}
	// Nothing admin on the public listener.
	if res, _ := s.get(t, "/admin/v1/blocks", "Bearer "+s.adminToken(t)); res.StatusCode != 404 {
		t.Errorf("admin route on the public listener: %d", res.StatusCode)
	}
}

func TestAdminAPI(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startDev(t, backend, nil)
			adm := s.adminToken(t)

			// Token events: issue, refresh, reuse, revoke; client_credentials issue.
			alice := s.exchange(t, "alice", nil)
			var r1, r2 tokenResponse
			s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {alice.RefreshToken}}, nil, &r1)
			s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {r1.RefreshToken}}, nil, &r2)
			if r1.RefreshToken == "" || r2.RefreshToken == "" {
				t.Fatalf("refresh: %+v %+v", r1, r2)
			}
			// The first token again, its successor since rotated: reuse.
			if res := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {alice.RefreshToken}}, nil, nil); res.StatusCode != 400 {
				t.Fatalf("reuse: %d", res.StatusCode)
			}
			bob := s.exchange(t, "bob", nil)
			if res := s.postForm(t, "/oauth2/revoke", url.Values{"client_id": {"dev-app"}, "token": {bob.RefreshToken}}, nil, nil); res.StatusCode != 200 {
				t.Fatalf("revoke: %d", res.StatusCode)
			}
			var cc tokenResponse
			req := url.Values{"grant_type": {"client_credentials"}}
			h := http.Header{}
			h.Set("Authorization", "Basic "+basic("dev-backend", s.BackendSecret))
			if res := s.postForm(t, "/oauth2/token", req, h, &cc); res.StatusCode != 200 {
				t.Fatalf("client_credentials: %d", res.StatusCode)
			}

			// A few proxied requests.
			carol := s.exchange(t, "carol", nil)
			for range 3 {
				if res, body := s.get(t, "/echo/x", "Bearer "+carol.AccessToken); res.StatusCode != 200 {
					t.Fatalf("proxy: %d %s", res.StatusCode, body)
				}
			}
			if res, _ := s.get(t, "/echo/x", "Bearer nope"); res.StatusCode != 401 {
				t.Fatalf("bad token: %d", res.StatusCode)
			}

			recs := s.waitAudit(t, adm, func(recs []store.AuditRecord) bool {
				return countKind(recs, "token.issue") >= 4 && countKind(recs, "token.refresh") >= 2 &&
					countKind(recs, "token.reuse") >= 1 && countKind(recs, "token.revoke") >= 1 &&
					countStatus(recs, 200) >= 3 && countStatus(recs, 401) >= 1
			})
			raw := s.adminJSON(t, "GET", "/admin/v1/audit?limit=1000", adm, "", 200, nil)
			for _, leak := range []string{"eyJ", "kgr_", "kgs_", "kga_", s.BackendSecret} {
				if strings.Contains(string(raw), leak) {
					t.Errorf("audit log contains %q", leak)
				}
			}
			var sawCarol, sawReuse, sawCC bool
			for _, r := range recs {
				switch {
				case r.Kind == "request" && r.Subject == "dev|carol":
					sawCarol = r.Upstream == "echo" && r.Status == 200 && r.ClientID == "dev-app" && r.RequestID != "" && r.Route == "/**"
				case r.Kind == "token.reuse":
					sawReuse = r.Subject == "dev|alice" && strings.Contains(r.Detail, "family=")
				case r.Kind == "token.issue" && r.ClientID == "dev-backend":
					sawCC = r.Subject == "client:dev-backend"
				}
			}
			if !sawCarol || !sawReuse || !sawCC {
				t.Errorf("audit records: carol %v reuse %v client_credentials %v", sawCarol, sawReuse, sawCC)
			}
			// limit is capped and validated; since must be RFC 3339.
			s.adminJSON(t, "GET", "/admin/v1/audit?limit=0", adm, "", 400, nil)
			s.adminJSON(t, "GET", "/admin/v1/audit?since=yesterday", adm, "", 400, nil)
			var two struct {
				Records []store.AuditRecord `json:"records"`
			}
			s.adminJSON(t, "GET", "/admin/v1/audit?limit=2", adm, "", 200, &two)
			if len(two.Records) != 2 {
				t.Errorf("limit=2 gave %d records", len(two.Records))
			}

			// Metrics: by upstream and status, never by subject.
			m := s.metrics(t)
			if !strings.Contains(m, `keygate_proxy_requests_total{status="200",upstream="echo"} 3`) {
				t.Errorf("metrics lack proxied requests:\n%s", grepLines(m, "keygate_"))
			}
			if !strings.Contains(m, `keygate_token_events_total{event="reuse"} 1`) || !strings.Contains(m, `keygate_token_events_total{event="issue"}`) {
				t.Errorf("metrics lack token events:\n%s", grepLines(m, "keygate_"))
			}
			for _, leak := range []string{"carol", "alice", "dev|", "dev-app"} {
				if strings.Contains(m, leak) {
					t.Errorf("metrics contain %q", leak)
				}
			}

			// Families: listed without any hash.
			var fams struct {
				Families []map[string]any `json:"families"`
			}
			raw = s.adminJSON(t, "GET", "/admin/v1/families?subject="+url.QueryEscape("dev|carol"), adm, "", 200, &fams)
			if len(fams.Families) != 1 || fams.Families[0]["client_id"] != "dev-app" || strings.Contains(strings.ToLower(string(raw)), "hash") {
				t.Errorf("families = %s", raw)
			}
			s.adminJSON(t, "GET", "/admin/v1/families", adm, "", 400, nil)

			// Revoke by subject: carol's access token dies at once.
			var rr struct {
				Revoked  string `json:"revoked"`
				Families int    `json:"families"`
			}
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"subject":"dev|carol"}`, 200, &rr)
			if rr.Revoked != "subject" || rr.Families != 1 {
				t.Errorf("revoke subject = %+v", rr)
			}
			if res, _ := s.get(t, "/echo/x", "Bearer "+carol.AccessToken); res.StatusCode != 401 {
				t.Errorf("carol after revoke: %d", res.StatusCode)
			}
			// Revoke one raw access token, and a refresh token.
			dave := s.exchange(t, "dave", nil)
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"`+dave.AccessToken+`"}`, 200, nil)
			if res, _ := s.get(t, "/echo/x", "Bearer "+dave.AccessToken); res.StatusCode != 401 {
				t.Errorf("dave's access token after revoke: %d", res.StatusCode)
			}
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"`+dave.RefreshToken+`"}`, 200, &rr)
			if rr.Families != 1 {
				t.Errorf("revoke refresh token = %+v", rr)
			}
			if res := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"dev-app"}, "refresh_token": {dave.RefreshToken}}, nil, nil); res.StatusCode != 400 {
				t.Errorf("refresh after admin revoke: %d", res.StatusCode)
			}
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"kgr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, 404, nil)
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"client":"dev-backend"}`, 200, nil)

			// Bad input.
			for _, body := range []string{``, `{}`, `{"subject":"a","client":"b"}`, `{"user":"a"}`, `{"subject":1}`,
				`{"subject":""}`, `[]`, `{"subject":"a"} {"subject":"b"}`, `not json`} {
				s.adminJSON(t, "POST", "/admin/v1/revoke", adm, body, 400, nil)
			}
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"subject":"`+strings.Repeat("a", 70<<10)+`"}`, 413, nil)
			s.adminJSON(t, "GET", "/admin/v1/nope", adm, "", 404, nil)
			s.adminJSON(t, "PUT", "/admin/v1/blocks", adm, "", 404, nil)

			// Secrets: names and versions only.
			var secrets struct {
				Secrets []map[string]any `json:"secrets"`
			}
			raw = s.adminJSON(t, "GET", "/admin/v1/secrets", adm, "", 200, &secrets)
			echoKey, _, _ := s.Vault.Get(t.Context(), "echo-key")
			if !strings.Contains(string(raw), `"echo-key"`) || strings.Contains(string(raw), string(echoKey.Reveal())) ||
				strings.Contains(string(raw), s.BackendSecret) {
				t.Errorf("secrets = %s", raw)
			}
			for _, sec := range secrets.Secrets {
				if len(sec) != 5 || sec["latest"] == nil {
					t.Errorf("secret entry %v", sec)
				}
			}

			// The admin revocations are audited too.
			s.waitAudit(t, adm, func(recs []store.AuditRecord) bool {
				n := 0
				for _, r := range recs {
					if r.Kind == "token.revoke" && strings.Contains(r.Detail, "by admin") {
						n++
					}
				}
				return n >= 4
			})
		})
	}
}

// basic is client_secret_basic credentials (RFC 6749 §2.3.1: each part
// form-encoded, then base64).
func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// An operator revokes any capability token through the admin API, whatever
// client minted it; the proxy refuses it at once.
func TestAdminRevokeCapability(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startDev(t, backend, nil)
			adm := s.adminToken(t)
			c := s.mustMint(t, url.Values{"subject": {"dev|erin"}, "scope": {"echo"}, "max_uses": {"5"}})
			if res, body := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 200 {
				t.Fatalf("capability before revoke: %d %s", res.StatusCode, body)
			}

			var rr struct {
				Revoked   string `json:"revoked"`
				TokenKind string `json:"token_kind"`
			}
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"`+c.CapabilityToken+`"}`, 200, &rr)
			if rr.Revoked != "token" || rr.TokenKind != "capability" {
				t.Errorf("revoke capability = %+v", rr)
			}
			res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken)
			if res.StatusCode != 401 || !isInvalidToken(res.Header.Get("WWW-Authenticate")) {
				t.Errorf("capability after admin revoke: %d %q, want 401 invalid_token", res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			// Again: still a known token, nothing changes.
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"`+c.CapabilityToken+`"}`, 200, nil)
			// Unknown and malformed capability tokens are not live tokens.
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"kgc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, 404, nil)
			s.adminJSON(t, "POST", "/admin/v1/revoke", adm, `{"token":"kgc_short"}`, 404, nil)

			raw := s.adminJSON(t, "GET", "/admin/v1/audit?limit=1000", adm, "", 200, nil)
			if strings.Contains(string(raw), "kgc_") {
				t.Errorf("audit log contains a capability token: %s", raw)
			}
		})
	}
}

// Minting a capability token and its revocation at /oauth2/revoke are
// audited, and no record holds the token.
func TestCapabilityAudit(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startDev(t, backend, nil)
			adm := s.adminToken(t)
			c := s.mustMint(t, url.Values{"subject": {"dev|frank"}, "scope": {"echo"}, "max_uses": {"3"}, "upstream": {"echo"}})
			if res := s.postForm(t, "/oauth2/revoke", url.Values{"token": {c.CapabilityToken}}, s.backendAuth(), nil); res.StatusCode != 200 {
				t.Fatalf("revoke: %d", res.StatusCode)
			}
			if res, _ := s.get(t, "/echo/x", "Bearer "+c.CapabilityToken); res.StatusCode != 401 {
				t.Fatalf("capability after revoke: %d, want 401", res.StatusCode)
			}
			// Revoking it again changes nothing and records nothing.
			s.postForm(t, "/oauth2/revoke", url.Values{"token": {c.CapabilityToken}}, s.backendAuth(), nil)

			recs := s.waitAudit(t, adm, func(recs []store.AuditRecord) bool {
				return countKind(recs, "capability.mint") >= 1 && countKind(recs, "token.revoke") >= 1
			})
			var mint, revoke int
			for _, r := range recs {
				switch r.Kind {
				case "capability.mint":
					mint++
					if r.Subject != "dev|frank" || r.ClientID != "dev-backend" || r.RequestID == "" ||
						!strings.Contains(r.Detail, "max_uses=3") || !strings.Contains(r.Detail, `upstream="echo"`) {
						t.Errorf("mint record = %+v", r)
					}
				case "token.revoke":
					revoke++
					if r.Subject != "dev|frank" || r.ClientID != "dev-backend" || !strings.Contains(r.Detail, "capability") {
						t.Errorf("revoke record = %+v", r)
					}
				}
			}
			if mint != 1 || revoke != 1 {
				t.Errorf("%d mint and %d revoke records, want 1 each", mint, revoke)
			}
			raw := s.adminJSON(t, "GET", "/admin/v1/audit?limit=1000", adm, "", 200, nil)
			if strings.Contains(string(raw), "kgc_") || strings.Contains(string(raw), c.CapabilityToken[4:]) {
				t.Errorf("audit log contains the capability token: %s", raw)
			}
		})
	}
}
