// Package sqlite opens keygate's embedded SQLite backend (modernc.org/sqlite,
// pure Go). The database runs in WAL mode with a busy timeout, and every
// transaction is BEGIN IMMEDIATE so concurrent writers queue on the write
// lock instead of failing when a read upgrades to a write.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"

	"github.com/keygate/keygate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLite result codes used below (sqlite3.h).
const (
	codeBusy             = 5
	codeLocked           = 6
	codeConstraintPK     = 1555
	codeConstraintUnique = 2067
	busyTimeoutMillis    = 10000
	maxOpenConns         = 8
)

var dialect = &sqlstore.Dialect{
	Name:         "sqlite",
	SingleWriter: true,
	IsUnique: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code() == codeConstraintUnique || e.Code() == codeConstraintPK)
	},
	IsBusy: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code()&0xff == codeBusy || e.Code()&0xff == codeLocked)
	},
}

// Open opens (creating if needed) the database file at path and applies
// the embedded migrations.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sqlite: database directory %s: %w", dir, unwrapPathError(err))
	} else if !st.IsDir() {
		return nil, fmt.Errorf("sqlite: %s is not a directory", dir)
	}
	// The database holds only ciphertext and hashes, but it is still
	// nobody else's business: create it 0600 (SQLite gives -wal and -shm
	// the database file's mode).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, unwrapPathError(err))
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return sqlstore.New(db, dialect), nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
