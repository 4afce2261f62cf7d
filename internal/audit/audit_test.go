package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/sqlite"
	"github.com/keygate/keygate/internal/store/sqlstore"
)

func openSQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, s *sqlstore.Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeStore is an AuditStore whose InsertAudit is a function field.
type fakeStore struct {
	store.AuditStore // nil: other methods are not called
	insert           func(ctx context.Context, recs []Record) error
}

func (f *fakeStore) InsertAudit(ctx context.Context, recs []Record) error { return f.insert(ctx, recs) }

// countingStore counts INSERT transactions on a real store.
type countingStore struct {
	store.AuditStore
	calls atomic.Int64
}

func (c *countingStore) InsertAudit(ctx context.Context, recs []Record) error {
	c.calls.Add(1)
	return c.AuditStore.InsertAudit(ctx, recs)
}

func rec(i int) Record {
	return Record{Kind: KindRequest, RequestID: fmt.Sprint("r", i), Subject: "idp|alice", Upstream: "echo", Status: 200}
}

func startWriter(t *testing.T, w *Writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestWriterBatches(t *testing.T) {
	s := openSQLite(t)
	cs := &countingStore{AuditStore: s}
	w := NewWriter(cs, Config{Buffer: 20000, BatchSize: 256, FlushInterval: 50 * time.Millisecond}, nil, nil)
	startWriter(t, w)
	const total = 10000
	for i := range total {
		w.Log(rec(i))
	}
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s); got != total {
		t.Fatalf("after Flush the table has %d records, want %d", got, total)
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}
	if calls := cs.calls.Load(); calls > total/10 {
		t.Errorf("%d INSERT transactions for %d records: not batched", calls, total)
	}
	// Log fills Time.
	recs, err := Tail(t.Context(), s, time.Now().Add(-time.Minute), 1)
	if err != nil || len(recs) != 1 || recs[0].Time.IsZero() || recs[0].RequestID != "r0" {
		t.Errorf("Tail = %+v, %v", recs, err)
	}
}

