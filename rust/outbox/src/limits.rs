//! Offline risk limits: how much business a till may do while its commands are unsynced.
//!
//! *Unsynced* means not applied by the server and not discarded: `pending`, `in_flight`,
//! `conflict`, `wedged` and `failed` (a failed sale needs a decision: `retry` or
//! `discard`). Three optional limits, each global and the first and last also per
//! mutator: the number of unsynced commands, the age of the oldest one, and the sum of an
//! integer field of their args that the app names (e.g. `/total_cents`).
//!
//! `enqueue` checks them in the same transaction as its insert, so two processes cannot
//! both squeeze under a limit. The check reads the `unsynced_totals` table (one row per
//! mutator, kept by SQLite triggers on every state change) and one probe of the partial
//! index `commands_unsynced_by_age`: it never scans the queue. A command that would cross
//! a limit is refused with [`Error::LimitExceeded`] and nothing is written; one that lands
//! at or above the soft threshold (`warn_at`, default 80%) is written and announced with
//! [`crate::Event::LimitWarning`], once per limit at that level, on every such enqueue.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use crate::error::{Error, Result};

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The number of unsynced commands.
    UnsyncedCount,
    /// The age of the oldest unsynced command, in milliseconds.
    UnsyncedAge,
    /// The sum of the amount field over unsynced commands.
    UnsyncedAmount,
}

impl LimitKind {
    /// A stable name: `unsynced_count`, `unsynced_age_ms`, `unsynced_amount`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::UnsyncedCount => "unsynced_count",
            LimitKind::UnsyncedAge => "unsynced_age_ms",
            LimitKind::UnsyncedAmount => "unsynced_amount",
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits for one mutator (counted over that mutator's unsynced commands only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MutatorLimits {
    /// Most unsynced commands of this mutator.
    pub max_unsynced: Option<u64>,
    /// Largest summed amount of this mutator's unsynced commands.
    pub max_unsynced_amount: Option<i64>,
}

/// The offline risk limits of [`crate::Config::limits`]. All off by default.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// JSON pointer (RFC 6901) into the args of the integer the amount limits sum, e.g.
    /// `/total_cents`. Commands whose args lack it count 0; a value that is not an integer
    /// is refused at enqueue (`InvalidRequest`), so nothing slips past the limit.
    pub amount_field: Option<String>,
    /// Most unsynced commands.
    pub max_unsynced: Option<u64>,
    /// Oldest an unsynced command may be before enqueue is refused (the till has been
    /// offline too long).
    pub max_unsynced_age: Option<Duration>,
    /// Largest summed amount of unsynced commands.
    pub max_unsynced_amount: Option<i64>,
    /// Limits per mutator name, on top of the global ones.
    pub per_mutator: HashMap<String, MutatorLimits>,
    /// Soft threshold as a fraction of each limit (0.8): an enqueue that lands at or
    /// above it emits a `LimitWarning`. Clamped to 0..=1.
    pub warn_at: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            amount_field: None,
            max_unsynced: None,
            max_unsynced_age: None,
            max_unsynced_amount: None,
            per_mutator: HashMap::new(),
            warn_at: 0.8,
        }
    }
}

/// A limit near or at its maximum: what [`crate::Event::LimitWarning`] and
/// [`Error::LimitExceeded`] carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitLevel {
    /// Which limit.
    pub limit: LimitKind,
    /// The mutator, for a per-mutator limit.
    pub mutator: Option<String>,
    /// The value: after the enqueue for a warning, before it for a refusal.
    pub current: i64,
    /// The configured maximum.
    pub max: i64,
}

/// The SQL list of unsynced states (must match 0006_till.sql).
pub(crate) const UNSYNCED: &str = "('pending', 'in_flight', 'conflict', 'wedged', 'failed')";

