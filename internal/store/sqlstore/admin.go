package sqlstore

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/internal/store"
)

func (s *Store) CreateAdminToken(ctx context.Context, t store.AdminToken) error {
	_, err := s.exec(ctx, `INSERT INTO admin_tokens (name, token_hash, created_at) VALUES (?, ?, ?)`, t.Name, t.Hash, ms(t.CreatedAt))
	return s.wrap("create admin token", err)
}

func (s *Store) AdminTokenByHash(ctx context.Context, hash []byte) (store.AdminToken, error) {
	var t store.AdminToken
	var created int64
	err := s.queryRow(ctx, `SELECT name, token_hash, created_at FROM admin_tokens WHERE token_hash = ?`, hash).Scan(&t.Name, &t.Hash, &created)
	t.CreatedAt = fromMS(created)
	return t, s.wrap("admin token", err)
}

func (s *Store) DeleteAdminToken(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `DELETE FROM admin_tokens WHERE name = ?`, name)
	if err != nil {
		return s.wrap("delete admin token", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete admin token: %w", store.ErrNotFound)
	}
	return nil
}

func (s *Store) ListAdminTokens(ctx context.Context) ([]store.AdminToken, error) {
	rows, err := s.query(ctx, `SELECT name, created_at FROM admin_tokens ORDER BY name`)
	if err != nil {
		return nil, s.wrap("list admin tokens", err)
	}
	defer rows.Close()
	var out []store.AdminToken
	for rows.Next() {
		var t store.AdminToken
		var created int64
		if err := rows.Scan(&t.Name, &created); err != nil {
			return nil, s.wrap("list admin tokens", err)
		}
		t.CreatedAt = fromMS(created)
		out = append(out, t)
	}
	return out, s.wrap("list admin tokens", rows.Err())
}
