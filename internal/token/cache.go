package token

import (
	"hash/maphash"
	"sync"
	"time"
)

const cacheShards = 32

// tokenCache remembers verified tokens until they expire. It is sharded so
// concurrent readers on many cores do not contend on one lock; each shard
// holds at most size/cacheShards entries and, when full, first drops
// expired entries and then arbitrary ones (a cache miss only costs a
// signature check).
type tokenCache struct {
	seed   maphash.Seed
	per    int
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	claims   *AccessClaims // never modified after insertion
	deadline int64         // unix nanoseconds: exp + skew
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), per: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(raw string) *cacheShard {
	return &c.shards[maphash.String(c.seed, raw)%cacheShards]
}

// get returns a copy of the cached claims of raw, if present and unexpired.
func (c *tokenCache) get(raw string, now time.Time) (*AccessClaims, bool) {
	s := c.shard(raw)
	s.mu.RLock()
	e, ok := s.m[raw]
	s.mu.RUnlock()
	if !ok || now.UnixNano() >= e.deadline {
		return nil, false
	}
	cp := *e.claims
	return &cp, true
}

func (c *tokenCache) put(raw string, claims *AccessClaims, deadline, now time.Time) {
	s := c.shard(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.per {
		for k, e := range s.m {
			if now.UnixNano() >= e.deadline {
				delete(s.m, k)
			}
		}
		// Still full: evict arbitrary entries (map order is random).
		for k := range s.m {
			if len(s.m) < c.per {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[raw] = cacheEntry{claims: claims, deadline: deadline.UnixNano()}
}
