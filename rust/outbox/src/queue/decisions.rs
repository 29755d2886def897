//! Failures and the app's decisions: failing a command with its dependants, discarding,
//! retrying and resolving a conflict.

use rusqlite::{params, Transaction};

use super::{current_state, seq_of, transition, Change};
use crate::command::{CommandId, CommandState, Settlement};
use crate::error::{Error, Result};
use crate::store;

/// Fails a command, rolls back its ops, and fails its dependants: later commands on its
/// keys and (transitively) commands that named it in `after`.
pub(super) fn fail(
    tx: &Transaction<'_>,
    seq: i64,
    from: CommandState,
    code: String,
    message: String,
    now: i64,
) -> Result<Vec<Change>> {
    let mut later: Vec<i64> = tx
        .prepare_cached(
            "SELECT DISTINCT o.command_seq FROM command_keys k JOIN command_keys o ON o.key = k.key
             WHERE k.command_seq = ?1 AND o.command_seq > ?1",
        )?
        .query_map(params![seq], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let failed_id = current_state(tx, seq)?.0;
    // The ops stay (so reads can say the document's change failed) but are no longer
    // applied; a discard deletes them.
    let s = Settlement::Failed { code, message };
    let mut changes = vec![transition(tx, seq, from, CommandState::Failed, now, Some(&s))?];
    later.extend(dependants(tx, seq)?);
    changes.extend(fail_dependants(tx, later, &failed_id, now)?);
    Ok(changes)
}

fn dependants(tx: &Transaction<'_>, seq: i64) -> Result<Vec<i64>> {
    Ok(tx
        .prepare_cached("SELECT command_seq FROM command_deps WHERE depends_on = ?1")?
        .query_map(params![seq], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Fails each still-pending command in `queue` as `dependency_failed`, following explicit
/// dependencies transitively.
fn fail_dependants(tx: &Transaction<'_>, mut queue: Vec<i64>, cause: &CommandId, now: i64) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    while let Some(seq) = queue.pop() {
        let (_, state, _) = current_state(tx, seq)?;
        if state != CommandState::Pending {
            continue;
        }
        let message = format!("command {cause} it depends on did not succeed");
        tx.prepare_cached("UPDATE commands SET last_error = ?2 WHERE seq = ?1")?
            .execute(params![seq, format!("dependency_failed: {message}")])?;
        let s = Settlement::Failed { code: "dependency_failed".into(), message };
        changes.push(transition(tx, seq, state, CommandState::Failed, now, Some(&s))?);
        queue.extend(dependants(tx, seq)?);
    }
    Ok(changes)
}

/// Discards a command by explicit decision: its ops are rolled back, its keys released,
/// and commands that named it in `after` fail as `dependency_failed`.
pub(crate) fn discard(tx: &Transaction<'_>, id: &CommandId, now: i64) -> Result<Vec<Change>> {
    let seq = seq_of(tx, id)?;
    let (_, state, _) = current_state(tx, seq)?;
    if !state.can_become(CommandState::Discarded) {
        return Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "discard" });
    }
    store::rollback_ops(tx, seq)?;
    let mut changes = vec![transition(tx, seq, state, CommandState::Discarded, now, Some(&Settlement::Discarded))?];
    let deps = dependants(tx, seq)?;
    changes.extend(fail_dependants(tx, deps, id, now)?);
    Ok(changes)
}

/// Sends a wedged command again with a fresh attempt budget (same idempotency key).
pub(crate) fn retry(tx: &Transaction<'_>, id: &CommandId, now: i64) -> Result<Change> {
    let seq = seq_of(tx, id)?;
    let (_, state, _) = current_state(tx, seq)?;
    if state != CommandState::Wedged {
        return Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "retry" });
    }
    tx.prepare_cached("UPDATE commands SET attempts = 0, next_attempt_at = ?2, outcome = NULL WHERE seq = ?1")?
        .execute(params![seq, now])?;
    transition(tx, seq, state, CommandState::Pending, now, None)
}

/// Resolves a conflict by sending new args under a new idempotency key (the server never
/// applied the old ones).
pub(crate) fn retry_conflict_with(tx: &Transaction<'_>, id: &CommandId, args: &str, now: i64) -> Result<Change> {
    let seq = seq_of(tx, id)?;
    let (_, state, _) = current_state(tx, seq)?;
    if state != CommandState::Conflict {
        return Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "resolve" });
    }
    tx.prepare_cached(
        "UPDATE commands SET args = ?2, idempotency_key = ?3, attempts = 0, next_attempt_at = ?4, outcome = NULL,
                last_error = NULL WHERE seq = ?1",
    )?
    .execute(params![seq, args, uuid::Uuid::now_v7().to_string(), now])?;
    transition(tx, seq, state, CommandState::Pending, now, None)
}
