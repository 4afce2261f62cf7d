package store

import (
	"context"
	"time"
)

// Capability is a limited-use capability token (kgc_), known only by the
// SHA-256 hash of its value. Everything but Uses and RevokedAt is fixed
// when it is minted.
type Capability struct {
	ID       string
	Hash     []byte
	ClientID string // the confidential client that minted it
	Subject  string // whose limits it counts against, e.g. google|1234
	Scope    string // space-separated
	Upstream string // the one upstream it may call, "" for any
	MaxUses  int64
	Uses     int64
	DPoPJKT  string // key thumbprint it is bound to, "" when unbound
	// CreatedAt and ExpiresAt bound its life; RevokedAt is zero while it
	// is not revoked.
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
}

// CapabilityFilter selects capabilities for bulk revocation. Empty fields
// do not restrict; a filter with no field set is refused.
type CapabilityFilter struct {
	Subject  string
	ClientID string
}

// CapabilityStore keeps capability tokens and counts their uses.
type CapabilityStore interface {
	// CreateCapability stores c with Uses as given (normally 0); an
	// existing id or hash is ErrConflict.
	CreateCapability(ctx context.Context, c Capability) error
	// CapabilityByHash returns the capability with hash, or ErrNotFound.
	CapabilityByHash(ctx context.Context, hash []byte) (Capability, error)
	// ConsumeCapability spends one use of capability id at time now and
	// returns the number of uses spent so far, including this one. It is
	// one conditional statement that changes only a capability that is not
	// revoked, not expired at now and has a use left, so of any number of
	// racing callers exactly MaxUses - Uses succeed. A capability that
	// cannot be used (or does not exist) is ErrNotFound.
	ConsumeCapability(ctx context.Context, id string, now time.Time) (int64, error)
	// RevokeCapability marks capability id revoked at time at. It reports
	// false when it does not exist or was already revoked.
	RevokeCapability(ctx context.Context, id string, at time.Time) (bool, error)
	// RevokeCapabilities revokes every unrevoked capability matching f and
	// returns how many.
	RevokeCapabilities(ctx context.Context, f CapabilityFilter, at time.Time) (int, error)
	// PruneCapabilities deletes capabilities that expired before t.
	PruneCapabilities(ctx context.Context, before time.Time) (int, error)
}
