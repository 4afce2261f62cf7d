package store

import (
	"context"
	"time"
)

// RefreshFamily is one grant: the chain of refresh tokens that descend,
// by rotation, from one token exchange. Revoking the family ends every
// token of the chain and (through the revocation log, kind RevokeFamily)
// every access token minted from it, which carry sid = ID.
type RefreshFamily struct {
	ID        string
	ClientID  string
	Subject   string
	Scope     string // space-separated scope originally granted
	DPoPJKT   string // key thumbprint the family is bound to, "" when unbound
	ACR       string
	AuthTime  int64 // Unix seconds, 0 when unknown
	CreatedAt time.Time
	// ExpiresAt is the absolute end of the family: no rotation extends it.
	ExpiresAt    time.Time
	RevokedAt    time.Time // zero while not revoked
	RevokeReason string
}

// RefreshToken is one refresh token of a family, known only by the
// SHA-256 hash of its value.
type RefreshToken struct {
	Hash          []byte
	FamilyID      string
	CreatedAt     time.Time
	IdleExpiresAt time.Time
	// RotatedAt is when the token was exchanged for SuccessorHash; zero
	// while the token is the live member of its family.
	RotatedAt     time.Time
	SuccessorHash []byte
}

// FamilyFilter selects refresh families for bulk revocation. Empty fields
// do not restrict; a filter with no field set is refused.
type FamilyFilter struct {
	Subject  string
	ClientID string
}

// RefreshStore keeps refresh token families.
type RefreshStore interface {
	// CreateFamily stores a new family; an existing id is ErrConflict.
	CreateFamily(ctx context.Context, f RefreshFamily) error
	// Family returns one family, or ErrNotFound.
	Family(ctx context.Context, id string) (RefreshFamily, error)
	// ListFamilies returns the families of subject, oldest first.
	ListFamilies(ctx context.Context, subject string) ([]RefreshFamily, error)
	// InsertRefreshToken stores a token; an existing hash is ErrConflict.
	InsertRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByHash returns the token with hash, or ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// FamilyTokens returns every stored token of a family, oldest first.
	FamilyTokens(ctx context.Context, familyID string) ([]RefreshToken, error)
	// RotateRefreshToken marks the token hash as rotated to successor at
	// time at, in one conditional statement that changes only a token that
	// is still live and whose family is not revoked. It reports whether it
	// changed the row: of any number of racing callers, at most one sees
	// true.
	RotateRefreshToken(ctx context.Context, hash, successor []byte, at time.Time) (bool, error)
	// RevokeFamily marks a family revoked at time at with reason. It
	// reports false when the family does not exist or was already revoked.
	RevokeFamily(ctx context.Context, id string, at time.Time, reason string) (bool, error)
	// RevokeFamilies revokes every unrevoked family matching f and returns
	// their ids.
	RevokeFamilies(ctx context.Context, f FamilyFilter, at time.Time, reason string) ([]string, error)
	// PruneRefresh deletes families (and their tokens) that expired before t.
	PruneRefresh(ctx context.Context, before time.Time) (int, error)
}

// ReplayStore remembers one-time identifiers (jti, nonces) until they expire.
type ReplayStore interface {
	// Remember records id in namespace until expiresAt, in one statement.
	// It reports fresh = true when id was not known there (or only as an
	// expired entry, judged by the wall clock), and false when it is a
	// replay. Of racing callers with one id, exactly one sees fresh.
	Remember(ctx context.Context, namespace, id string, expiresAt time.Time) (fresh bool, err error)
	// PruneReplay deletes entries that expired before t.
	PruneReplay(ctx context.Context, before time.Time) (int, error)
}
