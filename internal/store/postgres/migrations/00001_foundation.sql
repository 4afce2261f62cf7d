-- +goose Up
-- Vault: one row per secret version; the value is sealed under a data key,
-- and the data key under a master key version. No plaintext is stored.
CREATE TABLE secrets (
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    master_version INTEGER NOT NULL,
    wrapped_key    BYTEA   NOT NULL,
    ciphertext     BYTEA   NOT NULL,
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (name, version)
);

-- A known plaintext sealed under each master key version, so a wrong master
-- key is reported as such rather than as corrupt data.
CREATE TABLE master_key_checks (
    version     INTEGER PRIMARY KEY,
    check_value BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE counters (
    key   TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);

-- +goose Down
DROP TABLE counters;
DROP TABLE master_key_checks;
DROP TABLE secrets;
