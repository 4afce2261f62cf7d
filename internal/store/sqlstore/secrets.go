package sqlstore

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/internal/store"
)

func (s *Store) InsertSecretVersion(ctx context.Context, v store.SecretVersion) error {
	_, err := s.exec(ctx, `INSERT INTO secrets (name, version, master_version, wrapped_key, ciphertext, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, v.Name, v.Version, v.MasterVersion, v.WrappedKey, v.Ciphertext, ms(v.CreatedAt))
	return s.wrap("insert secret version", err)
}

const secretCols = `name, version, master_version, wrapped_key, ciphertext, created_at`

func scanSecret(sc interface{ Scan(...any) error }) (store.SecretVersion, error) {
	var v store.SecretVersion
	var created int64
	err := sc.Scan(&v.Name, &v.Version, &v.MasterVersion, &v.WrappedKey, &v.Ciphertext, &created)
	v.CreatedAt = fromMS(created)
	return v, err
}

func (s *Store) LatestSecretVersion(ctx context.Context, name string) (store.SecretVersion, error) {
	v, err := scanSecret(s.queryRow(ctx, `SELECT `+secretCols+` FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1`, name))
	return v, s.wrap("latest secret version", err)
}

func (s *Store) SecretVersion(ctx context.Context, name string, version int) (store.SecretVersion, error) {
	v, err := scanSecret(s.queryRow(ctx, `SELECT `+secretCols+` FROM secrets WHERE name = ? AND version = ?`, name, version))
	return v, s.wrap("secret version", err)
}

func (s *Store) ListSecrets(ctx context.Context) ([]store.SecretInfo, error) {
	rows, err := s.query(ctx, `SELECT name, COUNT(*), MAX(version), MIN(created_at), MAX(created_at) FROM secrets GROUP BY name ORDER BY name`)
	if err != nil {
		return nil, s.wrap("list secrets", err)
	}
	defer rows.Close()
	var out []store.SecretInfo
	for rows.Next() {
		var in store.SecretInfo
		var created, updated int64
		if err := rows.Scan(&in.Name, &in.Versions, &in.Latest, &created, &updated); err != nil {
			return nil, s.wrap("list secrets", err)
		}
		in.CreatedAt, in.UpdatedAt = fromMS(created), fromMS(updated)
		out = append(out, in)
	}
	return out, s.wrap("list secrets", rows.Err())
}

func (s *Store) DeleteSecret(ctx context.Context, name string) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM secrets WHERE name = ?`, name)
	if err != nil {
		return 0, s.wrap("delete secret", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("delete secret", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("delete secret: %w", store.ErrNotFound)
	}
	return int(n), nil
}

func (s *Store) AllSecretVersions(ctx context.Context) ([]store.SecretVersion, error) {
	rows, err := s.query(ctx, `SELECT `+secretCols+` FROM secrets ORDER BY name, version`)
	if err != nil {
		return nil, s.wrap("all secret versions", err)
	}
	defer rows.Close()
	var out []store.SecretVersion
	for rows.Next() {
		v, err := scanSecret(rows)
		if err != nil {
			return nil, s.wrap("all secret versions", err)
		}
		out = append(out, v)
	}
	return out, s.wrap("all secret versions", rows.Err())
}

func (s *Store) RewrapSecretVersion(ctx context.Context, name string, version, masterVersion int, wrappedKey []byte) error {
	res, err := s.exec(ctx, `UPDATE secrets SET master_version = ?, wrapped_key = ? WHERE name = ? AND version = ?`,
		masterVersion, wrappedKey, name, version)
	if err != nil {
		return s.wrap("rewrap secret version", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("rewrap secret version: %w", store.ErrNotFound)
	}
	return nil
}

func (s *Store) PutMasterKeyCheck(ctx context.Context, c store.MasterKeyCheck) error {
	_, err := s.exec(ctx, `INSERT INTO master_key_checks (version, check_value, created_at) VALUES (?, ?, ?)`,
		c.Version, c.Check, ms(c.CreatedAt))
	return s.wrap("put master key check", err)
}

func (s *Store) MasterKeyChecks(ctx context.Context) ([]store.MasterKeyCheck, error) {
	rows, err := s.query(ctx, `SELECT version, check_value, created_at FROM master_key_checks ORDER BY version`)
	if err != nil {
		return nil, s.wrap("master key checks", err)
	}
	defer rows.Close()
	var out []store.MasterKeyCheck
	for rows.Next() {
		var c store.MasterKeyCheck
		var created int64
		if err := rows.Scan(&c.Version, &c.Check, &created); err != nil {
			return nil, s.wrap("master key checks", err)
		}
		c.CreatedAt = fromMS(created)
		out = append(out, c)
	}
	return out, s.wrap("master key checks", rows.Err())
}

func (s *Store) DeleteMasterKeyCheck(ctx context.Context, version int) error {
	_, err := s.exec(ctx, `DELETE FROM master_key_checks WHERE version = ?`, version)
	return s.wrap("delete master key check", err)
}

// AddCounter is one statement on both backends: an upsert that returns the
// new value, so concurrent adders never lose an update.
func (s *Store) AddCounter(ctx context.Context, key string, delta int64) (int64, error) {
	var v int64
	err := s.queryRow(ctx, `INSERT INTO counters (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = counters.value + excluded.value
		RETURNING value`, key, delta).Scan(&v)
	return v, s.wrap("add counter", err)
}

func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	var v int64
	err := s.queryRow(ctx, `SELECT value FROM counters WHERE key = ?`, key).Scan(&v)
	if err != nil {
		if err := s.wrap("counter", err); store.IsNotFound(err) {
			return 0, nil
		}
		return 0, s.wrap("counter", err)
	}
	return v, nil
}
