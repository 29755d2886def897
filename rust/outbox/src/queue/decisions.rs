//! Failures and the app's decisions: failing a command with its dependants, discarding,
//! retrying and resolving a conflict.

use rusqlite::{params, Transaction};

use super::{current_state, seq_of, transition, Change};
use crate::command::{CommandId, CommandState, Settlement};
use crate::error::{Error, Result};
use crate::keys::UNKEYED_LANE;
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
    changes.extend(fail_dependants(tx, later, seq, &failed_id, now)?);
    Ok(changes)
}

fn dependants(tx: &Transaction<'_>, seq: i64) -> Result<Vec<i64>> {
    Ok(tx
        .prepare_cached("SELECT command_seq FROM command_deps WHERE depends_on = ?1")?
        .query_map(params![seq], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Fails each still-pending command in `queue` as `dependency_failed`, following explicit
/// dependencies transitively. Each remembers `cause_seq` (`failed_by`), so retrying the
/// cause brings it back.
fn fail_dependants(
    tx: &Transaction<'_>,
    mut queue: Vec<i64>,
    cause_seq: i64,
    cause: &CommandId,
    now: i64,
) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    while let Some(seq) = queue.pop() {
        let (_, state, _) = current_state(tx, seq)?;
        if state != CommandState::Pending {
            continue;
        }
        let message = format!("command {cause} it depends on did not succeed");
        tx.prepare_cached("UPDATE commands SET last_error = ?2, failed_by = ?3 WHERE seq = ?1")?.execute(params![
            seq,
            format!("dependency_failed: {message}"),
            cause_seq
        ])?;
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
    changes.extend(fail_dependants(tx, deps, seq, id, now)?);
    Ok(changes)
}

/// Sends a `wedged` or `failed` command again with a fresh attempt budget.
///
/// A wedged command keeps its idempotency key (the server may have applied an attempt).
/// A failed one is sent under a fresh key, so a rejection the server stored under the old
/// one is not replayed; the history keeps the old key on the old attempts. Exception: when
/// an attempt under the old key may have been applied (it timed out or was cut off, or
/// the process died during it), the key is kept, so the server can answer `duplicate`
/// instead of applying the command twice. The dependants that failed because of it
/// (`dependency_failed`) become pending with it. A retried command takes its place back
/// at its position in its keys' lanes: later unsent commands on those keys wait for it.
pub(crate) fn retry(tx: &Transaction<'_>, id: &CommandId, now: i64) -> Result<Vec<Change>> {
    let seq = seq_of(tx, id)?;
    let (_, state, _) = current_state(tx, seq)?;
    match state {
        CommandState::Wedged => {
            tx.prepare_cached(
                "UPDATE commands SET attempt_base = attempt_base + attempts, attempts = 0, next_attempt_at = ?2,
                        outcome = NULL WHERE seq = ?1",
            )?
            .execute(params![seq, now])?;
            Ok(vec![transition(tx, seq, state, CommandState::Pending, now, None)?])
        }
        CommandState::Failed => {
            let mut changes = vec![revive(tx, seq, now)?];
            let dependants: Vec<i64> = tx
                .prepare_cached("SELECT seq FROM commands WHERE failed_by = ?1 AND state = 'failed' ORDER BY seq")?
                .query_map(params![seq], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for dep in dependants {
                changes.push(revive(tx, dep, now)?);
            }
            Ok(changes)
        }
        _ => Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "retry" }),
    }
}

/// Brings one failed command back to `pending`: a fresh key (unless an attempt under the
/// old one may have been applied), a fresh budget, its keys back in their lanes.
fn revive(tx: &Transaction<'_>, seq: i64, now: i64) -> Result<Change> {
    let maybe_applied: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM attempts a JOIN commands c ON c.seq = a.command_seq
                            WHERE a.command_seq = ?1 AND a.idempotency_key IS c.idempotency_key
                              AND (a.ended_at IS NULL OR a.outcome = 'retry'))",
        )?
        .query_row(params![seq], |r| r.get(0))?;
    let fresh = uuid::Uuid::now_v7().to_string();
    tx.prepare_cached(
        "UPDATE commands SET idempotency_key = CASE WHEN ?3 THEN idempotency_key ELSE ?2 END,
                attempt_base = attempt_base + attempts, attempts = 0, next_attempt_at = ?4, outcome = NULL,
                last_error = NULL, failed_by = NULL WHERE seq = ?1",
    )?
    .execute(params![seq, fresh, maybe_applied, now])?;
    restore_keys(tx, seq)?;
    transition(tx, seq, CommandState::Failed, CommandState::Pending, now, None)
}

/// Puts a finished command back into its lanes (from the `keys` it keeps). A command that
/// finished before schema version 6 has no stored keys and goes to the serial unkeyed lane.
fn restore_keys(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    let stored: Option<String> =
        tx.prepare_cached("SELECT keys FROM commands WHERE seq = ?1")?.query_row(params![seq], |r| r.get(0))?;
    let mut keys: Vec<String> = stored.and_then(|k| serde_json::from_str(&k).ok()).unwrap_or_default();
    if keys.is_empty() {
        keys.push(UNKEYED_LANE.to_string());
    }
    let mut key_stmt = tx.prepare_cached("INSERT OR IGNORE INTO command_keys (key, command_seq) VALUES (?1, ?2)")?;
    let mut lane_stmt = tx.prepare_cached(
        "INSERT INTO lanes (key, head_seq) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET head_seq = min(head_seq, excluded.head_seq)",
    )?;
    for key in keys {
        key_stmt.execute(params![key, seq])?;
        lane_stmt.execute(params![key, seq])?;
    }
    Ok(())
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
        "UPDATE commands SET args = ?2, idempotency_key = ?3, attempt_base = attempt_base + attempts, attempts = 0,
                next_attempt_at = ?4, outcome = NULL, last_error = NULL WHERE seq = ?1",
    )?
    .execute(params![seq, args, uuid::Uuid::now_v7().to_string(), now])?;
    transition(tx, seq, state, CommandState::Pending, now, None)
}
