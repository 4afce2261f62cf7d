// Package vault keeps keygate's secrets (upstream API keys, client secrets,
// signing keys) encrypted at rest with envelope encryption, and defines
// Secret, a value type that never prints its contents.
//
// # Envelope format
//
// Each secret version gets its own random 32-byte data key. The value is
// sealed under the data key, and the data key is sealed ("wrapped") under a
// master key that never touches the database. Both use AES-256-GCM from the
// standard library; no library offers this envelope over keygate's own store
// interfaces, so it is written here. Every sealed blob is
//
//	0x01 (format version) || 12-byte random nonce || GCM ciphertext and tag
//
// with additional authenticated data binding it to its place:
//
//	value:     "keygate/secret\x00"  + name + "\x00" + version
//	data key:  "keygate/datakey\x00" + name + "\x00" + version + "\x00" + master version
//	check:     "keygate/check\x00"   + master version
//
// (numbers in decimal). A ciphertext moved to another name or version fails
// to open instead of decrypting to the wrong secret. The check value is a
// known plaintext sealed under each master key version and stored beside the
// secrets (store.MasterKeyCheck); it tells a wrong master key
// (ErrWrongMasterKey) from corrupt data (ErrCorrupt). Nothing that fails
// authentication is ever returned.
//
// # Master keys
//
// The master key file holds one key per line, "<version>:<base64>", and
// must have mode 0600 or 0400. The highest version is current. Outside a
// rotation the file holds one version.
//
// # Master key rotation
//
// RotateMaster moves every data key to a new master key version without
// touching any value ciphertext, in steps each of which leaves a readable
// state if the process dies after it:
//
//  1. Generate version N+1 and atomically replace the key file with versions
//     N and N+1 (temporary file, fsync, rename, fsync directory). A crash
//     here leaves secrets under N, which the file still holds.
//  2. In one transaction, store the check value for N+1 and re-wrap every
//     data key: unwrap under its old version, wrap under N+1. The
//     transaction is repeated until no version remains under an old key, to
//     catch secrets written concurrently by processes that did not yet see
//     N+1. A crash here rolls back to the state after step 1.
//  3. Atomically replace the key file with version N+1 alone, then delete
//     the check values of older versions. A crash between the two leaves a
//     stale check for a version no secret uses, which Verify accepts.
//
// Other processes holding the old keyring notice the newer check value and
// refuse to write under the old key; with SetKeyLoader they re-read the key
// file instead.
package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// Limits on names and values.
const (
	MaxNameLen  = 128
	MaxValueLen = 64 << 10
)

const (
	maxPutAttempts    = 5
	maxRewrapRounds   = 5
	minReloadInterval = time.Second
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound reports a secret or secret version that does not exist.
	// It wraps store.ErrNotFound.
	ErrNotFound = fmt.Errorf("secret %w", store.ErrNotFound)
	// ErrWrongMasterKey reports a master key that is not the one the
	// database was written with.
	ErrWrongMasterKey = errors.New("master key does not match this database")
	// ErrCorrupt reports stored data that fails authentication although the
	// master key is right.
	ErrCorrupt = errors.New("data is corrupt")
	// ErrInvalidName reports a name outside [A-Za-z0-9._/-]{1,128}.
	ErrInvalidName = errors.New("invalid secret name")
	// ErrInvalidValue reports an empty value or one over 64 KiB.
	ErrInvalidValue = errors.New("invalid secret value")
)

// Store is what the vault needs from the database. store.Store satisfies it.
type Store interface {
	store.SecretStore
	store.MasterKeyStore
	WithTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// Vault encrypts and decrypts secrets in a Store under a Keyring. It is safe
// for concurrent use.
type Vault struct {
	st  Store
	now func() time.Time
	kr  atomic.Pointer[Keyring]

	rotateMu sync.Mutex // one RotateMaster at a time

	mu       sync.Mutex // guards load and lastLoad
	load     func() (*Keyring, error)
	lastLoad time.Time
}

// New returns a Vault over st using the keys in kr, which must not be nil
// (the Vault keeps its own copy of the keyring). Call Verify before serving to fail fast on a wrong
// master key.
func New(st Store, kr *Keyring, now func() time.Time) *Vault {
	if now == nil {
		now = time.Now
	}
	v := &Vault{st: st, now: now}
	v.kr.Store(kr.clone())
	return v
}

// SetKeyLoader gives the vault a way to re-read the master keys, such as
// func() (*Keyring, error) { return LoadMasterKeyFile(path) }. The vault
// calls it (at most once a second) when it meets a master key version it
// lacks, which happens after another process ran RotateMaster.
func (v *Vault) SetKeyLoader(load func() (*Keyring, error)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.load = load
}

// SetKeyring replaces the vault's keyring.
func (v *Vault) SetKeyring(kr *Keyring) { v.kr.Store(kr.clone()) }

func (v *Vault) keyring() *Keyring { return v.kr.Load() }

// reload re-reads the keyring through the loader and reports whether it did.
func (v *Vault) reload() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if v.load == nil || (!v.lastLoad.IsZero() && now.Sub(v.lastLoad) < minReloadInterval) {
		return false
	}
	v.lastLoad = now
	kr, err := v.load()
	if err != nil || kr == nil {
		return false
	}
	v.kr.Store(kr.clone())
	return true
}

