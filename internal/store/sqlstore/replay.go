package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"
)

// rememberSQL is a single upsert on both backends. A new id inserts a row;
// a known id whose entry has expired is taken over (the DO UPDATE's WHERE
// holds); a live known id changes nothing. The affected-row count tells
// which: 1 = fresh, 0 = replay. PostgreSQL serialises racing inserts of
// one key on the unique index, SQLite on its write lock.
//
// Expiry of an existing entry is judged by the wall clock: the interface
// takes no "now", and an entry must never be reusable early because a
// caller's clock was behind.
const rememberSQL = `INSERT INTO replay (ns, id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (ns, id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE replay.expires_at <= ?`

// Remember runs rememberSQL: directly inside a transaction and on
// PostgreSQL, through the group committer where the dialect has a single
// writer (SQLite).
func (s *Store) Remember(ctx context.Context, namespace, id string, expiresAt time.Time) (bool, error) {
	if s.inTx || s.replay == nil {
		return s.rememberOne(ctx, namespace, id, expiresAt)
	}
	return s.replay.remember(ctx, s, &replayReq{ns: namespace, id: id, exp: ms(expiresAt)})
}

func (s *Store) rememberOne(ctx context.Context, namespace, id string, expiresAt time.Time) (bool, error) {
	res, err := s.exec(ctx, rememberSQL, namespace, id, ms(expiresAt), ms(time.Now()))
	if err != nil {
		return false, s.wrap("remember replay id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("remember replay id", err)
	}
	return n == 1, nil
}

// replayGroup is group commit for Remember on SQLite. Every DPoP proof,
// signed request and client assertion is one Remember, and on SQLite each
// is a write transaction serialised on the database's single write lock:
// under load, callers queue on that lock and each pays a whole commit (WAL
// append, lock hand-over, a fresh parse of the statement). Here concurrent
// callers are coalesced instead: the first becomes the leader and runs the
// upserts of everyone queued so far, in arrival order, in one BEGIN
// IMMEDIATE transaction with one prepared statement, reading each row's
// affected count; the others wait and get their own answer. While a batch
// runs, new callers queue; when it is done, the leader promotes the first
// of them to lead the next batch, so no caller runs more than one batch.
//
// Exactness is that of the single statement: within the transaction the
// upserts run one after the other, so of two with one id in a batch only
// the first inserts, and across batches SQLite's write lock orders them.
// A batch that fails fails every caller in it (an error means "could not
// check", never "fresh"). A lone caller runs its upsert alone, in
// autocommit, as before.
//
// PostgreSQL keeps one statement per call: it has no single write lock,
// so callers do not queue on one, and batching would only add latency.
type replayGroup struct {
	mu      sync.Mutex
	queue   []*replayReq
	leading bool // a leader is running a batch
}

type replayReq struct {
	ns, id string
	exp    int64
	fresh  bool
	err    error
	lead   bool          // promoted: run the next batch
	done   chan struct{} // closed when answered or promoted
}

func (g *replayGroup) remember(ctx context.Context, s *Store, r *replayReq) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, s.wrap("remember replay id", err)
	}
	r.done = make(chan struct{})
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			// Leave the queue if no batch has taken r yet; otherwise
			// its answer (or its turn to lead) is on the way.
			g.mu.Lock()
			if i := slices.Index(g.queue, r); i >= 0 && !r.lead {
				g.queue = slices.Delete(g.queue, i, i+1)
				g.mu.Unlock()
				return false, s.wrap("remember replay id", ctx.Err())
			}
			g.mu.Unlock()
			<-r.done
		}
		if !r.lead {
			return r.fresh, r.err
		}
		g.mu.Lock()
	} else {
		g.leading = true
	}
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	// The batch answers other callers too, so one caller's cancellation
	// must not fail it.
	g.run(context.WithoutCancel(ctx), s, batch)
	for _, o := range batch {
		if o != r {
			close(o.done)
		}
	}

	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		close(next.done)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return r.fresh, r.err
}

// run answers every request of batch.
func (g *replayGroup) run(ctx context.Context, s *Store, batch []*replayReq) {
	fresh := make([]bool, len(batch))
	stmt, err := s.prepared(ctx, rememberSQL)
	switch {
	case err != nil:
	case len(batch) == 1:
		// Alone: one statement in autocommit, no BEGIN and COMMIT.
		var res sql.Result
		if res, err = stmt.ExecContext(ctx, batch[0].ns, batch[0].id, batch[0].exp, ms(time.Now())); err == nil {
			var n int64
			n, err = res.RowsAffected()
			fresh[0] = n == 1
		}
	default:
		err = s.withSQLTx(ctx, func(tx *sql.Tx) error {
			stmt := tx.StmtContext(ctx, stmt)
			defer stmt.Close()
			now := ms(time.Now())
			for i, r := range batch {
				res, err := stmt.ExecContext(ctx, r.ns, r.id, r.exp, now)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				fresh[i] = n == 1
			}
			return nil
		})
	}
	err = s.wrap("remember replay ids", err)
	for i, r := range batch {
		r.fresh, r.err = fresh[i] && err == nil, err
	}
}

func (s *Store) PruneReplay(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM replay WHERE expires_at < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune replay", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
