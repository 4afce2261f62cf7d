package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// fakeAuditor appends through the transaction it is given, as the real
// one does, and remembers the committed events.
type fakeAuditor struct {
	fail   func(rec store.AuditRecord) error // nil: never fail
	mu     sync.Mutex
	events []string
}

func (a *fakeAuditor) Append(ctx context.Context, tx store.Tx, rec store.AuditRecord) error {
	if a.fail != nil {
		if err := a.fail(rec); err != nil {
			return err
		}
	}
	return tx.InsertAudit(ctx, []store.AuditRecord{rec})
}

func (a *fakeAuditor) Event(e string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func TestAuditEvents(t *testing.T) {
	aud := &fakeAuditor{}
	f := newFixture(t, func(_ *Config, d *Deps) { d.Audit = aud })
	ex := f.exchange(t, "app", "alice")
	rt1 := ex.str("refresh_token")
	r := f.refresh(t, "app", rt1)
	rt2 := r.str("refresh_token")
	f.clock.advance(time.Minute)
	if r := f.refresh(t, "app", rt2); r.status != http.StatusOK {
		t.Fatalf("second refresh: %d %s", r.status, r.raw)
	}
	if r := f.refresh(t, "app", rt1); r.status != http.StatusBadRequest {
		t.Fatalf("reuse: %d %s", r.status, r.raw)
	}
	ex2 := f.exchange(t, "app", "bob")
	if r := f.post(t, "/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {ex2.str("refresh_token")}}); r.status != 200 {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := f.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("backend", backendSecret)); r.status != 200 {
		t.Fatalf("client_credentials: %d %s", r.status, r.raw)
	}

	recs, err := f.store.AuditSince(t.Context(), time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Kind+" "+rec.Subject+" "+rec.ClientID)
		for _, tok := range []string{rt1, rt2, ex.str("access_token"), ex2.str("refresh_token"), backendSecret} {
			if strings.Contains(fmt.Sprintf("%+v", rec), tok) {
				t.Errorf("record %+v holds a token or secret", rec)
			}
		}
	}
	want := []string{
		"token.issue dev|alice app", "token.refresh dev|alice app", "token.refresh dev|alice app", "token.reuse dev|alice app",
		"token.issue dev|bob app", "token.revoke dev|bob app", "token.issue client:backend backend",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records:\n got %q\nwant %q", got, want)
	}
	if fmt.Sprint(aud.events) != "[issue refresh refresh reuse issue revoke issue]" {
		t.Errorf("events = %v", aud.events)
	}
}

// The record and the change commit together: when the record cannot be
// written, the rotation is rolled back and the presented token still works.
func TestAuditFailureRollsBack(t *testing.T) {
	broken := errors.New("audit table gone")
	aud := &fakeAuditor{}
	f := newFixture(t, func(_ *Config, d *Deps) { d.Audit = aud })
	rt := f.exchange(t, "app", "alice").str("refresh_token")
	before := f.rows(t)
	aud.fail = func(store.AuditRecord) error { return broken }
	if r := f.refresh(t, "app", rt); r.status != http.StatusInternalServerError {
		t.Fatalf("refresh with a failing audit log: %d %s", r.status, r.raw)
	}
	if after := f.rows(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rows changed: %v -> %v", before, after)
	}
	aud.fail = nil
	if r := f.refresh(t, "app", rt); r.status != http.StatusOK {
		t.Fatalf("refresh after the audit log recovered: %d %s", r.status, r.raw)
	}
}
