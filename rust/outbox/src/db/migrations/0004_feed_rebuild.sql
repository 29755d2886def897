-- Schema version 4: rebuilding the synced state after the server reset its change feed
-- (another epoch, or a cursor past the head: docs/store.md, "Feed resets").
--
-- A rebuild pulls the feed from position zero into this table, page by page, while
-- reads keep serving `synced_docs` with pending ops on top; its last page swaps the
-- result into `synced_docs` in one transaction. `doc` is NULL for a document the new
-- feed deleted. While a rebuild runs, `meta` holds 'rebuild' (its id) and
-- 'rebuild_cursor' (how far it got), so a restarted app or another process continues it.
CREATE TABLE synced_docs_rebuild (
    collection TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
