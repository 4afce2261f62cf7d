-- +goose Up
-- Capability tokens (kgc_...) by SHA-256 hash only. uses counts forwarded
-- requests; it only ever grows, by one conditional UPDATE per request.
CREATE TABLE capabilities (
    id         TEXT    PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    upstream   TEXT    NOT NULL DEFAULT '',
    max_uses   INTEGER NOT NULL CHECK (max_uses > 0),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    dpop_jkt   TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX capabilities_subject ON capabilities (subject);
CREATE INDEX capabilities_client ON capabilities (client_id);
CREATE INDEX capabilities_expires ON capabilities (expires_at);

-- +goose Down
DROP TABLE capabilities;
