//! Shipping a new version of a mutator.
//!
//! A register can sit offline across an app update: its queue then holds commands whose
//! args have the shape of an older version of their mutator. When the app registers the
//! new version with an [`Upgrader`], every command of that mutator that was **never
//! attempted** and carries an older version gets new args and the new version, all in one
//! transaction, before anything sends it. A command that was attempted even once is left
//! exactly as it is and is sent with the version it was attempted with: the server may
//! already have applied it, so it must stay the same command. An upgrader that fails (or
//! throws) leaves its command untouched and parks it as `wedged` with the reason, so staff
//! see it and decide (retry sends it unchanged, discard drops it).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde_json::Value;

use crate::command::{CommandId, MutatorSpec};
use crate::db::now_ms;
use crate::error::Result;
use crate::queue::{self, Change};
use crate::scheduler::Engine;

/// Turns the args of a command queued under an older version of a mutator into args of
/// the version being registered.
pub trait Upgrader: Send + Sync {
    /// The new args (JSON text) for `args` (JSON text) queued with version `from`, or why
    /// they cannot be upgraded. Called once per command, off the app's UI thread.
    fn upgrade(&self, from: u32, args: &str) -> std::result::Result<String, String>;
}

impl<F> Upgrader for F
where
    F: Fn(u32, &str) -> std::result::Result<String, String> + Send + Sync,
{
    fn upgrade(&self, from: u32, args: &str) -> std::result::Result<String, String> {
        self(from, args)
    }
}

/// What registering a mutator with an upgrader did to the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Commands that now carry the registered version and their upgraded args.
    pub upgraded: u64,
    /// Commands whose upgrade failed: untouched and parked as `wedged` with the reason.
    pub wedged: u64,
}

/// Upgrades the never-attempted commands of `mutator` older than `spec.version`.
pub(crate) fn upgrade_queued(
    engine: &Arc<Engine>,
    mutator: &str,
    spec: &MutatorSpec,
    upgrader: &dyn Upgrader,
) -> Result<UpgradeReport> {
    let candidates = engine.db.read(|c| queue::upgradable(c, mutator, spec.version))?;
    if candidates.is_empty() {
        return Ok(UpgradeReport::default());
    }
    // The app's code runs outside any transaction: a slow upgrader never holds the
    // write lock. The transaction below re-checks that nothing changed meanwhile.
    let outcomes: Vec<(i64, CommandId, u32, std::result::Result<String, String>)> = candidates
        .into_iter()
        .map(|(seq, id, from, args)| (seq, id, from, run_upgrader(upgrader, from, &args, spec)))
        .collect();
    let now = now_ms();
    let (report, changes) = engine.db.write(|tx| {
        let mut report = UpgradeReport::default();
        let mut changes: Vec<Change> = Vec::new();
        for (seq, id, from, outcome) in &outcomes {
            match outcome {
                Ok(args) => {
                    if queue::upgrade_args(tx, *seq, *from, spec.version, args, now)? {
                        report.upgraded += 1;
                    }
                }
                Err(reason) => {
                    let reason =
                        format!("upgrading {mutator} from version {from} to {} failed: {reason}", spec.version);
                    tracing::warn!(command = %id, "{reason}");
                    changes.push(queue::wedge_unattempted(tx, *seq, &reason, now)?);
                    report.wedged += 1;
                }
            }
        }
        Ok((report, changes))
    })?;
    engine.emit_changes(&changes);
    Ok(report)
}

/// One upgrade, checked: valid JSON within the size limit; a panic is a failure.
fn run_upgrader(
    upgrader: &dyn Upgrader,
    from: u32,
    args: &str,
    spec: &MutatorSpec,
) -> std::result::Result<String, String> {
    let text = match std::panic::catch_unwind(AssertUnwindSafe(|| upgrader.upgrade(from, args))) {
        Ok(r) => r?,
        Err(p) => {
            let what = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            return Err(format!("the upgrader panicked: {}", what.unwrap_or_else(|| "(no message)".into())));
        }
    };
    if let Err(e) = serde_json::from_str::<Value>(&text) {
        return Err(format!("the upgrader returned invalid JSON: {e}"));
    }
    if text.len() > spec.max_args_bytes {
        return Err(format!("the upgraded args are {} bytes; the limit is {}", text.len(), spec.max_args_bytes));
    }
    Ok(text)
}
