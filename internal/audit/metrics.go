package audit

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are keygate's Prometheus metrics. Labels are bounded and never
// name a subject, client, token or secret: only upstream, status code,
// token event, limit and rule names, all from the config or code.
// A nil *Metrics is valid and records nothing.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	tokenEvents *prometheus.CounterVec
	limitHits   *prometheus.CounterVec
	blocks      *prometheus.CounterVec
	dropped     prometheus.Counter
}

// NewMetrics makes the metrics and registers them with reg (when not nil).
// Registering twice with one registry reuses the collectors already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_proxy_requests_total",
			Help: "Proxied requests by upstream and response status code.",
		}, []string{"upstream", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keygate_proxy_request_duration_seconds",
			Help:    "Time from request to response headers, by upstream.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"upstream"}),
		tokenEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_token_events_total",
			Help: "Token events: issue, refresh, reuse, revoke.",
		}, []string{"event"}),
		limitHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_limit_hits_total",
			Help: "Requests refused by a rate limit or quota, by limit name.",
		}, []string{"limit"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_blocks_total",
			Help: "Blocks created by auto-block rules, by rule name.",
		}, []string{"rule"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keygate_audit_dropped_total",
			Help: "Audit records dropped because the buffer was full or the database failed.",
		}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.tokenEvents = register(reg, m.tokenEvents)
		m.limitHits = register(reg, m.limitHits)
		m.blocks = register(reg, m.blocks)
		m.dropped = register(reg, m.dropped)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// statusLabels holds "100".."599" so labelling a request does not allocate.
var statusLabels = func() []string {
	s := make([]string, 600)
	for i := 100; i < 600; i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusLabel(code int) string {
	if code >= 100 && code < 600 {
		return statusLabels[code]
	}
	return "other"
}

// Request counts one proxied request and its latency to response headers.
func (m *Metrics) Request(upstream string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(upstream, statusLabel(status)).Inc()
	m.duration.WithLabelValues(upstream).Observe(d.Seconds())
}

// TokenEvent counts one token event ("issue", "refresh", "reuse", "revoke").
func (m *Metrics) TokenEvent(event string) {
	if m == nil {
		return
	}
	m.tokenEvents.WithLabelValues(event).Inc()
}

// LimitHit counts one request refused by the named limit.
func (m *Metrics) LimitHit(limit string) {
	if m == nil {
		return
	}
	m.limitHits.WithLabelValues(limit).Inc()
}

// Block counts one block created by the named rule.
func (m *Metrics) Block(rule string) {
	if m == nil {
		return
	}
	m.blocks.WithLabelValues(rule).Inc()
}

func (m *Metrics) auditDropped(n int64) {
	if m == nil {
		return
	}
	m.dropped.Add(float64(n))
}
