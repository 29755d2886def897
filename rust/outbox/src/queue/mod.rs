//! The persisted queue: every SQL statement that reads or moves commands.
//!
//! Lanes: `command_keys` holds the keys of unfinished commands only, and `lanes` has one
//! row per key pointing at its head (lowest unfinished `seq`). A command is ready when it
//! is `pending`, due, the head of every one of its lanes, and every explicit predecessor
//! has succeeded. Finding ready commands walks `lanes` in head order and stops at the
//! limit, so its cost does not grow with the length of any one lane.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use crate::command::{CommandId, CommandState, OptimisticOp, Receipt, Settlement};
use crate::error::{Error, Result};
use crate::keys::UNKEYED_LANE;
use crate::retry::Disposition;
use crate::store;
use crate::transport::OutgoingCommand;

mod decisions;
mod edits;
mod reads;
mod successes;
use decisions::fail;
pub(crate) use decisions::{discard, retry, retry_conflict_with};
pub(crate) use edits::{
    editable, editable_seq, keys_of, rewrite_args, set_amount, squash_into, upgradable, upgrade_args, wedge_unattempted,
};
pub use reads::PeekFilter;
pub(crate) use reads::{
    counts, history, last_applied_at, last_pull_at, load, oldest_unfinished, peek, settlement, touched_docs,
};
use reads::{row_to_command, with_relations};
pub(crate) use successes::Successes;

/// A state change to announce once its transaction has committed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Change {
    pub seq: i64,
    pub id: CommandId,
    pub from: CommandState,
    pub to: CommandState,
}

/// What `insert` stores.
pub(crate) struct NewCommand<'a> {
    pub id: CommandId,
    pub idempotency_key: String,
    pub mutator: &'a str,
    pub mutator_version: u32,
    pub args: &'a str,
    pub keys: &'a [String],
    pub after: &'a [CommandId],
    pub ops: &'a [OptimisticOp],
    pub metadata: &'a str,
    pub now: i64,
    /// What the offline risk limits count for it.
    pub amount: Option<i64>,
}

const COLUMNS: &str = "seq, id, mutator, mutator_version, args, idempotency_key, created_at, state, attempts, \
                       next_attempt_at, last_error, metadata, outcome, receipt_server_seq, receipt_applied_at, keys, amount";

/// Inserts a command with its keys, lanes, dependencies and ops.
pub(crate) fn insert(tx: &Transaction<'_>, c: &NewCommand<'_>) -> Result<i64> {
    let mut dep_seqs = Vec::with_capacity(c.after.len());
    for dep in c.after {
        dep_seqs.push(seq_of(tx, dep)?);
    }
    let mut visible: Vec<&str> = c.keys.iter().map(String::as_str).filter(|k| *k != UNKEYED_LANE).collect();
    visible.sort_unstable();
    visible.dedup();
    let keys_json = serde_json::to_string(&visible).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO commands (id, mutator, mutator_version, args, idempotency_key, created_at, state, attempts,
                               next_attempt_at, metadata, updated_at, keys, amount)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?6, ?7, ?6, ?8, ?9)",
    )?
    .execute(params![
        c.id.to_string(),
        c.mutator,
        c.mutator_version,
        c.args,
        c.idempotency_key,
        c.now,
        c.metadata,
        keys_json,
        c.amount
    ])?;
    let seq = tx.last_insert_rowid();
    let mut key_stmt = tx.prepare_cached("INSERT INTO command_keys (key, command_seq) VALUES (?1, ?2)")?;
    let mut lane_stmt = tx.prepare_cached("INSERT OR IGNORE INTO lanes (key, head_seq) VALUES (?1, ?2)")?;
    for key in c.keys {
        key_stmt.execute(params![key, seq])?;
        lane_stmt.execute(params![key, seq])?;
    }
    let mut dep_stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO command_deps (command_seq, depends_on) VALUES (?1, ?2)")?;
    for dep in dep_seqs {
        dep_stmt.execute(params![seq, dep])?;
    }
    store::write_ops(tx, seq, c.ops)?;
    Ok(seq)
}

