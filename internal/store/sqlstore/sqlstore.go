// Package sqlstore implements the store interfaces once, over database/sql,
// for both backends. SQLite and PostgreSQL differ here only in a Dialect:
// placeholder style and how a unique violation is recognised. Every write
// that must be exact under concurrency is a single conditional statement
// (UPDATE ... WHERE ... RETURNING) or runs in a transaction, so both
// databases give the same answer to racing callers.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// Dialect is what differs between the backends.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Numbered placeholders ($1, $2...) instead of ?.
	Numbered bool
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(error) bool
	// IsBusy reports a transient lock error worth one more try (SQLite).
	IsBusy func(error) bool
	// SingleWriter is set when all writes serialise on one database-wide
	// lock (SQLite): concurrent replay inserts are then group-committed
	// (see replayGroup).
	SingleWriter bool
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is a store.Store over one database/sql handle.
type Store struct {
	db      *sql.DB
	q       querier
	d       *Dialect
	queries *sync.Map // query text with ? → dialect text
	stmts   *stmtCache
	inTx    bool
	replay  *replayGroup // nil: Remember runs one statement per call
}

var _ store.Store = (*Store)(nil)

// New wraps an open database whose schema is migrated.
func New(db *sql.DB, d *Dialect) *Store {
	s := &Store{db: db, q: db, d: d, queries: new(sync.Map), stmts: new(stmtCache)}
	if d.SingleWriter {
		s.replay = new(replayGroup)
	}
	return s
}

// DB returns the underlying handle, for migrations and tests.
func (s *Store) DB() *sql.DB { return s.db }

// Backend names the database backend.
func (s *Store) Backend() string { return s.d.Name }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.Name, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	return s.db.Close()
}

// WithTx runs fn in one transaction, committed when fn returns nil.
// The SQLite connection string sets _txlock=immediate, so BEGIN takes the
// write lock up front and concurrent writers wait (busy_timeout) instead of
// failing when a read turns into a write.
func (s *Store) WithTx(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.inTx {
		return fn(s)
	}
	return s.withSQLTx(ctx, func(tx *sql.Tx) error {
		return fn(&Store{db: s.db, q: tx, d: s.d, queries: s.queries, stmts: s.stmts, inTx: true})
	})
}

// withSQLTx runs fn in one database transaction, retrying a few times when
// the database reports a transient lock error.
func (s *Store) withSQLTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.withTxOnce(ctx, fn)
		if err != nil && s.d.IsBusy != nil && s.d.IsBusy(err) && attempt < 5 && ctx.Err() == nil {
			time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
			continue
		}
		return err
	}
}

func (s *Store) withTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stmtCache holds the statements of the hottest writes (replay upserts,
// full audit batches), prepared once on the *sql.DB: parsing them cost as
// much as running them, and database/sql keeps each prepared per connection
// once it has run there.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns query (written with ?) prepared for the dialect.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	c := s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.sql(query))
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// sql rewrites a query written with ? placeholders for the dialect.
func (s *Store) sql(query string) string {
	if !s.d.Numbered {
		return query
	}
	if v, ok := s.queries.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	s.queries.Store(query, out)
	return out
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.q.ExecContext(ctx, s.sql(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.q.QueryContext(ctx, s.sql(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.q.QueryRowContext(ctx, s.sql(query), args...)
}

// wrap turns driver errors into store sentinels where they have a meaning.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case s.d.IsUnique != nil && s.d.IsUnique(err):
		return fmt.Errorf("%s: %w", op, store.ErrConflict)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// Times are stored as Unix milliseconds in a 64-bit integer on both
// backends, so comparisons and arithmetic behave identically.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
