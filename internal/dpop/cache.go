package dpop

import (
	"sync"
	"time"
)

// seenCache remembers, per node, proofs this node has already passed to the
// ReplayStore, so that a replay to the same node is refused without a
// database round trip. It is only a front: it may forget early (when full),
// never wrongly claims a proof is new, and the store stays the authority
// across nodes.
type seenCache struct {
	shards [seenShards]seenShard
}

const (
	seenShards   = 16
	seenPerShard = 4096 // 64Ki entries of ~48 bytes: a few MiB at most
)

type seenShard struct {
	mu sync.Mutex
	m  map[[32]byte]int64 // key -> expiry, unix nanoseconds
}

func (c *seenCache) shard(k *[32]byte) *seenShard { return &c.shards[k[0]%seenShards] }

// seen reports whether k is remembered and not expired at now.
func (c *seenCache) seen(k *[32]byte, now time.Time) bool {
	s := c.shard(k)
	s.mu.Lock()
	exp, ok := s.m[*k]
	s.mu.Unlock()
	return ok && now.UnixNano() < exp
}

// add remembers k until exp. A full shard first drops expired entries and,
// if still full, a quarter of the rest (map order is random enough).
func (c *seenCache) add(k *[32]byte, exp, now time.Time) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[32]byte]int64)
	}
	if len(s.m) >= seenPerShard {
		n := now.UnixNano()
		for key, e := range s.m {
			if e <= n {
				delete(s.m, key)
			}
		}
		for key := range s.m {
			if len(s.m) < seenPerShard*3/4 {
				break
			}
			delete(s.m, key)
		}
	}
	s.m[*k] = exp.UnixNano()
}
