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
// the number of refresh families revoked; Revoke also counts capability
// tokens.
func RevokeAll(ctx context.Context, st store.Store, rev *Revocations, kind, value string, now time.Time, accessTTL time.Duration) (int, error) {
	r, err := Revoke(ctx, st, rev, kind, value, now, accessTTL)
	return r.Families, err
}

// Revoked counts what Revoke revoked.
type Revoked struct {
	Families     int // refresh families
	Capabilities int // capability tokens (kgc_)
}

// Revoke is RevokeAll reporting capability tokens too: a subject's
// capability tokens (DESIGN.md: a capability "is revoked by `keygate token
// revoke --subject`") and a client's, those it minted, are revoked in the
// same transaction as the families and the revocation log entry. A family
// holds no capability tokens.
func Revoke(ctx context.Context, st store.Store, rev *Revocations, kind, value string, now time.Time, accessTTL time.Duration) (Revoked, error) {
	if value == "" {
		return Revoked{}, errors.New("revoke: empty " + kind)
	}
	entry := store.Revocation{Kind: kind, Value: value, IssuedBefore: now, ExpiresAt: now.Add(accessTTL + revocationSlack), CreatedAt: now}
	var out Revoked
	err := st.WithTx(ctx, func(tx store.Tx) error {
		out = Revoked{}
		switch kind {
		case store.RevokeSubject, store.RevokeClient:
			ff, cf := store.FamilyFilter{Subject: value}, store.CapabilityFilter{Subject: value}
			if kind == store.RevokeClient {
				ff, cf = store.FamilyFilter{ClientID: value}, store.CapabilityFilter{ClientID: value}
			}
			ids, err := tx.RevokeFamilies(ctx, ff, now, "revoked by operator")
			if err != nil {
				return err
			}
			out.Families = len(ids)
			if out.Capabilities, err = tx.RevokeCapabilities(ctx, cf, now); err != nil {
				return err
			}
		case store.RevokeFamily:
			ok, err := tx.RevokeFamily(ctx, value, now, "revoked by operator")
			if err != nil {
				return err
			}
			if ok {
				out.Families = 1
			}
		default:
			return fmt.Errorf("revoke: unknown kind %q", kind)
		}
		return rev.Add(ctx, tx, entry)
	})
	if err != nil {
		return Revoked{}, fmt.Errorf("revoke %s: %w", kind, err)
	}
	rev.Apply(entry)
	return out, nil
}
