package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/store"
)

func init() {
	register("RateTake", testRateTake)
	register("RateTakeConcurrent", testRateTakeConcurrent)
	register("Quota", testQuota)
	register("QuotaConcurrent", testQuotaConcurrent)
	register("Blocks", testBlocks)
	register("Audit", testAudit)
	register("AuditRollback", testAuditRollback)
}

func testRateTake(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.UnixMicro()
	const interval, burst = 100_000, 3 // 10/s
	take := func(at int64) store.RateResult {
		t.Helper()
		r, err := s.TakeRate(ctx, store.RateTake{Name: "l", Key: "k", Now: at, Interval: interval, Tolerance: interval * burst})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range burst {
		if r := take(now); !r.Allowed || r.TAT != now+int64(i+1)*interval {
			t.Fatalf("take %d = %+v, want allowed with TAT now+%d intervals", i+1, r, i+1)
		}
	}
	if r := take(now); r.Allowed || r.TAT != now+burst*interval {
		t.Fatalf("take over burst = %+v, want refused with TAT unchanged", r)
	}
	if r := take(now + interval - 1); r.Allowed {
		t.Fatalf("take 1µs before the next emission = %+v, want refused", r)
	}
	if r := take(now + interval); !r.Allowed || r.TAT != now+(burst+1)*interval {
		t.Fatalf("take one interval later = %+v, want allowed", r)
	}
	// Another key and another limit are independent.
	r, err := s.TakeRate(ctx, store.RateTake{Name: "l", Key: "other", Now: now, Interval: interval, Tolerance: interval})
	if err != nil || !r.Allowed {
		t.Fatalf("other key = %+v, %v", r, err)
	}
	if err := s.RefundRate(ctx, "l", "k", interval); err != nil {
		t.Fatal(err)
	}
	if r := take(now + interval); !r.Allowed {
		t.Fatalf("take after refund = %+v, want allowed", r)
	}
	// Idle long enough, the state is as good as absent and may be pruned.
	if r := take(now + 100*interval); !r.Allowed || r.TAT != now+101*interval {
		t.Fatalf("take after idle = %+v, want TAT restarted from now", r)
	}
	n, err := s.PruneRateLimits(ctx, time.UnixMicro(now+200*interval))
	if err != nil || n != 2 {
		t.Fatalf("PruneRateLimits = %d, %v; want 2", n, err)
	}
}

func testRateTakeConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.UnixMicro()
	const interval, burst, workers, each = 10_000, 10, 64, 4
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				r, err := s.TakeRate(ctx, store.RateTake{Name: "shared", Key: "ip", Now: now, Interval: interval, Tolerance: interval * burst})
				if err != nil {
					errs <- err
					return
				}
				if r.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := admitted.Load(); got != burst {
		t.Errorf("admitted %d of %d racing requests, want exactly %d", got, workers*each, burst)
	}
}

