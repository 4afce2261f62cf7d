package store

import (
	"context"
	"time"
)

// AdminToken is an admin API token: only its SHA-256 hash is stored.
type AdminToken struct {
	Name      string
	Hash      []byte
	CreatedAt time.Time
}

// AdminTokenStore keeps admin API tokens.
type AdminTokenStore interface {
	// CreateAdminToken stores a token; an existing name is ErrConflict.
	CreateAdminToken(ctx context.Context, t AdminToken) error
	// AdminTokenByHash finds a token by hash, or ErrNotFound.
	AdminTokenByHash(ctx context.Context, hash []byte) (AdminToken, error)
	// DeleteAdminToken removes a token by name; absent is ErrNotFound.
	DeleteAdminToken(ctx context.Context, name string) error
	// ListAdminTokens lists names and creation times.
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
}
