package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

var testNow = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }

func newTestVault(t *testing.T) (*Vault, *fakeStore, *Keyring) {
	t.Helper()
	kr, err := GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	st := newFakeStore()
	v := New(st, kr, testNow)
	if err := v.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	return v, st, kr
}

func mustPut(t *testing.T, v *Vault, name, value string) int {
	t.Helper()
	ver, err := v.Put(t.Context(), name, NewSecret([]byte(value)))
	if err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
	return ver
}

func mustGet(t *testing.T, v *Vault, name string, version int) string {
	t.Helper()
	s, err := v.GetVersion(t.Context(), name, version)
	if err != nil {
		t.Fatalf("GetVersion(%s, %d): %v", name, version, err)
	}
	return string(s.Reveal())
}

func TestRoundTripAndVersions(t *testing.T) {
	v, _, _ := newTestVault(t)
	ctx := t.Context()
	if got := mustPut(t, v, "openai-key", "v1-value"); got != 1 {
		t.Fatalf("first version = %d, want 1", got)
	}
	if got := mustPut(t, v, "openai-key", "v2-value"); got != 2 {
		t.Fatalf("second version = %d, want 2", got)
	}
	mustPut(t, v, "clients/billing.backend_1", "other")

	s, ver, err := v.Get(ctx, "openai-key")
	if err != nil || ver != 2 || string(s.Reveal()) != "v2-value" {
		t.Fatalf("Get = %q, %d, %v", s.Reveal(), ver, err)
	}
	if got := mustGet(t, v, "openai-key", 1); got != "v1-value" {
		t.Fatalf("version 1 = %q", got)
	}
	if got := mustGet(t, v, "clients/billing.backend_1", 1); got != "other" {
		t.Fatalf("other = %q", got)
	}

	infos, err := v.List(ctx)
	if err != nil || len(infos) != 2 || infos[1].Name != "openai-key" || infos[1].Latest != 2 || infos[1].Versions != 2 {
		t.Fatalf("List = %+v, %v", infos, err)
	}

	if _, err := v.GetVersion(ctx, "openai-key", 3); !errors.Is(err, ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing version err = %v", err)
	}
	if err := v.Delete(ctx, "openai-key"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Get(ctx, "openai-key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete err = %v", err)
	}
	if err := v.Delete(ctx, "openai-key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete err = %v", err)
	}
}