func testQuota(t *testing.T, s store.Store) {
	ctx := t.Context()
	w0, w1 := t0.Truncate(time.Hour), t0.Truncate(time.Hour).Add(time.Hour)
	for i := 1; i <= 3; i++ {
		ok, n, err := s.TakeQuota(ctx, "daily", "alice", w0, w1, 3)
		if err != nil || !ok || n != int64(i) {
			t.Fatalf("take %d = %v, %d, %v", i, ok, n, err)
		}
	}
	if ok, _, err := s.TakeQuota(ctx, "daily", "alice", w0, w1, 3); err != nil || ok {
		t.Fatalf("take over quota = %v, %v; want refused", ok, err)
	}
	if err := s.RefundQuota(ctx, "daily", "alice", w0); err != nil {
		t.Fatal(err)
	}
	if ok, n, err := s.TakeQuota(ctx, "daily", "alice", w0, w1, 3); err != nil || !ok || n != 3 {
		t.Fatalf("take after refund = %v, %d, %v", ok, n, err)
	}
	// The next window counts from zero.
	if ok, n, err := s.TakeQuota(ctx, "daily", "alice", w1, w1.Add(time.Hour), 3); err != nil || !ok || n != 1 {
		t.Fatalf("take in next window = %v, %d, %v", ok, n, err)
	}
	if _, _, err := s.TakeQuota(ctx, "other", "alice", w0, w1, 3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeQuota(ctx, "daily", "bob", w0, w1, 3); err != nil {
		t.Fatal(err)
	}
	got, err := s.QuotaUsage(ctx, "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.QuotaUsage{
		{Name: "daily", Key: "alice", WindowStart: w0, WindowEnd: w1, Count: 3},
		{Name: "daily", Key: "alice", WindowStart: w1, WindowEnd: w1.Add(time.Hour), Count: 1},
		{Name: "other", Key: "alice", WindowStart: w0, WindowEnd: w1, Count: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("QuotaUsage(alice) =\n%v\nwant\n%v", got, want)
	}
	if got, _ := s.QuotaUsage(ctx, "alice", w1); len(got) != 1 || got[0].WindowStart != w1 {
		t.Errorf("QuotaUsage(alice) after the first window = %v, want only the second window", got)
	}
	if n, err := s.ResetQuota(ctx, "daily", "alice"); err != nil || n != 2 {
		t.Fatalf("ResetQuota = %d, %v; want 2", n, err)
	}
	if ok, n, err := s.TakeQuota(ctx, "daily", "alice", w0, w1, 3); err != nil || !ok || n != 1 {
		t.Fatalf("take after reset = %v, %d, %v", ok, n, err)
	}
	if n, err := s.PruneQuotas(ctx, w1.Add(time.Millisecond)); err != nil || n != 3 {
		t.Fatalf("PruneQuotas = %d, %v; want 3", n, err)
	}
}

func testQuotaConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	w0 := t0.Truncate(time.Hour)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			ok, _, err := s.TakeQuota(ctx, "q", "k", w0, w0.Add(time.Hour), 5)
			if err != nil {
				errs <- err
			}
			if ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := admitted.Load(); got != 5 {
		t.Errorf("admitted %d of 64 racing requests, want exactly 5", got)
	}
}

func testBlocks(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := store.Block{KeyKind: store.BlockKeyIP, Key: "192.0.2.1", Rule: "bad-auth", Until: t0.Add(time.Hour), CreatedAt: t0}
	if err := s.PutBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A shorter block does not shorten it; a longer one extends it.
	if err := s.PutBlock(ctx, store.Block{KeyKind: b.KeyKind, Key: b.Key, Rule: "short", Until: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlock(ctx, store.Block{KeyKind: store.BlockKeySubject, Key: "idp|alice", Rule: "abusive", Until: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ActiveBlocks(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != b || got[1].Key != "idp|alice" || got[1].Rule != "abusive" {
		t.Fatalf("ActiveBlocks = %+v", got)
	}
	longer := b
	longer.Rule, longer.Until = "again", t0.Add(2*time.Hour)
	if err := s.PutBlock(ctx, longer); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ActiveBlocks(ctx, t0.Add(time.Minute))
	if len(got) != 1 || got[0] != longer {
		t.Fatalf("ActiveBlocks after extension and expiry = %+v, want only %+v", got, longer)
	}
	if n, err := s.DeleteBlocks(ctx, "192.0.2.1"); err != nil || n != 1 {
		t.Fatalf("DeleteBlocks = %d, %v", n, err)
	}
	if n, err := s.DeleteBlocks(ctx, "192.0.2.1"); err != nil || n != 0 {
		t.Fatalf("DeleteBlocks again = %d, %v", n, err)
	}
	if n, err := s.PruneBlocks(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneBlocks = %d, %v; want the expired subject block", n, err)
	}
}

func auditRec(i int) store.AuditRecord {
	return store.AuditRecord{Time: t0.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("req-%d", i),
		Kind: store.AuditRequest, Subject: "idp|alice", ClientID: "app", Upstream: "echo", Route: "GET /echo/**",
		Status: 200, LatencyUS: int64(i), BytesIn: 1, BytesOut: 2, Detail: "d"}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	if id, err := s.LastAuditID(ctx); err != nil || id != 0 {
		t.Fatalf("LastAuditID(empty) = %d, %v", id, err)
	}
	const total = 300 // 256 + 32 + 4×3: every chunk size
	var recs []store.AuditRecord
	for i := range total {
		recs = append(recs, auditRec(i))
	}
	if err := s.InsertAudit(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertAudit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.AuditAfter(ctx, 0, 1000)
	if err != nil || len(all) != total {
		t.Fatalf("AuditAfter(0) = %d records, %v; want %d", len(all), err, total)
	}
	for i, r := range all {
		want := auditRec(i)
		want.ID = r.ID
		if r != want {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
		if i > 0 && r.ID <= all[i-1].ID {
			t.Fatalf("ids not increasing at %d", i)
		}
	}
	last, err := s.LastAuditID(ctx)
	if err != nil || last != all[total-1].ID {
		t.Fatalf("LastAuditID = %d, %v; want %d", last, err, all[total-1].ID)
	}
	page, err := s.AuditAfter(ctx, all[9].ID, 5)
	if err != nil || len(page) != 5 || page[0].RequestID != "req-10" {
		t.Fatalf("AuditAfter(page) = %+v, %v", page, err)
	}
	since, err := s.AuditSince(ctx, t0.Add(295*time.Second), 100)
	if err != nil || len(since) != 5 || since[0].RequestID != "req-295" {
		t.Fatalf("AuditSince = %d records, %v", len(since), err)
	}
	if n, err := s.PruneAudit(ctx, t0.Add(100*time.Second)); err != nil || n != 100 {
		t.Fatalf("PruneAudit = %d, %v; want 100", n, err)
	}
}

func testAuditRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertAudit(ctx, []store.AuditRecord{auditRec(1)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx err = %v", err)
	}
	if id, _ := s.LastAuditID(ctx); id != 0 {
		t.Errorf("rolled-back audit record is visible (last id %d)", id)
	}
}
