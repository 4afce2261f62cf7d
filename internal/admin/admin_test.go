package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/admin"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/sqlite"
)

func TestAdminAuth(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, hash := admin.NewToken()
	if err := st.CreateAdminToken(t.Context(), store.AdminToken{Name: "ops", Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := admin.New(st, logger, []admin.Route{{Pattern: "GET /admin/v1/ping", Handler: func(w http.ResponseWriter, r *http.Request) error {
		httpapi.WriteJSON(w, 200, map[string]string{"caller": admin.Caller(r.Context())})
		return nil
	}}})
	do := func(auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/admin/v1/ping", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("Bearer " + tok); rec.Code != 200 {
		t.Fatalf("valid token: %d %s", rec.Code, rec.Body)
	}
	for _, auth := range []string{"", "Bearer kga_wrong", "Basic " + tok, tok} {
		if rec := do(auth); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("auth %q: %d %v %s", auth, rec.Code, rec.Header(), rec.Body)
		}
	}
	// Keep guessing: the caller is throttled, even with the right token.
	var last int
	for i := 0; i < 20; i++ {
		last = do("Bearer kga_guess").Code
	}
	if last != 429 {
		t.Errorf("after 24 failures status = %d, want 429", last)
	}
	if rec := do("Bearer " + tok); rec.Code != 429 {
		t.Errorf("throttled caller with valid token got %d, want 429", rec.Code)
	}
}
