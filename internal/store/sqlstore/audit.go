package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/store"
)

const auditColumns = `time, request_id, kind, subject, client_id, upstream, route, status, latency_us, bytes_in, bytes_out, detail`

// auditChunks are the row counts of one multi-row INSERT. Batches are cut
// into these sizes so only a handful of distinct statement texts exist
// (the placeholder rewrite cache and the drivers' statement caches stay
// small); 256 rows × 12 columns is well under both backends' parameter
// limits.
var auditChunks = [...]int{256, 32, 4, 1}

var auditInsert sync.Map // rows → statement text

func auditInsertSQL(rows int) string {
	if v, ok := auditInsert.Load(rows); ok {
		return v.(string)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO audit_log (" + auditColumns + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	q := b.String()
	auditInsert.Store(rows, q)
	return q
}

// InsertAudit writes recs in one transaction (or the caller's). Full
// chunks, the bulk of a busy writer's batches, use a prepared statement: a
// 256-row INSERT with 3072 placeholders is costly to parse every time.
func (s *Store) InsertAudit(ctx context.Context, recs []store.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if s.inTx {
		return s.insertAudit(ctx, s.q, recs)
	}
	return s.withSQLTx(ctx, func(tx *sql.Tx) error { return s.insertAudit(ctx, tx, recs) })
}

func (s *Store) insertAudit(ctx context.Context, q querier, recs []store.AuditRecord) error {
	tx, _ := q.(*sql.Tx)
	args := make([]any, 0, 12*min(len(recs), auditChunks[0]))
	for rest := recs; len(rest) > 0; {
		n := 1
		for _, c := range auditChunks {
			if c <= len(rest) {
				n = c
				break
			}
		}
		args = args[:0]
		for _, r := range rest[:n] {
			args = append(args, ms(r.Time), r.RequestID, r.Kind, r.Subject, r.ClientID, r.Upstream, r.Route,
				r.Status, r.LatencyUS, r.BytesIn, r.BytesOut, r.Detail)
		}
		var err error
		if n == auditChunks[0] && tx != nil {
			var st *sql.Stmt
			if st, err = s.prepared(ctx, auditInsertSQL(n)); err == nil {
				_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			}
		} else {
			_, err = q.ExecContext(ctx, s.sql(auditInsertSQL(n)), args...)
		}
		if err != nil {
			return s.wrap("insert audit", err)
		}
		rest = rest[n:]
	}
	return nil
}

func (s *Store) AuditSince(ctx context.Context, since time.Time, limit int) ([]store.AuditRecord, error) {
	return s.auditQuery(ctx, "audit since", `SELECT id, `+auditColumns+` FROM audit_log
		WHERE time >= ? ORDER BY id LIMIT ?`, ms(since), limit)
}

func (s *Store) AuditAfter(ctx context.Context, afterID int64, limit int) ([]store.AuditRecord, error) {
	return s.auditQuery(ctx, "audit after", `SELECT id, `+auditColumns+` FROM audit_log
		WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
}

func (s *Store) LastAuditID(ctx context.Context) (int64, error) {
	var id int64
	err := s.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM audit_log`).Scan(&id)
	return id, s.wrap("last audit id", err)
}

func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM audit_log WHERE time < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune audit", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) auditQuery(ctx context.Context, op, query string, args ...any) ([]store.AuditRecord, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var t int64
		if err := rows.Scan(&r.ID, &t, &r.RequestID, &r.Kind, &r.Subject, &r.ClientID, &r.Upstream, &r.Route,
			&r.Status, &r.LatencyUS, &r.BytesIn, &r.BytesOut, &r.Detail); err != nil {
			return nil, s.wrap(op, err)
		}
		r.Time = fromMS(t)
		out = append(out, r)
	}
	return out, s.wrap(op, rows.Err())
}
