package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
)

// Store is the part of the database the package needs.
type Store = store.LimitStore

// ErrUnknownLimit reports a quota name that is not in the configuration.
var ErrUnknownLimit = fmt.Errorf("unknown limit: %w", store.ErrNotFound)

// Input names the caller of one request. An empty field skips every limit
// keyed on it.
type Input struct {
	Subject  string
	ClientID string
	IP       string
	TokenID  string // jti of the access token or id of the capability token
	Upstream string
}

// Decision is the outcome of Check.
type Decision struct {
	Allowed bool
	// Limit names the limit that refused (empty when admitted).
	Limit string
	// RetryAfter is how long until the refusing limit admits again.
	RetryAfter time.Duration
	// Policy and State are the RateLimit-Policy and RateLimit header
	// values (draft-ietf-httpapi-ratelimit-headers) of the limit closest
	// to refusing; both empty when no limit applied.
	Policy string
	State  string
}

type keyKind uint8

const (
	keySubject keyKind = iota
	keyClient
	keyIP
	keyToken
)

func parseKey(k string) keyKind {
	switch k {
	case config.KeyClient:
		return keyClient
	case config.KeyIP:
		return keyIP
	case config.KeyToken:
		return keyToken
	default:
		return keySubject
	}
}

func (in *Input) key(k keyKind) string {
	switch k {
	case keySubject:
		return in.Subject
	case keyClient:
		return in.ClientID
	case keyIP:
		return in.IP
	default:
		return in.TokenID
	}
}

type rateLimit struct {
	name      string
	key       keyKind
	upstream  string
	shared    bool
	interval  int64 // µs per request: the emission interval T
	tolerance int64 // µs: burst × T
	burst     int64
	policy    string
	mem       *memTable // nil when shared
}

type quotaLimit struct {
	name     string
	key      keyKind
	upstream string
	n        int64
	window   int64 // ms
	policy   string
}

// Limiter checks requests against the configured limits.
type Limiter struct {
	rates  []*rateLimit // in-memory first, then shared
	quotas []*quotaLimit
	st     Store
	now    func() time.Time
}

// New builds a limiter. st may be nil only when no limit is shared and
// none is a quota. now is the clock (time.Now in production).
func New(limits []config.Limit, st Store, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{st: st, now: now}
	var shared []*rateLimit
	for _, c := range limits {
		if !c.Rate.IsZero() {
			interval := max(c.Rate.Per.Microseconds()/max(c.Rate.N, 1), 1)
			burst := int64(max(c.Burst, 1))
			r := &rateLimit{name: c.Name, key: parseKey(c.Key), upstream: c.Upstream, shared: c.Shared,
				interval: interval, burst: burst, tolerance: interval * burst}
			r.policy = policyItem(c.Name, burst, ceilSeconds(time.Duration(r.tolerance)*time.Microsecond))
			if c.Shared {
				shared = append(shared, r)
			} else {
				r.mem = newMemTable()
				l.rates = append(l.rates, r)
			}
		}
		if !c.Quota.IsZero() {
			q := &quotaLimit{name: c.Name, key: parseKey(c.Key), upstream: c.Upstream, n: c.Quota.N,
				window: max(c.Quota.Window.Milliseconds(), 1)}
			q.policy = policyItem(c.Name, q.n, ceilSeconds(c.Quota.Window))
			l.quotas = append(l.quotas, q)
		}
	}
	l.rates = append(l.rates, shared...)
	if st == nil && (len(shared) > 0 || len(l.quotas) > 0) {
		panic("ratelimit: shared limits and quotas need a store")
	}
	return l
}

// taken is one unit to give back if a later limit refuses.
type taken struct {
	rate  *rateLimit
	quota *quotaLimit
	key   string
	win   time.Time
}

// Check admits or refuses one request. An error means the database could
// not be asked; the request is then neither admitted nor counted, and the
// caller decides between failing closed (503) and open.
func (l *Limiter) Check(ctx context.Context, in Input) (Decision, error) {
	now := l.now()
	nowUS := now.UnixMicro()
	var buf [8]taken
	took := buf[:0]

	// The admitted limit with the fewest units left, for the headers.
	var best struct {
		policy, name string
		left         int64
		reset        time.Duration
	}
	best.left = math.MaxInt64

	for _, r := range l.rates {
		if r.upstream != "" && r.upstream != in.Upstream {
			continue
		}
		key := in.key(r.key)
		if key == "" {
			continue
		}
		var ok bool
		var tat int64
		if r.shared {
			res, err := l.st.TakeRate(ctx, store.RateTake{Name: r.name, Key: key, Now: nowUS, Interval: r.interval, Tolerance: r.tolerance})
			if err != nil {
				l.refund(ctx, took)
				return Decision{}, fmt.Errorf("rate limit %s: %w", r.name, err)
			}
			ok, tat = res.Allowed, res.TAT
		} else {
			ok, tat = r.mem.take(key, nowUS, r.interval, r.tolerance)
		}
		if !ok {
			l.refund(ctx, took)
			// Admitted again once TAT - tolerance + T ≤ now.
			retry := time.Duration(tat-r.tolerance+r.interval-nowUS) * time.Microsecond
			return refusal(r.name, r.policy, retry, time.Duration(tat-nowUS)*time.Microsecond), nil
		}
		took = append(took, taken{rate: r, key: key})
		if left := (nowUS + r.tolerance - tat) / r.interval; left < best.left {
			best.policy, best.name, best.left, best.reset = r.policy, r.name, left, time.Duration(tat-nowUS)*time.Microsecond
		}
	}

	for _, q := range l.quotas {
		if q.upstream != "" && q.upstream != in.Upstream {
			continue
		}
		key := in.key(q.key)
		if key == "" {
			continue
		}
		nowMS := now.UnixMilli()
		startMS := nowMS - nowMS%q.window
		if nowMS < 0 && nowMS%q.window != 0 {
			startMS -= q.window
		}
		start, end := time.UnixMilli(startMS), time.UnixMilli(startMS+q.window)
		ok, count, err := l.st.TakeQuota(ctx, q.name, key, start, end, q.n)
		if err != nil {
			l.refund(ctx, took)
			return Decision{}, fmt.Errorf("quota %s: %w", q.name, err)
		}
		reset := end.Sub(now)
		if !ok {
			l.refund(ctx, took)
			return refusal(q.name, q.policy, reset, reset), nil
		}
		took = append(took, taken{quota: q, key: key, win: start})
		if left := q.n - count; left < best.left {
			best.policy, best.name, best.left, best.reset = q.policy, q.name, left, reset
		}
	}

	d := Decision{Allowed: true}
	if best.policy != "" {
		d.Policy = best.policy
		d.State = stateItem(best.name, best.left, ceilSeconds(best.reset))
	}
	return d, nil
}

