//! Writing the store: optimistic ops at enqueue, server versions on success and pull,
//! rollback on discard.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use crate::command::{OpKind, OptimisticOp};
use crate::error::{Error, Result};
use crate::transport::DocChange;

/// Checks an op before anything is written.
pub(crate) fn validate_op(op: &OptimisticOp) -> Result<()> {
    if op.collection.is_empty() || op.id.is_empty() {
        return Err(Error::InvalidRequest { reason: "optimistic ops need a collection and an id".into() });
    }
    match &op.kind {
        OpKind::Insert(v) | OpKind::Patch(v) if !v.is_object() => Err(Error::InvalidRequest {
            reason: format!("{} op on {}:{} needs a JSON object", op.kind.as_str(), op.collection, op.id),
        }),
        _ => Ok(()),
    }
}

/// Writes a command's ops, recording the synced version each one is based on.
pub(crate) fn write_ops(tx: &Transaction<'_>, seq: i64, ops: &[OptimisticOp]) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut version = tx.prepare_cached("SELECT version FROM synced_docs WHERE collection = ?1 AND id = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO pending_ops (command_seq, op_index, collection, doc_id, op, patch, base_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (i, op) in ops.iter().enumerate() {
        let base: Option<i64> = version.query_row(params![op.collection, op.id], |r| r.get(0)).optional()?;
        let patch = match &op.kind {
            OpKind::Insert(v) | OpKind::Patch(v) => Some(v.to_string()),
            OpKind::Delete => None,
        };
        insert.execute(params![seq, i as i64, op.collection, op.id, op.kind.as_str(), patch, base])?;
    }
    Ok(())
}

/// Removes a command's ops (discard): the documents fall back to their synced state.
pub(crate) fn rollback_ops(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    tx.execute("DELETE FROM pending_ops WHERE command_seq = ?1", params![seq])?;
    Ok(())
}

/// Moves one command's ops behind another's (squashing commands into one).
pub(crate) fn move_ops(tx: &Transaction<'_>, from_seq: i64, to_seq: i64) -> Result<()> {
    let offset: i64 = tx.query_row(
        "SELECT COALESCE(MAX(op_index) + 1, 0) FROM pending_ops WHERE command_seq = ?1",
        params![to_seq],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE pending_ops SET command_seq = ?2, op_index = op_index + ?3 WHERE command_seq = ?1",
        params![from_seq, to_seq, offset],
    )?;
    Ok(())
}

/// The pending base versions of every command in `seqs` (a JSON array), by seq.
pub(crate) const BASE_VERSIONS_SQL: &str = "SELECT command_seq, collection, doc_id, base_version FROM pending_ops
      WHERE command_seq IN (SELECT value FROM json_each(?1)) AND base_version IS NOT NULL";

/// The base versions of the ops of every command in `seqs` (a JSON array of seqs), as
/// `{"collection:id": version}` by seq, in one statement.
pub(crate) fn base_versions_of(
    tx: &Transaction<'_>,
    seqs: &str,
) -> Result<HashMap<i64, serde_json::Map<String, Value>>> {
    let mut out: HashMap<i64, serde_json::Map<String, Value>> = HashMap::new();
    let mut stmt = tx.prepare_cached(BASE_VERSIONS_SQL)?;
    let mut rows = stmt.query(params![seqs])?;
    while let Some(r) = rows.next()? {
        let (seq, collection, id, version): (i64, String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        out.entry(seq).or_default().insert(format!("{collection}:{id}"), Value::from(version));
    }
    Ok(out)
}

/// Stores server versions of documents (never moving a document back to an older
/// version) and, for an applied command (`seq`), retires its ops on the documents it
/// received, in the same transaction: the view goes from "local change on top of the old
/// version" to "the server's new version" without showing anything in between.
///
/// An op is retired only when the version received was stored (or a newer one was
/// already there). A response older than the stored version can also mean the server
/// went back (restored from a backup) before the engine noticed: the op then stays on top
/// until the next complete pull or feed rebuild retires it, so the change never
/// disappears behind a version the server no longer has. While a feed rebuild runs, the
/// versions are staged for it as well ([`super::rebuild::mirror`]).
pub(crate) fn apply_changes(tx: &Transaction<'_>, seq: Option<i64>, changes: &[DocChange]) -> Result<()> {
    let mut current = tx.prepare_cached("SELECT version FROM synced_docs WHERE collection = ?1 AND id = ?2")?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO synced_docs (collection, id, version, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM synced_docs WHERE collection = ?1 AND id = ?2")?;
    let mut retire =
        tx.prepare_cached("DELETE FROM pending_ops WHERE command_seq = ?1 AND collection = ?2 AND doc_id = ?3")?;
    for change in changes {
        let have: Option<i64> = current.query_row(params![change.collection, change.id], |r| r.get(0)).optional()?;
        let stored = have.is_none_or(|v| v <= change.version);
        // A version names one state of the document on the server: the same version is
        // not written again. (A register pulls back what its own drain just handed off.)
        let newer = have.is_none_or(|v| v < change.version);
        match &change.doc {
            Some(doc) if newer => {
                upsert.execute(params![change.collection, change.id, change.version, doc.to_string()])?;
            }
            None if stored => {
                delete.execute(params![change.collection, change.id])?;
            }
            _ => {}
        }
        if let (Some(seq), true) = (seq, stored) {
            retire.execute(params![seq, change.collection, change.id])?;
        }
    }
    super::rebuild::mirror(tx, changes)?;
    Ok(())
}

/// The changes of `changes` that land on a document command `seq` has an optimistic op
/// on (storing them retires that op, so they take about the room the op gave back).
pub(crate) fn changes_replacing_ops(tx: &Transaction<'_>, seq: i64, changes: Vec<DocChange>) -> Result<Vec<DocChange>> {
    let mut has_op =
        tx.prepare_cached("SELECT 1 FROM pending_ops WHERE command_seq = ?1 AND collection = ?2 AND doc_id = ?3")?;
    let mut kept = Vec::new();
    for change in changes {
        if has_op.exists(params![seq, change.collection, change.id])? {
            kept.push(change);
        }
    }
    Ok(kept)
}

/// Retires the ops of commands that succeeded at or before `cutoff` (Unix ms): a complete
/// pull that started after that time has brought the server's version of everything they
/// changed.
pub(crate) fn retire_acknowledged(tx: &Transaction<'_>, cutoff: i64) -> Result<usize> {
    Ok(tx.prepare_cached(RETIRE_ACKNOWLEDGED_SQL)?.execute(params![cutoff])?)
}

/// The collections [`retire_acknowledged`] is about to retire ops in (`?1`: the cutoff).
/// `CROSS JOIN` keeps `pending_ops` (the ops not yet retired: few) as the outer loop;
/// left to itself the planner walked every succeeded command kept for its retention
/// period, on every pull (see `acknowledged_ops_are_found_from_the_ops_side`).
pub(crate) const RETIRED_COLLECTIONS_SQL: &str =
    "SELECT DISTINCT p.collection FROM pending_ops p CROSS JOIN commands c ON c.seq = p.command_seq
      WHERE c.state = 'succeeded' AND c.finished_at <= ?1";

/// [`retire_acknowledged`]'s statement, planned like [`RETIRED_COLLECTIONS_SQL`].
pub(crate) const RETIRE_ACKNOWLEDGED_SQL: &str = "DELETE FROM pending_ops WHERE command_seq IN
       (SELECT p.command_seq FROM pending_ops p CROSS JOIN commands c ON c.seq = p.command_seq
         WHERE c.state = 'succeeded' AND c.finished_at <= ?1)";
