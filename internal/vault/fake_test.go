package vault

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/keygate/keygate/internal/store"
)

type secretKey struct {
	name    string
	version int
}

// fakeStore is an in-memory store.Tx plus WithTx. Transactions are
// serialised and roll back by restoring a snapshot. Stored slices are
// copied in and out so callers cannot alias them.
//
// The embedded nil store.Tx supplies the capabilities the vault does not
// use (calling one panics), so the fake keeps compiling as store.Tx grows.
type fakeStore struct {
	store.Tx

	txMu    sync.Mutex
	mu      sync.Mutex
	secrets map[secretKey]store.SecretVersion
	checks  map[int]store.MasterKeyCheck

	// beforeInsert, if set, runs inside InsertSecretVersion before the row
	// is written (to simulate racing writers).
	beforeInsert func(v store.SecretVersion) error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		secrets: map[secretKey]store.SecretVersion{},
		checks:  map[int]store.MasterKeyCheck{},
	}
}

func cloneSV(v store.SecretVersion) store.SecretVersion {
	v.WrappedKey = slices.Clone(v.WrappedKey)
	v.Ciphertext = slices.Clone(v.Ciphertext)
	return v
}

func (f *fakeStore) WithTx(ctx context.Context, fn func(tx store.Tx) error) error {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	f.mu.Lock()
	secrets, checks := maps.Clone(f.secrets), maps.Clone(f.checks)
	f.mu.Unlock()
	if err := fn(f); err != nil {
		f.mu.Lock()
		f.secrets, f.checks = secrets, checks
		f.mu.Unlock()
		return err
	}
	return nil
}

func (f *fakeStore) InsertSecretVersion(ctx context.Context, v store.SecretVersion) error {
	if f.beforeInsert != nil {
		if err := f.beforeInsert(v); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := secretKey{v.Name, v.Version}
	if _, ok := f.secrets[k]; ok {
		return store.ErrConflict
	}
	f.secrets[k] = cloneSV(v)
	return nil
}

func (f *fakeStore) LatestSecretVersion(ctx context.Context, name string) (store.SecretVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best store.SecretVersion
	found := false
	for k, v := range f.secrets {
		if k.name == name && (!found || k.version > best.Version) {
			best, found = v, true
		}
	}
	if !found {
		return store.SecretVersion{}, store.ErrNotFound
	}
	return cloneSV(best), nil
}

func (f *fakeStore) SecretVersion(ctx context.Context, name string, version int) (store.SecretVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.secrets[secretKey{name, version}]
	if !ok {
		return store.SecretVersion{}, store.ErrNotFound
	}
	return cloneSV(v), nil
}

func (f *fakeStore) ListSecrets(ctx context.Context) ([]store.SecretInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	byName := map[string]*store.SecretInfo{}
	for k, v := range f.secrets {
		in := byName[k.name]
		if in == nil {
			in = &store.SecretInfo{Name: k.name, CreatedAt: v.CreatedAt, UpdatedAt: v.CreatedAt}
			byName[k.name] = in
		}
		in.Versions++
		in.Latest = max(in.Latest, k.version)
		if v.CreatedAt.Before(in.CreatedAt) {
			in.CreatedAt = v.CreatedAt
		}
		if v.CreatedAt.After(in.UpdatedAt) {
			in.UpdatedAt = v.CreatedAt
		}
	}
	var out []store.SecretInfo
	for _, in := range byName {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b store.SecretInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeStore) DeleteSecret(ctx context.Context, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k := range f.secrets {
		if k.name == name {
			delete(f.secrets, k)
			n++
		}
	}
	if n == 0 {
		return 0, store.ErrNotFound
	}
	return n, nil
}

func (f *fakeStore) AllSecretVersions(ctx context.Context) ([]store.SecretVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.SecretVersion
	for _, v := range f.secrets {
		out = append(out, cloneSV(v))
	}
	slices.SortFunc(out, func(a, b store.SecretVersion) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}

func (f *fakeStore) RewrapSecretVersion(ctx context.Context, name string, version, masterVersion int, wrappedKey []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := secretKey{name, version}
	v, ok := f.secrets[k]
	if !ok {
		return store.ErrNotFound
	}
	v.MasterVersion = masterVersion
	v.WrappedKey = slices.Clone(wrappedKey)
	f.secrets[k] = v
	return nil
}

func (f *fakeStore) PutMasterKeyCheck(ctx context.Context, c store.MasterKeyCheck) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.checks[c.Version]; ok {
		return store.ErrConflict
	}
	c.Check = slices.Clone(c.Check)
	f.checks[c.Version] = c
	return nil
}

func (f *fakeStore) MasterKeyChecks(ctx context.Context) ([]store.MasterKeyCheck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.MasterKeyCheck
	for _, c := range f.checks {
		c.Check = slices.Clone(c.Check)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b store.MasterKeyCheck) int { return cmp.Compare(a.Version, b.Version) })
	return out, nil
}

func (f *fakeStore) DeleteMasterKeyCheck(ctx context.Context, version int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.checks, version)
	return nil
}

// row returns a stored row directly (test helper).
func (f *fakeStore) row(name string, version int) store.SecretVersion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneSV(f.secrets[secretKey{name, version}])
}

// setRow overwrites a stored row (test helper for tampering).
func (f *fakeStore) setRow(v store.SecretVersion) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[secretKey{v.Name, v.Version}] = cloneSV(v)
}

// allBytes returns every byte slice the store holds.
func (f *fakeStore) allBytes() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, v := range f.secrets {
		out = append(out, v.WrappedKey, v.Ciphertext, []byte(v.Name))
	}
	for _, c := range f.checks {
		out = append(out, c.Check)
	}
	return out
}

var _ Store = (*fakeStore)(nil)
var _ store.Tx = (*fakeStore)(nil)
