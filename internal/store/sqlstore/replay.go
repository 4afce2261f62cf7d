package sqlstore

import (
	"context"
	"time"
)

// Remember is a single upsert on both backends. A new id inserts a row; a
// known id whose entry has expired is taken over (the DO UPDATE's WHERE
// holds); a live known id changes nothing. The affected-row count tells
// which: 1 = fresh, 0 = replay. PostgreSQL serialises racing inserts of
// one key on the unique index, SQLite on its write lock.
//
// Expiry of an existing entry is judged by the wall clock: the interface
// takes no "now", and an entry must never be reusable early because a
// caller's clock was behind.
func (s *Store) Remember(ctx context.Context, namespace, id string, expiresAt time.Time) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO replay (ns, id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (ns, id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE replay.expires_at <= ?`, namespace, id, ms(expiresAt), ms(time.Now()))
	if err != nil {
		return false, s.wrap("remember replay id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("remember replay id", err)
	}
	return n == 1, nil
}

func (s *Store) PruneReplay(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM replay WHERE expires_at < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune replay", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
