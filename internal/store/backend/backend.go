// Package backend opens the store a DSN names: SQLite or PostgreSQL.
package backend

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/postgres"
	"github.com/keygate/keygate/internal/store/sqlite"
)

// Open parses dsn, opens the database and migrates it.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	d, err := config.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch d.Driver {
	case "sqlite":
		return sqlite.Open(ctx, d.Path)
	case "postgres":
		return postgres.Open(ctx, d.URL)
	default:
		return nil, fmt.Errorf("database: unsupported driver %q", d.Driver)
	}
}
