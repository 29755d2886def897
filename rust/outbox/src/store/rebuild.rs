//! Rebuilding the synced state after the server reset its change feed.
//!
//! A server answers a pull with a cursor reset when the cursor comes from another epoch
//! (the server's database was recreated) or is past the head (it was restored from a
//! backup). What the device holds in `synced_docs` may then contain versions the server
//! no longer has, and the feed positions after the cursor are not the ones it skipped.
//! The only safe course is to read the whole feed again, from position zero.
//!
//! Reads must not notice, so nothing is taken away first:
//!
//! 1. [`begin`] empties the staging table `synced_docs_rebuild` and records a rebuild id
//!    in `meta` ('rebuild'), without touching `synced_docs`.
//! 2. Each page is [`stage`]d into the staging table, with its cursor ('rebuild_cursor'),
//!    in one transaction. Reads keep serving the old synced state with every pending op
//!    on top. A restarted app, or another process on the same file, continues from the
//!    recorded cursor.
//! 3. The last page [`finish`]es: in one transaction it swaps the staged state into
//!    `synced_docs` (rows the new feed does not have are deleted, changed rows replaced,
//!    unchanged rows left alone), writes the new feed cursor and ends the rebuild. A read
//!    sees the old state or the new one, never an empty or half-built store; pending ops
//!    apply on top of both.
//!
//! While a rebuild runs, versions that arrive in command responses are written to the
//! staging table too ([`mirror`]), so the swap does not move a document back behind what
//! a command just reported.
//!
//! Every step checks that the rebuild id it was started with is still the current one: a
//! second reset restarts the rebuild (new id, empty staging), and a wipe ends it; a step
//! of the old one then does nothing.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::Result;
use crate::transport::DocChange;

/// A rebuild in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rebuild {
    /// Distinguishes this rebuild from a later restart of it.
    pub(crate) id: String,
    /// Where the next page continues (`None`: from position zero).
    pub(crate) cursor: Option<String>,
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?)
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// The rebuild in progress, if any.
pub(crate) fn current(conn: &Connection) -> Result<Option<Rebuild>> {
    let Some(id) = meta(conn, "rebuild")? else { return Ok(None) };
    Ok(Some(Rebuild { id, cursor: meta(conn, "rebuild_cursor")? }))
}

/// Starts a rebuild from position zero, or restarts the one in progress. `synced_docs`
/// is not touched.
pub(crate) fn begin(tx: &Transaction<'_>) -> Result<Rebuild> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute("DELETE FROM synced_docs_rebuild", [])?;
    tx.execute("DELETE FROM meta WHERE key = 'rebuild_cursor'", [])?;
    set_meta(tx, "rebuild", &id)?;
    Ok(Rebuild { id, cursor: None })
}

/// Ends any rebuild without swapping (wipe).
pub(crate) fn abandon(tx: &Transaction<'_>) -> Result<()> {
    tx.execute("DELETE FROM synced_docs_rebuild", [])?;
    tx.execute("DELETE FROM meta WHERE key IN ('rebuild', 'rebuild_cursor')", [])?;
    Ok(())
}

fn is_current(tx: &Transaction<'_>, id: &str) -> Result<bool> {
    Ok(meta(tx, "rebuild")?.as_deref() == Some(id))
}

/// Upserts `changes` into the staging table; within one feed versions only grow, so an
/// older version never replaces a newer one.
fn upsert_staged(tx: &Transaction<'_>, changes: &[DocChange]) -> Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO synced_docs_rebuild (collection, id, version, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc
         WHERE excluded.version >= synced_docs_rebuild.version",
    )?;
    for c in changes {
        upsert.execute(params![c.collection, c.id, c.version, c.doc.as_ref().map(|d| d.to_string())])?;
    }
    Ok(())
}

/// Stages one page of rebuild `id` and records `cursor`. `false` when `id` is no longer
/// the current rebuild (restarted or wiped meanwhile): nothing was written.
pub(crate) fn stage(tx: &Transaction<'_>, id: &str, changes: &[DocChange], cursor: &str) -> Result<bool> {
    if !is_current(tx, id)? {
        return Ok(false);
    }
    upsert_staged(tx, changes)?;
    set_meta(tx, "rebuild_cursor", cursor)?;
    Ok(true)
}

/// Writes versions a command response reported into the staging table too, when a
/// rebuild is in progress (called with every [`super::apply_changes`]).
pub(crate) fn mirror(tx: &Transaction<'_>, changes: &[DocChange]) -> Result<()> {
    if changes.is_empty() || meta(tx, "rebuild")?.is_none() {
        return Ok(());
    }
    upsert_staged(tx, changes)
}

