-- Outbox reference server, PostgreSQL schema version 2: the database's epoch.
--
-- Key 'epoch' holds a random id (UUID v7) that feed cursors carry (docs/protocol.md §4).
-- It is inserted by the first node that connects after this step (ON CONFLICT DO NOTHING,
-- so nodes starting together agree on one) and never changed. A logical backup restores
-- this row with the rest, so a restored database keeps its epoch; clients then notice the
-- restore because their cursors are past the head.
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
