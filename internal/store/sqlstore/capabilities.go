package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/store"
)

const capabilityCols = `id, hash, client_id, subject, scope, upstream, max_uses, uses, dpop_jkt, created_at, expires_at, revoked_at`

func scanCapability(sc interface{ Scan(...any) error }) (store.Capability, error) {
	var c store.Capability
	var created, expires, revoked int64
	err := sc.Scan(&c.ID, &c.Hash, &c.ClientID, &c.Subject, &c.Scope, &c.Upstream, &c.MaxUses, &c.Uses,
		&c.DPoPJKT, &created, &expires, &revoked)
	c.CreatedAt, c.ExpiresAt, c.RevokedAt = fromMS(created), fromMS(expires), fromMS(revoked)
	return c, err
}

func (s *Store) CreateCapability(ctx context.Context, c store.Capability) error {
	if c.ID == "" || len(c.Hash) == 0 {
		return errors.New("create capability: empty id or hash")
	}
	_, err := s.exec(ctx, `INSERT INTO capabilities (`+capabilityCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Hash, c.ClientID, c.Subject, c.Scope, c.Upstream, c.MaxUses, c.Uses, c.DPoPJKT,
		ms(c.CreatedAt), ms(c.ExpiresAt), ms(c.RevokedAt))
	return s.wrap("create capability", err)
}

func (s *Store) CapabilityByHash(ctx context.Context, hash []byte) (store.Capability, error) {
	c, err := scanCapability(s.queryRow(ctx, `SELECT `+capabilityCols+` FROM capabilities WHERE hash = ?`, hash))
	return c, s.wrap("capability", err)
}

// ConsumeCapability is one conditional UPDATE ... RETURNING (SQLite 3.35+,
// PostgreSQL). On PostgreSQL a racing UPDATE of the same row waits for the
// first to commit and re-evaluates the WHERE clause against the new row
// (READ COMMITTED), so the last use goes to exactly one caller; on SQLite
// writers are serialised. No read-modify-write happens in Go.
func (s *Store) ConsumeCapability(ctx context.Context, id string, now time.Time) (int64, error) {
	var uses int64
	err := s.queryRow(ctx, `UPDATE capabilities SET uses = uses + 1
		WHERE id = ? AND uses < max_uses AND revoked_at = 0 AND expires_at > ?
		RETURNING uses`, id, ms(now)).Scan(&uses)
	return uses, s.wrap("consume capability", err)
}

func (s *Store) RevokeCapability(ctx context.Context, id string, at time.Time) (bool, error) {
	if at.IsZero() {
		return false, errors.New("revoke capability: zero time")
	}
	res, err := s.exec(ctx, `UPDATE capabilities SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ms(at), id)
	if err != nil {
		return false, s.wrap("revoke capability", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("revoke capability", err)
	}
	return n == 1, nil
}

func (s *Store) RevokeCapabilities(ctx context.Context, f store.CapabilityFilter, at time.Time) (int, error) {
	if f.Subject == "" && f.ClientID == "" {
		return 0, errors.New("revoke capabilities: empty filter")
	}
	if at.IsZero() {
		return 0, errors.New("revoke capabilities: zero time")
	}
	// An empty filter field matches every row: ? = '' short-circuits it.
	res, err := s.exec(ctx, `UPDATE capabilities SET revoked_at = ?
		WHERE revoked_at = 0 AND (CAST(? AS TEXT) = '' OR subject = ?) AND (CAST(? AS TEXT) = '' OR client_id = ?)`,
		ms(at), f.Subject, f.Subject, f.ClientID, f.ClientID)
	if err != nil {
		return 0, s.wrap("revoke capabilities", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("revoke capabilities", err)
	}
	return int(n), nil
}

func (s *Store) PruneCapabilities(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM capabilities WHERE expires_at < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune capabilities", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune capabilities: %w", err)
	}
	return int(n), nil
}