// staleKeyError reports a database that has seen a newer master key version
// than the keyring holds.
type staleKeyError struct{ db, current int }

func (e *staleKeyError) Error() string {
	return fmt.Sprintf("database has master key version %d but the newest loaded is %d (rotated by another process? reload the key file): %v",
		e.db, e.current, ErrWrongMasterKey)
}

func (e *staleKeyError) Unwrap() error { return ErrWrongMasterKey }

// Verify checks that the keyring matches the database: every stored check
// value whose version the keyring holds must open, no check may be newer
// than the keyring, and no secret may be sealed under a version the keyring
// lacks. On first use it stores the check value for the current version.
func (v *Vault) Verify(ctx context.Context) error {
	var err error
	for range 2 {
		err = v.st.WithTx(ctx, func(tx store.Tx) error {
			return v.checkKeys(ctx, tx, v.keyring(), true)
		})
		// A racing first use wrote the check first: look again.
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("verify master key: %w", err)
	}
	return nil
}

func (v *Vault) checkKeys(ctx context.Context, tx store.Tx, kr *Keyring, write bool) error {
	cur := kr.Current()
	if cur == 0 {
		return errors.New("keyring holds no master key")
	}
	checks, err := tx.MasterKeyChecks(ctx)
	if err != nil {
		return fmt.Errorf("read master key checks: %w", err)
	}
	haveCur, missing := false, false
	for _, c := range checks {
		if c.Version > cur {
			return &staleKeyError{db: c.Version, current: cur}
		}
		mk, ok := kr.key(c.Version)
		if !ok {
			missing = true
			continue
		}
		if !openCheck(mk, c.Check, c.Version) {
			return fmt.Errorf("master key version %d: %w", c.Version, ErrWrongMasterKey)
		}
		if c.Version == cur {
			haveCur = true
		}
	}
	if missing || len(checks) == 0 {
		all, err := tx.AllSecretVersions(ctx)
		if err != nil {
			return fmt.Errorf("read secrets: %w", err)
		}
		for _, sv := range all {
			if !kr.Has(sv.MasterVersion) {
				return fmt.Errorf("secret %q version %d is sealed with master key version %d, which is not loaded: %w",
					sv.Name, sv.Version, sv.MasterVersion, ErrWrongMasterKey)
			}
		}
	}
	if !haveCur && write {
		mk, _ := kr.key(cur)
		check, err := sealCheck(mk, cur)
		if err != nil {
			return err
		}
		if err := tx.PutMasterKeyCheck(ctx, store.MasterKeyCheck{Version: cur, Check: check, CreatedAt: v.now()}); err != nil {
			return fmt.Errorf("store master key check: %w", err)
		}
	}
	return nil
}

// validName reports whether name matches [A-Za-z0-9._/-]{1,128}.
func validName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if !validName(name) {
		return fmt.Errorf("%w %q: want 1 to %d of A-Z a-z 0-9 . _ / -", ErrInvalidName, name, MaxNameLen)
	}
	return nil
}

