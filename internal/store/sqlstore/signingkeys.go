package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func (s *Store) InsertSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.exec(ctx, `INSERT INTO signing_keys (kid, alg, state, vault_name, public_jwk, created_at, activated_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.KID, k.Alg, k.State, k.VaultName, k.PublicJWK,
		ms(k.CreatedAt), ms(k.ActivatedAt), ms(k.RetiredAt))
	return s.wrap("insert signing key", err)
}

func (s *Store) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT kid, alg, state, vault_name, public_jwk, created_at, activated_at, retired_at
		FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, s.wrap("signing keys", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created, activated, retired int64
		if err := rows.Scan(&k.KID, &k.Alg, &k.State, &k.VaultName, &k.PublicJWK, &created, &activated, &retired); err != nil {
			return nil, s.wrap("signing keys", err)
		}
		k.CreatedAt, k.ActivatedAt, k.RetiredAt = fromMS(created), fromMS(activated), fromMS(retired)
		out = append(out, k)
	}
	return out, s.wrap("signing keys", rows.Err())
}

// TransitionSigningKey is one UPDATE conditional on the current state. On
// PostgreSQL a racing transaction blocks on the row lock and then re-checks
// the WHERE clause against the committed row, so it matches nothing.
func (s *Store) TransitionSigningKey(ctx context.Context, kid, from, to string, at time.Time) error {
	var query string
	switch to {
	case store.SigningKeyCurrent:
		query = `UPDATE signing_keys SET state = ?, activated_at = ? WHERE kid = ? AND state = ?`
	case store.SigningKeyRetired:
		query = `UPDATE signing_keys SET state = ?, retired_at = ? WHERE kid = ? AND state = ?`
	default:
		return fmt.Errorf("transition signing key: cannot enter state %q", to)
	}
	res, err := s.exec(ctx, query, to, ms(at), kid, from)
	if err != nil {
		return s.wrap("transition signing key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("transition signing key", err)
	}
	if n == 0 {
		return fmt.Errorf("transition signing key from %s: %w", from, store.ErrNotFound)
	}
	return nil
}

func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	res, err := s.exec(ctx, `DELETE FROM signing_keys WHERE kid = ? AND state = ?`, kid, store.SigningKeyRetired)
	if err != nil {
		return s.wrap("delete signing key", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete signing key: %w", store.ErrNotFound)
	}
	return nil
}
