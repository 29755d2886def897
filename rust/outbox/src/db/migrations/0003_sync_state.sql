-- Schema version 3: the store's sync bookkeeping and the database's scope.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE collection_sync (
    collection     TEXT    PRIMARY KEY,
    last_synced_at INTEGER NOT NULL
) WITHOUT ROWID;
