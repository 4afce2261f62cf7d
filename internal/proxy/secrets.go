package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/vault"
)

// SecretSource gives the proxy its upstream credentials. The app adapts *vault.Vault (Get) and
// store.SecretStore (LatestSecretVersion, which reads the version number without decrypting).
type SecretSource interface {
	// Get returns the newest version of the secret and its version number.
	Get(ctx context.Context, name string) (vault.Secret, int, error)
	// LatestVersion returns the newest version number of the secret.
	LatestVersion(ctx context.Context, name string) (int, error)
}

const (
	// secretPollInterval is how often Run asks for each loaded secret's latest version: a
	// `keygate secret rotate` on any node reaches every node within about this long.
	secretPollInterval = 2 * time.Second
	// secretRetryAfter is how long a failed first load is remembered, so that a missing secret
	// costs one database read per second, not one per request.
	secretRetryAfter  = time.Second
	secretLoadTimeout = 5 * time.Second
)

// secretEntry is one loaded version of a secret. Entries are immutable: a rotation stores a new one.
type secretEntry struct {
	version int
	value   vault.Secret
}

// secretSlot holds the current entry of one secret name.
type secretSlot struct {
	name string
	cur  atomic.Pointer[secretEntry]

	mu       sync.Mutex // serialises loads: one database read however many requests wait
	failedAt time.Time  // guarded by mu
	failErr  error      // guarded by mu
}

// secretCache keeps the upstream credentials in memory. The set of names is fixed by the config,
// so the map is built once and read without a lock. A value, once loaded, is only ever replaced by
// a newer one: there is no moment without a credential during a rotation.
type secretCache struct {
	src   SecretSource
	slots map[string]*secretSlot
	log   *slog.Logger
	now   func() time.Time
}

func newSecretCache(src SecretSource, names []string, log *slog.Logger, now func() time.Time) *secretCache {
	c := &secretCache{src: src, slots: make(map[string]*secretSlot, len(names)), log: log, now: now}
	for _, n := range names {
		c.slots[n] = &secretSlot{name: n}
	}
	return c
}

// get returns the current entry of name, loading it on first use.
func (c *secretCache) get(ctx context.Context, name string) (*secretEntry, error) {
	s := c.slots[name]
	if s == nil {
		return nil, fmt.Errorf("secret %q is not configured", name)
	}
	if e := s.cur.Load(); e != nil {
		return e, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur.Load(); e != nil {
		return e, nil
	}
	if s.failErr != nil && c.now().Sub(s.failedAt) < secretRetryAfter {
		return nil, s.failErr
	}
	// The load is not tied to one client's request: if that client goes away, the others waiting
	// on the lock still want the value.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), secretLoadTimeout)
	defer cancel()
	e, err := c.load(ctx, name)
	if err != nil {
		s.failErr, s.failedAt = err, c.now()
		return nil, err
	}
	s.failErr = nil
	s.cur.Store(e)
	return e, nil
}

func (c *secretCache) load(ctx context.Context, name string) (*secretEntry, error) {
	v, ver, err := c.src.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load secret %q: %w", name, err)
	}
	if v.IsZero() {
		return nil, fmt.Errorf("load secret %q: empty value", name)
	}
	return &secretEntry{version: ver, value: v}, nil
}

// refresh reloads every loaded secret whose latest version differs from the cached one. A failed
// check or load keeps the old value (logged): serving the previous key beats serving none.
func (c *secretCache) refresh(ctx context.Context) {
	for _, s := range c.slots {
		cur := s.cur.Load()
		if cur == nil {
			continue
		}
		ver, err := c.src.LatestVersion(ctx, s.name)
		if err != nil {
			if ctx.Err() == nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, "proxy: check secret version", slog.String("secret", s.name),
					slog.Int("version", cur.version), slog.String("error", err.Error()))
			}
			continue
		}
		if ver == cur.version {
			continue
		}
		e, err := c.load(ctx, s.name)
		if err != nil {
			if ctx.Err() == nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, "proxy: reload secret", slog.String("secret", s.name),
					slog.Int("version", cur.version), slog.String("error", err.Error()))
			}
			continue
		}
		s.cur.Store(e)
		c.log.LogAttrs(ctx, slog.LevelInfo, "proxy: secret rotated", slog.String("secret", s.name),
			slog.Int("from_version", cur.version), slog.Int("to_version", e.version))
	}
}

// run loads every secret once (so the first requests do not wait), then polls for rotations
// every interval until ctx is done.
func (c *secretCache) run(ctx context.Context, interval time.Duration) {
	for name := range c.slots {
		if _, err := c.get(ctx, name); err != nil && ctx.Err() == nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "proxy: preload secret", slog.String("secret", name),
				slog.String("error", err.Error()))
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refresh(ctx)
		}
	}
}
