package ratelimit

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
)

func blockCfg(t testing.TB, name, key, when string, blockFor time.Duration) config.BlockRule {
	t.Helper()
	c, err := config.ParseBlockCondition(when)
	if err != nil {
		t.Fatal(err)
	}
	return config.BlockRule{Name: name, Key: key, When: c, BlockFor: config.Duration(blockFor)}
}

func TestBlocker(t *testing.T) {
	for _, b := range backends[1:] {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			clk := newClock()
			st := b.open(t)
			rules := []config.BlockRule{
				blockCfg(t, "bad-auth", config.KeyIP, "auth_failures > 3 in 5m", 15*time.Minute),
				blockCfg(t, "abusive", config.KeySubject, "limit_hits > 100 in 10m", time.Hour),
			}
			node1 := NewBlocker(rules, st, clk.Now, nil)
			node2 := NewBlocker(rules, st, clk.Now, nil) // shares the database
			if blk, err := node2.Blocked(ctx, "alice", "192.0.2.9"); err != nil || blk != nil {
				t.Fatalf("node2 Blocked before = %v, %v", blk, err)
			}

			ev := Event{Metric: MetricAuthFailures, Subject: "alice", IP: "192.0.2.9"}
			for i := range 3 {
				if fired, err := node1.Record(ctx, ev); err != nil || len(fired) != 0 {
					t.Fatalf("event %d fired %v, %v; want nothing at the threshold", i+1, fired, err)
				}
				clk.Advance(time.Second)
			}
			// Other metrics and keys do not count towards it.
			node1.Record(ctx, Event{Metric: MetricLimitHits, Subject: "alice", IP: "192.0.2.9"})
			node1.Record(ctx, Event{Metric: MetricAuthFailures, IP: "192.0.2.10"})
			node2.Blocked(ctx, "", "") // node2 reloads now, before the block exists
			fired, err := node1.Record(ctx, ev)
			if err != nil || len(fired) != 1 {
				t.Fatalf("4th event fired %v, %v; want one block", fired, err)
			}
			want := store.Block{KeyKind: store.BlockKeyIP, Key: "192.0.2.9", Rule: "bad-auth",
				Until: clk.Now().Add(15 * time.Minute), CreatedAt: clk.Now()}
			if !sameBlock(fired[0], want) {
				t.Fatalf("block = %+v, want %+v", fired[0], want)
			}
			// Enforced at once on node1, for any subject from that ip.
			if blk, err := node1.Blocked(ctx, "bob", "192.0.2.9"); err != nil || blk == nil || blk.Rule != "bad-auth" {
				t.Fatalf("node1 Blocked = %v, %v", blk, err)
			}
			if blk, _ := node1.Blocked(ctx, "alice", "192.0.2.10"); blk != nil {
				t.Fatalf("other ip blocked: %+v", blk)
			}
			// While blocked, events do not create more blocks.
			if fired, _ := node1.Record(ctx, ev); len(fired) != 0 {
				t.Fatalf("event while blocked fired %v", fired)
			}

			// node2 sees it after its poll interval.
			if blk, _ := node2.Blocked(ctx, "bob", "192.0.2.9"); blk != nil {
				t.Fatal("node2 sees the block before its poll")
			}
			clk.Advance(DefaultPollInterval)
			if blk, err := node2.Blocked(ctx, "bob", "192.0.2.9"); err != nil || blk == nil || !sameBlock(*blk, want) {
				t.Fatalf("node2 Blocked after poll = %v, %v", blk, err)
			}
			list, err := node2.ListBlocks(ctx)
			if err != nil || len(list) != 1 || !sameBlock(list[0], want) {
				t.Fatalf("ListBlocks = %+v, %v", list, err)
			}

			// It lifts itself after block_for.
			clk.Advance(15*time.Minute - DefaultPollInterval - time.Millisecond)
			if blk, _ := node2.Blocked(ctx, "", "192.0.2.9"); blk == nil {
				t.Fatal("block lifted early")
			}
			clk.Advance(time.Millisecond)
			for _, n := range []*Blocker{node1, node2} {
				if blk, _ := n.Blocked(ctx, "", "192.0.2.9"); blk != nil {
					t.Fatalf("block not lifted after block_for: %+v", blk)
				}
			}
			if list, _ := node2.ListBlocks(ctx); len(list) != 0 {
				t.Fatalf("ListBlocks after expiry = %+v", list)
			}

			// Unblock lifts at once on the node that does it, and on the
			// others at their next poll.
			for range 4 {
				fired, _ = node1.Record(ctx, ev)
			}
			if len(fired) != 1 {
				t.Fatalf("second block did not fire")
			}
			clk.Advance(DefaultPollInterval)
			if blk, _ := node2.Blocked(ctx, "", "192.0.2.9"); blk == nil {
				t.Fatal("node2 does not see the second block")
			}
			if err := node1.Unblock(ctx, "192.0.2.9"); err != nil {
				t.Fatal(err)
			}
			if blk, _ := node1.Blocked(ctx, "", "192.0.2.9"); blk != nil {
				t.Fatalf("node1 still blocked after Unblock: %+v", blk)
			}
			clk.Advance(DefaultPollInterval)
			if blk, _ := node2.Blocked(ctx, "", "192.0.2.9"); blk != nil {
				t.Fatalf("node2 still blocked after its poll: %+v", blk)
			}
			if err := node1.Unblock(ctx, "192.0.2.9"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Unblock(not blocked) err = %v, want ErrNotFound", err)
			}
		})
	}
}

func sameBlock(a, b store.Block) bool {
	return a.KeyKind == b.KeyKind && a.Key == b.Key && a.Rule == b.Rule && a.Until.Equal(b.Until) && a.CreatedAt.Equal(b.CreatedAt)
}

// The sliding window forgets events older than the window.
func TestBlockerWindow(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	bl := NewBlocker([]config.BlockRule{blockCfg(t, "abusive", config.KeySubject, "limit_hits > 2 in 1m", time.Hour)},
		openSQLite(t), clk.Now, nil)
	ev := Event{Metric: MetricLimitHits, Subject: "alice"}
	for range 20 {
		if fired, err := bl.Record(ctx, ev); err != nil || len(fired) != 0 {
			t.Fatalf("one event a minute fired %v, %v", fired, err)
		}
		clk.Advance(2 * time.Minute)
	}
	for range 2 {
		bl.Record(ctx, ev)
	}
	if fired, _ := bl.Record(ctx, ev); len(fired) != 1 || fired[0].Rule != "abusive" || fired[0].KeyKind != store.BlockKeySubject {
		t.Fatalf("3 events in a minute fired %v", fired)
	}
}

func TestSlidingCount(t *testing.T) {
	start := time.Unix(0, 0)
	var c slidingCount
	c.start = start
	for range 10 {
		c.add(start, time.Minute)
	}
	// Half way into the next window, half of the previous one still counts.
	if got := c.add(start.Add(90*time.Second), time.Minute); got != 6 {
		t.Errorf("estimate = %v, want 10×0.5 + 1", got)
	}
	if got := c.add(start.Add(10*time.Minute), time.Minute); got != 1 {
		t.Errorf("estimate after a long gap = %v, want 1", got)
	}
}
