// Package storetest is the one behavioural suite every store backend must
// pass. Backends call Run from their own tests with a function that opens a
// fresh, migrated store.
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

// Opener returns a new, empty, migrated store for one test.
type Opener func(t *testing.T) store.Store

type testCase struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// suite holds every case; each capability's file registers its own in init.
var suite []testCase

func register(name string, fn func(t *testing.T, s store.Store)) {
	suite = append(suite, testCase{name, fn})
}

func init() {
	register("Secrets", testSecrets)
	register("SecretVersionConflict", testSecretConflict)
	register("Rewrap", testRewrap)
	register("MasterKeyChecks", testMasterKeyChecks)
	register("TxRollback", testTxRollback)
	register("TxCommit", testTxCommit)
	register("ConcurrentCounter", testConcurrentCounter)
	register("ConcurrentTxCounter", testConcurrentTxCounter)
}

// Run runs the whole suite against the backend that open produces.
func Run(t *testing.T, open Opener) {
	for _, tt := range suite {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tt.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func sv(name string, version int, ct string) store.SecretVersion {
	return store.SecretVersion{Name: name, Version: version, MasterVersion: 1,
		WrappedKey: []byte("wk-" + ct), Ciphertext: []byte(ct), CreatedAt: t0.Add(time.Duration(version) * time.Minute)}
}

func testSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.LatestSecretVersion(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LatestSecretVersion(missing) err = %v, want ErrNotFound", err)
	}
	for _, v := range []store.SecretVersion{sv("b", 1, "b1"), sv("a", 1, "a1"), sv("a", 2, "a2")} {
		if err := s.InsertSecretVersion(ctx, v); err != nil {
			t.Fatalf("InsertSecretVersion(%s/%d): %v", v.Name, v.Version, err)
		}
	}
	got, err := s.LatestSecretVersion(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || string(got.Ciphertext) != "a2" || string(got.WrappedKey) != "wk-a2" || !got.CreatedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("LatestSecretVersion(a) = %+v", got)
	}
	got, err = s.SecretVersion(ctx, "a", 1)
	if err != nil || string(got.Ciphertext) != "a1" {
		t.Errorf("SecretVersion(a,1) = %+v, %v", got, err)
	}
	if _, err := s.SecretVersion(ctx, "a", 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SecretVersion(a,3) err = %v, want ErrNotFound", err)
	}
	list, err := s.ListSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[0].Versions != 2 || list[0].Latest != 2 || list[1].Name != "b" || list[1].Latest != 1 {
		t.Errorf("ListSecrets = %+v", list)
	}
	n, err := s.DeleteSecret(ctx, "a")
	if err != nil || n != 2 {
		t.Errorf("DeleteSecret(a) = %d, %v; want 2, nil", n, err)
	}
	if _, err := s.DeleteSecret(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSecret(a) again err = %v, want ErrNotFound", err)
	}
	all, err := s.AllSecretVersions(ctx)
	if err != nil || len(all) != 1 || all[0].Name != "b" {
		t.Errorf("AllSecretVersions = %+v, %v", all, err)
	}
}

func testSecretConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.InsertSecretVersion(ctx, sv("k", 1, "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertSecretVersion(ctx, sv("k", 1, "y")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate version err = %v, want ErrConflict", err)
	}
	got, _ := s.LatestSecretVersion(ctx, "k")
	if string(got.Ciphertext) != "x" {
		t.Errorf("after conflict value = %q, want the first write", got.Ciphertext)
	}
}

func testRewrap(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.InsertSecretVersion(ctx, sv("k", 1, "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.RewrapSecretVersion(ctx, "k", 1, 2, []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, _ := s.SecretVersion(ctx, "k", 1)
	if got.MasterVersion != 2 || !bytes.Equal(got.WrappedKey, []byte("new")) || string(got.Ciphertext) != "x" {
		t.Errorf("after rewrap = %+v", got)
	}
	if err := s.RewrapSecretVersion(ctx, "k", 9, 2, []byte("new")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rewrap missing err = %v, want ErrNotFound", err)
	}
}

func testMasterKeyChecks(t *testing.T, s store.Store) {
	ctx := t.Context()
	for v := 2; v >= 1; v-- {
		if err := s.PutMasterKeyCheck(ctx, store.MasterKeyCheck{Version: v, Check: []byte{byte(v)}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMasterKeyCheck(ctx, store.MasterKeyCheck{Version: 1, Check: []byte{9}, CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate check err = %v, want ErrConflict", err)
	}
	got, err := s.MasterKeyChecks(ctx)
	if err != nil || len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 || got[0].Check[0] != 1 {
		t.Fatalf("MasterKeyChecks = %+v, %v", got, err)
	}
	if err := s.DeleteMasterKeyCheck(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got, _ = s.MasterKeyChecks(ctx)
	if len(got) != 1 || got[0].Version != 2 {
		t.Errorf("after delete = %+v", got)
	}
}

func testTxRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertSecretVersion(ctx, sv("k", 1, "x")); err != nil {
			return err
		}
		if _, err := tx.AddCounter(ctx, "c", 5); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx err = %v, want boom", err)
	}
	if _, err := s.LatestSecretVersion(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("secret survived rollback: %v", err)
	}
	if v, _ := s.Counter(ctx, "c"); v != 0 {
		t.Errorf("counter after rollback = %d, want 0", v)
	}
}

func testTxCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertSecretVersion(ctx, sv("k", 1, "x")); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if _, err := tx.LatestSecretVersion(ctx, "k"); err != nil {
			return err
		}
		_, err := tx.AddCounter(ctx, "c", 5)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Counter(ctx, "c"); v != 5 {
		t.Errorf("counter = %d, want 5", v)
	}
}

// testConcurrentCounter: 64 goroutines add to one counter; the final value
// is exact and every intermediate value was seen exactly once.
func testConcurrentCounter(t *testing.T, s store.Store) {
	const workers, each = 64, 10
	ctx := t.Context()
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				v, err := s.AddCounter(ctx, "hits", 1)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[v] {
					errs <- fmt.Errorf("value %d returned twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _ := s.Counter(ctx, "hits"); got != workers*each {
		t.Errorf("counter = %d, want %d", got, workers*each)
	}
}

// testConcurrentTxCounter: read-modify-write inside transactions from 64
// goroutines must not lose updates either (SQLite: BEGIN IMMEDIATE;
// PostgreSQL: the upsert's row lock).
func testConcurrentTxCounter(t *testing.T, s store.Store) {
	const workers = 64
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.WithTx(ctx, func(tx store.Tx) error {
				if _, err := tx.Counter(ctx, "tx"); err != nil {
					return err
				}
				_, err := tx.AddCounter(ctx, "tx", 1)
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Counter(ctx, "tx"); got != workers {
		t.Errorf("counter = %d, want %d", got, workers)
	}
}
