-- Schema version 6: what a till needs (docs/engine.md, "Running a till").
--
-- * commands.keys: the command's scheduling keys as a JSON array (empty: the unkeyed
--   lane), kept after it finishes (command_keys only holds unfinished commands). NULL for
--   commands that finished before v6: their keys were already released.
-- * commands.amount: the command's amount for the offline risk limits, read from the
--   field the app names (Config.limits.amount_field); NULL when none.
-- * commands.failed_by: the seq of the command whose failure failed this one
--   (`dependency_failed`), so retrying that command brings this one back.
-- * commands.attempt_base: attempts of earlier rounds (before `retry` gave a fresh
--   budget); history rows are numbered from it, so no round overwrites another.
-- * attempts.idempotency_key: the key each attempt was sent under (`retry` of a failed
--   command sends under a fresh one).
-- * unsynced_totals: count and summed amount of unsynced commands (pending, in_flight,
--   conflict, wedged, failed) per mutator, kept by triggers, so a limit check reads one
--   small table instead of scanning the queue.
-- * commands_unsynced_by_age: the oldest unsynced command in one index probe.
--
-- Scans: commands, command_keys and attempts once each (proportional to their size).
ALTER TABLE commands ADD COLUMN keys TEXT;
ALTER TABLE commands ADD COLUMN amount INTEGER;
ALTER TABLE commands ADD COLUMN failed_by INTEGER;
ALTER TABLE commands ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN idempotency_key TEXT;

UPDATE commands
   SET keys = (SELECT json_group_array(key) FROM
                 (SELECT key FROM command_keys k WHERE k.command_seq = commands.seq AND k.key <> '' ORDER BY key))
 WHERE seq IN (SELECT command_seq FROM command_keys);

-- Before v6 every attempt of a command used its current key (a conflict resolved with new
-- args overwrote the rows of the old key).
UPDATE attempts SET idempotency_key = (SELECT c.idempotency_key FROM commands c WHERE c.seq = attempts.command_seq);

-- A dependant's last_error reads 'dependency_failed: command <uuid> it depends on ...'.
UPDATE commands
   SET failed_by = (SELECT c.seq FROM commands c WHERE c.id = substr(commands.last_error, 28, 36))
 WHERE state = 'failed' AND last_error LIKE 'dependency_failed: command %';

CREATE TABLE unsynced_totals (
    mutator TEXT    PRIMARY KEY,
    count   INTEGER NOT NULL,
    amount  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO unsynced_totals (mutator, count, amount)
SELECT mutator, COUNT(*), COALESCE(SUM(amount), 0) FROM commands
 WHERE state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed') GROUP BY mutator;

CREATE TRIGGER unsynced_totals_on_insert AFTER INSERT ON commands
  WHEN NEW.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed')
BEGIN
  INSERT INTO unsynced_totals (mutator, count, amount) VALUES (NEW.mutator, 1, COALESCE(NEW.amount, 0))
    ON CONFLICT (mutator) DO UPDATE SET count = count + 1, amount = amount + excluded.amount;
END;

CREATE TRIGGER unsynced_totals_on_update AFTER UPDATE OF state, amount ON commands
  WHEN (OLD.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed'))
         <> (NEW.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed'))
    OR (NEW.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed') AND OLD.amount IS NOT NEW.amount)
BEGIN
  UPDATE unsynced_totals SET count = count - 1, amount = amount - COALESCE(OLD.amount, 0)
   WHERE mutator = OLD.mutator AND OLD.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed');
  INSERT INTO unsynced_totals (mutator, count, amount)
  SELECT NEW.mutator, 1, COALESCE(NEW.amount, 0)
   WHERE NEW.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed')
    ON CONFLICT (mutator) DO UPDATE SET count = count + 1, amount = amount + excluded.amount;
END;

CREATE TRIGGER unsynced_totals_on_delete AFTER DELETE ON commands
  WHEN OLD.state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed')
BEGIN
  UPDATE unsynced_totals SET count = count - 1, amount = amount - COALESCE(OLD.amount, 0)
   WHERE mutator = OLD.mutator;
END;

CREATE INDEX commands_unsynced_by_age ON commands(created_at)
 WHERE state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed');
