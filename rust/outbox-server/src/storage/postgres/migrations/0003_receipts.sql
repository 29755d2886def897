-- Outbox reference server, PostgreSQL schema version 3: receipts.
-- The server time (Unix milliseconds) a command was applied, written with its stored
-- response and answered again for duplicates and by `GET /v1/commands/{key}`. Records
-- from before this version keep NULL: their time was never recorded.
-- (Version 2 is the server epoch; the runner applies every step not yet recorded, so
-- the numbers may land in either order.)

ALTER TABLE idempotency ADD COLUMN IF NOT EXISTS applied_at BIGINT;
