-- Outbox reference server, PostgreSQL schema version 4: stored rejections.
-- A rejected command's answer is stored under its key, in the transaction that decided
-- it, so a resend under the same key gets the same `rejected` answer and is never applied
-- later. NULL: the command was applied (every record from before this version);
-- 'rejected': `response` holds the rejection, and there is no receipt.

ALTER TABLE idempotency ADD COLUMN IF NOT EXISTS outcome TEXT;
