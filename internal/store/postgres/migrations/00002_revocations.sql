-- +goose Up
-- Append-only log of access-token revocations that every node replays.
CREATE TABLE revocations (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT   NOT NULL,
    value         TEXT   NOT NULL,
    issued_before BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);

-- +goose Down
DROP TABLE revocations;
