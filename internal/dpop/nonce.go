package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// NonceLifetime is how long a server nonce is accepted (RFC 9449 §8). A
// proof carrying a nonce older than half of it is still accepted, and
// Proof.NextNonce offers a fresh one.
const NonceLifetime = 5 * time.Minute

// A nonce is base64url(version || issued-at unix milliseconds (8 bytes,
// big endian) || HMAC-SHA-256(key, label || version || issued-at)[:16]).
// It carries no secret, only the time, sealed so that no one but a node
// holding the key can mint one; every node holding the key accepts it.
const (
	nonceVersion = 1
	nonceMACLen  = 16
	nonceLen     = 1 + 8 + nonceMACLen
	nonceLabel   = "keygate dpop nonce"
)

type nonceSealer struct {
	pool sync.Pool // of hash.Hash, HMAC under the nonce key
}

func newNonceSealer(key []byte) *nonceSealer {
	k := append([]byte(nil), key...)
	return &nonceSealer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (s *nonceSealer) mac(dst []byte, msg []byte) {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(nonceLabel))
	h.Write(msg)
	var sum [sha256.Size]byte
	copy(dst, h.Sum(sum[:0]))
	s.pool.Put(h)
}

func (s *nonceSealer) seal(at time.Time) string {
	var b [nonceLen]byte
	b[0] = nonceVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(at.UnixMilli()))
	s.mac(b[9:], b[:9])
	return b64.EncodeToString(b[:])
}

// open returns the issue time of nonce, or false when no holder of the key
// made it.
func (s *nonceSealer) open(nonce string) (time.Time, bool) {
	var b [nonceLen]byte
	if len(nonce) != b64.EncodedLen(nonceLen) || !decodeExact(b[:], nonce) || b[0] != nonceVersion {
		return time.Time{}, false
	}
	var want [nonceMACLen]byte
	s.mac(want[:], b[:9])
	if subtle.ConstantTimeCompare(want[:], b[9:]) != 1 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[1:9]))), true
}
