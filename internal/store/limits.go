package store

import (
	"context"
	"time"
)

// RateTake asks the database to admit one request under a GCRA limit
// (the generic cell rate algorithm, ITU-T I.371). All times are Unix
// microseconds, computed by the caller so every node uses the same math.
type RateTake struct {
	Name string // limit name
	Key  string // key value (subject, client id, ip or token id)
	Now  int64  // µs
	// Interval is the emission interval: the time one request "costs"
	// (Per / N), in µs.
	Interval int64
	// Tolerance is Interval × burst: how far ahead of now the theoretical
	// arrival time may run and still be admitted, in µs.
	Tolerance int64
}

// RateResult is the outcome of a RateTake.
type RateResult struct {
	Allowed bool
	// TAT is the theoretical arrival time stored after the call (µs): the
	// new one when allowed, the unchanged one when refused.
	TAT int64
}

// QuotaUsage is a quota counter for one fixed window.
type QuotaUsage struct {
	Name        string    `json:"name"`
	Key         string    `json:"key"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Count       int64     `json:"count"`
}

// Block kinds: what Block.Key names.
const (
	BlockKeySubject = "subject"
	BlockKeyIP      = "ip"
)

// Block refuses every request of one subject or ip until Until.
type Block struct {
	KeyKind   string    `json:"key_kind"` // BlockKeySubject | BlockKeyIP
	Key       string    `json:"key"`
	Rule      string    `json:"rule"` // name of the block rule that created it
	Until     time.Time `json:"until"`
	CreatedAt time.Time `json:"created_at"`
}

// LimitStore holds what rate limiting shares between nodes: GCRA state of
// shared limits, quota counters and blocks. Every write that decides
// whether a request is admitted is one conditional upsert, so racing nodes
// never admit more than the limit.
type LimitStore interface {
	// TakeRate admits one request under a shared GCRA limit, atomically:
	// the stored TAT advances by Interval only when the request is
	// admitted.
	TakeRate(ctx context.Context, t RateTake) (RateResult, error)
	// RefundRate gives back one admitted request (when a later limit
	// refused it), moving the stored TAT back by interval µs.
	RefundRate(ctx context.Context, name, key string, interval int64) error
	// PruneRateLimits deletes GCRA state whose TAT is before before (such
	// state admits exactly like no state).
	PruneRateLimits(ctx context.Context, before time.Time) (int, error)

	// TakeQuota counts one request in the window starting at windowStart
	// when fewer than max are counted, and reports whether it did.
	TakeQuota(ctx context.Context, name, key string, windowStart, windowEnd time.Time, max int64) (bool, int64, error)
	// RefundQuota uncounts one request of that window (never below zero).
	RefundQuota(ctx context.Context, name, key string, windowStart time.Time) error
	// QuotaUsage returns the counters of key whose window ends after now,
	// ordered by name.
	QuotaUsage(ctx context.Context, key string, now time.Time) ([]QuotaUsage, error)
	// ResetQuota deletes every counter of name and key, reporting how many
	// rows went.
	ResetQuota(ctx context.Context, name, key string) (int, error)
	// PruneQuotas deletes counters whose window ended before before.
	PruneQuotas(ctx context.Context, before time.Time) (int, error)

	// PutBlock creates a block, or extends an existing block of the same
	// key kind and key (Until becomes the later of the two; Rule is the
	// rule of the later one).
	PutBlock(ctx context.Context, b Block) error
	// ActiveBlocks returns the blocks whose Until is after now, ordered by
	// key kind and key.
	ActiveBlocks(ctx context.Context, now time.Time) ([]Block, error)
	// DeleteBlocks lifts every block on key (any kind), reporting how many
	// rows went.
	DeleteBlocks(ctx context.Context, key string) (int, error)
	// PruneBlocks deletes blocks that ended before before.
	PruneBlocks(ctx context.Context, before time.Time) (int, error)
}

// Audit record kinds.
const (
	AuditRequest      = "request"
	AuditTokenIssue   = "token.issue"
	AuditTokenRefresh = "token.refresh"
	AuditTokenReuse   = "token.reuse"
	AuditTokenRevoke  = "token.revoke"
	AuditBlock        = "block"
	AuditUnblock      = "unblock"
	// AuditCapabilityMint records a capability token minted at
	// /oauth2/capabilities; its revocation is AuditTokenRevoke.
	AuditCapabilityMint = "capability.mint"
)

// AuditRecord is one line of the audit log. Detail is short free text and
// never holds a token or secret.
type AuditRecord struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	Upstream  string    `json:"upstream,omitempty"`
	Route     string    `json:"route,omitempty"`
	Status    int       `json:"status,omitempty"`
	LatencyUS int64     `json:"latency_us,omitempty"` // microseconds
	BytesIn   int64     `json:"bytes_in,omitempty"`
	BytesOut  int64     `json:"bytes_out,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// AuditStore appends to and reads the audit log.
type AuditStore interface {
	// InsertAudit appends records (their ID is ignored) atomically: one
	// transaction, multi-row INSERT statements.
	InsertAudit(ctx context.Context, recs []AuditRecord) error
	// AuditSince returns up to limit records with Time at or after since,
	// oldest first.
	AuditSince(ctx context.Context, since time.Time, limit int) ([]AuditRecord, error)
	// AuditAfter returns up to limit records with ID greater than afterID,
	// in ID order.
	AuditAfter(ctx context.Context, afterID int64, limit int) ([]AuditRecord, error)
	// LastAuditID returns the highest record ID, zero when the log is empty.
	LastAuditID(ctx context.Context) (int64, error)
	// PruneAudit deletes records older than before.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}
