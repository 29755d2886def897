//! The stored command and its state machine.
//!
//! ```text
//! pending ──► in_flight ──► succeeded            (terminal, pruned after retention)
//!    ▲            │
//!    └────────────┤ retry scheduled (attempts + 1, history row)
//!                 ├──► failed     permanent rejection; ops rolled back; dependants failed
//!                 ├──► conflict   server snapshot kept; keys paused until resolved
//!                 └──► wedged     attempts exhausted; keys paused until retry or discard
//! pending | conflict | wedged | failed ──► discarded   (explicit decision only)
//! ```
//!
//! A command leaves the queue only as `succeeded` or by an explicit decision. State is
//! written to SQLite before anyone hears of it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;

/// A command's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandId(pub Uuid);

impl CommandId {
    /// A new time-ordered id.
    pub fn new() -> Self {
        CommandId(Uuid::now_v7())
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CommandId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::parse_str(s).map(CommandId).map_err(|_| Error::UnknownCommand { id: s.to_string() })
    }
}

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting for its turn (or for its next attempt's due time).
    Pending,
    /// Handed to the transport.
    InFlight,
    /// Applied by the server. Terminal.
    Succeeded,
    /// Permanently rejected (or a predecessor was). Stays until discarded.
    Failed,
    /// The server reported a conflict; waiting for `resolve_conflict`.
    Conflict,
    /// Attempts exhausted; waiting for `retry` or `discard`.
    Wedged,
    /// Removed by an explicit decision. Terminal.
    Discarded,
}

impl CommandState {
    /// Every state, in lifecycle order.
    pub const ALL: [CommandState; 7] = [
        CommandState::Pending,
        CommandState::InFlight,
        CommandState::Succeeded,
        CommandState::Failed,
        CommandState::Conflict,
        CommandState::Wedged,
        CommandState::Discarded,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::InFlight => "in_flight",
            CommandState::Succeeded => "succeeded",
            CommandState::Failed => "failed",
            CommandState::Conflict => "conflict",
            CommandState::Wedged => "wedged",
            CommandState::Discarded => "discarded",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the command still occupies its keys (blocks later commands on them).
    pub fn holds_keys(self) -> bool {
        matches!(self, CommandState::Pending | CommandState::InFlight | CommandState::Conflict | CommandState::Wedged)
    }

    /// Whether the engine has no more work to do on it without a decision from the app.
    pub fn is_settled(self) -> bool {
        !matches!(self, CommandState::Pending | CommandState::InFlight)
    }

    /// The one place that says which transitions exist.
    pub fn can_become(self, to: CommandState) -> bool {
        use CommandState::*;
        matches!(
            (self, to),
            (Pending, InFlight)
                | (Pending, Failed)
                // A never-attempted command whose upgrade to a new mutator version failed.
                | (Pending, Wedged)
                | (Pending, Discarded)
                | (InFlight, Pending)
                | (InFlight, Succeeded)
                | (InFlight, Failed)
                | (InFlight, Conflict)
                | (InFlight, Wedged)
                // Only on the server's receipt (`check_receipt`): the server applied it
                // under its idempotency key, so it can never be applied again.
                | (Pending, Succeeded)
                | (Wedged, Succeeded)
                | (Conflict, Pending)
                | (Conflict, Discarded)
                | (Wedged, Pending)
                | (Wedged, Discarded)
                | (Failed, Discarded)
                // `retry` of a failed command (under a fresh idempotency key), and its
                // dependants that failed because of it.
                | (Failed, Pending)
        )
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a mutator is handled locally. Registering is the allowlist: unknown names are
/// refused at enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct MutatorSpec {
    /// Version of the argument shape, sent with every command.
    pub version: u32,
    /// JSON pointers (RFC 6901) into the args whose values are the command's keys,
    /// e.g. `/order_id`. An array value yields one key per element.
    pub key_pointers: Vec<String>,
    /// Largest accepted args, in bytes of JSON text (256 KiB).
    pub max_args_bytes: usize,
}

impl Default for MutatorSpec {
    fn default() -> Self {
        MutatorSpec { version: 1, key_pointers: Vec::new(), max_args_bytes: DEFAULT_MAX_ARGS_BYTES }
    }
}

/// Default limit on a command's args.
pub const DEFAULT_MAX_ARGS_BYTES: usize = 256 * 1024;

/// A local change shown immediately and rolled back if the command fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimisticOp {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// What to do.
    pub kind: OpKind,
}

/// The kinds of optimistic change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "value")]
pub enum OpKind {
    /// Create or replace the document.
    Insert(Value),
    /// Apply a JSON merge patch (RFC 7386).
    Patch(Value),
    /// Delete the document.
    Delete,
}

impl OpKind {
    /// The name stored in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            OpKind::Insert(_) => "insert",
            OpKind::Patch(_) => "patch",
            OpKind::Delete => "delete",
        }
    }
}

