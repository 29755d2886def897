-- Schema version 2: lanes (one row per scheduling key with unfinished commands, pointing
-- at the lane's head), explicit dependencies, the attempt history, terminal outcomes and
-- the synced side of the document store.
--
-- Scans: command_keys and commands once each (proportional to the queue's size).
ALTER TABLE commands ADD COLUMN outcome TEXT;
ALTER TABLE commands ADD COLUMN finished_at INTEGER;
ALTER TABLE pending_ops ADD COLUMN base_version INTEGER;

CREATE TABLE command_deps (
    command_seq INTEGER NOT NULL,
    depends_on  INTEGER NOT NULL,
    PRIMARY KEY (command_seq, depends_on)
) WITHOUT ROWID;
CREATE INDEX command_deps_by_dep ON command_deps(depends_on);

CREATE TABLE attempts (
    command_seq INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    outcome     TEXT,
    http_status INTEGER,
    error       TEXT,
    PRIMARY KEY (command_seq, attempt)
) WITHOUT ROWID;

-- From v2 on, command_keys holds only unfinished commands.
DELETE FROM command_keys
 WHERE command_seq IN (SELECT seq FROM commands WHERE state IN ('succeeded', 'failed', 'discarded'));

CREATE TABLE lanes (
    key      TEXT    PRIMARY KEY,
    head_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX lanes_by_head ON lanes(head_seq);
INSERT INTO lanes (key, head_seq) SELECT key, MIN(command_seq) FROM command_keys GROUP BY key;

CREATE TABLE synced_docs (
    collection TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT    NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
