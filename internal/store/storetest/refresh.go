package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func init() {
	register("RefreshFamilyRoundTrip", testRefreshFamilyRoundTrip)
	register("RefreshRotateOnce", testRefreshRotateOnce)
	register("RefreshRotateConcurrent", testRefreshRotateConcurrent)
	register("RefreshRevokeFamily", testRefreshRevokeFamily)
	register("RefreshRevokeFamiliesBy", testRefreshRevokeFamiliesBy)
	register("RefreshPrune", testRefreshPrune)
	register("ReplayRemember", testReplayRemember)
	register("ReplayConcurrent", testReplayConcurrent)
	register("ReplayConcurrentMany", testReplayConcurrentMany)
}

func rtHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func family(id, client, subject string) store.RefreshFamily {
	return store.RefreshFamily{ID: id, ClientID: client, Subject: subject, Scope: "a b",
		ACR: "urn:acr:1", AuthTime: 1700000000, DPoPJKT: "jkt-" + id,
		CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
}

func newFamily(t *testing.T, s store.Store, f store.RefreshFamily, token string) {
	t.Helper()
	ctx := t.Context()
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateFamily(ctx, f); err != nil {
			return err
		}
		return tx.InsertRefreshToken(ctx, store.RefreshToken{Hash: rtHash(token), FamilyID: f.ID,
			CreatedAt: t0, IdleExpiresAt: t0.Add(time.Hour)})
	})
	if err != nil {
		t.Fatalf("create family %s: %v", f.ID, err)
	}
}

func testRefreshFamilyRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := family("f1", "app", "google|alice")
	newFamily(t, s, want, "rt1")
	got, err := s.Family(ctx, "f1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Family = %+v\nwant %+v", got, want)
	}
	if err := s.CreateFamily(ctx, want); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateFamily twice err = %v, want ErrConflict", err)
	}
	if _, err := s.Family(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Family(missing) err = %v, want ErrNotFound", err)
	}
	tok, err := s.RefreshTokenByHash(ctx, rtHash("rt1"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.FamilyID != "f1" || !tok.RotatedAt.IsZero() || tok.SuccessorHash != nil ||
		!tok.CreatedAt.Equal(t0) || !tok.IdleExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("RefreshTokenByHash = %+v", tok)
	}
	if _, err := s.RefreshTokenByHash(ctx, rtHash("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RefreshTokenByHash(missing) err = %v, want ErrNotFound", err)
	}
	if err := s.InsertRefreshToken(ctx, store.RefreshToken{Hash: rtHash("rt1"), FamilyID: "f1", CreatedAt: t0, IdleExpiresAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("InsertRefreshToken twice err = %v, want ErrConflict", err)
	}
	newFamily(t, s, family("f2", "app", "google|alice"), "rt2")
	newFamily(t, s, family("f3", "app", "google|bob"), "rt3")
	list, err := s.ListFamilies(ctx, "google|alice")
	if err != nil || len(list) != 2 || list[0].ID != "f1" || list[1].ID != "f2" {
		t.Errorf("ListFamilies(alice) = %+v, %v", list, err)
	}
}

func testRefreshRotateOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	newFamily(t, s, family("f1", "app", "u"), "rt1")
	at := t0.Add(time.Minute)
	ok, err := s.RotateRefreshToken(ctx, rtHash("rt1"), rtHash("rt2"), at)
	if err != nil || !ok {
		t.Fatalf("first rotation = %v, %v; want true", ok, err)
	}
	ok, err = s.RotateRefreshToken(ctx, rtHash("rt1"), rtHash("rt3"), at)
	if err != nil || ok {
		t.Fatalf("second rotation = %v, %v; want false", ok, err)
	}
	tok, _ := s.RefreshTokenByHash(ctx, rtHash("rt1"))
	if !tok.RotatedAt.Equal(at) || !bytes.Equal(tok.SuccessorHash, rtHash("rt2")) {
		t.Errorf("after rotation = %+v, want successor rt2 at %v", tok, at)
	}
	if ok, err := s.RotateRefreshToken(ctx, rtHash("missing"), rtHash("x"), at); ok || err != nil {
		t.Errorf("rotate missing = %v, %v; want false, nil", ok, err)
	}
}