func TestPutValidation(t *testing.T) {
	v, _, _ := newTestVault(t)
	tests := []struct {
		name    string
		secret  string
		value   []byte
		wantErr error
	}{
		{"empty name", "", []byte("x"), ErrInvalidName},
		{"space", "a b", []byte("x"), ErrInvalidName},
		{"nul", "a\x00b", []byte("x"), ErrInvalidName},
		{"colon", "a:b", []byte("x"), ErrInvalidName},
		{"too long", strings.Repeat("a", MaxNameLen+1), []byte("x"), ErrInvalidName},
		{"max name", strings.Repeat("a", MaxNameLen), []byte("x"), nil},
		{"empty value", "ok", nil, ErrInvalidValue},
		{"too big", "ok", make([]byte, MaxValueLen+1), ErrInvalidValue},
		{"max value", "big", bytes.Repeat([]byte{1}, MaxValueLen), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Put(t.Context(), tt.secret, NewSecret(tt.value))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPutRetriesOnConflict(t *testing.T) {
	v, st, _ := newTestVault(t)
	fails := 2
	st.beforeInsert = func(store.SecretVersion) error {
		if fails > 0 {
			fails--
			return store.ErrConflict
		}
		return nil
	}
	if ver := mustPut(t, v, "k", "value"); ver != 1 {
		t.Fatalf("version = %d", ver)
	}
	st.beforeInsert = func(store.SecretVersion) error { return store.ErrConflict }
	if _, err := v.Put(t.Context(), "k", NewSecret([]byte("value"))); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want conflict after retries", err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	v, _, _ := newTestVault(t)
	var wg sync.WaitGroup
	seen := make(chan int, 20)
	for i := range 20 {
		wg.Go(func() {
			ver, err := v.Put(context.Background(), "k", NewSecret([]byte(fmt.Sprint("value-", i))))
			if err != nil {
				t.Error(err)
			}
			seen <- ver
		})
	}
	wg.Wait()
	close(seen)
	got := map[int]bool{}
	for ver := range seen {
		got[ver] = true
	}
	if len(got) != 20 {
		t.Fatalf("distinct versions = %d, want 20", len(got))
	}
}

func TestPlaintextNeverStored(t *testing.T) {
	v, st, _ := newTestVault(t)
	values := []string{"sk-live-0123456789abcdef", "hunter2-hunter2-hunter2", strings.Repeat("Z", 1000)}
	for i, val := range values {
		mustPut(t, v, fmt.Sprint("s", i), val)
		mustPut(t, v, fmt.Sprint("s", i), val)
	}
	for _, b := range st.allBytes() {
		for _, val := range values {
			if bytes.Contains(b, []byte(val)) || bytes.Contains(b, []byte(val[:12])) {
				t.Fatalf("plaintext %q found in stored bytes", val[:12])
			}
		}
	}
}

func TestAADBinding(t *testing.T) {
	v, st, kr := newTestVault(t)
	ctx := t.Context()
	mustPut(t, v, "a", "value-of-a-1")
	mustPut(t, v, "a", "value-of-a-2")
	mustPut(t, v, "b", "value-of-b-1")

	t.Run("swap rows between names", func(t *testing.T) {
		a, b := st.row("a", 1), st.row("b", 1)
		defer st.setRow(a)
		defer st.setRow(b)
		a.WrappedKey, a.Ciphertext = b.WrappedKey, b.Ciphertext
		st.setRow(a)
		s, err := v.GetVersion(ctx, "a", 1)
		if !errors.Is(err, ErrCorrupt) || !s.IsZero() {
			t.Fatalf("got %v, %v; want ErrCorrupt", s.Len(), err)
		}
	})
	t.Run("swap rows between versions", func(t *testing.T) {
		a1, a2 := st.row("a", 1), st.row("a", 2)
		defer st.setRow(a2)
		a2.WrappedKey, a2.Ciphertext = a1.WrappedKey, a1.Ciphertext
		st.setRow(a2)
		if _, _, err := v.Get(ctx, "a"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("value ciphertext bound to name", func(t *testing.T) {
		// A data key correctly wrapped for a/1 but opening b's ciphertext:
		// only the value AAD stands between this row and b's value.
		a, b := st.row("a", 1), st.row("b", 1)
		defer st.setRow(a)
		mk, _ := kr.key(b.MasterVersion)
		dk, err := unwrapKey(mk, b.WrappedKey, "b", 1, b.MasterVersion)
		if err != nil {
			t.Fatal(err)
		}
		a.WrappedKey, err = seal(mk, dk, dataKeyAAD("a", 1, b.MasterVersion))
		if err != nil {
			t.Fatal(err)
		}
		a.Ciphertext = b.Ciphertext
		st.setRow(a)
		if _, err := v.GetVersion(ctx, "a", 1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("master version relabelled", func(t *testing.T) {
		a := st.row("a", 1)
		defer st.setRow(a)
		// Pretend it was wrapped under version 1 of a keyring that also has 2.
		kr2 := kr.clone()
		kr2.AddVersion()
		v2 := New(st, kr2, testNow)
		a.MasterVersion = 2
		st.setRow(a)
		if _, err := v2.GetVersion(ctx, "a", 1); !errors.Is(err, ErrWrongMasterKey) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
	// Untouched rows still read.
	if got := mustGet(t, v, "a", 2); got != "value-of-a-2" {
		t.Fatalf("a/2 = %q", got)
	}
}

func TestCorruptByte(t *testing.T) {
	v, st, _ := newTestVault(t)
	mustPut(t, v, "k", "some secret value")
	orig := st.row("k", 1)
	for _, field := range []string{"ciphertext", "wrapped key"} {
		for _, i := range []int{0, 1, 13, -1} {
			t.Run(fmt.Sprintf("%s byte %d", field, i), func(t *testing.T) {
				defer st.setRow(orig)
				row := st.row("k", 1)
				b := row.Ciphertext
				if field == "wrapped key" {
					b = row.WrappedKey
				}
				if i < 0 {
					i = len(b) - 1
				}
				b[i] ^= 0x40
				st.setRow(row)
				_, _, err := v.Get(t.Context(), "k")
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if want := `secret "k" version 1`; !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want it to contain %s", err, want)
				}
			})
		}
	}
	t.Run("truncated", func(t *testing.T) {
		defer st.setRow(orig)
		row := st.row("k", 1)
		row.Ciphertext = row.Ciphertext[:10]
		st.setRow(row)
		if _, _, err := v.Get(t.Context(), "k"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWrongMasterKey(t *testing.T) {
	v, st, _ := newTestVault(t)
	ctx := t.Context()
	mustPut(t, v, "k", "the value")

	other, _ := GenerateKeyring()
	wrong := New(st, other, testNow)
	if err := wrong.Verify(ctx); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Verify err = %v", err)
	}
	if !strings.Contains(ErrWrongMasterKey.Error(), "master key does not match this database") {
		t.Fatal(ErrWrongMasterKey)
	}
	if _, _, err := wrong.Get(ctx, "k"); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Get err = %v", err)
	}
	if _, err := wrong.Put(ctx, "k2", NewSecret([]byte("x"))); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Put err = %v", err)
	}

	// A keyring with a different version number than the database uses.
	elsewhere, _ := ParseMasterKeys([]byte("5:" + strings.Repeat("A", 43) + "="))
	w5 := New(st, elsewhere, testNow)
	if err := w5.Verify(ctx); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Verify v5 err = %v", err)
	}
	if _, _, err := w5.Get(ctx, "k"); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Get v5 err = %v", err)
	}
	if _, err := w5.Put(ctx, "k3", NewSecret([]byte("x"))); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Put v5 err = %v", err)
	}
	// The right key still works and nothing was written by the wrong ones.
	if err := v.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, _ := v.List(ctx); len(infos) != 1 {
		t.Fatalf("List = %+v", infos)
	}
}

func TestVerifyFirstUseWritesCheck(t *testing.T) {
	kr, _ := GenerateKeyring()
	st := newFakeStore()
	v := New(st, kr, testNow)
	if err := v.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	checks, _ := st.MasterKeyChecks(t.Context())
	if len(checks) != 1 || checks[0].Version != 1 || !checks[0].CreatedAt.Equal(testNow()) {
		t.Fatalf("checks = %+v", checks)
	}
	if err := v.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestRotateMaster(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "master.key")
	if err := GenerateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	oldKR, err := LoadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := newFakeStore()
	v := New(st, oldKR, testNow)
	values := map[string]string{"a": "alpha", "b": "bravo", "c/d": "charlie"}
	for name, val := range values {
		mustPut(t, v, name, val+"-1")
		mustPut(t, v, name, val+"-2")
	}
	before, _ := st.AllSecretVersions(ctx)

	nv, err := v.RotateMaster(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if nv != 2 {
		t.Fatalf("new version = %d", nv)
	}

	after, _ := st.AllSecretVersions(ctx)
	if len(after) != len(before) {
		t.Fatalf("rows %d -> %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if !bytes.Equal(a.Ciphertext, b.Ciphertext) {
			t.Errorf("%s/%d: value ciphertext changed", a.Name, a.Version)
		}
		if bytes.Equal(a.WrappedKey, b.WrappedKey) {
			t.Errorf("%s/%d: wrapped key unchanged", a.Name, a.Version)
		}
		if a.MasterVersion != 2 {
			t.Errorf("%s/%d: master version %d", a.Name, a.Version, a.MasterVersion)
		}
	}
	checks, _ := st.MasterKeyChecks(ctx)
	if len(checks) != 1 || checks[0].Version != 2 {
		t.Fatalf("checks = %+v", checks)
	}

	newKR, err := LoadMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := newKR.Versions(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("key file versions = %v", got)
	}
	fresh := New(st, newKR, testNow)
	if err := fresh.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	for name, val := range values {
		for ver, suffix := range map[int]string{1: "-1", 2: "-2"} {
			if got := mustGet(t, fresh, name, ver); got != val+suffix {
				t.Fatalf("%s/%d = %q", name, ver, got)
			}
			if got := mustGet(t, v, name, ver); got != val+suffix {
				t.Fatalf("rotating vault %s/%d = %q", name, ver, got)
			}
		}
	}
	stale := New(st, oldKR, testNow)
	if err := stale.Verify(ctx); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("old keyring Verify err = %v", err)
	}
	if _, _, err := stale.Get(ctx, "a"); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("old keyring Get err = %v", err)
	}
	if _, err := stale.Put(ctx, "a", NewSecret([]byte("x"))); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("old keyring Put err = %v", err)
	}
	// With a loader, a process holding the old keyring picks up the new file.
	stale.SetKeyLoader(func() (*Keyring, error) { return LoadMasterKeyFile(path) })
	if s, _, err := stale.Get(ctx, "a"); err != nil || string(s.Reveal()) != "alpha-2" {
		t.Fatalf("reloaded Get = %v", err)
	}

	// Rotating again works from the rotated state.
	if nv, err := fresh.RotateMaster(ctx, path); err != nil || nv != 3 {
		t.Fatalf("second rotation = %d, %v", nv, err)
	}
	if got := mustGet(t, fresh, "c/d", 2); got != "charlie-2" {
		t.Fatalf("after second rotation = %q", got)
	}
}

// TestRotateMasterCrashStates replays the state after each step of the
// rotation and checks that a restarted process can read everything.
func TestRotateMasterCrashStates(t *testing.T) {
	ctx := t.Context()
	oldKR, _ := GenerateKeyring()
	both := oldKR.clone()
	both.AddVersion()
	newOnly := both.only(2)

	setup := func(t *testing.T) (*fakeStore, *Vault) {
		st := newFakeStore()
		v := New(st, oldKR, testNow)
		mustPut(t, v, "a", "alpha")
		mustPut(t, v, "b", "bravo")
		return st, v
	}
	readAll := func(t *testing.T, st *fakeStore, kr *Keyring) {
		t.Helper()
		v := New(st, kr, testNow)
		if err := v.Verify(ctx); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got := mustGet(t, v, "a", 1); got != "alpha" {
			t.Fatalf("a = %q", got)
		}
		if got := mustGet(t, v, "b", 1); got != "bravo" {
			t.Fatalf("b = %q", got)
		}
		mustPut(t, v, "c", "written after restart")
		if got := mustGet(t, v, "c", 1); got != "written after restart" {
			t.Fatalf("c = %q", got)
		}
	}

	t.Run("after step 1", func(t *testing.T) {
		st, _ := setup(t)
		readAll(t, st, both)
	})
	t.Run("after step 2", func(t *testing.T) {
		st, v := setup(t)
		if _, err := v.rewrapAll(ctx, both, 2); err != nil {
			t.Fatal(err)
		}
		readAll(t, st, both)
	})
	t.Run("after step 3 file write", func(t *testing.T) {
		st, v := setup(t)
		if _, err := v.rewrapAll(ctx, both, 2); err != nil {
			t.Fatal(err)
		}
		readAll(t, st, newOnly)
	})
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	v, st, kr := newTestVault(t)
	ctx := t.Context()
	const val = "do-not-print-me-0123456789"
	mustPut(t, v, "k", val)
	mk, _ := kr.key(1)
	row := st.row("k", 1)
	row.Ciphertext[len(row.Ciphertext)-1] ^= 1
	st.setRow(row)
	other, _ := GenerateKeyring()
	okErr := func(err error) {
		t.Helper()
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error()
		if strings.Contains(msg, val) || strings.Contains(msg, string(mk)) || strings.Contains(msg, fmt.Sprintf("%x", mk[:8])) {
			t.Fatalf("error leaks: %s", msg)
		}
	}
	_, _, err := v.Get(ctx, "k")
	okErr(err)
	_, _, err = New(st, other, testNow).Get(ctx, "k")
	okErr(err)
	_, err = v.Put(ctx, "bad name", NewSecret([]byte(val)))
	okErr(err)
}
