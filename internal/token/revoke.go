package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/store"
)

// revocationSlack keeps a revocation entry a little past the last moment a
// token it covers could still be accepted (expiry plus verifier skew).
const revocationSlack = time.Minute

// RevokeAll revokes, at once, everything a subject, client or refresh
// family holds: matching refresh families are marked revoked and an entry
// in the revocation log refuses their live access tokens on every node. It
// is what `keygate token revoke` and the admin API call. kind is
// store.RevokeSubject, store.RevokeClient or store.RevokeFamily. It returns
// the number of refresh families revoked.
func RevokeAll(ctx context.Context, st store.Store, rev *Revocations, kind, value string, now time.Time, accessTTL time.Duration) (int, error) {
	if value == "" {
		return 0, errors.New("revoke: empty " + kind)
	}
	entry := store.Revocation{Kind: kind, Value: value, IssuedBefore: now, ExpiresAt: now.Add(accessTTL + revocationSlack), CreatedAt: now}
	var n int
	err := st.WithTx(ctx, func(tx store.Tx) error {
		switch kind {
		case store.RevokeSubject:
			ids, err := tx.RevokeFamilies(ctx, store.FamilyFilter{Subject: value}, now, "revoked by operator")
			n = len(ids)
			if err != nil {
				return err
			}
		case store.RevokeClient:
			ids, err := tx.RevokeFamilies(ctx, store.FamilyFilter{ClientID: value}, now, "revoked by operator")
			n = len(ids)
			if err != nil {
				return err
			}
		case store.RevokeFamily:
			ok, err := tx.RevokeFamily(ctx, value, now, "revoked by operator")
			if err != nil {
				return err
			}
			if ok {
				n = 1
			}
		default:
			return fmt.Errorf("revoke: unknown kind %q", kind)
		}
		return rev.Add(ctx, tx, entry)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke %s: %w", kind, err)
	}
	rev.Apply(entry)
	return n, nil
}
