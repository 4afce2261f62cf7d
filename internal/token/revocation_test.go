package token

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// logStore is an in-memory revocation log whose entries become visible
// when the test says so, as PostgreSQL commits can land out of id order.
type logStore struct {
	mu      sync.Mutex
	entries []store.Revocation
	visible map[int64]bool
	since   []int64 // the after argument of each RevocationsSince
}

func (l *logStore) AddRevocation(_ context.Context, r store.Revocation) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.ID = int64(len(l.entries) + 1)
	l.entries = append(l.entries, r)
	return r.ID, nil
}

func (l *logStore) RevocationsSince(_ context.Context, after int64, now time.Time) ([]store.Revocation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = append(l.since, after)
	var out []store.Revocation
	for _, r := range l.entries {
		if r.ID > after && l.visible[r.ID] && r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l *logStore) PruneRevocations(context.Context, time.Time) (int, error) { return 0, nil }

func (l *logStore) show(ids ...int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.visible[id] = true
	}
}

func TestSyncOutOfOrderCommits(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	ls := &logStore{visible: map[int64]bool{}}
	for _, jti := range []string{"a", "b", "c"} {
		_, _ = ls.AddRevocation(ctx, store.Revocation{Kind: store.RevokeJTI, Value: jti, ExpiresAt: testT0.Add(time.Hour)})
	}
	rev := NewRevocations(ls, clk.Now, nil)
	revoked := func(jti string) bool { return errors.Is(rev.Check(&AccessClaims{JTI: jti}), ErrRevoked) }

	ls.show(1, 3) // id 3 commits before id 2
	if err := rev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !revoked("a") || revoked("b") || !revoked("c") {
		t.Fatal("first sync: want a and c revoked, b not yet")
	}
	clk.Advance(time.Second)
	ls.show(2)
	if err := rev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !revoked("b") {
		t.Fatal("id 2, committed after id 3, was missed")
	}
	// Everything up to 3 is now contiguous: polling resumes after 3.
	clk.Advance(time.Second)
	_ = rev.Sync(ctx)
	if got := ls.since[len(ls.since)-1]; got != 3 {
		t.Errorf("polled after id %d, want 3", got)
	}

	// A gap that never fills (a rolled-back insert) stops holding the
	// floor back once the overlap window has passed.
	_, _ = ls.AddRevocation(ctx, store.Revocation{Kind: store.RevokeJTI, Value: "d", ExpiresAt: testT0.Add(time.Hour)}) // 4: rolled back
	_, _ = ls.AddRevocation(ctx, store.Revocation{Kind: store.RevokeJTI, Value: "e", ExpiresAt: testT0.Add(time.Hour)}) // 5
	ls.show(5)
	_ = rev.Sync(ctx)
	clk.Advance(revocationOverlap)
	_ = rev.Sync(ctx)
	clk.Advance(time.Second)
	_ = rev.Sync(ctx)
	if got := ls.since[len(ls.since)-1]; got != 5 {
		t.Errorf("after the overlap window polled after id %d, want 5", got)
	}
}

func TestRevocationValidation(t *testing.T) {
	rev := NewRevocations(&logStore{visible: map[int64]bool{}}, nil, nil)
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		r    store.Revocation
	}{
		{"unknown kind", store.Revocation{Kind: "user", Value: "x", ExpiresAt: exp}},
		{"empty value", store.Revocation{Kind: store.RevokeJTI, ExpiresAt: exp}},
		{"no expiry", store.Revocation{Kind: store.RevokeJTI, Value: "x"}},
		{"subject without IssuedBefore", store.Revocation{Kind: store.RevokeSubject, Value: "x", ExpiresAt: exp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rev.Revoke(t.Context(), tt.r); err == nil {
				t.Error("Revoke succeeded")
			}
		})
	}
}

func TestFullSyncForgetsExpired(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	st := openStore(t)
	rev := NewRevocations(st, clk.Now, nil)
	if err := rev.Revoke(ctx, store.Revocation{Kind: store.RevokeFamily, Value: "f", ExpiresAt: clk.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c := &AccessClaims{SID: "f"}
	if !errors.Is(rev.Check(c), ErrRevoked) {
		t.Fatal("not revoked")
	}
	clk.Advance(fullSyncInterval)
	if err := rev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rev.Check(c); err != nil {
		t.Errorf("expired entry still in the index: %v", err)
	}
}
