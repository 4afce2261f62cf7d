-- +goose Up
-- Admin API tokens (kga_...): only the SHA-256 hash is kept.
CREATE TABLE admin_tokens (
    name       TEXT   PRIMARY KEY,
    token_hash BLOB     NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE admin_tokens;
