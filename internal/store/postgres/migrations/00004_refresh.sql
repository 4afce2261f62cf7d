-- +goose Up
-- Refresh token families: one row per grant; its tokens rotate beneath it.
CREATE TABLE refresh_families (
    id            TEXT    PRIMARY KEY,
    client_id     TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    dpop_jkt      TEXT    NOT NULL DEFAULT '',
    acr           TEXT    NOT NULL DEFAULT '',
    auth_time     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    revoked_at    BIGINT  NOT NULL DEFAULT 0,
    revoke_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_subject ON refresh_families (subject);
CREATE INDEX refresh_families_client ON refresh_families (client_id);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);

-- Refresh tokens by SHA-256 hash only. rotated_at = 0 marks the live one.
CREATE TABLE refresh_tokens (
    hash            BYTEA   PRIMARY KEY,
    family_id       TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at      BIGINT  NOT NULL,
    idle_expires_at BIGINT  NOT NULL,
    rotated_at      BIGINT  NOT NULL DEFAULT 0,
    successor_hash  BYTEA
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- One-time identifiers (client assertion jti, DPoP proof jti, nonces).
CREATE TABLE replay (
    ns         TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (ns, id)
);
CREATE INDEX replay_expires ON replay (expires_at);

-- +goose Down
DROP TABLE replay;
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
