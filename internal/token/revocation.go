package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// Revocation polling.
const (
	// SyncInterval is how often Run pulls new revocations.
	SyncInterval = time.Second
	// revocationOverlap is how long an id gap is waited for. PostgreSQL
	// hands out BIGSERIAL ids when a row is inserted, not when it commits,
	// so id 5 can become visible before id 4. Sync therefore re-reads from
	// the highest id below which it has seen everything, and treats a gap
	// as a rolled-back insert only once a later id has been visible for
	// this long.
	revocationOverlap = 10 * time.Second
	// fullSyncInterval bounds how long a revocation committed later than
	// revocationOverlap could go unseen: the whole live log is re-read this
	// often, which also drops expired entries from memory.
	fullSyncInterval = 5 * time.Minute
	// pruneInterval is how often Run deletes expired entries from the database.
	pruneInterval = 10 * time.Minute
)

// Revocations is the in-memory index of the revocation log. Check is a
// few map lookups on an immutable snapshot, with no locks, so it can run
// on every proxied request, cached tokens included.
//
// A revocation written on any node takes effect locally as soon as the
// writer calls Apply (or Revoke), and on other nodes at their next Sync,
// within SyncInterval when Run is running.
type Revocations struct {
	st  store.RevocationStore
	now func() time.Time
	log *slog.Logger

	idx atomic.Pointer[revIndex]

	mu       sync.Mutex          // guards everything below and index writes
	floor    int64               // every id at or below has been applied
	seen     map[int64]time.Time // ids above floor applied, with when first seen
	lastFull time.Time
}

type revIndex struct {
	n       int
	jti     map[string]struct{}
	subject map[string]time.Time // revoked when iat is at or before the time
	client  map[string]time.Time
	family  map[string]struct{}
}

func newRevIndex() *revIndex {
	return &revIndex{jti: map[string]struct{}{}, subject: map[string]time.Time{},
		client: map[string]time.Time{}, family: map[string]struct{}{}}
}

func (ix *revIndex) clone() *revIndex {
	return &revIndex{n: ix.n, jti: maps.Clone(ix.jti), subject: maps.Clone(ix.subject),
		client: maps.Clone(ix.client), family: maps.Clone(ix.family)}
}

// add records r; adding the same entry twice changes nothing.
func (ix *revIndex) add(r store.Revocation) {
	later := func(m map[string]time.Time) {
		if t, ok := m[r.Value]; !ok || r.IssuedBefore.After(t) {
			m[r.Value] = r.IssuedBefore
		}
	}
	switch r.Kind {
	case store.RevokeJTI:
		ix.jti[r.Value] = struct{}{}
	case store.RevokeSubject:
		later(ix.subject)
	case store.RevokeClient:
		later(ix.client)
	case store.RevokeFamily:
		ix.family[r.Value] = struct{}{}
	default:
		return
	}
	ix.n = len(ix.jti) + len(ix.subject) + len(ix.client) + len(ix.family)
}

// NewRevocations returns an empty index over st; call Sync (or Run) to
// load the log. now and logger may be nil.
func NewRevocations(st store.RevocationStore, now func() time.Time, logger *slog.Logger) *Revocations {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Revocations{st: st, now: now, log: logger, seen: map[int64]time.Time{}}
	r.idx.Store(newRevIndex())
	return r
}

// Check reports ErrRevoked when c is covered by a revocation: its jti is
// denylisted, its subject or client was revoked at or after its iat, or its
// refresh family (sid) was revoked. A nil *Revocations revokes nothing.
func (r *Revocations) Check(c *AccessClaims) error {
	if r == nil {
		return nil
	}
	ix := r.idx.Load()
	if ix.n == 0 {
		return nil
	}
	if _, ok := ix.jti[c.JTI]; ok {
		return fmt.Errorf("%w (jti)", ErrRevoked)
	}
	if t, ok := ix.subject[c.Subject]; ok && !c.IssuedAt.After(t) {
		return fmt.Errorf("%w (subject)", ErrRevoked)
	}
	if t, ok := ix.client[c.ClientID]; ok && !c.IssuedAt.After(t) {
		return fmt.Errorf("%w (client)", ErrRevoked)
	}
	if c.SID != "" {
		if _, ok := ix.family[c.SID]; ok {
			return fmt.Errorf("%w (family)", ErrRevoked)
		}
	}
	return nil
}

