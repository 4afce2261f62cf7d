package sqlite_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/sqlite"
	"github.com/keygate/keygate/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "keygate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenMigratesTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	for i := 0; i < 2; i++ {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		s.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: read-only directory case checks a missing directory instead")
	}
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing directory", filepath.Join(t.TempDir(), "nope", "k.db"), "no such file or directory"},
		{"empty path", "", "empty database path"},
	}
	if os.Geteuid() != 0 {
		tests = append(tests, struct{ name, path, want string }{"read-only directory", filepath.Join(ro, "k.db"), "unable to open"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlite.Open(t.Context(), tt.path)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Fatalf("Open(%q) err = %v, want containing %q", tt.path, err, tt.want)
			}
		})
	}
}
