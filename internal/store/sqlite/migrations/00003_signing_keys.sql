-- +goose Up
-- Signing key metadata; the private keys are vault secrets (vault_name).
-- The partial unique index admits one current and one next key at most, so
-- nodes starting or rotating together cannot both create or promote one.
CREATE TABLE signing_keys (
    kid          TEXT    PRIMARY KEY,
    alg          TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    vault_name   TEXT    NOT NULL,
    public_jwk   BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER NOT NULL DEFAULT 0,
    retired_at   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_one_per_state ON signing_keys (state) WHERE state IN ('next', 'current');

-- +goose Down
DROP TABLE signing_keys;