/// What the app asks to enqueue.
#[derive(Debug, Clone, Default)]
pub struct EnqueueRequest {
    /// A registered mutator name.
    pub mutator: String,
    /// Arguments as JSON text.
    pub args: String,
    /// Explicit scheduling keys; when empty they are derived (see the `keys` module).
    pub keys: Vec<String>,
    /// Commands on other keys that must succeed first (e.g. a payment after its order).
    pub after: Vec<CommandId>,
    /// Optimistic changes written in the same transaction as the command.
    pub ops: Vec<OptimisticOp>,
    /// Optional JSON object; a `trace_id` field is sent to the server.
    pub metadata: Option<String>,
}

impl EnqueueRequest {
    /// A request for `mutator` with JSON `args`.
    pub fn new(mutator: impl Into<String>, args: impl Into<String>) -> Self {
        EnqueueRequest { mutator: mutator.into(), args: args.into(), ..Default::default() }
    }

    /// Sets explicit keys.
    pub fn keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Adds explicit predecessors.
    pub fn after<I: IntoIterator<Item = CommandId>>(mut self, ids: I) -> Self {
        self.after.extend(ids);
        self
    }

    /// Adds an optimistic op.
    pub fn op(mut self, collection: impl Into<String>, id: impl Into<String>, kind: OpKind) -> Self {
        self.ops.push(OptimisticOp { collection: collection.into(), id: id.into(), kind });
        self
    }

    /// Sets metadata (JSON object text).
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }
}

/// How a settled command ended (or why it waits for a decision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Settlement {
    /// Applied by the server.
    Succeeded {
        /// The mutator's result.
        result: Value,
    },
    /// Permanently rejected; `code` is `dependency_failed` when a predecessor failed.
    Failed {
        /// Machine-readable code.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The server holds a newer version; resolve with `resolve_conflict`.
    Conflict {
        /// The server's state.
        server_snapshot: Value,
    },
    /// Attempts exhausted; `retry` or `discard`.
    Wedged {
        /// The last failure.
        reason: String,
    },
    /// Removed by an explicit decision.
    Discarded,
}

/// One attempt in a command's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based attempt number.
    pub number: u32,
    /// Start, in Unix milliseconds.
    pub started_at: i64,
    /// End, in Unix milliseconds; `None` while in flight or if the process died.
    pub ended_at: Option<i64>,
    /// Outcome label (`applied`, `retry`, `rejected`, `conflict`, `unauthorized`, `offline`).
    pub outcome: Option<String>,
    /// HTTP status when there was one.
    pub http_status: Option<u16>,
    /// Error text for failed attempts.
    pub error: Option<String>,
    /// The idempotency key the attempt was sent under (a failed command retried, or a
    /// conflict resolved with new args, is sent under a new one). `None` only for
    /// attempts of databases before schema version 6 whose command changed key since.
    pub idempotency_key: Option<String>,
}

/// The server's receipt for an applied command: where it landed in the workspace's
/// change feed and when the server applied it. The server stores it with the command's
/// idempotency record and answers the same receipt on every resend and on
/// `GET /v1/commands/{idempotency_key}`, so it is proof that this very command (not a
/// copy of it) reached the server once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Receipt {
    /// The workspace's change-feed position after the command (`server_seq`).
    pub server_seq: i64,
    /// Server time it was applied, Unix milliseconds; `None` when the server applied it
    /// before it kept receipt times (or a custom transport did not report one).
    pub applied_at: Option<i64>,
}

/// A command as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Its id.
    pub id: CommandId,
    /// Enqueue order within this database.
    pub seq: i64,
    /// Mutator name.
    pub mutator: String,
    /// Mutator version at enqueue.
    pub mutator_version: u32,
    /// Arguments as JSON text.
    pub args: String,
    /// Scheduling keys (empty for the unkeyed lane). Kept after the command finishes
    /// (empty for commands that finished before schema version 6).
    pub keys: Vec<String>,
    /// Sent on every attempt; fixed at enqueue. A conflict resolved with new args, or a
    /// failed command retried, gets a new one (the server never applied the old one); the
    /// history records which key each attempt used.
    pub idempotency_key: String,
    /// Enqueue time, Unix milliseconds.
    pub created_at: i64,
    /// Current state.
    pub state: CommandState,
    /// Attempts that counted toward the limit.
    pub attempts: u32,
    /// When the next attempt is due, Unix milliseconds.
    pub next_attempt_at: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Metadata JSON text.
    pub metadata: String,
    /// Explicit predecessors.
    pub depends_on: Vec<CommandId>,
    /// How it settled, once it has.
    pub settlement: Option<Settlement>,
    /// The server's receipt, once it succeeded and the server reported one (a command
    /// that succeeded before receipts existed has none until `check_receipt` asks).
    pub receipt: Option<Receipt>,
    /// Attempt history, oldest first (filled by `Outbox::command`, empty in `peek`).
    pub history: Vec<Attempt>,
    /// The amount the offline risk limits count for it (from `Limits::amount_field`);
    /// `None` when no amount field is configured or the args have none.
    pub amount: Option<i64>,
}
