package store

import (
	"context"
	"time"
)

// SigningKey is a signing key's metadata. The private key itself is a vault
// secret named by VaultName, so it is encrypted at rest like any secret.
type SigningKey struct {
	KID       string
	Alg       string // ES256 | EdDSA
	State     string // SigningKeyNext | SigningKeyCurrent | SigningKeyRetired
	VaultName string
	PublicJWK []byte // public JWK JSON, served in JWKS
	CreatedAt time.Time
	// ActivatedAt is when it became current; RetiredAt when it stopped
	// signing. A retired key is published until RetiredAt + access TTL + 5m.
	ActivatedAt time.Time
	RetiredAt   time.Time
}

// Signing key states.
const (
	SigningKeyNext    = "next"
	SigningKeyCurrent = "current"
	SigningKeyRetired = "retired"
)

// SigningKeyStore keeps signing key metadata (the private keys live in the
// vault). The schema allows at most one key in state current and one in
// state next (a unique partial index), so racing nodes cannot both create
// or promote one: the loser gets ErrConflict or ErrNotFound and retries
// from what the winner wrote.
type SigningKeyStore interface {
	// InsertSigningKey adds k. A duplicate kid, or a second key in state
	// current or next, is ErrConflict.
	InsertSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns every key, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// TransitionSigningKey moves key kid from state from to state to, as one
	// conditional statement. Entering current sets ActivatedAt to at;
	// entering retired sets RetiredAt to at. A key that does not exist or is
	// not in state from is ErrNotFound, so of two racing transitions exactly
	// one succeeds.
	TransitionSigningKey(ctx context.Context, kid, from, to string, at time.Time) error
	// DeleteSigningKey removes a retired key; anything else is ErrNotFound.
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Revocation kinds: what Value names.
const (
	RevokeJTI     = "jti"     // one access token, by jti
	RevokeSubject = "subject" // every token of a subject issued before IssuedBefore
	RevokeClient  = "client"  // every token of a client issued before IssuedBefore
	RevokeFamily  = "family"  // every token of a refresh family (sid)
)

// Revocation is one entry of the append-only revocation log that every
// node replays, so access-token revocation is effective on all nodes.
type Revocation struct {
	ID           int64 // assigned by the store, increasing
	Kind         string
	Value        string
	IssuedBefore time.Time // tokens with iat at or before this are revoked
	ExpiresAt    time.Time // after this no token it covers can be alive; prunable
	CreatedAt    time.Time
}

// RevocationStore is the append-only revocation log.
type RevocationStore interface {
	// AddRevocation appends r and returns its id.
	AddRevocation(ctx context.Context, r Revocation) (int64, error)
	// RevocationsSince returns entries with ID > after, in ID order, that
	// have not expired at now.
	RevocationsSince(ctx context.Context, after int64, now time.Time) ([]Revocation, error)
	// PruneRevocations deletes entries that expired before t.
	PruneRevocations(ctx context.Context, before time.Time) (int, error)
}