func validRevocation(rv store.Revocation) error {
	switch rv.Kind {
	case store.RevokeJTI, store.RevokeFamily:
	case store.RevokeSubject, store.RevokeClient:
		if rv.IssuedBefore.IsZero() {
			return fmt.Errorf("revocation by %s needs IssuedBefore", rv.Kind)
		}
	default:
		return fmt.Errorf("unknown revocation kind %q", rv.Kind)
	}
	if rv.Value == "" {
		return errors.New("revocation needs a value")
	}
	if rv.ExpiresAt.IsZero() {
		return errors.New("revocation needs ExpiresAt (when the last token it covers expires)")
	}
	return nil
}

// Add appends rv to the log inside the caller's transaction (a store.Tx).
// It does not change the index: after the transaction commits, call
// Apply(rv) so the revocation takes effect on this node at once. A zero
// CreatedAt is now.
func (r *Revocations) Add(ctx context.Context, tx store.RevocationStore, rv store.Revocation) error {
	if err := validRevocation(rv); err != nil {
		return fmt.Errorf("add revocation: %w", err)
	}
	if rv.CreatedAt.IsZero() {
		rv.CreatedAt = r.now()
	}
	if _, err := tx.AddRevocation(ctx, rv); err != nil {
		return fmt.Errorf("add revocation: %w", err)
	}
	return nil
}

// Revoke appends rv to the log in its own statement and applies it.
func (r *Revocations) Revoke(ctx context.Context, rv store.Revocation) error {
	if err := r.Add(ctx, r.st, rv); err != nil {
		return err
	}
	r.Apply(rv)
	return nil
}

// Apply makes committed revocations effective on this node.
func (r *Revocations) Apply(rvs ...store.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyLocked(rvs)
}

func (r *Revocations) applyLocked(rvs []store.Revocation) {
	if len(rvs) == 0 {
		return
	}
	ix := r.idx.Load().clone()
	for _, rv := range rvs {
		ix.add(rv)
	}
	r.idx.Store(ix)
}

// Sync pulls entries added since the last Sync (by any node) into the
// index. Every fullSyncInterval it re-reads the whole live log instead,
// which also forgets expired entries.
func (r *Revocations) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.lastFull.IsZero() || now.Sub(r.lastFull) >= fullSyncInterval {
		return r.fullSyncLocked(ctx, now)
	}
	rows, err := r.st.RevocationsSince(ctx, r.floor, now)
	if err != nil {
		return fmt.Errorf("sync revocations: %w", err)
	}
	var fresh []store.Revocation
	for _, rv := range rows {
		if _, ok := r.seen[rv.ID]; !ok && rv.ID > r.floor {
			r.seen[rv.ID] = now
			fresh = append(fresh, rv)
		}
	}
	r.applyLocked(fresh)
	r.advanceLocked(now)
	return nil
}

func (r *Revocations) fullSyncLocked(ctx context.Context, now time.Time) error {
	rows, err := r.st.RevocationsSince(ctx, 0, now)
	if err != nil {
		return fmt.Errorf("sync revocations: %w", err)
	}
	ix := newRevIndex()
	clear(r.seen)
	for _, rv := range rows {
		ix.add(rv)
		// Ids above floor stay in seen so the overlap rule applies to them.
		if rv.ID > r.floor {
			r.seen[rv.ID] = now
		}
	}
	r.idx.Store(ix)
	r.lastFull = now
	r.advanceLocked(now)
	return nil
}

// advanceLocked moves floor up over ids seen contiguously, and over gaps
// that have stayed open for revocationOverlap.
func (r *Revocations) advanceLocked(now time.Time) {
	var settled int64
	for id, first := range r.seen {
		if now.Sub(first) >= revocationOverlap && id > settled {
			settled = id
		}
	}
	if settled > r.floor {
		r.floor = settled
	}
	for {
		if _, ok := r.seen[r.floor+1]; ok {
			r.floor++
			continue
		}
		break
	}
	for id := range r.seen {
		if id <= r.floor {
			delete(r.seen, id)
		}
	}
}

// Run syncs every SyncInterval and prunes expired entries from the
// database every pruneInterval, until ctx ends.
func (r *Revocations) Run(ctx context.Context) error {
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sync revocations", slog.Any("error", err))
		}
		if now := r.now(); now.Sub(lastPrune) >= pruneInterval {
			lastPrune = now
			if n, err := r.st.PruneRevocations(ctx, now); err != nil && ctx.Err() == nil {
				r.log.Warn("prune revocations", slog.Any("error", err))
			} else if n > 0 {
				r.log.Debug("pruned revocations", slog.Int("count", n))
			}
		}
	}
}