fn seq_of(conn: &Connection, id: &CommandId) -> Result<i64> {
    conn.prepare_cached("SELECT seq FROM commands WHERE id = ?1")?
        .query_row(params![id.to_string()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::UnknownCommand { id: id.to_string() })
}

/// The ready set. `CROSS JOIN` pins the join order: walk `lanes` by head (index
/// `lanes_by_head`) and stop at the limit, instead of scanning every pending command and
/// sorting (the plan SQLite picks without statistics; a test checks the plan).
pub(crate) const READY_SQL: &str = "SELECT c.seq FROM lanes l CROSS JOIN commands c ON c.seq = l.head_seq
     WHERE c.state = 'pending' AND c.next_attempt_at <= ?1
       AND NOT EXISTS (SELECT 1 FROM command_keys k JOIN lanes o ON o.key = k.key
                       WHERE k.command_seq = c.seq AND o.head_seq <> c.seq)
       AND NOT EXISTS (SELECT 1 FROM command_deps d JOIN commands p ON p.seq = d.depends_on
                       WHERE d.command_seq = c.seq AND p.state <> 'succeeded')
     ORDER BY l.head_seq LIMIT CAST(?2 AS INTEGER)";

/// The head a lane moves to once `?1`'s head finishes. `CAST` keeps the statement from
/// being re-parsed on every use: SQLite re-prepares a statement whose plan depended on a
/// bound value each time its bindings are cleared (rusqlite clears them when a cached
/// statement is returned), and `MIN` over `key = ?1`, `DISTINCT`/`ORDER BY` under an
/// equality, or `LIMIT ?` all depend on it. Re-parsing cost 14% of a drain pass's CPU.
pub(crate) const NEXT_HEAD_SQL: &str = "SELECT MIN(command_seq) FROM command_keys WHERE key = CAST(?1 AS TEXT)";

/// Up to `limit` ready commands, in enqueue order.
pub(crate) fn ready(conn: &Connection, now: i64, limit: usize) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(READY_SQL)?;
    let mut seqs: Vec<i64> =
        stmt.query_map(params![now, limit as i64], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    seqs.dedup();
    Ok(seqs)
}

/// Time (Unix ms) the earliest waiting command becomes due, if any is waiting. One index
/// probe on `(state, next_attempt_at)`; a waiting command that is not a lane head only
/// causes one extra, empty pass.
pub(crate) fn next_due(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MIN(next_attempt_at) FROM commands WHERE state = 'pending' AND next_attempt_at > ?1")?
        .query_row(params![now], |r| r.get(0))?)
}

/// Pulls due times further ahead than `max_ahead_ms` back to `now + max_ahead_ms` (the
/// device clock moved back). Returns how many were pulled back.
pub(crate) fn clamp_due(tx: &Transaction<'_>, now: i64, max_ahead_ms: i64) -> Result<usize> {
    Ok(tx
        .prepare_cached("UPDATE commands SET next_attempt_at = ?1 WHERE state = 'pending' AND next_attempt_at > ?1")?
        .execute(params![now + max_ahead_ms])?)
}

/// Makes every waiting command due now (manual sync, back online, foreground).
pub(crate) fn make_due_now(tx: &Transaction<'_>, now: i64) -> Result<usize> {
    Ok(tx
        .prepare_cached("UPDATE commands SET next_attempt_at = ?1 WHERE state = 'pending' AND next_attempt_at > ?1")?
        .execute(params![now])?)
}

/// The commands among `?1` (a JSON array of seqs) still `pending`.
///
/// `+state`: without it the planner walks `commands_by_state` over every pending command
/// and tests each against the list, a cost that grows with the queue (at 100k pending,
/// this statement was 28% of a drain's CPU); the `+` leaves it the seq lookups only.
pub(crate) const STILL_PENDING_SQL: &str =
    "SELECT seq FROM commands WHERE seq IN (SELECT value FROM json_each(?1)) AND +state = 'pending'";
