package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func init() {
	register("SigningKeys", testSigningKeys)
	register("SigningKeyOnePerState", testSigningKeyOnePerState)
	register("SigningKeyRotationRace", testSigningKeyRotationRace)
	register("Revocations", testRevocations)
}

func sk(kid, state string, created time.Time) store.SigningKey {
	k := store.SigningKey{KID: kid, Alg: "ES256", State: state, VaultName: "keygate/signing/" + kid,
		PublicJWK: []byte(`{"kid":"` + kid + `"}`), CreatedAt: created}
	if state == store.SigningKeyCurrent {
		k.ActivatedAt = created
	}
	return k
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys(empty) = %v, %v", keys, err)
	}
	for _, k := range []store.SigningKey{sk("b", store.SigningKeyNext, t0.Add(time.Minute)), sk("a", store.SigningKeyCurrent, t0)} {
		if err := s.InsertSigningKey(ctx, k); err != nil {
			t.Fatalf("InsertSigningKey(%s): %v", k.KID, err)
		}
	}
	if err := s.InsertSigningKey(ctx, sk("a", store.SigningKeyRetired, t0)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate kid err = %v, want ErrConflict", err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].KID != "a" || keys[1].KID != "b" {
		t.Fatalf("SigningKeys = %+v, want a then b", keys)
	}
	a := keys[0]
	if a.Alg != "ES256" || a.State != store.SigningKeyCurrent || a.VaultName != "keygate/signing/a" ||
		!bytes.Equal(a.PublicJWK, []byte(`{"kid":"a"}`)) || !a.CreatedAt.Equal(t0) || !a.ActivatedAt.Equal(t0) || !a.RetiredAt.IsZero() {
		t.Errorf("key a = %+v", a)
	}

	// Rotation: current → retired, next → current.
	at := t0.Add(time.Hour)
	if err := s.TransitionSigningKey(ctx, "a", store.SigningKeyCurrent, store.SigningKeyRetired, at); err != nil {
		t.Fatal(err)
	}
	if err := s.TransitionSigningKey(ctx, "b", store.SigningKeyNext, store.SigningKeyCurrent, at); err != nil {
		t.Fatal(err)
	}
	if err := s.TransitionSigningKey(ctx, "a", store.SigningKeyCurrent, store.SigningKeyRetired, at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("transition from a state the key is not in: err = %v, want ErrNotFound", err)
	}
	if err := s.TransitionSigningKey(ctx, "zz", store.SigningKeyNext, store.SigningKeyCurrent, at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("transition of a missing key: err = %v, want ErrNotFound", err)
	}
	keys, _ = s.SigningKeys(ctx)
	if keys[0].State != store.SigningKeyRetired || !keys[0].RetiredAt.Equal(at) ||
		keys[1].State != store.SigningKeyCurrent || !keys[1].ActivatedAt.Equal(at) {
		t.Errorf("after rotation = %+v", keys)
	}

	if err := s.DeleteSigningKey(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete of the current key: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSigningKey(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSigningKey(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: err = %v, want ErrNotFound", err)
	}
	if keys, _ = s.SigningKeys(ctx); len(keys) != 1 || keys[0].KID != "b" {
		t.Errorf("after delete = %+v", keys)
	}
}

// testSigningKeyOnePerState: nodes starting together race to create the
// first keys; the schema lets exactly one current and one next exist.
func testSigningKeyOnePerState(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]int{}
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kid := string(rune('A'+i)) + "-key"
			state := store.SigningKeyCurrent
			if i%2 == 1 {
				state = store.SigningKeyNext
			}
			err := s.WithTx(ctx, func(tx store.Tx) error {
				return tx.InsertSigningKey(ctx, sk(kid, state, t0))
			})
			switch {
			case err == nil:
				mu.Lock()
				won[state]++
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("insert %s: %v, want nil or ErrConflict", state, err)
			}
		}()
	}
	wg.Wait()
	if won[store.SigningKeyCurrent] != 1 || won[store.SigningKeyNext] != 1 {
		t.Errorf("inserted %v, want one current and one next", won)
	}
	// Retired keys are not limited.
	for _, kid := range []string{"r1", "r2"} {
		if err := s.InsertSigningKey(ctx, sk(kid, store.SigningKeyRetired, t0)); err != nil {
			t.Errorf("insert retired %s: %v", kid, err)
		}
	}
}

// testSigningKeyRotationRace: several nodes rotate at once, each in a
// transaction conditional on the state it read; exactly one succeeds.
func testSigningKeyRotationRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []store.SigningKey{sk("cur", store.SigningKeyCurrent, t0), sk("nxt", store.SigningKeyNext, t0)} {
		if err := s.InsertSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := t0.Add(time.Hour)
			errs[i] = s.WithTx(ctx, func(tx store.Tx) error {
				if err := tx.TransitionSigningKey(ctx, "cur", store.SigningKeyCurrent, store.SigningKeyRetired, at); err != nil {
					return err
				}
				if err := tx.TransitionSigningKey(ctx, "nxt", store.SigningKeyNext, store.SigningKeyCurrent, at); err != nil {
					return err
				}
				return tx.InsertSigningKey(ctx, sk("new"+string(rune('a'+i)), store.SigningKeyNext, at))
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("losing rotation err = %v, want ErrNotFound", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d rotations succeeded, want 1", ok)
	}
	keys, _ := s.SigningKeys(ctx)
	states := map[string]int{}
	for _, k := range keys {
		states[k.State]++
	}
	if len(keys) != 3 || states[store.SigningKeyRetired] != 1 || states[store.SigningKeyCurrent] != 1 || states[store.SigningKeyNext] != 1 {
		t.Errorf("after the race = %+v", keys)
	}
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := func(kind, value string, expires time.Time) store.Revocation {
		return store.Revocation{Kind: kind, Value: value, IssuedBefore: t0, ExpiresAt: expires, CreatedAt: t0}
	}
	var ids []int64
	for _, rv := range []store.Revocation{
		r(store.RevokeJTI, "j1", t0.Add(time.Minute)),
		r(store.RevokeSubject, "google|alice", t0.Add(time.Hour)),
		r(store.RevokeFamily, "fam", t0.Add(2*time.Hour)),
	} {
		id, err := s.AddRevocation(ctx, rv)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids = %v, want increasing", ids)
	}
	got, err := s.RevocationsSince(ctx, 0, t0)
	if err != nil || len(got) != 3 {
		t.Fatalf("RevocationsSince(0) = %+v, %v", got, err)
	}
	if g := got[1]; g.ID != ids[1] || g.Kind != store.RevokeSubject || g.Value != "google|alice" ||
		!g.IssuedBefore.Equal(t0) || !g.ExpiresAt.Equal(t0.Add(time.Hour)) || !g.CreatedAt.Equal(t0) {
		t.Errorf("entry = %+v", g)
	}
	if got, _ = s.RevocationsSince(ctx, ids[0], t0); len(got) != 2 || got[0].ID != ids[1] {
		t.Errorf("RevocationsSince(first) = %+v", got)
	}
	if got, _ = s.RevocationsSince(ctx, 0, t0.Add(90*time.Minute)); len(got) != 1 || got[0].Value != "fam" {
		t.Errorf("RevocationsSince hides expired entries: got %+v", got)
	}
	n, err := s.PruneRevocations(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Errorf("PruneRevocations = %d, %v; want 2", n, err)
	}
	if got, _ = s.RevocationsSince(ctx, 0, t0); len(got) != 1 {
		t.Errorf("after prune = %+v", got)
	}
}
