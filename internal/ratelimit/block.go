package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
)

// Block is an active block on a subject or ip.
type Block = store.Block

// Event metrics counted by block rules.
const (
	MetricLimitHits    = config.MetricLimitHits
	MetricAuthFailures = config.MetricAuthFailures
)

// Event is one occurrence of a metric that block rules count.
type Event struct {
	Metric  string // MetricLimitHits | MetricAuthFailures
	Subject string
	IP      string
}

// DefaultPollInterval is how often a Blocker reloads the active blocks
// from the database, so a block created on one node is enforced by every
// node within about this long.
const DefaultPollInterval = time.Second

type blockRule struct {
	name      string
	kind      string // store.BlockKeySubject | store.BlockKeyIP
	metric    string
	threshold int64
	window    time.Duration
	blockFor  time.Duration
}

type blockKey struct{ kind, key string }

type recentBlock struct {
	blk Block
	seq uint64
}

type counterKey struct {
	rule int
	key  string
}

// slidingCount estimates the events in the last window as the current
// fixed window's count plus the previous one's, weighted by how much of it
// still overlaps the sliding window.
type slidingCount struct {
	start     time.Time // start of the current fixed window
	cur, prev int64
}

func (c *slidingCount) add(now time.Time, window time.Duration) float64 {
	if elapsed := now.Sub(c.start); elapsed >= window {
		n := elapsed / window
		c.start = c.start.Add(n * window)
		if n == 1 {
			c.prev = c.cur
		} else {
			c.prev = 0
		}
		c.cur = 0
	}
	c.cur++
	overlap := 1 - float64(now.Sub(c.start))/float64(window)
	return float64(c.prev)*overlap + float64(c.cur)
}

// Blocker applies auto-block rules and answers whether a caller is blocked.
type Blocker struct {
	rules []blockRule
	st    Store
	now   func() time.Time
	log   *slog.Logger
	poll  time.Duration

	mu     sync.RWMutex
	blocks map[blockKey]Block
	// recent holds blocks this node created, with the value of seq when
	// they were written, until a reload that started after them has run:
	// a reload whose query raced the write must not drop them.
	recent map[blockKey]recentBlock
	seq    uint64

	nextRefresh atomic.Int64 // UnixNano of the injected clock
	refreshing  atomic.Bool
	loaded      atomic.Bool

	cmu       sync.Mutex
	counts    map[counterKey]*slidingCount
	lastSweep time.Time
}

// NewBlocker builds a Blocker. now is the clock; logger may be nil.
func NewBlocker(rules []config.BlockRule, st Store, now func() time.Time, logger *slog.Logger) *Blocker {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Blocker{st: st, now: now, log: logger, poll: DefaultPollInterval,
		blocks: map[blockKey]Block{}, recent: map[blockKey]recentBlock{}, counts: map[counterKey]*slidingCount{}}
	for _, r := range rules {
		kind := store.BlockKeySubject
		if r.Key == config.KeyIP {
			kind = store.BlockKeyIP
		}
		b.rules = append(b.rules, blockRule{name: r.Name, kind: kind, metric: r.When.Metric,
			threshold: r.When.Threshold, window: r.When.Window, blockFor: r.BlockFor.Std()})
	}
	return b
}

