package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/audit"
)

// Bounds of `keygate audit tail`.
const (
	defaultTailLimit   = 100
	maxTailLimit       = 10000
	followPollInterval = time.Second
)

func (g *globals) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "the audit log"}
	var follow bool
	var since string
	var limit int
	tail := &cobra.Command{
		Use:   "tail",
		Short: "print recent audit records as JSON lines; -f keeps printing new ones",
		Long: `Prints the last --limit audit records, oldest first, one JSON object a line.
With --since (a duration such as 15m, or an RFC 3339 time) it prints up to --limit
records from that time on instead. With -f it then polls for new records until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > maxTailLimit {
				return fmt.Errorf("--limit must be between 1 and %d", maxTailLimit)
			}
			var from time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				from = t
			}
			ctx := cmd.Context()
			o, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer o.Close()
			last, err := o.store.LastAuditID(ctx)
			if err != nil {
				return fmt.Errorf("audit tail: %w", err)
			}
			var recs []audit.Record
			if since != "" {
				recs, err = audit.Tail(ctx, o.store, from, limit)
			} else {
				recs, err = o.store.AuditAfter(ctx, max(last-int64(limit), 0), limit)
			}
			if err != nil {
				return fmt.Errorf("audit tail: %w", err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, r := range recs {
				if err := enc.Encode(r); err != nil {
					return err
				}
				last = max(last, r.ID)
			}
			if !follow {
				return nil
			}
			// Follow returns nil when ctx is cancelled (Ctrl-C).
			return audit.Follow(ctx, o.store, last, followPollInterval, func(r audit.Record) error { return enc.Encode(r) })
		},
	}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records until interrupted")
	tail.Flags().StringVar(&since, "since", "", "start at this time: a duration ago (15m, 24h) or an RFC 3339 time")
	tail.Flags().IntVar(&limit, "limit", defaultTailLimit, "most records printed before following")
	cmd.AddCommand(tail)
	return cmd
}

// parseSince reads --since: a Go duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("--since: a duration must not be negative")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (15m) or an RFC 3339 time", s)
}
