//! End-of-day closeout: drain until the queue is empty or a deadline passes, then say
//! whether the till may close ([`CloseoutReport::clean`]) and what is still unsettled.
//!
//! *Unsettled* means unsynced (see [`crate::limits`]): `pending`, `in_flight`,
//! `conflict`, `wedged` or `failed`. A till is clean when none is left. Succeeded and
//! discarded commands still kept for inspection appear in the per-state totals only.

use std::time::Duration;

use rusqlite::Connection;

use crate::command::{CommandId, CommandState, Settlement};
use crate::error::{Error, Result};
use crate::lifecycle::DrainReport;
use crate::outbox::Outbox;

/// Count and summed amount of the commands in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTotal {
    /// The state.
    pub state: CommandState,
    /// How many commands are in it.
    pub count: u64,
    /// Sum of their amounts (`Limits::amount_field`; 0 without one).
    pub amount: i64,
}

/// A command the server has not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The command.
    pub id: CommandId,
    /// Its mutator.
    pub mutator: String,
    /// Its state.
    pub state: CommandState,
    /// Enqueue time, Unix milliseconds.
    pub created_at: i64,
    /// Its amount, if any.
    pub amount: Option<i64>,
    /// Why it is not settled, for staff: the rejection, the last failure, or what it waits for.
    pub reason: String,
}

/// What [`Outbox::closeout`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseoutReport {
    /// True when no command is unsynced: the till may close.
    pub clean: bool,
    /// Count and summed amount per state, in lifecycle order (states with none omitted).
    pub states: Vec<StateTotal>,
    /// The oldest unsynced command, if any.
    pub oldest_unsynced: Option<Unsettled>,
    /// Every unsynced command with its reason, in enqueue order.
    pub unsettled: Vec<Unsettled>,
    /// What the drain achieved before the report (all zero for `closeout_report`).
    pub drain: DrainReport,
}

impl Outbox {
    /// Drains until nothing is left to send or `deadline` (a duration from now) passes,
    /// then reports. Refuse to close the till unless the report is `clean`: what is left
    /// needs the network, or a decision (`resolve_conflict`, `retry`, `discard`).
    pub async fn closeout(&self, deadline: Duration) -> Result<CloseoutReport> {
        let drain = self.drain_for(deadline).await?;
        let mut report = self.closeout_report()?;
        report.drain = drain;
        Ok(report)
    }

    /// The closeout report for the queue as it is now, without sending anything (the
    /// `outbox closeout` CLI on a device database).
    pub fn closeout_report(&self) -> Result<CloseoutReport> {
        self.engine()?.db.read(report)
    }
}

fn report(conn: &Connection) -> Result<CloseoutReport> {
    let mut states = Vec::new();
    let mut stmt = conn.prepare("SELECT state, COUNT(*), COALESCE(SUM(amount), 0) FROM commands GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
    for row in rows {
        let (state, count, amount) = row?;
        if let Some(state) = CommandState::parse(&state) {
            states.push(StateTotal { state, count: count.max(0) as u64, amount });
        }
    }
    states.sort_by_key(|t| CommandState::ALL.iter().position(|s| *s == t.state));
    let mut stmt = conn.prepare(&format!(
        "SELECT id, mutator, state, created_at, amount, last_error, outcome FROM commands
         WHERE state IN {} ORDER BY seq",
        crate::limits::UNSYNCED
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut unsettled = Vec::new();
    for row in rows {
        let (id, mutator, state, created_at, amount, last_error, outcome) = row?;
        let id = id.parse::<CommandId>().map_err(|_| Error::Corrupt { detail: format!("bad command id {id}") })?;
        let state =
            CommandState::parse(&state).ok_or_else(|| Error::Corrupt { detail: format!("bad state {state}") })?;
        let settlement: Option<Settlement> = outcome.and_then(|o| serde_json::from_str(&o).ok());
        let reason = reason(state, last_error, settlement);
        unsettled.push(Unsettled { id, mutator, state, created_at, amount, reason });
    }
    let oldest_unsynced = unsettled.iter().min_by_key(|u| u.created_at).cloned();
    Ok(CloseoutReport {
        clean: unsettled.is_empty(),
        states,
        oldest_unsynced,
        unsettled,
        drain: DrainReport::default(),
    })
}

fn reason(state: CommandState, last_error: Option<String>, settlement: Option<Settlement>) -> String {
    match (state, settlement) {
        (CommandState::Failed, Some(Settlement::Failed { code, message })) => {
            format!("rejected ({code}): {message}; retry or discard it")
        }
        (CommandState::Conflict, _) => "conflict: the server holds a newer version; resolve it".into(),
        (CommandState::Wedged, Some(Settlement::Wedged { reason })) => format!("wedged: {reason}; retry or discard it"),
        (CommandState::InFlight, _) => "being sent".into(),
        (_, _) => match last_error {
            Some(e) => format!("not yet applied; last attempt: {e}"),
            None => "not yet sent".into(),
        },
    }
}