/// Marks `?1` (a JSON array of pending seqs) in flight, counting the attempt.
pub(crate) const MARK_IN_FLIGHT_SQL: &str =
    "UPDATE commands SET state = 'in_flight', attempts = attempts + 1, updated_at = ?2
      WHERE seq IN (SELECT value FROM json_each(?1))";
/// Opens the history row of each of `?1`'s new attempt. Rows are numbered across retry
/// rounds (`attempt_base`), so a fresh attempt budget never overwrites an earlier round.
pub(crate) const OPEN_ATTEMPTS_SQL: &str =
    "INSERT OR REPLACE INTO attempts (command_seq, attempt, started_at, idempotency_key)
     SELECT seq, attempt_base + attempts, ?2, idempotency_key FROM commands WHERE seq IN (SELECT value FROM json_each(?1))";
/// What the transport sends for each of `?1`.
pub(crate) const OUTGOING_SQL: &str =
    "SELECT seq, id, idempotency_key, mutator, mutator_version, args, metadata, attempts
       FROM commands WHERE seq IN (SELECT value FROM json_each(?1))";
/// The lane keys of each of `?1` (the unkeyed lane is not sent).
pub(crate) const OUTGOING_KEYS_SQL: &str =
    "SELECT command_seq, key FROM command_keys WHERE command_seq IN (SELECT value FROM json_each(?1)) AND key <> ''";

/// Marks commands in flight (counting the attempt and opening its history row) and
/// builds what the transport sends, in the order of `seqs`. Commands no longer `pending`
/// are left out.
///
/// One statement per step for the whole pass (a JSON array of seqs, `json_each`), not one
/// per command: starting a command was five statements, a third of a drain's CPU time.
/// No `UPDATE … RETURNING`: SQLite builds and drops a temporary b-tree for each.
pub(crate) fn start_attempts(tx: &Transaction<'_>, seqs: &[i64], now: i64) -> Result<Vec<(i64, OutgoingCommand)>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(seqs).map_err(|e| Error::Corrupt { detail: e.to_string() })?;
    let pending: Vec<i64> = tx
        .prepare_cached(STILL_PENDING_SQL)?
        .query_map(params![list], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(&pending).map_err(|e| Error::Corrupt { detail: e.to_string() })?;
    tx.prepare_cached(MARK_IN_FLIGHT_SQL)?.execute(params![list, now])?;
    tx.prepare_cached(OPEN_ATTEMPTS_SQL)?.execute(params![list, now])?;
    let mut keys: HashMap<i64, Vec<String>> = HashMap::new();
    let mut stmt = tx.prepare_cached(OUTGOING_KEYS_SQL)?;
    let mut rows = stmt.query(params![list])?;
    while let Some(r) = rows.next()? {
        keys.entry(r.get(0)?).or_default().push(r.get(1)?);
    }
    drop(rows);
    let mut base_versions = store::base_versions_of(tx, &list)?;
    let mut outgoing: HashMap<i64, OutgoingCommand> = HashMap::with_capacity(pending.len());
    let mut stmt = tx.prepare_cached(OUTGOING_SQL)?;
    let mut rows = stmt.query(params![list])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let mut command_keys = keys.remove(&seq).unwrap_or_default();
        command_keys.sort_unstable();
        outgoing.insert(
            seq,
            OutgoingCommand {
                id: r.get(1)?,
                idempotency_key: r.get(2)?,
                mutator: r.get(3)?,
                mutator_version: r.get(4)?,
                args: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
                base_versions: base_versions.remove(&seq).unwrap_or_default(),
                keys: command_keys,
                metadata: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(Value::Null),
                attempt: r.get(7)?,
            },
        );
    }
    Ok(seqs.iter().filter_map(|seq| outgoing.remove(seq).map(|cmd| (*seq, cmd))).collect())
}

