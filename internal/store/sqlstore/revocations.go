package sqlstore

import (
	"context"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func (s *Store) AddRevocation(ctx context.Context, r store.Revocation) (int64, error) {
	var id int64
	err := s.queryRow(ctx, `INSERT INTO revocations (kind, value, issued_before, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`, r.Kind, r.Value, ms(r.IssuedBefore), ms(r.ExpiresAt), ms(r.CreatedAt)).Scan(&id)
	return id, s.wrap("add revocation", err)
}

func (s *Store) RevocationsSince(ctx context.Context, after int64, now time.Time) ([]store.Revocation, error) {
	rows, err := s.query(ctx, `SELECT id, kind, value, issued_before, expires_at, created_at FROM revocations
		WHERE id > ? AND expires_at > ? ORDER BY id`, after, ms(now))
	if err != nil {
		return nil, s.wrap("revocations since", err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		var ib, ex, cr int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Value, &ib, &ex, &cr); err != nil {
			return nil, s.wrap("revocations since", err)
		}
		r.IssuedBefore, r.ExpiresAt, r.CreatedAt = fromMS(ib), fromMS(ex), fromMS(cr)
		out = append(out, r)
	}
	return out, s.wrap("revocations since", rows.Err())
}

func (s *Store) PruneRevocations(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM revocations WHERE expires_at < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune revocations", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
