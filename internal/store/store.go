// Package store defines keygate's persistent domain types and the
// per-capability interfaces that both database backends implement.
//
// The SQL lives in internal/store/sqlstore, shared by the SQLite
// (internal/store/sqlite) and PostgreSQL (internal/store/postgres) backends,
// which differ only in driver, connection setup and migrations. The one
// behavioural suite both must pass is internal/store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel outcomes callers test with errors.Is.
var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a uniqueness violation, such as a secret version
	// written twice by racing writers.
	ErrConflict = errors.New("conflict")
)

// Store is the whole database: every capability, plus transactions.
type Store interface {
	Tx
	// WithTx runs fn in one transaction. It commits when fn returns nil and
	// rolls back otherwise. On SQLite the transaction is IMMEDIATE, so
	// writers serialise instead of failing on upgrade.
	WithTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Backend names the backend: "sqlite" or "postgres".
	Backend() string
	Close() error
}

// Tx is what a transaction (or the store outside one) can do. Each
// capability adds its interface here.
type Tx interface {
	SecretStore
	MasterKeyStore
	CounterStore
	SigningKeyStore // tokens.go
	RevocationStore // tokens.go
	RefreshStore    // refresh.go
	ReplayStore     // refresh.go
	AdminTokenStore // admin.go
	LimitStore      // limits.go
	AuditStore      // limits.go
	CapabilityStore // capabilities.go
}

// SecretVersion is one encrypted version of a vault secret. The value is
// never stored in plaintext: Ciphertext is sealed with a per-version data
// key, and WrappedKey is that data key sealed with master key MasterVersion.
type SecretVersion struct {
	Name          string
	Version       int
	MasterVersion int
	WrappedKey    []byte
	Ciphertext    []byte
	CreatedAt     time.Time
}

// SecretInfo describes a secret without any of its key material.
type SecretInfo struct {
	Name      string
	Versions  int // number of stored versions
	Latest    int // highest version
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SecretStore keeps encrypted vault secrets.
type SecretStore interface {
	// InsertSecretVersion stores a new version. A version that already
	// exists for the name is ErrConflict.
	InsertSecretVersion(ctx context.Context, v SecretVersion) error
	// LatestSecretVersion returns the highest version of name, or ErrNotFound.
	LatestSecretVersion(ctx context.Context, name string) (SecretVersion, error)
	// SecretVersion returns one version, or ErrNotFound.
	SecretVersion(ctx context.Context, name string, version int) (SecretVersion, error)
	// ListSecrets returns every secret, ordered by name.
	ListSecrets(ctx context.Context) ([]SecretInfo, error)
	// DeleteSecret removes every version of name and reports how many rows
	// went; zero rows is ErrNotFound.
	DeleteSecret(ctx context.Context, name string) (int, error)
	// AllSecretVersions returns every version of every secret (for re-wrapping).
	AllSecretVersions(ctx context.Context) ([]SecretVersion, error)
	// RewrapSecretVersion replaces the wrapped data key of one version.
	RewrapSecretVersion(ctx context.Context, name string, version, masterVersion int, wrappedKey []byte) error
}

// MasterKeyCheck lets keygate tell a wrong master key from corrupt data: a
// known plaintext sealed under each master key version.
type MasterKeyCheck struct {
	Version   int
	Check     []byte
	CreatedAt time.Time
}

// MasterKeyStore records master key check values.
type MasterKeyStore interface {
	PutMasterKeyCheck(ctx context.Context, c MasterKeyCheck) error
	MasterKeyChecks(ctx context.Context) ([]MasterKeyCheck, error)
	DeleteMasterKeyCheck(ctx context.Context, version int) error
}

// CounterStore holds named integer counters, updated atomically with one
// statement. Quotas and shared rate limits build on it.
type CounterStore interface {
	// AddCounter adds delta to the counter key (created at zero) and
	// returns the new value.
	AddCounter(ctx context.Context, key string, delta int64) (int64, error)
	// Counter returns the current value, zero when absent.
	Counter(ctx context.Context, key string) (int64, error)
}

// IsNotFound reports whether err is ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