/// Records the end of attempt `attempt` of the current round in the history.
pub(crate) fn end_attempt(
    tx: &Transaction<'_>,
    seq: i64,
    attempt: u32,
    now: i64,
    outcome: &str,
    http_status: Option<u16>,
    error: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE attempts SET ended_at = ?3, outcome = ?4, http_status = ?5, error = ?6
         WHERE command_seq = ?1 AND attempt = (SELECT attempt_base FROM commands WHERE seq = ?1) + ?2",
    )?
    .execute(params![seq, attempt, now, outcome, http_status, error])?;
    Ok(())
}

fn current_state(tx: &Transaction<'_>, seq: i64) -> Result<(CommandId, CommandState, u32)> {
    let (id, state, attempts): (String, String, u32) = tx
        .prepare_cached("SELECT id, state, attempts FROM commands WHERE seq = ?1")?
        .query_row(params![seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let id =
        CommandId(uuid::Uuid::parse_str(&id).map_err(|_| Error::Corrupt { detail: format!("bad command id {id}") })?);
    let state = CommandState::parse(&state).ok_or_else(|| Error::Corrupt { detail: format!("bad state {state}") })?;
    Ok((id, state, attempts))
}

/// Moves a command from `expected` to `to`, refusing any other starting state.
fn transition(
    tx: &Transaction<'_>,
    seq: i64,
    expected: CommandState,
    to: CommandState,
    now: i64,
    settlement: Option<&Settlement>,
) -> Result<Change> {
    let refuse = |tx: &Transaction<'_>| -> Result<Change> {
        let (id, state, _) = current_state(tx, seq)?;
        Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "move" })
    };
    if !expected.can_become(to) {
        return refuse(tx);
    }
    let outcome = settlement.map(|s| serde_json::to_string(s).unwrap_or_default());
    let finished = (!to.holds_keys()).then_some(now);
    // The state check and the move are one statement: no row comes back unless the
    // command was in `expected`.
    // No RETURNING (see `start_attempts`): the id is one point read after the move.
    let moved = tx
        .prepare_cached(
            "UPDATE commands SET state = ?2, updated_at = ?3, outcome = COALESCE(?4, outcome), finished_at = ?5
             WHERE seq = ?1 AND state = ?6",
        )?
        .execute(params![seq, to.as_str(), now, outcome, finished, expected.as_str()])?;
    if moved == 0 {
        return refuse(tx);
    }
    let id: String =
        tx.prepare_cached("SELECT id FROM commands WHERE seq = ?1")?.query_row(params![seq], |r| r.get(0))?;
    let id =
        CommandId(uuid::Uuid::parse_str(&id).map_err(|_| Error::Corrupt { detail: format!("bad command id {id}") })?);
    if !to.holds_keys() {
        release_keys(tx, seq)?;
    }
    Ok(Change { seq, id, from: expected, to })
}

