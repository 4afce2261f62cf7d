package storetest

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/internal/store"
)

func init() { register("AdminTokens", testAdminTokens) }

func testAdminTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.AdminToken{Name: "ops", Hash: []byte("h1-32-bytes-of-hash-xxxxxxxxxxxx"), CreatedAt: t0}
	if err := s.CreateAdminToken(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdminToken(ctx, store.AdminToken{Name: "ops", Hash: []byte("other"), CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name err = %v, want ErrConflict", err)
	}
	got, err := s.AdminTokenByHash(ctx, a.Hash)
	if err != nil || got.Name != "ops" || !got.CreatedAt.Equal(t0) {
		t.Errorf("AdminTokenByHash = %+v, %v", got, err)
	}
	if _, err := s.AdminTokenByHash(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash err = %v", err)
	}
	list, _ := s.ListAdminTokens(ctx)
	if len(list) != 1 || list[0].Name != "ops" || list[0].Hash != nil {
		t.Errorf("ListAdminTokens = %+v (hashes must not be listed)", list)
	}
	if err := s.DeleteAdminToken(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdminToken(ctx, "ops"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete err = %v", err)
	}
}
