package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func init() {
	register("CapabilityRoundTrip", testCapabilityRoundTrip)
	register("CapabilityConsume", testCapabilityConsume)
	register("CapabilityConsumeConcurrent", testCapabilityConsumeConcurrent)
	register("CapabilityRevokedExpired", testCapabilityRevokedExpired)
	register("CapabilityRevokeBy", testCapabilityRevokeBy)
	register("CapabilityPrune", testCapabilityPrune)
}

func capability(id, client, subject string, maxUses int64) store.Capability {
	return store.Capability{ID: id, Hash: rtHash("kgc_" + id), ClientID: client, Subject: subject,
		Scope: "echo chat", Upstream: "echo", MaxUses: maxUses, DPoPJKT: "jkt-" + id,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func newCapability(t *testing.T, s store.Store, c store.Capability) {
	t.Helper()
	if err := s.CreateCapability(t.Context(), c); err != nil {
		t.Fatalf("create capability %s: %v", c.ID, err)
	}
}

func testCapabilityRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := capability("c1", "backend", "google|alice", 5)
	newCapability(t, s, want)
	got, err := s.CapabilityByHash(ctx, want.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || !bytes.Equal(got.Hash, want.Hash) || got.ClientID != want.ClientID ||
		got.Subject != want.Subject || got.Scope != want.Scope || got.Upstream != want.Upstream ||
		got.MaxUses != 5 || got.Uses != 0 || got.DPoPJKT != want.DPoPJKT ||
		!got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.IsZero() {
		t.Errorf("CapabilityByHash = %+v, want %+v", got, want)
	}
	if _, err := s.CapabilityByHash(ctx, rtHash("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CapabilityByHash(missing) err = %v, want ErrNotFound", err)
	}
	dupID := capability("c1", "backend", "x|y", 1)
	dupID.Hash = rtHash("other")
	if err := s.CreateCapability(ctx, dupID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate id err = %v, want ErrConflict", err)
	}
	dupHash := capability("c2", "backend", "x|y", 1)
	dupHash.Hash = want.Hash
	if err := s.CreateCapability(ctx, dupHash); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate hash err = %v, want ErrConflict", err)
	}
}

func testCapabilityConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	newCapability(t, s, capability("c1", "backend", "google|alice", 3))
	now := t0.Add(time.Minute)
	for want := int64(1); want <= 3; want++ {
		got, err := s.ConsumeCapability(ctx, "c1", now)
		if err != nil || got != want {
			t.Fatalf("ConsumeCapability #%d = %d, %v; want %d", want, got, err, want)
		}
	}
	if _, err := s.ConsumeCapability(ctx, "c1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeCapability(spent) err = %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeCapability(ctx, "missing", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeCapability(missing) err = %v, want ErrNotFound", err)
	}
	got, _ := s.CapabilityByHash(ctx, rtHash("kgc_c1"))
	if got.Uses != 3 {
		t.Errorf("uses = %d, want 3", got.Uses)
	}
}

