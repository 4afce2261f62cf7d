package ratelimit

import (
	"hash/maphash"
	"strings"
	"sync"
)

const (
	memShards = 64 // power of two
	// sweepEveryUS is how often (µs of the limiter's clock) a shard drops
	// keys whose TAT has passed.
	sweepEveryUS = 60_000_000
)

// memTable is the GCRA state of one in-memory limit: key → TAT (µs).
type memTable struct {
	seed   maphash.Seed
	shards [memShards]memShard
}

type memShard struct {
	mu        sync.Mutex
	tat       map[string]int64
	lastSweep int64
	_         [40]byte // keep shards on separate cache lines
}

func newMemTable() *memTable {
	t := &memTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].tat = make(map[string]int64)
	}
	return t
}

func (t *memTable) shard(key string) *memShard {
	return &t.shards[maphash.String(t.seed, key)&(memShards-1)]
}

// take is GCRA: admitted iff max(TAT, now) + interval - now ≤ tolerance.
// It returns the TAT after the call (the unchanged one when refused).
func (t *memTable) take(key string, now, interval, tolerance int64) (bool, int64) {
	sh := t.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep > sweepEveryUS {
		sh.lastSweep = now
		for k, tat := range sh.tat {
			if tat <= now {
				delete(sh.tat, k)
			}
		}
	}
	old, found := sh.tat[key]
	if old > now+tolerance-interval {
		return false, old
	}
	tat := max(old, now) + interval
	if found {
		sh.tat[key] = tat
	} else {
		// The caller's string may share memory with a large request
		// buffer; keep only the key.
		sh.tat[strings.Clone(key)] = tat
	}
	return true, tat
}

// refund gives back one admitted request.
func (t *memTable) refund(key string, interval int64) {
	sh := t.shard(key)
	sh.mu.Lock()
	if tat, ok := sh.tat[key]; ok {
		sh.tat[key] = tat - interval
	}
	sh.mu.Unlock()
}

// len reports the number of keys held, for tests.
func (t *memTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}