// Put stores value as a new version of name (1 for a new name) and returns
// the version.
func (v *Vault) Put(ctx context.Context, name string, value Secret) (int, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if value.IsZero() || value.Len() > MaxValueLen {
		return 0, fmt.Errorf("%w: want 1 to %d bytes, got %d", ErrInvalidValue, MaxValueLen, value.Len())
	}
	for attempt := 1; ; attempt++ {
		kr := v.keyring()
		var version int
		err := v.st.WithTx(ctx, func(tx store.Tx) error {
			if err := v.checkKeys(ctx, tx, kr, true); err != nil {
				return err
			}
			latest, err := tx.LatestSecretVersion(ctx, name)
			switch {
			case errors.Is(err, store.ErrNotFound):
				version = 1
			case err != nil:
				return fmt.Errorf("read latest version: %w", err)
			default:
				version = latest.Version + 1
			}
			mv := kr.Current()
			mk, _ := kr.key(mv)
			wrapped, ciphertext, err := sealValue(mk, mv, name, version, value.Reveal())
			if err != nil {
				return err
			}
			return tx.InsertSecretVersion(ctx, store.SecretVersion{
				Name:          name,
				Version:       version,
				MasterVersion: mv,
				WrappedKey:    wrapped,
				Ciphertext:    ciphertext,
				CreatedAt:     v.now(),
			})
		})
		if err == nil {
			return version, nil
		}
		var stale *staleKeyError
		retry := errors.Is(err, store.ErrConflict) || (errors.As(err, &stale) && v.reload())
		if !retry || attempt >= maxPutAttempts {
			return 0, fmt.Errorf("put secret %q: %w", name, err)
		}
	}
}

// Get returns the latest version of name and its number.
func (v *Vault) Get(ctx context.Context, name string) (Secret, int, error) {
	if err := checkName(name); err != nil {
		return Secret{}, 0, err
	}
	sv, err := v.st.LatestSecretVersion(ctx, name)
	if err != nil {
		return Secret{}, 0, v.readErr(name, err)
	}
	s, err := v.open(ctx, name, sv.Version, sv)
	if err != nil {
		return Secret{}, 0, err
	}
	return s, sv.Version, nil
}

// GetVersion returns one version of name.
func (v *Vault) GetVersion(ctx context.Context, name string, version int) (Secret, error) {
	if err := checkName(name); err != nil {
		return Secret{}, err
	}
	if version < 1 {
		return Secret{}, fmt.Errorf("get secret %q version %d: %w", name, version, ErrNotFound)
	}
	sv, err := v.st.SecretVersion(ctx, name, version)
	if err != nil {
		return Secret{}, v.readErr(name, err)
	}
	return v.open(ctx, name, version, sv)
}

func (v *Vault) readErr(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("get secret %q: %w", name, ErrNotFound)
	}
	return fmt.Errorf("get secret %q: %w", name, err)
}

// open decrypts sv as name/version. The AAD comes from what the caller
// asked for, not from the row, so a row served for the wrong name fails.
func (v *Vault) open(ctx context.Context, name string, version int, sv store.SecretVersion) (Secret, error) {
	kr := v.keyring()
	mk, ok := kr.key(sv.MasterVersion)
	if !ok && v.reload() {
		kr = v.keyring()
		mk, ok = kr.key(sv.MasterVersion)
	}
	if !ok {
		return Secret{}, fmt.Errorf("secret %q version %d is sealed with master key version %d, which is not loaded: %w",
			name, version, sv.MasterVersion, ErrWrongMasterKey)
	}
	dk, err := unwrapKey(mk, sv.WrappedKey, name, version, sv.MasterVersion)
	if err != nil {
		return Secret{}, v.classify(ctx, mk, name, version, sv.MasterVersion)
	}
	defer clear(dk)
	pt, err := open(dk, sv.Ciphertext, valueAAD(name, version))
	if err != nil {
		return Secret{}, corrupt(name, version)
	}
	return Secret{p: &secretBytes{b: pt}}, nil
}

// classify explains a data key that failed to unwrap: if the master key
// opens its own check value the key is right and the row is corrupt;
// otherwise the key is wrong.
func (v *Vault) classify(ctx context.Context, mk []byte, name string, version, mv int) error {
	checks, err := v.st.MasterKeyChecks(ctx)
	if err != nil {
		return fmt.Errorf("get secret %q: read master key checks: %w", name, err)
	}
	for _, c := range checks {
		if c.Version == mv && openCheck(mk, c.Check, mv) {
			return corrupt(name, version)
		}
	}
	return fmt.Errorf("secret %q version %d: master key version %d: %w", name, version, mv, ErrWrongMasterKey)
}

func corrupt(name string, version int) error {
	return fmt.Errorf("secret %q version %d: %w", name, version, ErrCorrupt)
}

// List returns every secret's name and versions, never values.
func (v *Vault) List(ctx context.Context) ([]store.SecretInfo, error) {
	infos, err := v.st.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return infos, nil
}

// Delete removes every version of name.
func (v *Vault) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := v.st.DeleteSecret(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete secret %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("delete secret %q: %w", name, err)
	}
	return nil
}

