package app

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/audit"
	"github.com/keygate/keygate/internal/httpapi"
	"github.com/keygate/keygate/internal/oauth"
	"github.com/keygate/keygate/internal/proxy"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/store"
)

// Problem types of the limits check (RFC 9457).
const (
	ProblemBlocked           = httpapi.ProblemTypeBase + "blocked"
	ProblemRateLimited       = httpapi.ProblemTypeBase + "rate-limited"
	ProblemLimitsUnavailable = httpapi.ProblemTypeBase + "limits-unavailable"
)

const (
	// limitPruneInterval is how often ended quota windows and stale shared
	// GCRA rows are deleted.
	limitPruneInterval = 5 * time.Minute
	// blockAuditTimeout bounds the synchronous audit write of a new block.
	blockAuditTimeout = 5 * time.Second
)

// limits is the wiring of rate limits, quotas, auto-block, the audit log
// and the metrics (see docs/LIMITS.md).
type limits struct {
	limiter *ratelimit.Limiter
	blocker *ratelimit.Blocker
	writer  *audit.Writer
	metrics *audit.Metrics
	trusted []netip.Prefix
	a       *App
}

// setupLimits configures rate limits, quotas, auto-block and the audit log.
// Its check runs after the signature checks (setupDPoP) and before a
// capability use is consumed (setupCapabilities), so a refused request
// never spends a use.
func (a *App) setupLimits(ctx context.Context, mux *http.ServeMux) error {
	cfg := a.cfg
	l := &limits{a: a, trusted: cfg.TrustedProxyPrefixes()}
	l.metrics = audit.NewMetrics(a.registry)
	l.writer = audit.NewWriter(a.st, audit.Config{Buffer: cfg.Audit.Buffer}, a.log, l.metrics)
	l.limiter = ratelimit.New(cfg.Limits, a.st, a.now)
	l.blocker = ratelimit.NewBlocker(cfg.Blocks, a.st, a.now, a.log)
	// Load the blocks now: until a first copy is loaded, Blocked fails (closed).
	if err := l.blocker.Refresh(ctx); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	a.lim = l

	retention := cfg.Audit.Retention.Std()
	a.background = append(a.background,
		// Serve stops background work only after the listeners have shut
		// down, so every request has been observed (and logged) before the
		// writer's final flush, which Run does when its ctx is cancelled.
		func(ctx context.Context) { _ = l.writer.Run(ctx) },
		func(ctx context.Context) { audit.RunRetention(ctx, a.st, retention, a.now, a.log) },
		func(ctx context.Context) {
			if err := l.limiter.Run(ctx, limitPruneInterval); err != nil {
				a.log.Warn("limit pruning stopped", "error", err)
			}
		},
		func(ctx context.Context) { _ = l.blocker.Run(ctx) },
	)
	if a.opts.WithoutRequestLimitsAndAudit {
		return nil
	}
	a.checks = append(a.checks, l.check)
	a.observers = append(a.observers, l.observe)
	return nil
}

// check refuses blocked callers (403 .../blocked) and requests over a
// limit (429), before the request is forwarded.
//
// A database error fails closed: 503 with Retry-After, nothing forwarded.
// Shared limits and quotas are promises to the API owner about spend; an
// outage of the database must not turn them off. (In-memory limits never
// error, and blocks keep being enforced from the last loaded copy.)
func (l *limits) check(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch) error {
	ctx := r.Context()
	ip := ratelimit.ClientIP(r, l.trusted)
	blk, err := l.blocker.Blocked(ctx, c.Subject, ip)
	if err != nil {
		return unavailable(err)
	}
	if blk != nil {
		return blocked(blk, l.a.now())
	}
	d, err := l.limiter.Check(ctx, ratelimit.Input{Subject: c.Subject, ClientID: c.ClientID, IP: ip,
		TokenID: c.TokenID, Upstream: route.Upstream})
	if err != nil {
		return unavailable(err)
	}
	if d.Allowed {
		// RateLimit headers are sent on refusals only: the check returns
		// an error or nothing, and has no hold on the forwarded response.
		return nil
	}
	l.metrics.LimitHit(d.Limit)
	l.recordEvent(ctx, ratelimit.Event{Metric: ratelimit.MetricLimitHits, Subject: c.Subject, IP: ip})
	h := http.Header{}
	ratelimit.WriteHeaders(headerSink(h), d)
	return &httpapi.Problem{Status: http.StatusTooManyRequests, Type: ProblemRateLimited, Title: "Too Many Requests",
		Detail: "limit " + d.Limit + " exceeded; retry after " + h.Get("Retry-After") + " s", Header: h}
}

