package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/store"
)

const familyCols = `id, client_id, subject, scope, dpop_jkt, acr, auth_time, created_at, expires_at, revoked_at, revoke_reason`

func scanFamily(sc interface{ Scan(...any) error }) (store.RefreshFamily, error) {
	var f store.RefreshFamily
	var created, expires, revoked int64
	err := sc.Scan(&f.ID, &f.ClientID, &f.Subject, &f.Scope, &f.DPoPJKT, &f.ACR, &f.AuthTime,
		&created, &expires, &revoked, &f.RevokeReason)
	f.CreatedAt, f.ExpiresAt, f.RevokedAt = fromMS(created), fromMS(expires), fromMS(revoked)
	return f, err
}

func (s *Store) CreateFamily(ctx context.Context, f store.RefreshFamily) error {
	_, err := s.exec(ctx, `INSERT INTO refresh_families (`+familyCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.ClientID, f.Subject, f.Scope, f.DPoPJKT, f.ACR, f.AuthTime,
		ms(f.CreatedAt), ms(f.ExpiresAt), ms(f.RevokedAt), f.RevokeReason)
	return s.wrap("create refresh family", err)
}

func (s *Store) Family(ctx context.Context, id string) (store.RefreshFamily, error) {
	f, err := scanFamily(s.queryRow(ctx, `SELECT `+familyCols+` FROM refresh_families WHERE id = ?`, id))
	return f, s.wrap("refresh family", err)
}

func (s *Store) ListFamilies(ctx context.Context, subject string) ([]store.RefreshFamily, error) {
	rows, err := s.query(ctx, `SELECT `+familyCols+` FROM refresh_families WHERE subject = ? ORDER BY created_at, id`, subject)
	if err != nil {
		return nil, s.wrap("list refresh families", err)
	}
	defer rows.Close()
	var out []store.RefreshFamily
	for rows.Next() {
		f, err := scanFamily(rows)
		if err != nil {
			return nil, s.wrap("list refresh families", err)
		}
		out = append(out, f)
	}
	return out, s.wrap("list refresh families", rows.Err())
}

const tokenCols = `hash, family_id, created_at, idle_expires_at, rotated_at, successor_hash`

func scanToken(sc interface{ Scan(...any) error }) (store.RefreshToken, error) {
	var t store.RefreshToken
	var created, idle, rotated int64
	err := sc.Scan(&t.Hash, &t.FamilyID, &created, &idle, &rotated, &t.SuccessorHash)
	t.CreatedAt, t.IdleExpiresAt, t.RotatedAt = fromMS(created), fromMS(idle), fromMS(rotated)
	return t, err
}

func (s *Store) InsertRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if len(t.Hash) == 0 {
		return errors.New("insert refresh token: empty hash")
	}
	var successor any // NULL rather than an empty blob
	if len(t.SuccessorHash) > 0 {
		successor = t.SuccessorHash
	}
	_, err := s.exec(ctx, `INSERT INTO refresh_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Hash, t.FamilyID, ms(t.CreatedAt), ms(t.IdleExpiresAt), ms(t.RotatedAt), successor)
	return s.wrap("insert refresh token", err)
}

func (s *Store) RefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM refresh_tokens WHERE hash = ?`, hash))
	return t, s.wrap("refresh token", err)
}

func (s *Store) FamilyTokens(ctx context.Context, familyID string) ([]store.RefreshToken, error) {
	rows, err := s.query(ctx, `SELECT `+tokenCols+` FROM refresh_tokens WHERE family_id = ? ORDER BY created_at, hash`, familyID)
	if err != nil {
		return nil, s.wrap("family tokens", err)
	}
	defer rows.Close()
	var out []store.RefreshToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, s.wrap("family tokens", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("family tokens", rows.Err())
}

// RotateRefreshToken is one conditional UPDATE. On PostgreSQL a second
// racing UPDATE waits for the first to commit and then re-evaluates the
// WHERE clause against the new row (READ COMMITTED), finding rotated_at
// set; on SQLite writers are serialised. Either way one caller wins.
func (s *Store) RotateRefreshToken(ctx context.Context, hash, successor []byte, at time.Time) (bool, error) {
	if at.IsZero() || len(successor) == 0 {
		return false, errors.New("rotate refresh token: zero time or empty successor")
	}
	res, err := s.exec(ctx, `UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ?
		WHERE hash = ? AND rotated_at = 0
		AND family_id IN (SELECT id FROM refresh_families WHERE revoked_at = 0)`,
		ms(at), successor, hash)
	if err != nil {
		return false, s.wrap("rotate refresh token", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("rotate refresh token", err)
	}
	return n == 1, nil
}

func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE refresh_families SET revoked_at = ?, revoke_reason = ?
		WHERE id = ? AND revoked_at = 0`, ms(at), reason, id)
	if err != nil {
		return false, s.wrap("revoke refresh family", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("revoke refresh family", err)
	}
	return n == 1, nil
}

func (s *Store) RevokeFamilies(ctx context.Context, f store.FamilyFilter, at time.Time, reason string) ([]string, error) {
	if f.Subject == "" && f.ClientID == "" {
		return nil, errors.New("revoke refresh families: empty filter")
	}
	// An empty filter field matches every row: ? = '' short-circuits it.
	rows, err := s.query(ctx, `UPDATE refresh_families SET revoked_at = ?, revoke_reason = ?
		WHERE revoked_at = 0 AND (CAST(? AS TEXT) = '' OR subject = ?) AND (CAST(? AS TEXT) = '' OR client_id = ?)
		RETURNING id`, ms(at), reason, f.Subject, f.Subject, f.ClientID, f.ClientID)
	if err != nil {
		return nil, s.wrap("revoke refresh families", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("revoke refresh families", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("revoke refresh families", err)
	}
	return ids, nil
}

func (s *Store) PruneRefresh(ctx context.Context, before time.Time) (int, error) {
	// Tokens go first: the foreign key cascade does the same, but only
	// where the SQLite connection enables foreign keys.
	if _, err := s.exec(ctx, `DELETE FROM refresh_tokens WHERE family_id IN
		(SELECT id FROM refresh_families WHERE expires_at < ?)`, ms(before)); err != nil {
		return 0, s.wrap("prune refresh tokens", err)
	}
	res, err := s.exec(ctx, `DELETE FROM refresh_families WHERE expires_at < ?`, ms(before))
	if err != nil {
		return 0, s.wrap("prune refresh families", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune refresh families: %w", err)
	}
	return int(n), nil
}