func refusal(name, policy string, retry, reset time.Duration) Decision {
	retry = max(retry, 0)
	return Decision{Limit: name, RetryAfter: retry, Policy: policy,
		State: stateItem(name, 0, ceilSeconds(max(reset, retry)))}
}

// refund gives back units taken before a later limit refused. It runs even
// when ctx is done (a cancelled request must not keep its units), bounded.
func (l *Limiter) refund(ctx context.Context, took []taken) {
	if len(took) == 0 {
		return
	}
	var dbctx context.Context
	for _, t := range took {
		if t.rate != nil && !t.rate.shared {
			t.rate.mem.refund(t.key, t.rate.interval)
			continue
		}
		if dbctx == nil {
			var cancel context.CancelFunc
			dbctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
		}
		// A failed refund over-counts by one unit: accepted (see package doc).
		if t.rate != nil {
			_ = l.st.RefundRate(dbctx, t.rate.name, t.key, t.rate.interval)
		} else {
			_ = l.st.RefundQuota(dbctx, t.quota.name, t.key, t.win)
		}
	}
}

// QuotaUsage is one quota counter of a key, for the admin API.
type QuotaUsage struct {
	Name        string    `json:"name"`
	Key         string    `json:"key"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Used        int64     `json:"used"`
	Limit       int64     `json:"limit"`
}

// Quotas lists the current windows' usage of key, for every configured
// quota that has counted it.
func (l *Limiter) Quotas(ctx context.Context, key string) ([]QuotaUsage, error) {
	if len(l.quotas) == 0 {
		return nil, nil
	}
	rows, err := l.st.QuotaUsage(ctx, key, l.now())
	if err != nil {
		return nil, fmt.Errorf("list quotas: %w", err)
	}
	out := []QuotaUsage{}
	for _, r := range rows {
		q := l.quota(r.Name)
		if q == nil || r.WindowEnd.Sub(r.WindowStart).Milliseconds() != q.window {
			continue // a limit since removed or redefined
		}
		out = append(out, QuotaUsage{Name: r.Name, Key: r.Key, WindowStart: r.WindowStart, WindowEnd: r.WindowEnd, Used: r.Count, Limit: q.n})
	}
	return out, nil
}

// ResetQuota forgets every count of quota name for key. Resetting a key
// with no count is not an error; an unknown name is ErrUnknownLimit.
func (l *Limiter) ResetQuota(ctx context.Context, name, key string) error {
	if l.quota(name) == nil {
		return fmt.Errorf("reset quota %q: %w", name, ErrUnknownLimit)
	}
	if _, err := l.st.ResetQuota(ctx, name, key); err != nil {
		return fmt.Errorf("reset quota %q: %w", name, err)
	}
	return nil
}

func (l *Limiter) quota(name string) *quotaLimit {
	for _, q := range l.quotas {
		if q.name == name {
			return q
		}
	}
	return nil
}

// Prune deletes database state that no longer affects any decision:
// shared-limit TATs in the past and quota windows that have ended.
func (l *Limiter) Prune(ctx context.Context) error {
	if l.st == nil {
		return nil
	}
	now := l.now()
	_, err1 := l.st.PruneRateLimits(ctx, now)
	_, err2 := l.st.PruneQuotas(ctx, now)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("prune limits: %w", err)
	}
	return nil
}

// Run prunes every interval until ctx is done.
func (l *Limiter) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Prune(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// policyItem formats one RateLimit-Policy list member.
func policyItem(name string, q, w int64) string {
	b := appendSFString(nil, name)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, q, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, max(w, 1), 10)
	return string(b)
}

// stateItem formats one RateLimit list member.
func stateItem(name string, r, t int64) string {
	var arr [96]byte
	b := appendSFString(arr[:0], name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, max(r, 0), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, t, 10)
	return string(b)
}

// appendSFString appends s as an RFC 9651 §3.3.3 String: printable ASCII
// in double quotes, with \ and " escaped. Other bytes cannot be expressed
// and become '?' (limit names are [A-Za-z0-9._-]+, so this never happens
// with a valid config).
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