func TestWriterFlushInterval(t *testing.T) {
	s := openSQLite(t)
	w := NewWriter(s, Config{Buffer: 100, BatchSize: 1000, FlushInterval: 20 * time.Millisecond}, nil, nil)
	startWriter(t, w)
	w.Log(rec(1))
	deadline := time.Now().Add(5 * time.Second)
	for count(t, s) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a lone record was not written after the flush interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// With the database stuck, a full buffer drops records and Log still
// returns at once.
func TestWriterOverflow(t *testing.T) {
	release := make(chan struct{})
	called := make(chan struct{}, 1)
	var written atomic.Int64
	fs := &fakeStore{insert: func(ctx context.Context, recs []Record) error {
		select {
		case called <- struct{}{}:
		default:
		}
		<-release
		written.Add(int64(len(recs)))
		return nil
	}}
	reg := prometheus.NewRegistry()
	var logBuf syncBuffer
	w := NewWriter(fs, Config{Buffer: 10, BatchSize: 1, FlushInterval: time.Millisecond}, slog.New(slog.NewTextHandler(&logBuf, nil)), NewMetrics(reg))
	startWriter(t, w)

	w.Log(rec(0))
	select { // the writer holds record 0 and is stuck in the database
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("writer never called the store")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 100; i++ {
			w.Log(rec(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked on a stuck database")
	}
	if got := w.Dropped(); got != 90 {
		t.Errorf("Dropped = %d, want 90", got)
	}
	if got := gather(t, reg, "keygate_audit_dropped_total"); got != 90 {
		t.Errorf("keygate_audit_dropped_total = %v, want 90", got)
	}
	// One warning, not 90, and it gives the number.
	if n := strings.Count(logBuf.String(), "records dropped"); n != 1 {
		t.Errorf("%d drop warnings logged, want 1:\n%s", n, logBuf.String())
	}
	close(release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := written.Load(); got != 11 {
		t.Errorf("written %d, want the 11 that were queued", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Cancelling Run writes everything queued.
func TestWriterShutdownFlushes(t *testing.T) {
	s := openSQLite(t)
	w := NewWriter(s, Config{Buffer: 1000, BatchSize: 100, FlushInterval: time.Hour}, nil, nil)
	stop := startWriter(t, w)
	for i := range 550 {
		w.Log(rec(i))
	}
	stop()
	if got := count(t, s); got != 550 {
		t.Fatalf("after shutdown the table has %d records, want 550", got)
	}
	w.Log(rec(1000)) // after Run stopped: Close writes it
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s); got != 551 {
		t.Fatalf("after Close the table has %d records, want 551", got)
	}
	w.Log(rec(1001)) // after Close: dropped, not lost silently
	if w.Dropped() != 1 {
		t.Errorf("Dropped after close = %d, want 1", w.Dropped())
	}
}

func TestWriterCloseWithoutRun(t *testing.T) {
	s := openSQLite(t)
	w := NewWriter(s, Config{Buffer: 10}, nil, nil)
	w.Log(rec(1))
	w.Log(rec(2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s); got != 2 {
		t.Fatalf("Close without Run wrote %d records, want 2", got)
	}
}

func TestAppendInTransaction(t *testing.T) {
	s := openSQLite(t)
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := Append(ctx, tx, Record{Kind: KindTokenRevoke, Subject: "idp|alice"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got := count(t, s); got != 0 {
		t.Fatalf("rolled-back Append left %d records", got)
	}
	err = s.WithTx(ctx, func(tx store.Tx) error {
		return Append(ctx, tx, Record{Kind: KindTokenReuse, Subject: "idp|alice", Detail: "presented kgr_" + strings.Repeat("A", 43)})
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Tail(ctx, s, time.Now().Add(-time.Minute), 10)
	if err != nil || len(recs) != 1 || recs[0].Kind != KindTokenReuse || recs[0].Detail != "presented [redacted]" {
		t.Fatalf("after commit = %+v, %v", recs, err)
	}
}

func TestLogRedacts(t *testing.T) {
	s := openSQLite(t)
	w := NewWriter(s, Config{Buffer: 10}, nil, nil)
	w.Log(Record{Kind: KindTokenIssue, Detail: "family f1 token kgr_abc-DEF_123 for kgc_x"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _ := Tail(t.Context(), s, time.Time{}, 10)
	if len(recs) != 1 || recs[0].Detail != "family f1 token [redacted] for [redacted]" {
		t.Fatalf("stored %+v", recs)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},
		{"kgr_" + strings.Repeat("x", 43), "[redacted]"},
		{"a kgc_abc.def", "a [redacted].def"},
		{"kgs_secret kga_admin-token!", "[redacted] [redacted]!"},
		{"kgr_", "[redacted]"},
		{"kgkgr_a", "kg[redacted]"},
		{"kgx_abc kg_ kg", "kgx_abc kg_ kg"},
		{"KGR_upper", "KGR_upper"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "kgr_abc", "x kgc_a.kgs_b kga_", "kgkgr_", "kg", "kgr", "naïve kgr_ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		if indexToken(got) >= 0 {
			t.Fatalf("Redact(%q) = %q still holds a token prefix", s, got)
		}
		if indexToken(s) < 0 && got != s {
			t.Fatalf("Redact(%q) = %q changed a string without tokens", s, got)
		}
	})
}

func TestFollowAndPrune(t *testing.T) {
	s := openSQLite(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	old := time.Now().Add(-48 * time.Hour)
	if err := s.InsertAudit(ctx, []Record{{Time: old, Kind: KindRequest}, {Time: old, Kind: KindRequest}}); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastAuditID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Record, 10)
	followed := make(chan error, 1)
	go func() {
		followed <- Follow(ctx, s, last, 10*time.Millisecond, func(r Record) error { got <- r; return nil })
	}()
	for i := range 3 {
		if err := Append(ctx, s, Record{Kind: KindBlock, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		select {
		case r := <-got:
			if r.Detail != fmt.Sprint(i) || r.Kind != KindBlock {
				t.Fatalf("followed record %d = %+v", i, r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Follow did not deliver new records")
		}
	}
	cancel()
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	n, err := Prune(t.Context(), s, time.Now().Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want the 2 old records", n, err)
	}
	rctx, rcancel := context.WithCancel(t.Context())
	rdone := make(chan struct{})
	go func() { RunRetention(rctx, s, time.Nanosecond, nil, nil); close(rdone) }()
	deadline := time.Now().Add(5 * time.Second)
	for count(t, s) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rcancel()
	<-rdone
	if n := count(t, s); n != 0 {
		t.Errorf("RunRetention left %d records", n)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m2 := NewMetrics(reg) // registering again reuses the collectors
	m.Request("echo", 200, 30*time.Millisecond)
	m2.Request("echo", 200, 30*time.Millisecond)
	m.Request("echo", 999, time.Second)
	m.TokenEvent("issue")
	m.LimitHit("per-user")
	m.Block("abusive")
	for name, want := range map[string]float64{
		"keygate_proxy_requests_total": 3, "keygate_token_events_total": 1,
		"keygate_limit_hits_total": 1, "keygate_blocks_total": 1,
	} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.Request("x", 200, 0) // no panic
	nilMetrics.auditDropped(1)
}

func BenchmarkLog(b *testing.B) {
	fs := &fakeStore{insert: func(context.Context, []Record) error { return nil }}
	w := NewWriter(fs, Config{Buffer: 10000}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	r := Record{Time: time.Now(), Kind: KindRequest, RequestID: "01HZX", Subject: "google|123", ClientID: "ios-app",
		Upstream: "openai", Route: "POST /v1/chat/completions", Status: 200, LatencyUS: 1234, BytesIn: 100, BytesOut: 2000}
	b.ReportAllocs()
	for b.Loop() {
		w.Log(r)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(w.Dropped()), "dropped")
}
