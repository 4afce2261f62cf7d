-- +goose Up
-- GCRA state of shared rate limits: one theoretical arrival time (Unix µs)
-- per limit and key. ok records whether the last take was admitted, so the
-- single upsert that decides can also report it (RETURNING sees only the
-- new row).
CREATE TABLE rate_limits (
    name TEXT    NOT NULL,
    key  TEXT    NOT NULL,
    tat  BIGINT  NOT NULL,
    ok   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (name, key)
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);

-- Quota counters, one row per limit, key and fixed window (Unix ms).
CREATE TABLE quotas (
    name         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,
    window_end   BIGINT  NOT NULL,
    count        BIGINT  NOT NULL,
    PRIMARY KEY (name, key, window_start)
);
CREATE INDEX quotas_key ON quotas (key);
CREATE INDEX quotas_window_end ON quotas (window_end);

-- Blocks created by auto-block rules (or lifted by an admin); every node
-- polls the active ones.
CREATE TABLE blocks (
    key_kind   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    until      BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (key_kind, key)
);
CREATE INDEX blocks_until ON blocks (until);

-- The audit log. time is Unix ms; latency in µs.
CREATE TABLE audit_log (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       BIGINT  NOT NULL,
    request_id TEXT    NOT NULL DEFAULT '',
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    upstream   TEXT    NOT NULL DEFAULT '',
    route      TEXT    NOT NULL DEFAULT '',
    status     INTEGER NOT NULL DEFAULT 0,
    latency_us BIGINT  NOT NULL DEFAULT 0,
    bytes_in   BIGINT  NOT NULL DEFAULT 0,
    bytes_out  BIGINT  NOT NULL DEFAULT 0,
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log (time);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE blocks;
DROP TABLE quotas;
DROP TABLE rate_limits;