// recordEvent counts ev for the auto-block rules and audits each block it
// creates. A failure costs at most a block, never the answer.
func (l *limits) recordEvent(ctx context.Context, ev ratelimit.Event) {
	fired, err := l.blocker.Record(ctx, ev)
	if err != nil {
		l.a.log.Warn("auto-block failed", "metric", ev.Metric, "error", err)
	}
	for _, b := range fired {
		l.metrics.Block(b.Rule)
		rec := audit.Record{Time: b.CreatedAt, RequestID: httpapi.RequestID(ctx), Kind: audit.KindBlock,
			Detail: fmt.Sprintf("rule=%s metric=%s %s=%s until=%s", b.Rule, ev.Metric, b.KeyKind, b.Key, b.Until.UTC().Format(time.RFC3339))}
		if b.KeyKind == store.BlockKeySubject {
			rec.Subject = b.Key
		}
		// The block row is written by the Blocker; its record follows at
		// once, synchronously, so it does not wait in (or get dropped from)
		// the per-request buffer. Should that write fail, the buffer is
		// the fallback.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), blockAuditTimeout)
		if err := audit.Append(actx, l.a.st, rec); err != nil {
			l.a.log.Warn("audit block record failed; queued instead", "rule", b.Rule, "error", err)
			l.writer.Log(rec)
		}
		cancel()
	}
}

// observe writes the request's audit record and metrics, and counts an
// authentication failure (401 before any caller was known) for the
// auth_failures block rules.
func (l *limits) observe(r *http.Request, c *proxy.Caller, route *proxy.RouteMatch, status int, dur time.Duration, bytesIn, bytesOut int64) {
	l.metrics.Request(route.Upstream, status, dur)
	ip := ratelimit.ClientIP(r, l.trusted)
	rec := audit.Record{Time: l.a.now(), RequestID: httpapi.RequestID(r.Context()), Kind: audit.KindRequest,
		Upstream: route.Upstream, Route: route.Pattern, Status: status, LatencyUS: dur.Microseconds(),
		BytesIn: bytesIn, BytesOut: bytesOut, Detail: "method=" + r.Method + " ip=" + ip}
	if c != nil {
		rec.Subject, rec.ClientID = c.Subject, c.ClientID
	}
	l.writer.Log(rec)
	if c == nil && status == http.StatusUnauthorized {
		l.recordEvent(r.Context(), ratelimit.Event{Metric: ratelimit.MetricAuthFailures, IP: ip})
	}
}

func blocked(b *store.Block, now time.Time) *httpapi.Problem {
	retry := ratelimit.RetryAfterSeconds(b.Until.Sub(now))
	return &httpapi.Problem{Status: http.StatusForbidden, Type: ProblemBlocked, Title: "Forbidden",
		Detail: "this caller is blocked until " + b.Until.UTC().Format(time.RFC3339),
		Header: http.Header{"Retry-After": {strconv.FormatInt(retry, 10)}}}
}

func unavailable(err error) *httpapi.Problem {
	return &httpapi.Problem{Status: http.StatusServiceUnavailable, Type: ProblemLimitsUnavailable, Title: "Service Unavailable",
		Detail: "limits could not be checked; nothing was forwarded", Header: http.Header{"Retry-After": {"1"}},
		Cause: fmt.Errorf("limits: %w", err)}
}

// headerSink lets ratelimit.WriteHeaders fill a header map for a problem
// answer; only Header is used.
type headerSink http.Header

func (h headerSink) Header() http.Header       { return http.Header(h) }
func (headerSink) Write(b []byte) (int, error) { return len(b), nil }
func (headerSink) WriteHeader(int)             {}

// oauthAuditor is the token service's Auditor (nil before setupLimits).
func (a *App) oauthAuditor() oauth.Auditor {
	if a.lim == nil {
		return nil
	}
	return tokenAuditor{a.lim.metrics}
}

type tokenAuditor struct{ m *audit.Metrics }

func (t tokenAuditor) Append(ctx context.Context, tx store.Tx, rec store.AuditRecord) error {
	return audit.Append(ctx, tx, rec)
}

func (t tokenAuditor) Event(e string) { t.m.TokenEvent(e) }
