//! Text and JSON renderings of the database's contents.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outbox::{Command, Outbox, PeekFilter, Settlement};
use serde_json::{json, Value};

use crate::Failure;

fn when(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    match SystemTime::now().duration_since(at) {
        Ok(ago) => format!("{} ago", human(ago)),
        Err(e) => format!("in {}", human(e.duration())),
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        1..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

pub fn status(ob: &Outbox) -> Result<String, Failure> {
    let s = ob.status()?;
    let mut out = String::new();
    let _ = writeln!(out, "schema      v{}", ob.schema_version()?);
    if let Some((user, ws)) = ob.scope()? {
        let _ = writeln!(out, "scope       user {user}, workspace {ws}");
    }
    let _ = writeln!(out, "pending     {}", s.pending);
    let _ = writeln!(out, "in_flight   {}", s.in_flight);
    let _ = writeln!(out, "failed      {}", s.failed);
    let _ = writeln!(out, "conflict    {}", s.conflict);
    let _ = writeln!(out, "wedged      {}", s.wedged);
    let _ = writeln!(out, "succeeded   {} (kept for inspection)", s.succeeded);
    if let Some(age) = s.oldest_pending_age {
        let _ = writeln!(out, "oldest      {} old", human(age));
    }
    if let Some(next) = s.next_attempt_in {
        let _ = writeln!(out, "next retry  in {}", human(next));
    }
    let _ = writeln!(out, "last sent   {}", s.last_success_at.map_or("never".to_string(), when));
    let _ = writeln!(out, "last pull   {}", s.last_pull_at.map_or("never".to_string(), when));
    let storage = match s.storage_cap_bytes {
        Some(cap) => format!("{} KiB used of {} KiB", s.storage_used_bytes / 1024, cap / 1024),
        None => format!("{} KiB used", s.storage_used_bytes / 1024),
    };
    let _ = writeln!(out, "storage     {storage}");
    match ob.drainer_lease()? {
        Some(l) if l.live => {
            let _ =
                writeln!(out, "drainer     {} (generation {}, expires {})", l.owner, l.generation, when(l.expires_at));
        }
        Some(l) => {
            let _ = writeln!(out, "drainer     none (last: {}, generation {})", l.owner, l.generation);
        }
        None => {
            let _ = writeln!(out, "drainer     none");
        }
    }
    Ok(out)
}

pub fn list(cmds: &[Command]) -> String {
    let mut out =
        format!("{:<36}  {:<10}  {:<16}  {:>3}  {:<20}  {}\n", "ID", "STATE", "MUTATOR", "TRY", "KEYS", "LAST ERROR");
    for c in cmds {
        let keys = if c.keys.is_empty() { "(unkeyed)".to_string() } else { c.keys.join(",") };
        let _ = writeln!(
            out,
            "{:<36}  {:<10}  {:<16}  {:>3}  {:<20}  {}",
            c.id,
            c.state.as_str(),
            c.mutator,
            c.attempts,
            keys,
            c.last_error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "{} commands", cmds.len());
    out
}

pub fn show(c: &Command) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "id               {}", c.id);
    let _ = writeln!(out, "state            {}", c.state);
    let _ = writeln!(out, "mutator          {} (v{})", c.mutator, c.mutator_version);
    let _ =
        writeln!(out, "keys             {}", if c.keys.is_empty() { "(unkeyed)".into() } else { c.keys.join(", ") });
    if !c.depends_on.is_empty() {
        let deps: Vec<String> = c.depends_on.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(out, "after            {}", deps.join(", "));
    }
    let _ = writeln!(out, "idempotency key  {}", c.idempotency_key);
    let _ = writeln!(out, "enqueued         {}", when(c.created_at));
    let _ = writeln!(out, "attempts         {}", c.attempts);
    if c.state == outbox::CommandState::Pending && c.attempts > 0 {
        let _ = writeln!(out, "next attempt     {}", when(c.next_attempt_at));
    }
    if let Some(e) = &c.last_error {
        let _ = writeln!(out, "last error       {e}");
    }
    match &c.settlement {
        Some(Settlement::Failed { code, message }) => {
            let _ = writeln!(out, "failed           {code}: {message}");
        }
        Some(Settlement::Wedged { reason }) => {
            let _ = writeln!(out, "wedged           {reason}");
        }
        Some(Settlement::Conflict { server_snapshot }) => {
            let _ = writeln!(out, "server snapshot  {server_snapshot}");
        }
        Some(Settlement::Succeeded { result }) => {
            let _ = writeln!(out, "result           {result}");
        }
        _ => {}
    }
    if let Some(r) = &c.receipt {
        let at = match r.applied_at {
            Some(ms) => format!("applied {} (server time {ms} ms)", when(ms)),
            None => "applied (time not recorded by the server)".to_string(),
        };
        let _ = writeln!(out, "receipt          server_seq {}, {at}", r.server_seq);
    }
    let _ = writeln!(out, "metadata         {}", c.metadata);
    let _ = writeln!(out, "args             {}", c.args);
    if !c.history.is_empty() {
        let _ = writeln!(out, "history");
        for a in &c.history {
            let took =
                a.ended_at.map(|e| format!("{} ms", (e - a.started_at).max(0))).unwrap_or_else(|| "unfinished".into());
            let status = a.http_status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  #{:<3} {:<13} {:<12} {}{} {}",
                a.number,
                when(a.started_at),
                took,
                a.outcome.as_deref().unwrap_or("-"),
                status,
                a.error.as_deref().unwrap_or("")
            );
        }
    }
    out
}

