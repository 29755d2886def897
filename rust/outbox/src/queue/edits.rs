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
