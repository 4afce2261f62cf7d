// Package audit records what keygate did: one record per proxied request
// and one per security event (token issued, refreshed, reused, revoked;
// caller blocked), in the audit_log table, plus the Prometheus metrics.
//
// Two paths write records, because they need different guarantees:
//
//   - Per-request records go through a Writer: Log is non-blocking (a
//     bounded buffer), and Run drains it in batches, each one multi-row
//     INSERT transaction. When the database cannot keep up and the buffer
//     is full, records are dropped rather than slowing requests; drops are
//     counted (keygate_audit_dropped_total) and logged at most once per 10
//     seconds. Cancelling Run flushes what is buffered (bounded by
//     Config.ShutdownTimeout), so a clean shutdown — stop serving, then
//     stop the writer — loses nothing.
//   - Security events are written with Append inside the caller's own
//     transaction (store.WithTx), so a token change and its audit record
//     commit or roll back together.
//
// Records never carry tokens or secrets: callers must not put them in any
// field, and as a guard Detail is passed through Redact, which replaces
// anything that starts like a keygate token (kgr_, kgc_, kgs_, kga_) with
// "[redacted]".
//
// Reading: Tail for `keygate audit tail` and the admin API, Follow for
// `tail -f` (polls by id), Prune and RunRetention for audit.retention.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// Record is one audit log entry.
type Record = store.AuditRecord

// Store is the part of the database the package needs.
type Store = store.AuditStore

// Record kinds.
const (
	KindRequest      = store.AuditRequest
	KindTokenIssue   = store.AuditTokenIssue
	KindTokenRefresh = store.AuditTokenRefresh
	KindTokenReuse   = store.AuditTokenReuse
	KindTokenRevoke  = store.AuditTokenRevoke
	KindBlock        = store.AuditBlock
	KindUnblock      = store.AuditUnblock

	KindCapabilityMint = store.AuditCapabilityMint
)

// Append writes r synchronously through tx, normally the transaction that
// makes the change r records, so both commit or neither does. A zero Time
// is set to now.
func Append(ctx context.Context, tx Store, r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Detail = Redact(r.Detail)
	if err := tx.InsertAudit(ctx, []Record{r}); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// tokenPrefixes are the prefixes of keygate's opaque tokens and secrets.
var tokenPrefixes = [...]string{"kgr_", "kgc_", "kgs_", "kga_"}

// Redact replaces every substring that starts with a keygate token prefix
// (kgr_, kgc_, kgs_, kga_), through the base64url characters that follow
// it, with "[redacted]". It allocates only when it finds one.
func Redact(s string) string {
	i := indexToken(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		b.WriteString("[redacted]")
		j := i + 4
		for j < len(s) && isBase64URL(s[j]) {
			j++
		}
		s = s[j:]
		i = indexToken(s)
	}
	b.WriteString(s)
	return b.String()
}

func indexToken(s string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], "kg")
		if i < 0 {
			return -1
		}
		i += off
		if len(s)-i >= 4 && s[i+3] == '_' {
			for _, p := range tokenPrefixes {
				if s[i+2] == p[2] {
					return i
				}
			}
		}
		off = i + 1
	}
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Tail returns up to limit records at or after since, oldest first.
func Tail(ctx context.Context, st Store, since time.Time, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	recs, err := st.AuditSince(ctx, since, limit)
	if err != nil {
		return nil, fmt.Errorf("tail audit log: %w", err)
	}
	return recs, nil
}

// followPage is how many records Follow reads per query.
const followPage = 500

// Follow calls fn for every record with an ID above afterID, in ID order,
// polling every interval for new ones until ctx is done or fn fails.
// Start from LastAuditID to see only new records. On PostgreSQL ids are
// taken at insert and become visible at commit, so a record whose
// transaction commits after a later id was already read is skipped: fine
// for watching, not for exporting (use Tail by time for that).
func Follow(ctx context.Context, st Store, afterID int64, interval time.Duration, fn func(Record) error) error {
	for {
		recs, err := st.AuditAfter(ctx, afterID, followPage)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow audit log: %w", err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
			afterID = r.ID
		}
		if len(recs) == followPage {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Prune deletes records older than before.
func Prune(ctx context.Context, st Store, before time.Time) (int, error) {
	n, err := st.PruneAudit(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", err)
	}
	return n, nil
}

// RetentionInterval is how often RunRetention prunes.
const RetentionInterval = time.Hour

// RunRetention prunes records older than retention now and then hourly,
// until ctx is done. Failures are logged and retried at the next tick.
func RunRetention(ctx context.Context, st Store, retention time.Duration, now func() time.Time, logger *slog.Logger) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(RetentionInterval)
	defer t.Stop()
	for {
		n, err := Prune(ctx, st, now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.WarnContext(ctx, "audit retention failed", "err", err)
		case n > 0:
			logger.InfoContext(ctx, "audit retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