/// Swaps the staged state of rebuild `id` into `synced_docs`, stores `cursor` as the feed
/// cursor and ends the rebuild, all in `tx`. Returns the collections whose synced
/// documents changed, or `None` when `id` is no longer current (nothing was written).
pub(crate) fn finish(tx: &Transaction<'_>, id: &str, cursor: &str) -> Result<Option<BTreeSet<String>>> {
    if !is_current(tx, id)? {
        return Ok(None);
    }
    let mut collections = BTreeSet::new();
    {
        let mut stmt = tx.prepare(
            "SELECT DISTINCT s.collection FROM synced_docs s
              WHERE NOT EXISTS (SELECT 1 FROM synced_docs_rebuild r
                                 WHERE r.collection = s.collection AND r.id = s.id AND r.doc IS NOT NULL)
             UNION
             SELECT DISTINCT r.collection FROM synced_docs_rebuild r
               LEFT JOIN synced_docs s ON s.collection = r.collection AND s.id = r.id
              WHERE r.doc IS NOT NULL AND (s.id IS NULL OR s.version != r.version OR s.doc != r.doc)",
        )?;
        for c in stmt.query_map([], |r| r.get::<_, String>(0))? {
            collections.insert(c?);
        }
    }
    tx.execute_batch(
        "DELETE FROM synced_docs WHERE NOT EXISTS
           (SELECT 1 FROM synced_docs_rebuild r
             WHERE r.collection = synced_docs.collection AND r.id = synced_docs.id AND r.doc IS NOT NULL);
         INSERT INTO synced_docs (collection, id, version, doc)
           SELECT collection, id, version, doc FROM synced_docs_rebuild WHERE doc IS NOT NULL
           ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc
           WHERE synced_docs.version != excluded.version OR synced_docs.doc != excluded.doc;",
    )?;
    abandon(tx)?;
    set_meta(tx, "pull_cursor", cursor)?;
    Ok(Some(collections))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        conn
    }

    fn change(id: &str, version: i64, doc: Option<serde_json::Value>) -> DocChange {
        DocChange { collection: "notes".into(), id: id.into(), version, doc }
    }

    fn synced(conn: &Connection) -> Vec<(String, i64, String)> {
        let mut stmt = conn.prepare("SELECT id, version, doc FROM synced_docs ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn staged_pages_replace_synced_state_only_at_the_end() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        crate::store::apply_changes(
            &tx,
            None,
            &[
                change("a", 7, Some(json!({"v": "old"}))),
                change("gone", 3, Some(json!({}))),
                change("same", 1, Some(json!({}))),
            ],
        )
        .unwrap();
        let r = begin(&tx).unwrap();
        assert!(stage(&tx, &r.id, &[change("a", 1, Some(json!({"v": 1}))), change("same", 1, Some(json!({})))], "e.2")
            .unwrap());
        assert!(stage(&tx, &r.id, &[change("a", 2, Some(json!({"v": 2}))), change("b", 1, None)], "e.4").unwrap());
        // Nothing visible has changed yet.
        assert_eq!(synced(&tx).len(), 3);
        assert_eq!(current(&tx).unwrap(), Some(Rebuild { id: r.id.clone(), cursor: Some("e.4".into()) }));
        let changed = finish(&tx, &r.id, "e.4").unwrap().unwrap();
        assert_eq!(changed, BTreeSet::from(["notes".to_string()]));
        assert_eq!(synced(&tx), vec![("a".into(), 2, r#"{"v":2}"#.into()), ("same".into(), 1, "{}".into())]);
        assert_eq!(current(&tx).unwrap(), None);
        assert_eq!(meta(&tx, "pull_cursor").unwrap().as_deref(), Some("e.4"));
    }

    #[test]
    fn a_restarted_rebuild_ignores_the_old_one() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        let old = begin(&tx).unwrap();
        assert!(stage(&tx, &old.id, &[change("x", 1, Some(json!({})))], "e.1").unwrap());
        let new = begin(&tx).unwrap();
        assert!(!stage(&tx, &old.id, &[change("y", 1, Some(json!({})))], "e.2").unwrap());
        assert_eq!(finish(&tx, &old.id, "e.2").unwrap(), None);
        assert_eq!(finish(&tx, &new.id, "f.0").unwrap(), Some(BTreeSet::new()));
        assert!(synced(&tx).is_empty(), "the old rebuild's page was dropped with it");
    }
}
