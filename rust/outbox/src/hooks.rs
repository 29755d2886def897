//! Rewriting the queue before it is sent: the `before_retry` hook and explicit edits.
//!
//! Only commands that have never been attempted can change. Once an attempt started the
//! server may have applied the command (and only the response was lost), so its content
//! is frozen; it can only be discarded.

use std::collections::BTreeSet;

use crate::command::{Command, CommandId};
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::queue::{self, Change};
use crate::scheduler::Engine;

/// One change to never-attempted pending commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Replace a command's args (JSON text).
    Rewrite {
        /// The command.
        id: CommandId,
        /// New args as JSON text.
        args: String,
    },
    /// Drop a command (it is discarded; its ops are rolled back).
    Drop {
        /// The command.
        id: CommandId,
    },
    /// Fold several commands into one: `into` gets `args`, the others' optimistic ops move
    /// to it and they are discarded. All must hold exactly the same keys.
    Squash {
        /// The command that remains.
        into: CommandId,
        /// The commands folded into it.
        ids: Vec<CommandId>,
        /// The remaining command's new args (JSON text).
        args: String,
    },
}

/// Called before the engine sends after an external trigger (open, online, foreground,
/// `sync_now`, a due retry) with the never-attempted pending commands, oldest first.
pub trait BeforeRetry: Send + Sync {
    /// Returns the edits to apply; they are applied all together or not at all.
    fn review(&self, pending: &[Command]) -> Vec<Edit>;
}

impl<F> BeforeRetry for F
where
    F: Fn(&[Command]) -> Vec<Edit> + Send + Sync,
{
    fn review(&self, pending: &[Command]) -> Vec<Edit> {
        self(pending)
    }
}

fn checked_args(engine: &Engine, seq_mutator: &str, args: &str) -> Result<()> {
    let limit = engine
        .mutators
        .read()
        .map(|m| m.get(seq_mutator).map(|s| s.max_args_bytes))
        .unwrap_or(None)
        .unwrap_or(crate::command::DEFAULT_MAX_ARGS_BYTES);
    if args.len() > limit {
        return Err(Error::ArgsTooLarge { size: args.len(), limit });
    }
    serde_json::from_str::<serde_json::Value>(args)
        .map(|_| ())
        .map_err(|e| Error::InvalidJson { field: "args", detail: e.to_string() })
}

/// The amount the risk limits count for `args` (already checked to be JSON).
pub(crate) fn amount_of(engine: &Engine, args: &str) -> Result<Option<i64>> {
    let value: serde_json::Value =
        serde_json::from_str(args).map_err(|e| Error::InvalidJson { field: "args", detail: e.to_string() })?;
    engine.config.limits.amount_of(&value)
}

/// Applies edits in one transaction; any refused edit refuses them all. Returns the state
/// changes and the collections whose documents may read differently.
pub(crate) fn apply_edits(engine: &Engine, edits: &[Edit]) -> Result<(Vec<Change>, BTreeSet<String>)> {
    // Validate args outside the transaction (parsing needs no lock).
    for edit in edits {
        if let Edit::Rewrite { id, args } | Edit::Squash { into: id, args, .. } = edit {
            let cmd = engine.db.read(|c| queue::load(c, id))?;
            checked_args(engine, &cmd.mutator, args)?;
        }
    }
    let now = now_ms();
    engine.db.write_capped(|tx| {
        let mut changes = Vec::new();
        let mut collections = BTreeSet::new();
        for edit in edits {
            match edit {
                Edit::Rewrite { id, args } => {
                    let seq = queue::editable_seq(tx, id)?;
                    queue::rewrite_args(tx, seq, args, now)?;
                    queue::set_amount(tx, seq, amount_of(engine, args)?)?;
                }
                Edit::Drop { id } => {
                    let seq = queue::editable_seq(tx, id)?;
                    collections.extend(queue::touched_docs(tx, seq)?.into_iter().map(|(c, _)| c));
                    changes.extend(queue::discard(tx, id, now)?);
                }
                Edit::Squash { into, ids, args } => {
                    let into_seq = queue::editable_seq(tx, into)?;
                    let keys = queue::keys_of(tx, into_seq)?;
                    queue::rewrite_args(tx, into_seq, args, now)?;
                    queue::set_amount(tx, into_seq, amount_of(engine, args)?)?;
                    for id in ids.iter().filter(|id| *id != into) {
                        let seq = queue::editable_seq(tx, id)?;
                        if queue::keys_of(tx, seq)? != keys {
                            return Err(Error::InvalidRequest {
                                reason: format!("cannot squash {id} into {into}: they hold different keys"),
                            });
                        }
                        collections.extend(queue::touched_docs(tx, seq)?.into_iter().map(|(c, _)| c));
                        changes.push(queue::squash_into(tx, seq, into_seq, now)?);
                    }
                }
            }
        }
        Ok((changes, collections))
    })
}
