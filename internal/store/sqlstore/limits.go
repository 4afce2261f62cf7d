package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// TakeRate is GCRA in one upsert. With L = Now + Tolerance - Interval, the
// latest stored TAT that still admits a request, a request is admitted iff
// the stored TAT is at most L, and then the TAT becomes
// max(TAT, Now) + Interval. Every SET expression reads the old row, and
// ok remembers the decision so RETURNING can report it. On PostgreSQL
// ON CONFLICT DO UPDATE locks the row, so racing nodes serialise on it; on
// SQLite there is a single writer. A missing row is a fresh bucket: always
// admitted (Tolerance ≥ Interval).
func (s *Store) TakeRate(ctx context.Context, t store.RateTake) (store.RateResult, error) {
	latest := t.Now + t.Tolerance - t.Interval
	var r store.RateResult
	var ok int
	err := s.queryRow(ctx, `INSERT INTO rate_limits (name, key, tat, ok) VALUES (?, ?, ?, 1)
		ON CONFLICT (name, key) DO UPDATE SET
			tat = CASE WHEN rate_limits.tat > ? THEN rate_limits.tat
			           WHEN rate_limits.tat > ? THEN rate_limits.tat + ?
			           ELSE ? END,
			ok = CASE WHEN rate_limits.tat > ? THEN 0 ELSE 1 END
		RETURNING tat, ok`,
		t.Name, t.Key, t.Now+t.Interval,
		latest, t.Now, t.Interval, t.Now+t.Interval,
		latest).Scan(&r.TAT, &ok)
	if err != nil {
		return store.RateResult{}, s.wrap("take rate", err)
	}
	r.Allowed = ok == 1
	return r, nil
}

func (s *Store) RefundRate(ctx context.Context, name, key string, interval int64) error {
	_, err := s.exec(ctx, `UPDATE rate_limits SET tat = tat - ? WHERE name = ? AND key = ?`, interval, name, key)
	return s.wrap("refund rate", err)
}

func (s *Store) PruneRateLimits(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM rate_limits WHERE tat < ?`, before.UnixMicro())
	if err != nil {
		return 0, s.wrap("prune rate limits", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// TakeQuota is one upsert that counts only while under max: when the
// conditional DO UPDATE does not apply, no row is returned.
func (s *Store) TakeQuota(ctx context.Context, name, key string, windowStart, windowEnd time.Time, max int64) (bool, int64, error) {
	var n int64
	err := s.queryRow(ctx, `INSERT INTO quotas (name, key, window_start, window_end, count) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (name, key, window_start) DO UPDATE SET count = quotas.count + 1 WHERE quotas.count < ?
		RETURNING count`, name, key, ms(windowStart), ms(windowEnd), max).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, max, nil
	case err != nil:
		return false, 0, s.wrap("take quota", err)
	}
	return true, n, nil
}

func (s *Store) RefundQuota(ctx context.Context, name, key string, windowStart time.Time) error {
	_, err := s.exec(ctx, `UPDATE quotas SET count = count - 1
		WHERE name = ? AND key = ? AND window_start = ? AND count > 0`, name, key, ms(windowStart))
	return s.wrap("refund quota", err)
}

func (s *Store) QuotaUsage(ctx context.Context, key string, now time.Time) ([]store.QuotaUsage, error) {
	rows, err := s.query(ctx, `SELECT name, key, window_start, window_end, count FROM quotas
		WHERE key = ? AND window_end > ? ORDER BY name, window_start`, key, ms(now))
	if err != nil {
		return nil, s.wrap("quota usage", err)
	}
	defer rows.Close()
	var out []store.QuotaUsage
	for rows.Next() {
		var q store.QuotaUsage
		var ws, we int64
		if err := rows.Scan(&q.Name, &q.Key, &ws, &we, &q.Count); err != nil {
			return nil, s.wrap("quota usage", err)
		}
		q.WindowStart, q.WindowEnd = fromMS(ws), fromMS(we)
		out = append(out, q)
	}
	return out, s.wrap("quota usage", rows.Err())
}

func (s *Store) ResetQuota(ctx context.Context, name, key string) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM quotas WHERE name = ? AND key = ?`, name, key)
	if err != nil {
		return 0, s.wrap("reset quota", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) PruneQuotas(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM quotas WHERE window_end < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune quotas", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PutBlock upserts; an existing block is replaced only by one that ends
// later, so racing nodes that both saw a rule fire keep the longer block.
func (s *Store) PutBlock(ctx context.Context, b store.Block) error {
	_, err := s.exec(ctx, `INSERT INTO blocks (key_kind, key, rule, until, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_kind, key) DO UPDATE SET until = excluded.until, rule = excluded.rule, created_at = excluded.created_at
		WHERE excluded.until > blocks.until`, b.KeyKind, b.Key, b.Rule, ms(b.Until), ms(b.CreatedAt))
	return s.wrap("put block", err)
}

func (s *Store) ActiveBlocks(ctx context.Context, now time.Time) ([]store.Block, error) {
	rows, err := s.query(ctx, `SELECT key_kind, key, rule, until, created_at FROM blocks
		WHERE until > ? ORDER BY key_kind, key`, ms(now))
	if err != nil {
		return nil, s.wrap("active blocks", err)
	}
	defer rows.Close()
	var out []store.Block
	for rows.Next() {
		var b store.Block
		var until, created int64
		if err := rows.Scan(&b.KeyKind, &b.Key, &b.Rule, &until, &created); err != nil {
			return nil, s.wrap("active blocks", err)
		}
		b.Until, b.CreatedAt = fromMS(until), fromMS(created)
		out = append(out, b)
	}
	return out, s.wrap("active blocks", rows.Err())
}

func (s *Store) DeleteBlocks(ctx context.Context, key string) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM blocks WHERE key = ?`, key)
	if err != nil {
		return 0, s.wrap("delete blocks", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) PruneBlocks(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM blocks WHERE until < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune blocks", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
