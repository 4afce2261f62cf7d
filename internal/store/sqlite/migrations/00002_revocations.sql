-- +goose Up
-- Append-only log of access-token revocations that every node replays.
CREATE TABLE revocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    issued_before INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);

-- +goose Down
DROP TABLE revocations;
