package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Writer defaults.
const (
	DefaultBatchSize       = 256
	DefaultFlushInterval   = 200 * time.Millisecond
	DefaultShutdownTimeout = 5 * time.Second
	// dropWarnEvery bounds how often dropped records are logged.
	dropWarnEvery = 10 * time.Second
	// writeTimeout bounds one batch INSERT, and writeAttempts how often a
	// failing batch is tried before its records count as dropped.
	writeTimeout  = 10 * time.Second
	writeAttempts = 3
)

// Config sizes a Writer. Zero fields take the defaults.
type Config struct {
	Buffer          int           // records waiting for the database (audit.buffer)
	BatchSize       int           // records per INSERT transaction
	FlushInterval   time.Duration // longest a record waits for a batch to fill
	ShutdownTimeout time.Duration // bound on the final flush when Run stops
}

// Writer batches per-request records into the database. Log never blocks.
//
// Records wait in a slice of capacity Buffer guarded by a mutex; the
// writer goroutine swaps it for an empty one and writes the records it took
// while new ones accumulate. A channel per record was measured slower: each
// send to an idle writer wakes it, which costs more than the whole Log.
type Writer struct {
	st  Store
	cfg Config
	log *slog.Logger
	m   *Metrics

	mu      sync.Mutex
	pending []Record // waiting, len ≤ cfg.Buffer
	spare   []Record // the other buffer, owned by the writer goroutine
	closed  bool

	kick     chan struct{} // a batch is ready
	flushReq chan chan struct{}
	quit     chan struct{}
	quitOnce sync.Once
	done     chan struct{}
	started  atomic.Bool
	writing  sync.Mutex // one drainer at a time (Run, or Flush/Close without Run)

	dropped  atomic.Int64
	lastWarn atomic.Int64 // UnixNano of the last drop warning
	warned   atomic.Int64 // dropped count at the last warning
}

// NewWriter makes a Writer; start it with Run. logger and metrics may be
// nil.
func NewWriter(st Store, cfg Config, logger *slog.Logger, metrics *Metrics) *Writer {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{st: st, cfg: cfg, log: logger, m: metrics,
		pending: make([]Record, 0, cfg.Buffer), spare: make([]Record, 0, cfg.Buffer),
		kick: make(chan struct{}, 1), flushReq: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{})}
}

// Log queues r for writing and returns at once. When the buffer is full (or
// the writer is closed) r is dropped and counted. A zero Time is set to
// now; Detail is redacted.
func (w *Writer) Log(r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Detail = Redact(r.Detail)
	w.mu.Lock()
	if w.closed || len(w.pending) >= w.cfg.Buffer {
		w.mu.Unlock()
		w.drop(1)
		return
	}
	w.pending = append(w.pending, r)
	n := len(w.pending)
	w.mu.Unlock()
	if n == w.cfg.BatchSize {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Dropped reports how many records were dropped since the Writer was made.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

func (w *Writer) drop(n int64) {
	total := w.dropped.Add(n)
	w.m.auditDropped(n)
	now := time.Now().UnixNano()
	last := w.lastWarn.Load()
	if now-last >= int64(dropWarnEvery) && w.lastWarn.CompareAndSwap(last, now) {
		since := total - w.warned.Swap(total)
		w.log.Warn("audit log buffer full: records dropped", "dropped", since, "dropped_total", total, "buffer", w.cfg.Buffer)
	}
}

// Run writes queued records until ctx is done or Close is called, then
// writes what is still queued (within Config.ShutdownTimeout) and returns.
// A batch is written when BatchSize records wait or FlushInterval has
// passed.
func (w *Writer) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("audit writer already running")
	}
	defer close(w.done)
	// Writes are not cut short by the cancellation of ctx, so a batch in
	// flight at shutdown still lands.
	wctx := context.WithoutCancel(ctx)
	t := time.NewTicker(w.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.kick:
			w.drain(wctx, writeTimeout, false)
		case <-t.C:
			w.drain(wctx, writeTimeout, true)
		case reply := <-w.flushReq:
			w.drain(wctx, writeTimeout, true)
			close(reply)
		case <-ctx.Done():
			w.shutdown(wctx)
			return nil
		case <-w.quit:
			w.shutdown(wctx)
			return nil
		}
	}
}

func (w *Writer) shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.ShutdownTimeout)
	defer cancel()
	w.drain(ctx, w.cfg.ShutdownTimeout, true)
}

// drain takes the waiting records and writes them in batches; it keeps
// going while full batches wait (or, with all, until nothing waits).
func (w *Writer) drain(ctx context.Context, timeout time.Duration, all bool) {
	w.writing.Lock()
	defer w.writing.Unlock()
	for {
		w.mu.Lock()
		batch := w.pending
		if len(batch) == 0 || (!all && len(batch) < w.cfg.BatchSize) {
			w.mu.Unlock()
			return
		}
		w.pending = w.spare[:0]
		w.mu.Unlock()

		for rest := batch; len(rest) > 0; {
			n := min(len(rest), w.cfg.BatchSize)
			w.write(ctx, timeout, rest[:n])
			rest = rest[n:]
		}
		clear(batch) // drop references to the strings
		w.spare = batch[:0]
	}
}

// write writes one batch, retrying briefly; records it cannot write count
// as dropped.
func (w *Writer) write(ctx context.Context, timeout time.Duration, batch []Record) {
	var err error
	for attempt := range writeAttempts {
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		err = w.st.InsertAudit(actx, batch)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	w.log.Error("write audit records", "records", len(batch), "err", err)
	w.drop(int64(len(batch)))
}

// Flush writes everything queued so far and returns when it is written (or
// dropped after failed attempts). It works with or without Run.
func (w *Writer) Flush(ctx context.Context) error {
	if w.started.Load() {
		reply := make(chan struct{})
		select {
		case w.flushReq <- reply:
		case <-w.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-reply:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.drain(ctx, writeTimeout, true)
	return ctx.Err()
}

// Close stops accepting records and writes what is queued: when Run is
// running, it stops Run after its final flush and waits for that;
// otherwise it flushes itself, within Config.ShutdownTimeout. Records
// logged after Close are dropped and counted.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.quitOnce.Do(func() { close(w.quit) })
	if w.started.Load() {
		<-w.done
	}
	// Without Run, or for records queued after Run stopped.
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	w.drain(ctx, w.cfg.ShutdownTimeout, true)
	return nil
}