/// Removes a finished command from its lanes and advances each lane's head.
fn release_keys(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    let keys: Vec<String> = tx
        .prepare_cached("SELECT key FROM command_keys WHERE command_seq = ?1")?
        .query_map(params![seq], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.prepare_cached("DELETE FROM command_keys WHERE command_seq = ?1")?.execute(params![seq])?;
    let mut next = tx.prepare_cached(NEXT_HEAD_SQL)?;
    let mut set_head = tx.prepare_cached("UPDATE lanes SET head_seq = ?2 WHERE key = ?1")?;
    let mut drop_lane = tx.prepare_cached("DELETE FROM lanes WHERE key = ?1")?;
    for key in keys {
        match next.query_row(params![key], |r| r.get::<_, Option<i64>>(0))? {
            Some(head) => set_head.execute(params![key, head])?,
            None => drop_lane.execute(params![key])?,
        };
    }
    Ok(())
}

/// Applies the engine's decision about one attempt. Returns the state changes made.
///
/// A success is queued in `successes` (its documents are stored now); the caller records
/// them together with [`Successes::record`] in the same transaction.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    seq: i64,
    disposition: Disposition,
    now: i64,
    successes: &mut Successes,
) -> Result<Vec<Change>> {
    if successes.holds(seq) {
        return Ok(Vec::new()); // already succeeded in this pass
    }
    let (id, state, attempts) = current_state(tx, seq)?;
    if state != CommandState::InFlight {
        // Someone else (a discard, or a successor drainer) already moved it: keep theirs.
        return Ok(Vec::new());
    }
    match disposition {
        Disposition::Succeed { result, changes, receipt } => {
            successes.add(tx, seq, id, state, result, &changes, receipt)?;
            Ok(Vec::new())
        }
        Disposition::Retry { delay, consumes_attempt, reason } => {
            let attempts = if consumes_attempt { attempts } else { attempts.saturating_sub(1) };
            tx.prepare_cached(
                "UPDATE commands SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE seq = ?1",
            )?
            .execute(params![seq, attempts, crate::retry::due_after(now, delay), reason])?;
            Ok(vec![transition(tx, seq, state, CommandState::Pending, now, None)?])
        }
        Disposition::Wedge { reason } => {
            tx.prepare_cached("UPDATE commands SET last_error = ?2 WHERE seq = ?1")?.execute(params![seq, reason])?;
            let s = Settlement::Wedged { reason };
            Ok(vec![transition(tx, seq, state, CommandState::Wedged, now, Some(&s))?])
        }
        Disposition::Conflict { server_snapshot } => {
            // A snapshot in the feed's shape (one change or a list) is also the newest
            // synced version: the view shows it with the conflicting change on top.
            let snapshot_changes: Vec<crate::transport::DocChange> = serde_json::from_value(server_snapshot.clone())
                .or_else(|_| serde_json::from_value(server_snapshot.clone()).map(|c| vec![c]))
                .unwrap_or_default();
            store::apply_changes(tx, None, &snapshot_changes)?;
            tx.prepare_cached("UPDATE commands SET last_error = 'conflict' WHERE seq = ?1")?.execute(params![seq])?;
            let s = Settlement::Conflict { server_snapshot };
            Ok(vec![transition(tx, seq, state, CommandState::Conflict, now, Some(&s))?])
        }
        Disposition::Fail { code, message } => {
            tx.prepare_cached("UPDATE commands SET last_error = ?2 WHERE seq = ?1")?
                .execute(params![seq, format!("{code}: {message}")])?;
            fail(tx, seq, state, code, message, now)
        }
    }
}

/// What [`record_receipt`] did with a receipt the server confirmed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReceiptRecord {
    /// The command moved from `pending`, `in_flight` or `wedged` to `succeeded`.
    Succeeded(Change),
    /// It had already succeeded; its receipt is stored (it may have lacked one).
    Stored,
    /// Left as it is: `failed`, `conflict` or `discarded` are decisions the receipt
    /// does not overturn (or the command got a new idempotency key meanwhile).
    Kept(CommandState),
}

/// Records that the server applied command `id` (its idempotency key answered with a
/// receipt). Safe at any time: the server deduplicates by that key, so a command it
/// applied can never be applied again, and sending it again would only answer
/// `duplicate` with the same result. A send still in flight for it is ignored when its
/// answer arrives (`settle` keeps a state someone else already moved).
pub(crate) fn record_receipt(
    tx: &Transaction<'_>,
    id: &CommandId,
    idempotency_key: &str,
    result: Value,
    changes: &[crate::transport::DocChange],
    receipt: Receipt,
    now: i64,
) -> Result<ReceiptRecord> {
    let seq = seq_of(tx, id)?;
    let (id, state, attempts) = current_state(tx, seq)?;
    let key: String = tx
        .prepare_cached("SELECT idempotency_key FROM commands WHERE seq = ?1")?
        .query_row(params![seq], |r| r.get(0))?;
    if key != idempotency_key {
        // Resolved with new args (a new key) since the question was asked: the receipt
        // is for the old args, which the server never applied in this command's name.
        return Ok(ReceiptRecord::Kept(state));
    }
    match state {
        CommandState::Pending | CommandState::InFlight | CommandState::Wedged => {
            if state == CommandState::InFlight {
                // Close the open attempt: it is answered by the receipt.
                end_attempt(tx, seq, attempts, now, "applied", None, Some("answered by the server's receipt"))?;
            }
            let mut success = Successes::default();
            success.add(tx, seq, id, state, result, changes, Some(receipt))?;
            let mut changed = success.record(tx, now)?;
            Ok(changed.pop().map_or(ReceiptRecord::Stored, ReceiptRecord::Succeeded))
        }
        CommandState::Succeeded => {
            tx.prepare_cached(
                "UPDATE commands SET receipt_server_seq = ?2, receipt_applied_at = ?3
                 WHERE seq = ?1 AND receipt_server_seq IS NULL",
            )?
            .execute(params![seq, receipt.server_seq, receipt.applied_at])?;
            Ok(ReceiptRecord::Stored)
        }
        other => Ok(ReceiptRecord::Kept(other)),
    }
}

