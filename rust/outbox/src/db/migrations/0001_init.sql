-- Schema version 1: the command queue, its scheduling keys, optimistic ops and the lease.
CREATE TABLE commands (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    mutator         TEXT    NOT NULL,
    mutator_version INTEGER NOT NULL,
    args            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}',
    result          TEXT,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX commands_by_state ON commands(state, next_attempt_at);

CREATE TABLE command_keys (
    key         TEXT    NOT NULL,
    command_seq INTEGER NOT NULL,
    PRIMARY KEY (key, command_seq)
) WITHOUT ROWID;
CREATE INDEX command_keys_by_command ON command_keys(command_seq);

CREATE TABLE pending_ops (
    command_seq INTEGER NOT NULL,
    op_index    INTEGER NOT NULL,
    collection  TEXT    NOT NULL,
    doc_id      TEXT    NOT NULL,
    op          TEXT    NOT NULL,
    patch       TEXT,
    PRIMARY KEY (command_seq, op_index)
) WITHOUT ROWID;
CREATE INDEX pending_ops_by_doc ON pending_ops(collection, doc_id, command_seq);

CREATE TABLE lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    owner      TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
