package postgres_test

import (
	"os"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/pgtest"
	"github.com/keygate/keygate/internal/store/postgres"
	"github.com/keygate/keygate/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenMigratesTwice(t *testing.T) {
	dsn := pgtest.DSN(t)
	for i := 0; i < 2; i++ {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		s.Close()
	}
}

func TestUnreachableDoesNotLeakPassword(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://keygate:hunter2-secret@127.0.0.1:1/keygate?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "cannot connect") {
		t.Errorf("error = %v, want it to say it cannot connect", err)
	}
}
