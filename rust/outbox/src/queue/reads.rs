//! Reading the queue: commands with their relations and history, `peek`, settlements,
//! counts per state and the ages and times the health report shows. Nothing here writes.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::command::{Attempt, Command, CommandId, CommandState, Receipt, Settlement};
use crate::error::{Error, Result};
use crate::keys::UNKEYED_LANE;

use super::COLUMNS;

fn parse_state(s: &str) -> rusqlite::Result<CommandState> {
    CommandState::parse(s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(7, format!("state {s}"), rusqlite::types::Type::Text))
}

pub(super) fn row_to_command(r: &Row<'_>) -> rusqlite::Result<Command> {
    let id: String = r.get(1)?;
    let state = parse_state(&r.get::<_, String>(7)?)?;
    let outcome: Option<String> = r.get(12)?;
    let receipt = match r.get::<_, Option<i64>>(13)? {
        Some(server_seq) => Some(Receipt { server_seq, applied_at: r.get(14)? }),
        None => None,
    };
    Ok(Command {
        seq: r.get(0)?,
        id: CommandId(uuid::Uuid::parse_str(&id).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?),
        mutator: r.get(2)?,
        mutator_version: r.get(3)?,
        args: r.get(4)?,
        idempotency_key: r.get(5)?,
        created_at: r.get(6)?,
        state,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        last_error: r.get(10)?,
        metadata: r.get(11)?,
        settlement: outcome.and_then(|o| serde_json::from_str(&o).ok()).filter(|_| state.is_settled()),
        receipt,
        keys: r
            .get::<_, Option<String>>(15)?
            .and_then(|k| serde_json::from_str::<Vec<String>>(&k).ok())
            .unwrap_or_default(),
        depends_on: Vec::new(),
        history: Vec::new(),
        amount: r.get(16)?,
    })
}

/// Loads one command with its keys and dependencies (not its history).
pub(crate) fn load(conn: &Connection, id: &CommandId) -> Result<Command> {
    let cmd = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM commands WHERE id = ?1"))?
        .query_row(params![id.to_string()], row_to_command)
        .optional()?
        .ok_or_else(|| Error::UnknownCommand { id: id.to_string() })?;
    with_relations(conn, cmd)
}

pub(super) fn with_relations(conn: &Connection, mut cmd: Command) -> Result<Command> {
    if cmd.state.holds_keys() {
        // The lanes are the truth while it holds them (and for commands from before v6).
        let mut keys = conn.prepare_cached("SELECT key FROM command_keys WHERE command_seq = ?1 ORDER BY key")?;
        cmd.keys = keys
            .query_map(params![cmd.seq], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|k| k != UNKEYED_LANE)
            .collect();
    }
    let mut deps = conn.prepare_cached(
        "SELECT c.id FROM command_deps d JOIN commands c ON c.seq = d.depends_on WHERE d.command_seq = ?1 ORDER BY c.seq",
    )?;
    cmd.depends_on = deps
        .query_map(params![cmd.seq], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok().and_then(|s| uuid::Uuid::parse_str(&s).ok()).map(CommandId))
        .collect();
    Ok(cmd)
}

/// The attempt history of a command, oldest first.
pub(crate) fn history(conn: &Connection, seq: i64) -> Result<Vec<Attempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, started_at, ended_at, outcome, http_status, error, idempotency_key FROM attempts
         WHERE command_seq = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map(params![seq], |r| {
        Ok(Attempt {
            number: r.get(0)?,
            started_at: r.get(1)?,
            ended_at: r.get(2)?,
            outcome: r.get(3)?,
            http_status: r.get(4)?,
            error: r.get(5)?,
            idempotency_key: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Which commands `peek` lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeekFilter {
    /// Only these states (all when empty).
    pub states: Vec<CommandState>,
    /// Only commands holding this key.
    pub key: Option<String>,
    /// Only this mutator.
    pub mutator: Option<String>,
    /// At most this many (100 when 0).
    pub limit: usize,
    /// Only commands enqueued after this `seq` (for paging).
    pub after_seq: Option<i64>,
}

/// Lists commands in enqueue order.
pub(crate) fn peek(conn: &Connection, f: &PeekFilter) -> Result<Vec<Command>> {
    let mut sql = format!("SELECT {COLUMNS} FROM commands c WHERE seq > ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![f.after_seq.unwrap_or(0).into()];
    if !f.states.is_empty() {
        let marks: Vec<String> = f
            .states
            .iter()
            .map(|s| {
                args.push(s.as_str().to_string().into());
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND state IN ({})", marks.join(",")));
    }
    if let Some(m) = &f.mutator {
        args.push(m.clone().into());
        sql.push_str(&format!(" AND mutator = ?{}", args.len()));
    }
    if let Some(k) = &f.key {
        args.push(k.clone().into());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM command_keys k WHERE k.command_seq = c.seq AND k.key = ?{})",
            args.len()
        ));
    }
    let limit = if f.limit == 0 { 100 } else { f.limit };
    sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
    let mut stmt = conn.prepare(&sql)?;
    let cmds =
        stmt.query_map(rusqlite::params_from_iter(args), row_to_command)?.collect::<rusqlite::Result<Vec<_>>>()?;
    cmds.into_iter().map(|c| with_relations(conn, c)).collect()
}

/// How a command settled, by seq.
pub(crate) fn settlement(conn: &Connection, seq: i64) -> Result<Option<Settlement>> {
    let outcome: Option<String> = conn
        .prepare_cached("SELECT outcome FROM commands WHERE seq = ?1")?
        .query_row(params![seq], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(outcome.and_then(|o| serde_json::from_str(&o).ok()))
}

/// The documents a command's ops touch (one row per op).
pub(crate) const TOUCHED_DOCS_SQL: &str = "SELECT collection, doc_id FROM pending_ops WHERE command_seq = ?1";

/// The documents a command's ops touch, as (collection, id).
pub(crate) fn touched_docs(conn: &Connection, seq: i64) -> Result<Vec<(String, String)>> {
    // Sorted and deduplicated here, not with DISTINCT/ORDER BY: that plan depends on the
    // bound `seq`, which made SQLite re-parse the statement on every call (see
    // `queue::NEXT_HEAD_SQL`).
    let mut stmt = conn.prepare_cached(TOUCHED_DOCS_SQL)?;
    let rows = stmt.query_map(params![seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut docs = rows.collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    docs.sort_unstable();
    docs.dedup();
    Ok(docs)
}

/// Counts per state.
pub(crate) fn counts(conn: &Connection) -> Result<Vec<(CommandState, u64)>> {
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM commands GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (s, n) = row?;
        if let Some(s) = CommandState::parse(&s) {
            out.push((s, n.max(0) as u64));
        }
    }
    Ok(out)
}

/// Enqueue time of the oldest command still holding its keys (always a lane head).
pub(crate) fn oldest_unfinished(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT created_at FROM commands WHERE seq = (SELECT MIN(head_seq) FROM lanes)")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// When the last complete pull finished (Unix ms), as stamped by `sync::finish_pull`.
pub(crate) fn last_pull_at(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT last_synced_at FROM collection_sync WHERE collection = '*'")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// When the server last applied a command of this database (Unix ms), from the attempt
/// history (one scan; the engine reads it once and then keeps it in memory).
pub(crate) fn last_applied_at(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MAX(ended_at) FROM attempts WHERE outcome = 'applied'")?
        .query_row([], |r| r.get(0))?)
}
