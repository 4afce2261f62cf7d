package dpop

import (
	"hash/maphash"
	"strings"
	"sync"
)

// keyCache maps the base64url protected header of a proof to what the
// header yields once it has passed every check on it: the alg, the parsed
// public key and its thumbprint. A client signs every proof with one key, so
// its header segment is byte-identical from proof to proof, and the parse
// (JSON, JWK, point validation, RFC 7638 thumbprint) need run only once.
// Only fully validated headers are added, and a hit still has its signature
// and every claim checked; the alg policy it was validated under is the
// Verifier's own, which does not change.
//
// It is bounded (a full shard drops a quarter of its entries, in map order)
// and headers longer than keyCacheMaxHeader are never kept, so it cannot be
// grown without limit by a client sending fresh keys.
type keyCache struct {
	seed   maphash.Seed
	shards [keyCacheShards]keyShard
}

const (
	keyCacheShards   = 16
	keyCachePerShard = 256 // 4096 entries of at most ~1.2 KiB: a few MiB at most
	// keyCacheMaxHeader bounds a cached header segment; an EC or OKP
	// jwk header is well under 400 characters.
	keyCacheMaxHeader = 1024
)

type keyShard struct {
	mu sync.RWMutex
	m  map[string]*verifiedHeader
}

// verifiedHeader is what a validated protected header yields.
type verifiedHeader struct {
	alg string
	pub any // *ecdsa.PublicKey or ed25519.PublicKey
	jkt string
}

func (c *keyCache) shard(h string) *keyShard {
	return &c.shards[maphash.String(c.seed, h)%keyCacheShards]
}

func (c *keyCache) get(h string) *verifiedHeader {
	if len(h) > keyCacheMaxHeader {
		return nil
	}
	s := c.shard(h)
	s.mu.RLock()
	v := s.m[h]
	s.mu.RUnlock()
	return v
}

func (c *keyCache) add(h string, v *verifiedHeader) {
	if len(h) > keyCacheMaxHeader {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*verifiedHeader)
	}
	if len(s.m) >= keyCachePerShard {
		for k := range s.m {
			if len(s.m) < keyCachePerShard*3/4 {
				break
			}
			delete(s.m, k)
		}
	}
	// h is a slice of the whole proof: keep a copy, not the proof.
	s.m[strings.Clone(h)] = v
}
