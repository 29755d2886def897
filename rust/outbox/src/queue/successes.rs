//! A pass's successes, recorded together: one `UPDATE` moves every command the server
//! applied to `succeeded`, instead of one per command.
//!
//! Each move fires the `unsynced_totals` trigger, and a statement that fires a trigger
//! opens a statement journal and copies each page it first touches into it: per command,
//! that was most of the cost of recording a success (14% of a 10k HTTP drain's CPU).
//! One statement per pass pays it once.

use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::{current_state, release_keys, Change};
use crate::command::{CommandId, CommandState, Receipt, Settlement};
use crate::error::{Error, Result};
use crate::store;

/// Every `{q: seq, f: from state, o: outcome, r: result, s, a: receipt}` of `?1` (a JSON
/// array) moves from `f` to `succeeded`, with `?2` as its time.
pub(crate) const SUCCEED_ALL_SQL: &str =
    "UPDATE commands SET state = 'succeeded', updated_at = ?2, finished_at = ?2, outcome = j.value ->> 'o',
            result = j.value ->> 'r', last_error = NULL, receipt_server_seq = j.value ->> 's',
            receipt_applied_at = j.value ->> 'a'
       FROM json_each(?1) AS j
      WHERE commands.seq = j.value ->> 'q' AND commands.state = j.value ->> 'f'";

/// Successes waiting to be recorded in the same transaction ([`Successes::record`]).
#[derive(Default)]
pub(crate) struct Successes {
    rows: Vec<Value>,
    moves: Vec<(i64, CommandId, CommandState)>,
}

impl Successes {
    /// Whether command `seq` is already queued: it counts as moved (a second answer for it
    /// in the same pass, e.g. from a send abandoned as hung and its retry, is ignored, as
    /// for a command already settled).
    pub(crate) fn holds(&self, seq: i64) -> bool {
        self.moves.iter().any(|(s, _, _)| *s == seq)
    }

    /// Stores the server's versions of what command `seq` (`id`, now in `from`) changed,
    /// retiring its ops on them, and queues its move to `succeeded` with `result` and
    /// `receipt`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        tx: &Transaction<'_>,
        seq: i64,
        id: CommandId,
        from: CommandState,
        result: Value,
        changes: &[crate::transport::DocChange],
        receipt: Option<Receipt>,
    ) -> Result<()> {
        // The rule `transition` keeps for every other move.
        if !from.can_become(CommandState::Succeeded) {
            return Err(Error::InvalidState { id: id.to_string(), state: from.to_string(), action: "move" });
        }
        store::apply_changes(tx, Some(seq), changes)?;
        let result_text = result.to_string();
        let outcome = serde_json::to_string(&Settlement::Succeeded { result }).unwrap_or_default();
        self.rows.push(json!({
            "q": seq,
            "f": from.as_str(),
            "o": outcome,
            "r": result_text,
            "s": receipt.map(|r| r.server_seq),
            "a": receipt.and_then(|r| r.applied_at),
        }));
        self.moves.push((seq, id, from));
        Ok(())
    }

    /// Moves every queued command to `succeeded` (each must still be in the state it was
    /// added in) and advances their lanes. Returns the state changes made.
    pub(crate) fn record(self, tx: &Transaction<'_>, now: i64) -> Result<Vec<Change>> {
        if self.moves.is_empty() {
            return Ok(Vec::new());
        }
        let rows = Value::Array(self.rows).to_string();
        let moved = tx.prepare_cached(SUCCEED_ALL_SQL)?.execute(params![rows, now])?;
        if moved != self.moves.len() {
            // Each was read in its state in this transaction, and nothing else moves a
            // queued command ([`Successes::holds`]). Name one that is not where it was.
            for (seq, _, _) in &self.moves {
                let (id, state, _) = current_state(tx, *seq)?;
                if state != CommandState::Succeeded {
                    return Err(Error::InvalidState { id: id.to_string(), state: state.to_string(), action: "move" });
                }
            }
            return Err(Error::Corrupt { detail: format!("{moved} of {} successes recorded", self.moves.len()) });
        }
        let mut changes = Vec::with_capacity(self.moves.len());
        for (seq, id, from) in self.moves {
            release_keys(tx, seq)?;
            changes.push(Change { seq, id, from, to: CommandState::Succeeded });
        }
        Ok(changes)
    }
}