/// Enqueue time of the oldest unsynced command: one probe of the partial index (without
/// `INDEXED BY`, SQLite picks `commands_by_state` and reads every unsynced row).
pub(crate) const OLDEST_UNSYNCED_SQL: &str = "SELECT created_at FROM commands INDEXED BY commands_unsynced_by_age
     WHERE state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed') ORDER BY created_at LIMIT 1";

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_unsynced.is_some()
            || self.max_unsynced_age.is_some()
            || self.max_unsynced_amount.is_some()
            || self.per_mutator.values().any(|m| m.max_unsynced.is_some() || m.max_unsynced_amount.is_some())
    }

    /// The amount of a command with `args`: `None` without an amount field or when the
    /// args lack it; an error when the field holds something other than an integer.
    pub(crate) fn amount_of(&self, args: &Value) -> Result<Option<i64>> {
        let Some(pointer) = &self.amount_field else { return Ok(None) };
        match args.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                match v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
                {
                    Some(n) => Ok(Some(n)),
                    None => Err(Error::InvalidRequest {
                        reason: format!("the amount field {pointer} must hold an integer (e.g. cents)"),
                    }),
                }
            }
        }
    }

    /// Checks a new command of `mutator` with `amount` against every limit, inside the
    /// enqueue's transaction. Returns the limits at or above the soft threshold after it.
    pub(crate) fn check(
        &self,
        tx: &Transaction<'_>,
        mutator: &str,
        amount: Option<i64>,
        now: i64,
    ) -> Result<Vec<LimitLevel>> {
        if !self.any() {
            return Ok(Vec::new());
        }
        let mut warnings = Vec::new();
        let amount = amount.unwrap_or(0);
        let warn_at = if self.warn_at.is_finite() { self.warn_at.clamp(0.0, 1.0) } else { 0.8 };
        let mut judge = |limit: LimitKind, scope: Option<&str>, current: i64, after: i64, max: i64| -> Result<()> {
            let level = |current| LimitLevel { limit, mutator: scope.map(str::to_string), current, max };
            if after > max {
                return Err(Error::LimitExceeded { limit, mutator: scope.map(str::to_string), current, max });
            }
            if after as f64 >= warn_at * max as f64 {
                warnings.push(level(after));
            }
            Ok(())
        };
        let (count, sum): (i64, i64) = tx
            .prepare_cached("SELECT COALESCE(SUM(count), 0), COALESCE(SUM(amount), 0) FROM unsynced_totals")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let Some(max) = self.max_unsynced {
            judge(LimitKind::UnsyncedCount, None, count, count.saturating_add(1), clamp(max))?;
        }
        if let (Some(max), true) = (self.max_unsynced_amount, amount > 0) {
            judge(LimitKind::UnsyncedAmount, None, sum, sum.saturating_add(amount), max)?;
        }
        if let Some(max) = self.max_unsynced_age {
            let oldest: Option<i64> = tx.prepare_cached(OLDEST_UNSYNCED_SQL)?.query_row([], |r| r.get(0)).optional()?;
            if let Some(oldest) = oldest {
                let age = (now - oldest).max(0);
                let max = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
                // Reaching the maximum age refuses: no new sale while the oldest is that old.
                judge(LimitKind::UnsyncedAge, None, age, age.saturating_add(i64::from(age >= max)), max)?;
            }
        }
        if let Some(m) = self.per_mutator.get(mutator) {
            let (count, sum): (i64, i64) = tx
                .prepare_cached("SELECT count, amount FROM unsynced_totals WHERE mutator = ?1")?
                .query_row(params![mutator], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, 0));
            if let Some(max) = m.max_unsynced {
                judge(LimitKind::UnsyncedCount, Some(mutator), count, count.saturating_add(1), clamp(max))?;
            }
            if let (Some(max), true) = (m.max_unsynced_amount, amount > 0) {
                judge(LimitKind::UnsyncedAmount, Some(mutator), sum, sum.saturating_add(amount), max)?;
            }
        }
        Ok(warnings)
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Makes the stored amounts of unsynced commands follow `field` when it changed since the
/// last open (a scan of the unsynced commands, only then). An amount that is not an
/// integer counts as none here: those commands were accepted before the field was set.
pub(crate) fn refresh_amounts(tx: &Transaction<'_>, limits: &Limits) -> Result<()> {
    let wanted = limits.amount_field.clone().unwrap_or_default();
    let stored: Option<String> = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'amount_field'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if stored.as_deref().unwrap_or("") == wanted {
        return Ok(());
    }
    let rows: Vec<(i64, String)> = tx
        .prepare(&format!("SELECT seq, args FROM commands WHERE state IN {UNSYNCED}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut update = tx.prepare_cached("UPDATE commands SET amount = ?2 WHERE seq = ?1")?;
    for (seq, args) in rows {
        let amount = serde_json::from_str::<Value>(&args).ok().and_then(|a| limits.amount_of(&a).ok().flatten());
        update.execute(params![seq, amount])?;
    }
    tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('amount_field', ?1)", params![wanted])?;
    Ok(())
}