// testCapabilityConsumeConcurrent: 64 goroutines race for the 5 uses of
// one capability; exactly 5 win and each use number is handed out once.
func testCapabilityConsumeConcurrent(t *testing.T, s store.Store) {
	const workers, maxUses = 64, 5
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	newCapability(t, s, capability("c1", "backend", "google|alice", maxUses))
	now := t0.Add(time.Minute)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			uses, err := s.ConsumeCapability(ctx, "c1", now)
			if errors.Is(err, store.ErrNotFound) {
				return
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[uses] {
				errs <- fmt.Errorf("use %d handed out twice", uses)
			}
			seen[uses] = true
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != maxUses {
		t.Errorf("successful consumptions = %d, want %d", len(seen), maxUses)
	}
	for u := int64(1); u <= maxUses; u++ {
		if !seen[u] {
			t.Errorf("use %d never handed out", u)
		}
	}
	if got, _ := s.CapabilityByHash(ctx, rtHash("kgc_c1")); got.Uses != maxUses {
		t.Errorf("uses = %d, want %d", got.Uses, maxUses)
	}
}

func testCapabilityRevokedExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	newCapability(t, s, capability("rev", "backend", "google|alice", 5))
	newCapability(t, s, capability("exp", "backend", "google|alice", 5))
	now := t0.Add(time.Minute)
	ok, err := s.RevokeCapability(ctx, "rev", now)
	if err != nil || !ok {
		t.Fatalf("RevokeCapability = %v, %v; want true", ok, err)
	}
	if ok, err := s.RevokeCapability(ctx, "rev", now); err != nil || ok {
		t.Errorf("RevokeCapability again = %v, %v; want false", ok, err)
	}
	if ok, err := s.RevokeCapability(ctx, "missing", now); err != nil || ok {
		t.Errorf("RevokeCapability(missing) = %v, %v; want false", ok, err)
	}
	if _, err := s.ConsumeCapability(ctx, "rev", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeCapability(revoked) err = %v, want ErrNotFound", err)
	}
	if got, _ := s.CapabilityByHash(ctx, rtHash("kgc_rev")); !got.RevokedAt.Equal(now) || got.Uses != 0 {
		t.Errorf("revoked capability = %+v", got)
	}
	// expires_at is exclusive: at the instant of expiry it is spent.
	exp := t0.Add(time.Hour)
	if _, err := s.ConsumeCapability(ctx, "exp", exp.Add(-time.Millisecond)); err != nil {
		t.Errorf("ConsumeCapability just before expiry: %v", err)
	}
	if _, err := s.ConsumeCapability(ctx, "exp", exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeCapability(expired) err = %v, want ErrNotFound", err)
	}
}

func testCapabilityRevokeBy(t *testing.T, s store.Store) {
	ctx := t.Context()
	newCapability(t, s, capability("a1", "backend", "google|alice", 5))
	newCapability(t, s, capability("a2", "other", "google|alice", 5))
	newCapability(t, s, capability("b1", "backend", "google|bob", 5))
	newCapability(t, s, capability("c1", "other", "google|carol", 5))
	now := t0.Add(time.Minute)
	if _, err := s.RevokeCapabilities(ctx, store.CapabilityFilter{}, now); err == nil {
		t.Error("RevokeCapabilities with an empty filter succeeded")
	}
	n, err := s.RevokeCapabilities(ctx, store.CapabilityFilter{Subject: "google|alice"}, now)
	if err != nil || n != 2 {
		t.Errorf("RevokeCapabilities(subject) = %d, %v; want 2", n, err)
	}
	n, err = s.RevokeCapabilities(ctx, store.CapabilityFilter{ClientID: "backend"}, now.Add(time.Second))
	if err != nil || n != 1 {
		t.Errorf("RevokeCapabilities(client) = %d, %v; want 1 (b1; a1 already revoked)", n, err)
	}
	for id, revoked := range map[string]bool{"a1": true, "a2": true, "b1": true, "c1": false} {
		got, _ := s.CapabilityByHash(ctx, rtHash("kgc_"+id))
		if got.RevokedAt.IsZero() == revoked {
			t.Errorf("%s revoked_at = %v, want revoked %v", id, got.RevokedAt, revoked)
		}
	}
	if got, _ := s.CapabilityByHash(ctx, rtHash("kgc_a1")); !got.RevokedAt.Equal(now) {
		t.Errorf("a1 revoked_at = %v, want the first revocation %v", got.RevokedAt, now)
	}
}

func testCapabilityPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	newCapability(t, s, capability("old", "backend", "google|alice", 1))
	young := capability("young", "backend", "google|alice", 1)
	young.ExpiresAt = t0.Add(48 * time.Hour)
	newCapability(t, s, young)
	n, err := s.PruneCapabilities(ctx, t0.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneCapabilities = %d, %v; want 1", n, err)
	}
	if _, err := s.CapabilityByHash(ctx, rtHash("kgc_old")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned capability still there: %v", err)
	}
	if _, err := s.CapabilityByHash(ctx, rtHash("kgc_young")); err != nil {
		t.Errorf("live capability pruned: %v", err)
	}
}
