-- Outbox reference server, PostgreSQL schema version 1: the SQLite schema with
-- PostgreSQL types. Documents and stored results are JSON text, byte for byte what the
-- server wrote (not jsonb, which would reorder keys).

CREATE TABLE tokens (
    token   TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);

-- One row per workspace. `head_seq` is the change-log head; every transaction that
-- appends to the change log locks this row first and holds it until commit, so
-- sequence numbers are handed out in commit order (docs/server.md).
CREATE TABLE workspaces (
    id       TEXT PRIMARY KEY,
    head_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE members (
    workspace TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (workspace, user_id)
);

CREATE TABLE docs (
    workspace  TEXT NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    doc        TEXT,
    PRIMARY KEY (workspace, collection, id)
);

CREATE TABLE changes (
    workspace  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    doc        TEXT,
    PRIMARY KEY (workspace, seq)
);

-- The exactly-once guarantee across nodes: a command claims its key by inserting this
-- row first. A second node inserting the same key waits on the constraint until the
-- first commits (then it answers `duplicate` with `response`) or rolls back (then it
-- applies the command itself). `response` is filled in before the claim commits.
CREATE TABLE idempotency (
    workspace       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    command_id      TEXT NOT NULL,
    response        TEXT,
    CONSTRAINT idempotency_once UNIQUE (workspace, user_id, idempotency_key)
);

CREATE TABLE apply_log (
    n               BIGSERIAL PRIMARY KEY,
    workspace       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    command_id      TEXT NOT NULL,
    mutator         TEXT NOT NULL,
    keys            TEXT NOT NULL,
    server_seq      BIGINT NOT NULL
);
