//! What a till needs beyond sync: the offline risk limits' records and the closeout
//! report, with their conversions from the core types.

use crate::types::{CommandState, DrainReport};

/// Offline risk limits of one mutator (counted over its own unsynced commands).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MutatorLimit {
    /// The mutator name.
    pub mutator: String,
    /// Most unsynced commands of this mutator.
    #[uniffi(default = None)]
    pub max_unsynced: Option<u64>,
    /// Largest summed amount of this mutator's unsynced commands.
    #[uniffi(default = None)]
    pub max_unsynced_amount: Option<i64>,
}

/// Which offline risk limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LimitKind {
    /// The number of unsynced commands.
    UnsyncedCount,
    /// The age of the oldest unsynced command, ms.
    UnsyncedAge,
    /// The summed amount of unsynced commands.
    UnsyncedAmount,
}

impl From<outbox::LimitKind> for LimitKind {
    fn from(k: outbox::LimitKind) -> Self {
        match k {
            outbox::LimitKind::UnsyncedCount => LimitKind::UnsyncedCount,
            outbox::LimitKind::UnsyncedAge => LimitKind::UnsyncedAge,
            outbox::LimitKind::UnsyncedAmount => LimitKind::UnsyncedAmount,
        }
    }
}

/// Count and summed amount of the commands in one state.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StateTotal {
    /// The state.
    pub state: CommandState,
    /// How many commands are in it.
    pub count: u64,
    /// Sum of their amounts (`limit_amount_field`; 0 without one).
    pub amount: i64,
}

/// A command the server has not applied, and why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Unsettled {
    /// The command.
    pub id: String,
    /// Its mutator.
    pub mutator: String,
    /// Its state.
    pub state: CommandState,
    /// Enqueue time, Unix ms.
    pub created_at_ms: i64,
    /// Its amount, if any.
    pub amount: Option<i64>,
    /// Why it is not settled, for staff.
    pub reason: String,
}

/// The end-of-day report of `closeout`: refuse to close the till unless `clean`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CloseoutReport {
    /// True when nothing is unsynced (pending, in flight, conflict, wedged or failed).
    pub clean: bool,
    /// Count and summed amount per state.
    pub states: Vec<StateTotal>,
    /// The oldest unsynced command, if any.
    pub oldest_unsynced: Option<Unsettled>,
    /// Every unsynced command with its reason, in enqueue order.
    pub unsettled: Vec<Unsettled>,
    /// What the drain achieved before the report.
    pub drain: DrainReport,
}

impl From<outbox::Unsettled> for Unsettled {
    fn from(u: outbox::Unsettled) -> Self {
        Unsettled {
            id: u.id.to_string(),
            mutator: u.mutator,
            state: u.state.into(),
            created_at_ms: u.created_at,
            amount: u.amount,
            reason: u.reason,
        }
    }
}

impl From<outbox::CloseoutReport> for CloseoutReport {
    fn from(r: outbox::CloseoutReport) -> Self {
        CloseoutReport {
            clean: r.clean,
            states: r
                .states
                .into_iter()
                .map(|t| StateTotal { state: t.state.into(), count: t.count, amount: t.amount })
                .collect(),
            oldest_unsynced: r.oldest_unsynced.map(Into::into),
            unsettled: r.unsettled.into_iter().map(Into::into).collect(),
            drain: r.drain.into(),
        }
    }
}