// Blocked returns the active block on subject or ip, or nil. It reads an
// in-memory copy of the blocks table, reloaded when older than the poll
// interval (by whichever caller notices first; the others keep using the
// copy they have). A database error is returned only while no copy has
// ever been loaded; afterwards the last copy keeps being enforced.
func (b *Blocker) Blocked(ctx context.Context, subject, ip string) (*Block, error) {
	now := b.now()
	if now.UnixNano() >= b.nextRefresh.Load() && b.refreshing.CompareAndSwap(false, true) {
		err := b.refresh(ctx, now)
		b.refreshing.Store(false)
		if err != nil {
			if !b.loaded.Load() {
				return nil, err
			}
			b.log.WarnContext(ctx, "reload blocks failed; enforcing the last copy", "err", err)
		}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if len(b.blocks) == 0 {
		return nil, nil
	}
	for _, k := range [2]blockKey{{store.BlockKeySubject, subject}, {store.BlockKeyIP, ip}} {
		if k.key == "" {
			continue
		}
		if blk, ok := b.blocks[k]; ok && blk.Until.After(now) {
			return &blk, nil
		}
	}
	return nil, nil
}

// Refresh reloads the active blocks from the database now.
func (b *Blocker) Refresh(ctx context.Context) error {
	return b.refresh(ctx, b.now())
}

func (b *Blocker) refresh(ctx context.Context, now time.Time) error {
	b.nextRefresh.Store(now.Add(b.poll).UnixNano())
	b.mu.RLock()
	seq := b.seq
	b.mu.RUnlock()
	list, err := b.st.ActiveBlocks(ctx, now)
	if err != nil {
		return fmt.Errorf("load blocks: %w", err)
	}
	m := make(map[blockKey]Block, len(list))
	for _, blk := range list {
		m[blockKey{blk.KeyKind, blk.Key}] = blk
	}
	b.mu.Lock()
	for k, r := range b.recent {
		if r.seq <= seq {
			delete(b.recent, k) // written before the query began: it saw it
			continue
		}
		if cur, ok := m[k]; !ok || cur.Until.Before(r.blk.Until) {
			m[k] = r.blk
		}
	}
	b.blocks = m
	b.mu.Unlock()
	b.loaded.Store(true)
	return nil
}

// Run reloads the blocks every poll interval, so the hot path never waits
// for the database, and prunes long-expired blocks hourly.
func (b *Blocker) Run(ctx context.Context) error {
	t := time.NewTicker(b.poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if err := b.Refresh(ctx); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "reload blocks failed", "err", err)
		}
		if now := b.now(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if _, err := b.st.PruneBlocks(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
				b.log.WarnContext(ctx, "prune blocks failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Record counts one event against every rule on its metric, and creates a
// block for each rule whose count now exceeds its threshold within its
// window. It returns the blocks it created (for the caller to audit and
// count); a key already blocked is not counted.
func (b *Blocker) Record(ctx context.Context, ev Event) ([]Block, error) {
	var fired []Block
	now := b.now()
	for i, r := range b.rules {
		if r.metric != ev.Metric {
			continue
		}
		key := ev.Subject
		if r.kind == store.BlockKeyIP {
			key = ev.IP
		}
		if key == "" || b.isBlocked(r.kind, key, now) {
			continue
		}
		if !b.count(counterKey{i, key}, r, now) {
			continue
		}
		blk := Block{KeyKind: r.kind, Key: key, Rule: r.name, Until: now.Add(r.blockFor), CreatedAt: now}
		if err := b.st.PutBlock(ctx, blk); err != nil {
			return fired, fmt.Errorf("block %s %s by rule %s: %w", r.kind, key, r.name, err)
		}
		bk := blockKey{r.kind, key}
		b.mu.Lock()
		if cur, ok := b.blocks[bk]; !ok || cur.Until.Before(blk.Until) {
			b.blocks[bk] = blk
		}
		b.seq++
		b.recent[bk] = recentBlock{blk, b.seq}
		b.mu.Unlock()
		b.log.InfoContext(ctx, "auto-block", "rule", r.name, "key_kind", r.kind, "key", key,
			"metric", r.metric, "until", blk.Until)
		fired = append(fired, blk)
	}
	return fired, nil
}

// count adds one event and reports whether the rule fires; firing resets
// the key's count so the block's end starts a fresh window.
func (b *Blocker) count(k counterKey, r blockRule, now time.Time) bool {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	if now.Sub(b.lastSweep) > time.Minute {
		b.lastSweep = now
		for ck, c := range b.counts {
			if now.Sub(c.start) >= 2*b.rules[ck.rule].window {
				delete(b.counts, ck)
			}
		}
	}
	c := b.counts[k]
	if c == nil {
		c = &slidingCount{start: now}
		b.counts[k] = c
	}
	if c.add(now, r.window) > float64(r.threshold) {
		delete(b.counts, k)
		return true
	}
	return false
}

func (b *Blocker) isBlocked(kind, key string, now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	blk, ok := b.blocks[blockKey{kind, key}]
	return ok && blk.Until.After(now)
}

// ListBlocks returns the active blocks, from the database.
func (b *Blocker) ListBlocks(ctx context.Context) ([]Block, error) {
	list, err := b.st.ActiveBlocks(ctx, b.now())
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	if list == nil {
		list = []Block{}
	}
	return list, nil
}

// Unblock lifts every block on key (subject or ip) at once on this node,
// and on the others at their next poll. A key with no block is
// store.ErrNotFound.
func (b *Blocker) Unblock(ctx context.Context, key string) error {
	n, err := b.st.DeleteBlocks(ctx, key)
	if err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	b.mu.Lock()
	for _, kind := range [2]string{store.BlockKeySubject, store.BlockKeyIP} {
		delete(b.blocks, blockKey{kind, key})
		delete(b.recent, blockKey{kind, key})
	}
	b.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("unblock: %w", store.ErrNotFound)
	}
	b.log.InfoContext(ctx, "unblock", "key", key)
	return nil
}