// testRefreshRotateConcurrent: 32 goroutines rotate one token, each to a
// different successor; exactly one wins and its successor is recorded.
func testRefreshRotateConcurrent(t *testing.T, s store.Store) {
	const workers = 32
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	newFamily(t, s, family("f1", "app", "u"), "rt")
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make(chan int, workers)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.RotateRefreshToken(ctx, rtHash("rt"), rtHash(fmt.Sprint("succ", w)), t0.Add(time.Second))
			if err != nil {
				errs <- err
				return
			}
			if ok {
				results <- w
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var winners []int
	for w := range results {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	tok, _ := s.RefreshTokenByHash(ctx, rtHash("rt"))
	if !bytes.Equal(tok.SuccessorHash, rtHash(fmt.Sprint("succ", winners[0]))) {
		t.Errorf("stored successor is not the winner's")
	}
}

func testRefreshRevokeFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	newFamily(t, s, family("f1", "app", "u"), "rt1")
	at := t0.Add(time.Minute)
	ok, err := s.RevokeFamily(ctx, "f1", at, "reuse")
	if err != nil || !ok {
		t.Fatalf("RevokeFamily = %v, %v; want true", ok, err)
	}
	if ok, _ := s.RevokeFamily(ctx, "f1", at.Add(time.Minute), "again"); ok {
		t.Error("second RevokeFamily reported a change")
	}
	if ok, _ := s.RevokeFamily(ctx, "missing", at, "x"); ok {
		t.Error("RevokeFamily(missing) reported a change")
	}
	f, _ := s.Family(ctx, "f1")
	if !f.RevokedAt.Equal(at) || f.RevokeReason != "reuse" {
		t.Errorf("revoked family = %+v", f)
	}
	// A token of a revoked family can no longer rotate.
	if ok, err := s.RotateRefreshToken(ctx, rtHash("rt1"), rtHash("rt2"), at); ok || err != nil {
		t.Errorf("rotate in revoked family = %v, %v; want false, nil", ok, err)
	}
}

func testRefreshRevokeFamiliesBy(t *testing.T, s store.Store) {
	ctx := t.Context()
	newFamily(t, s, family("a1", "app", "alice"), "1")
	newFamily(t, s, family("a2", "web", "alice"), "2")
	newFamily(t, s, family("b1", "app", "bob"), "3")
	newFamily(t, s, family("c1", "web", "carol"), "4")
	if _, err := s.RevokeFamilies(ctx, store.FamilyFilter{}, t0, "x"); err == nil {
		t.Error("RevokeFamilies with an empty filter succeeded")
	}
	ids, err := s.RevokeFamilies(ctx, store.FamilyFilter{Subject: "alice"}, t0, "admin")
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, []string{"a1", "a2"}) {
		t.Errorf("RevokeFamilies(subject alice) = %v, %v", ids, err)
	}
	ids, err = s.RevokeFamilies(ctx, store.FamilyFilter{ClientID: "web"}, t0, "admin")
	if err != nil || !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("RevokeFamilies(client web) = %v, %v; want [c1] (a2 already revoked)", ids, err)
	}
	ids, err = s.RevokeFamilies(ctx, store.FamilyFilter{Subject: "bob", ClientID: "web"}, t0, "admin")
	if err != nil || len(ids) != 0 {
		t.Errorf("RevokeFamilies(bob, web) = %v, %v; want none", ids, err)
	}
	if f, _ := s.Family(ctx, "b1"); !f.RevokedAt.IsZero() {
		t.Errorf("b1 revoked: %+v", f)
	}
}

func testRefreshPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := family("old", "app", "u")
	old.ExpiresAt = t0.Add(time.Hour)
	newFamily(t, s, old, "rt-old")
	newFamily(t, s, family("new", "app", "u"), "rt-new")
	n, err := s.PruneRefresh(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneRefresh = %d, %v; want 1", n, err)
	}
	if _, err := s.RefreshTokenByHash(ctx, rtHash("rt-old")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token of pruned family survived: %v", err)
	}
	if toks, _ := s.FamilyTokens(ctx, "new"); len(toks) != 1 {
		t.Errorf("FamilyTokens(new) = %d, want 1", len(toks))
	}
}

func testReplayRemember(t *testing.T, s store.Store) {
	ctx := t.Context()
	future := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		ns, id string
		exp    time.Time
		want   bool
	}{
		{"a", "j1", future, true},
		{"a", "j1", future, false},
		{"b", "j1", future, true}, // namespaces are separate
		{"a", "j2", future, true},
		{"a", "old", time.Now().Add(-time.Minute), true},
		{"a", "old", future, true}, // the expired entry is taken over
		{"a", "old", future, false},
	} {
		got, err := s.Remember(ctx, tc.ns, tc.id, tc.exp)
		if err != nil || got != tc.want {
			t.Errorf("Remember(%s, %s) = %v, %v; want %v", tc.ns, tc.id, got, err, tc.want)
		}
	}
	if _, err := s.Remember(ctx, "c", "gone", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneReplay(ctx, time.Now().Add(-time.Second))
	if err != nil || n != 1 {
		t.Errorf("PruneReplay = %d, %v; want 1", n, err)
	}
}

// testReplayConcurrent: 20 goroutines remember one id; exactly one is fresh.
func testReplayConcurrent(t *testing.T, s store.Store) {
	const workers = 20
	ctx := t.Context()
	var wg sync.WaitGroup
	start := make(chan struct{})
	fresh := make(chan bool, workers)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.Remember(ctx, "dpop", "same-jti", time.Now().Add(time.Minute))
			if err != nil {
				errs <- err
				return
			}
			fresh <- ok
		}()
	}
	close(start)
	wg.Wait()
	close(fresh)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	for ok := range fresh {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("fresh answers = %d, want exactly 1", n)
	}
}

// testReplayConcurrentMany: many goroutines remember ids from a small set,
// each several times, some with a cancelled context; per id exactly one
// call is fresh.
func testReplayConcurrentMany(t *testing.T, s store.Store) {
	const (
		workers = 40
		ids     = 7
		rounds  = 5
	)
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var mu sync.Mutex
	fresh := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for r := range rounds {
				id := fmt.Sprintf("many-%d", (w+r)%ids)
				c := ctx
				if w%5 == 4 {
					c = cancelled
				}
				ok, err := s.Remember(c, "dpop", id, time.Now().Add(time.Minute))
				if err != nil && c == cancelled {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					fresh[id]++
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range ids {
		id := fmt.Sprintf("many-%d", i)
		if fresh[id] != 1 {
			t.Errorf("fresh answers for %s = %d, want exactly 1", id, fresh[id])
		}
	}
}
