//! Edits of never-attempted pending commands (the `before_retry` hook and
//! `edit_pending`): which commands may change, and the rewrites, drops and squashes.
//! An attempted command is immutable: the server may have applied it.

use rusqlite::{params, Connection, Transaction};

use super::{current_state, row_to_command, seq_of, transition, with_relations, Change, COLUMNS};
use crate::command::{Command, CommandId, CommandState, Settlement};
use crate::error::{Error, Result};
use crate::store;

/// Never-attempted pending commands, oldest first (what `before_retry` may edit).
pub(crate) fn editable(conn: &Connection, limit: usize) -> Result<Vec<Command>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM commands WHERE state = 'pending' AND attempts = 0 ORDER BY seq LIMIT ?1"
    ))?;
    let cmds = stmt.query_map(params![limit as i64], row_to_command)?.collect::<rusqlite::Result<Vec<_>>>()?;
    cmds.into_iter().map(|c| with_relations(conn, c)).collect()
}

/// Checks that a command may still be edited, returning its seq.
pub(crate) fn editable_seq(tx: &Transaction<'_>, id: &CommandId) -> Result<i64> {
    let seq = seq_of(tx, id)?;
    let (_, state, attempts) = current_state(tx, seq)?;
    if attempts > 0 || state == CommandState::InFlight {
        return Err(Error::Immutable { id: id.to_string() });
    }
    if state != CommandState::Pending {
        return Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "edit" });
    }
    Ok(seq)
}

/// Replaces the args of a never-attempted command.
pub(crate) fn rewrite_args(tx: &Transaction<'_>, seq: i64, args: &str, now: i64) -> Result<()> {
    tx.prepare_cached("UPDATE commands SET args = ?2, updated_at = ?3 WHERE seq = ?1")?
        .execute(params![seq, args, now])?;
    Ok(())
}

/// Stores what the risk limits count for a command whose args changed (the
/// `unsynced_totals` triggers follow).
pub(crate) fn set_amount(tx: &Transaction<'_>, seq: i64, amount: Option<i64>) -> Result<()> {
    tx.prepare_cached("UPDATE commands SET amount = ?2 WHERE seq = ?1")?.execute(params![seq, amount])?;
    Ok(())
}

/// The keys of a command (including the unkeyed lane marker).
pub(crate) fn keys_of(tx: &Transaction<'_>, seq: i64) -> Result<Vec<String>> {
    Ok(tx
        .prepare_cached("SELECT key FROM command_keys WHERE command_seq = ?1 ORDER BY key")?
        .query_map(params![seq], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Folds command `from` into `into`: its ops move over, its dependants now wait for
/// `into`, and it is discarded without rolling anything back.
pub(crate) fn squash_into(tx: &Transaction<'_>, from: i64, into: i64, now: i64) -> Result<Change> {
    store::move_ops(tx, from, into)?;
    tx.prepare_cached("UPDATE OR IGNORE command_deps SET depends_on = ?2 WHERE depends_on = ?1")?
        .execute(params![from, into])?;
    tx.prepare_cached("DELETE FROM command_deps WHERE depends_on = ?1 OR (command_seq = ?2 AND depends_on = ?2)")?
        .execute(params![from, into])?;
    transition(tx, from, CommandState::Pending, CommandState::Discarded, now, Some(&Settlement::Discarded))
}

/// A never-attempted pending command of `mutator` queued with a version below `below`:
/// `(seq, id, version, args)`, oldest first.
pub(crate) type Upgradable = (i64, CommandId, u32, String);

/// Never-attempted pending commands of `mutator` older than version `below`.
pub(crate) fn upgradable(conn: &Connection, mutator: &str, below: u32) -> Result<Vec<Upgradable>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, mutator_version, args FROM commands
         WHERE mutator = ?1 AND mutator_version < ?2 AND state = 'pending' AND attempts = 0 ORDER BY seq",
    )?;
    let rows = stmt
        .query_map(params![mutator, below], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(seq, id, v, args)| {
            let id =
                uuid::Uuid::parse_str(&id).map_err(|_| Error::Corrupt { detail: format!("bad command id {id}") })?;
            Ok((seq, CommandId(id), v, args))
        })
        .collect()
}

/// Gives a never-attempted command new args at version `to`, if it is still pending,
/// unattempted and at version `from` (nothing raced it). Returns whether it changed.
pub(crate) fn upgrade_args(tx: &Transaction<'_>, seq: i64, from: u32, to: u32, args: &str, now: i64) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE commands SET args = ?2, mutator_version = ?3, updated_at = ?4
             WHERE seq = ?1 AND mutator_version = ?5 AND state = 'pending' AND attempts = 0",
        )?
        .execute(params![seq, args, to, now, from])?;
    Ok(n == 1)
}

/// Parks a never-attempted pending command as `wedged` with `reason`; its args and
/// optimistic changes stay as they are.
pub(crate) fn wedge_unattempted(tx: &Transaction<'_>, seq: i64, reason: &str, now: i64) -> Result<Change> {
    tx.prepare_cached("UPDATE commands SET last_error = ?2 WHERE seq = ?1")?.execute(params![seq, reason])?;
    let s = Settlement::Wedged { reason: reason.to_string() };
    transition(tx, seq, CommandState::Pending, CommandState::Wedged, now, Some(&s))
}