// RotateMaster adds a new master key version, re-wraps every data key under
// it and leaves only the new version in the key file at path, following the
// crash-safe sequence in the package documentation. Value ciphertexts are
// not touched. It returns the new version.
func (v *Vault) RotateMaster(ctx context.Context, path string) (int, error) {
	v.rotateMu.Lock()
	defer v.rotateMu.Unlock()
	if err := v.Verify(ctx); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	next := v.keyring().clone()
	nv, err := next.AddVersion()
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}

	// Step 1: the file holds old and new versions.
	if err := WriteMasterKeyFile(path, next); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	v.kr.Store(next)

	// Step 2: check value and re-wrap, in one transaction, until nothing
	// is left under an old version.
	for round := 1; ; round++ {
		n, err := v.rewrapAll(ctx, next, nv)
		if err != nil {
			return 0, fmt.Errorf("rotate master key to version %d: %w", nv, err)
		}
		if n == 0 {
			break
		}
		if round >= maxRewrapRounds {
			return 0, fmt.Errorf("rotate master key to version %d: secrets are still being written under old versions; run it again", nv)
		}
	}

	// Step 3: the file holds only the new version; old checks go.
	final := next.only(nv)
	if err := WriteMasterKeyFile(path, final); err != nil {
		return 0, fmt.Errorf("rotate master key to version %d: %w", nv, err)
	}
	v.kr.Store(final)
	err = v.st.WithTx(ctx, func(tx store.Tx) error {
		checks, err := tx.MasterKeyChecks(ctx)
		if err != nil {
			return fmt.Errorf("read master key checks: %w", err)
		}
		for _, c := range checks {
			if c.Version != nv {
				if err := tx.DeleteMasterKeyCheck(ctx, c.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("delete master key check %d: %w", c.Version, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rotate master key to version %d: %w", nv, err)
	}
	return nv, nil
}

// rewrapAll stores the check value for nv if absent and re-wraps every data
// key not yet under nv, in one transaction. It returns how many it re-wrapped.
func (v *Vault) rewrapAll(ctx context.Context, kr *Keyring, nv int) (int, error) {
	newKey, _ := kr.key(nv)
	var n int
	err := v.st.WithTx(ctx, func(tx store.Tx) error {
		n = 0
		checks, err := tx.MasterKeyChecks(ctx)
		if err != nil {
			return fmt.Errorf("read master key checks: %w", err)
		}
		have := false
		for _, c := range checks {
			if c.Version == nv {
				if !openCheck(newKey, c.Check, nv) {
					return fmt.Errorf("master key version %d: %w", nv, ErrWrongMasterKey)
				}
				have = true
			}
		}
		if !have {
			check, err := sealCheck(newKey, nv)
			if err != nil {
				return err
			}
			if err := tx.PutMasterKeyCheck(ctx, store.MasterKeyCheck{Version: nv, Check: check, CreatedAt: v.now()}); err != nil {
				return fmt.Errorf("store master key check: %w", err)
			}
		}
		all, err := tx.AllSecretVersions(ctx)
		if err != nil {
			return fmt.Errorf("read secrets: %w", err)
		}
		for _, sv := range all {
			if sv.MasterVersion == nv {
				continue
			}
			oldKey, ok := kr.key(sv.MasterVersion)
			if !ok {
				return fmt.Errorf("secret %q version %d is sealed with master key version %d, which is not loaded: %w",
					sv.Name, sv.Version, sv.MasterVersion, ErrWrongMasterKey)
			}
			wrapped, err := rewrap(oldKey, newKey, sv, nv)
			if err != nil {
				return err
			}
			if err := tx.RewrapSecretVersion(ctx, sv.Name, sv.Version, nv, wrapped); err != nil {
				return fmt.Errorf("re-wrap secret %q version %d: %w", sv.Name, sv.Version, err)
			}
			n++
		}
		return nil
	})
	return n, err
}

func rewrap(oldKey, newKey []byte, sv store.SecretVersion, nv int) ([]byte, error) {
	dk, err := unwrapKey(oldKey, sv.WrappedKey, sv.Name, sv.Version, sv.MasterVersion)
	if err != nil {
		// Verify passed for this keyring, so the key is right.
		return nil, corrupt(sv.Name, sv.Version)
	}
	defer clear(dk)
	return seal(newKey, dk, dataKeyAAD(sv.Name, sv.Version, nv))
}