fn command_json(c: &Command) -> Value {
    json!({
        "id": c.id.to_string(),
        "seq": c.seq,
        "state": c.state.as_str(),
        "mutator": c.mutator,
        "mutator_version": c.mutator_version,
        "args": serde_json::from_str::<Value>(&c.args).unwrap_or(Value::String(c.args.clone())),
        "keys": c.keys,
        "depends_on": c.depends_on.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "idempotency_key": c.idempotency_key,
        "created_at": c.created_at,
        "attempts": c.attempts,
        "next_attempt_at": c.next_attempt_at,
        "last_error": c.last_error,
        "metadata": serde_json::from_str::<Value>(&c.metadata).unwrap_or(Value::Null),
        "settlement": c.settlement.as_ref().map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        "receipt": c.receipt.map(|r| json!({"server_seq": r.server_seq, "applied_at": r.applied_at})),
        "amount": c.amount,
        "history": c.history.iter().map(|a| json!({
            "attempt": a.number, "started_at": a.started_at, "ended_at": a.ended_at,
            "outcome": a.outcome, "http_status": a.http_status, "error": a.error,
            "idempotency_key": a.idempotency_key,
        })).collect::<Vec<_>>(),
    })
}

pub fn export(ob: &Outbox) -> Result<String, Failure> {
    let s = ob.status()?;
    let mut commands = Vec::new();
    let mut after = None;
    loop {
        let page = ob.peek(&PeekFilter { limit: 1000, after_seq: after, ..Default::default() })?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for c in &page {
            commands.push(command_json(&ob.command(&c.id)?));
        }
    }
    let lease = ob
        .drainer_lease()?
        .map(|l| json!({"owner": l.owner, "generation": l.generation, "expires_at": l.expires_at, "live": l.live}));
    let scope = ob.scope()?.map(|(u, w)| json!({"user_id": u, "workspace_id": w}));
    let doc = json!({
        "schema_version": ob.schema_version()?,
        "scope": scope,
        "status": {
            "pending": s.pending, "in_flight": s.in_flight, "failed": s.failed,
            "conflict": s.conflict, "wedged": s.wedged, "succeeded": s.succeeded,
        },
        "lease": lease,
        "commands": commands,
    });
    serde_json::to_string_pretty(&doc).map_err(|e| crate::fail(e.to_string(), 1))
}

fn unsettled_json(u: &outbox::Unsettled) -> Value {
    json!({
        "id": u.id.to_string(), "mutator": u.mutator, "state": u.state.as_str(),
        "created_at": u.created_at, "amount": u.amount, "reason": u.reason,
    })
}

/// The closeout report as JSON (`outbox closeout DB --json`).
pub fn closeout_json(r: &outbox::CloseoutReport) -> Result<String, Failure> {
    let doc = json!({
        "clean": r.clean,
        "states": r.states.iter().map(|t| json!({"state": t.state.as_str(), "count": t.count, "amount": t.amount}))
            .collect::<Vec<_>>(),
        "oldest_unsynced": r.oldest_unsynced.as_ref().map(unsettled_json),
        "unsettled": r.unsettled.iter().map(unsettled_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).map_err(|e| crate::fail(e.to_string(), 1))
}

/// The closeout report for people.
pub fn closeout(r: &outbox::CloseoutReport) -> String {
    let mut out = String::new();
    let verdict = if r.clean { "clean: the till may close" } else { "NOT CLEAN: do not close the till" };
    let _ = writeln!(out, "{verdict}");
    for t in &r.states {
        let _ = writeln!(out, "{:<11} {:>6}  amount {}", t.state.as_str(), t.count, t.amount);
    }
    if let Some(o) = &r.oldest_unsynced {
        let _ = writeln!(out, "oldest unsynced {} ({}, {})", o.id, o.mutator, when(o.created_at));
    }
    for u in &r.unsettled {
        let _ = writeln!(out, "{}  {:<10} {:<14} {}", u.id, u.state.as_str(), u.mutator, u.reason);
    }
    out
}