/// Returns every `in_flight` command to `pending` (their sender is gone). The attempt
/// stays counted: the server may have received it.
pub(crate) fn reset_in_flight(tx: &Transaction<'_>, now: i64) -> Result<Vec<Change>> {
    let seqs: Vec<i64> = tx
        .prepare_cached("SELECT seq FROM commands WHERE state = 'in_flight'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut changes = Vec::with_capacity(seqs.len());
    for seq in seqs {
        tx.prepare_cached("UPDATE commands SET next_attempt_at = ?2, last_error = 'interrupted' WHERE seq = ?1")?
            .execute(params![seq, now])?;
        changes.push(transition(tx, seq, CommandState::InFlight, CommandState::Pending, now, None)?);
    }
    Ok(changes)
}

/// Deletes succeeded and discarded commands finished before `cutoff` whose ops are all
/// retired. Returns how many were removed.
pub(crate) fn prune(tx: &Transaction<'_>, cutoff: i64) -> Result<usize> {
    tx.execute(
        "DELETE FROM attempts WHERE command_seq IN (SELECT seq FROM commands
           WHERE state IN ('succeeded', 'discarded') AND finished_at < ?1
             AND NOT EXISTS (SELECT 1 FROM pending_ops p WHERE p.command_seq = commands.seq))",
        params![cutoff],
    )?;
    Ok(tx.execute(
        "DELETE FROM commands WHERE state IN ('succeeded', 'discarded') AND finished_at < ?1
           AND NOT EXISTS (SELECT 1 FROM pending_ops p WHERE p.command_seq = commands.seq)
           AND NOT EXISTS (SELECT 1 FROM command_deps d JOIN commands w ON w.seq = d.command_seq
                           WHERE d.depends_on = commands.seq AND w.state IN ('pending', 'in_flight'))",
        params![cutoff],
    )?)
}

/// Deletes up to `limit` of the oldest succeeded and discarded commands finished before
/// `cutoff` whose ops are all retired, however short their retention (the database is at
/// its size cap: retention yields to space, never a queued command). Returns how many
/// were removed.
pub(crate) fn prune_for_space(tx: &Transaction<'_>, cutoff: i64, limit: usize) -> Result<usize> {
    let seqs: Vec<i64> = tx
        .prepare_cached(
            "SELECT seq FROM commands WHERE state IN ('succeeded', 'discarded') AND finished_at < ?2
               AND NOT EXISTS (SELECT 1 FROM pending_ops p WHERE p.command_seq = commands.seq)
               AND NOT EXISTS (SELECT 1 FROM command_deps d JOIN commands w ON w.seq = d.command_seq
                               WHERE d.depends_on = commands.seq AND w.state IN ('pending', 'in_flight'))
             ORDER BY seq LIMIT ?1",
        )?
        .query_map(params![limit as i64, cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut attempts = tx.prepare_cached("DELETE FROM attempts WHERE command_seq = ?1")?;
    let mut deps = tx.prepare_cached("DELETE FROM command_deps WHERE command_seq = ?1")?;
    let mut cmd = tx.prepare_cached("DELETE FROM commands WHERE seq = ?1")?;
    for seq in &seqs {
        attempts.execute(params![seq])?;
        deps.execute(params![seq])?;
        cmd.execute(params![seq])?;
    }
    Ok(seqs.len())
}

#[cfg(test)]
mod tests;
