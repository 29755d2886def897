//! Records and enums that cross the boundary: configuration, requests and commands
//! (documents and queries are in `documents`). JSON values cross as JSON text; ids as strings; times as Unix
//! milliseconds; durations as milliseconds. Conversions to and from the core types are at
//! the end of the file.

use std::time::Duration;

use outbox::{
    Attempt as CoreAttempt, Command as CoreCommand, CommandId, CommandState as CoreState,
    DrainReport as CoreDrainReport, Durability as CoreDurability, EnqueueRequest as CoreEnqueueRequest, MutatorSpec,
    OpKind as CoreOpKind, OptimisticOp as CoreOp, PeekFilter as CorePeekFilter, Resolution as CoreResolution,
    Settlement as CoreSettlement,
};
use serde_json::Value;

use crate::error::OutboxError;
use crate::receipt::Receipt;

/// How hard a commit works to survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Durability {
    /// `synchronous=FULL`: a command is on disk when `enqueue` returns (the default).
    Full,
    /// `synchronous=NORMAL`: faster; the last commits may be lost on power loss (never on
    /// an app crash).
    Normal,
}

/// Everything `Outbox.open` needs. Only `path`, `user_id` and `workspace_id` are required.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutboxConfig {
    /// Absolute path of the database file, in the app's private storage. One file per
    /// (user, workspace).
    pub path: String,
    /// The signed-in user.
    pub user_id: String,
    /// The workspace (tenant) the user works in.
    pub workspace_id: String,
    /// Base URL of the sync server (`https://sync.example.com`). With it, the built-in
    /// HTTP transport is used (a `TokenProvider` is then required); without it and without
    /// a custom `Transport`, commands stay queued.
    #[uniffi(default = None)]
    pub server_url: Option<String>,
    /// Whether the device is online at open; platform adapters correct it (default true).
    #[uniffi(default = true)]
    pub start_online: bool,
    /// Transport calls in flight at once (default 4).
    #[uniffi(default = None)]
    pub max_concurrency: Option<u32>,
    /// Independent commands per transport call (default 25, at most 100 over HTTP).
    #[uniffi(default = None)]
    pub max_batch_size: Option<u32>,
    /// Attempts before a command is parked as `wedged` (default 10).
    #[uniffi(default = None)]
    pub max_attempts: Option<u32>,
    /// Delay after the first failed attempt, ms (default 1000).
    #[uniffi(default = None)]
    pub retry_base_ms: Option<u64>,
    /// Largest delay between attempts, ms (default 60000).
    #[uniffi(default = None)]
    pub retry_cap_ms: Option<u64>,
    /// Random spread of each retry delay, as a fraction of it: 0.3 (the default) waits
    /// between 70% and 130% of the backoff. Clamped to 0..=1.
    #[uniffi(default = None)]
    pub retry_jitter: Option<f64>,
    /// Timeout of one attempt, ms (default 15000).
    #[uniffi(default = None)]
    pub attempt_timeout_ms: Option<u64>,
    /// Drainer lease duration across processes, ms (default 5000).
    #[uniffi(default = None)]
    pub lease_ttl_ms: Option<u64>,
    /// Commit durability (default `Full`).
    #[uniffi(default = None)]
    pub durability: Option<Durability>,
    /// How long succeeded and discarded commands are kept for inspection, ms (7 days).
    #[uniffi(default = None)]
    pub retention_ms: Option<u64>,
    /// Optional cap on the database file's size. `enqueue` fails with `StorageFull` once
    /// the cap minus a reserve only the drain uses (an eighth of it) is reached; the drain
    /// goes on and prunes settled commands early to make room.
    #[uniffi(default = None)]
    pub max_size_bytes: Option<u64>,
    /// Offline risk limit: most unsynced commands (pending, in flight, conflict, wedged or
    /// failed). `enqueue` beyond it fails with `LimitExceeded` and writes nothing.
    #[uniffi(default = None)]
    pub max_unsynced: Option<u64>,
    /// Offline risk limit: oldest an unsynced command may be, ms, before `enqueue` is
    /// refused (the till has been offline too long).
    #[uniffi(default = None)]
    pub max_unsynced_age_ms: Option<u64>,
    /// Offline risk limit: largest sum of `limit_amount_field` over unsynced commands.
    #[uniffi(default = None)]
    pub max_unsynced_amount: Option<i64>,
    /// JSON pointer into the args of the integer the amount limits sum, e.g.
    /// `/total_cents`. Args without it count 0; a non-integer is refused at enqueue.
    #[uniffi(default = None)]
    pub limit_amount_field: Option<String>,
    /// Soft threshold as a fraction of each limit (default 0.8): an enqueue at or above
    /// it emits a `LimitWarning` event.
    #[uniffi(default = None)]
    pub limit_warn_at: Option<f64>,
    /// Limits per mutator, on top of the global ones.
    #[uniffi(default = [])]
    pub mutator_limits: Vec<crate::till::MutatorLimit>,
    /// How long the queue may sit online with commands ready and nothing attempted or
    /// settled before the stall watchdog kicks it and emits `QueueStalled`, ms (default
    /// 30000; 0 turns the watchdog off).
    #[uniffi(default = None)]
    pub stall_window_ms: Option<u64>,
}

/// How a mutator is handled locally. Registering a mutator allows it to be enqueued.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MutatorOptions {
    /// Version of the args shape, sent with every command (default 1).
    #[uniffi(default = 1)]
    pub version: u32,
    /// JSON pointers into the args whose values are the command's scheduling keys,
    /// e.g. `/orderId` (default: none; `args.id` / `args.ids` are used).
    #[uniffi(default = [])]
    pub key_pointers: Vec<String>,
    /// Largest accepted args in bytes (default 256 KiB).
    #[uniffi(default = None)]
    pub max_args_bytes: Option<u32>,
}

/// A local change shown at once and rolled back if its command fails.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum OpKind {
    /// Create or replace the document with `value` (JSON object text).
    Insert {
        /// The document as JSON text.
        value: String,
    },
    /// Apply a JSON merge patch (RFC 7386) given as JSON text.
    Patch {
        /// The patch as JSON text.
        patch: String,
    },
    /// Delete the document.
    Delete,
}

/// One optimistic change of a command.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OptimisticOp {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// What to do.
    pub kind: OpKind,
}

/// What to enqueue.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EnqueueRequest {
    /// A registered mutator name.
    pub mutator: String,
    /// Arguments as JSON text.
    pub args: String,
    /// Explicit scheduling keys; derived from the args or ops when empty.
    #[uniffi(default = [])]
    pub keys: Vec<String>,
    /// Ids of commands on other keys that must succeed first.
    #[uniffi(default = [])]
    pub after: Vec<String>,
    /// Optimistic changes written in the same transaction as the command.
    #[uniffi(default = [])]
    pub ops: Vec<OptimisticOp>,
    /// A JSON object as text; a `trace_id` field is sent to the server.
    #[uniffi(default = None)]
    pub metadata: Option<String>,
}

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum CommandState {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// Being sent.
    InFlight,
    /// Applied by the server.
    Succeeded,
    /// Permanently rejected (or a predecessor was).
    Failed,
    /// The server reported a conflict; waiting for `resolve_conflict`.
    Conflict,
    /// Attempts exhausted; waiting for `retry` or `discard`.
    Wedged,
    /// Removed by an explicit decision.
    Discarded,
}

/// How a command ended, or why it waits for a decision.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Settlement {
    /// Applied by the server; `result` is the mutator's result as JSON text.
    Succeeded {
        /// The result as JSON text.
        result: String,
    },
    /// Permanently rejected; `code` is `dependency_failed` when a predecessor failed.
    Failed {
        /// Machine-readable code from the server.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The server holds a newer version; resolve with `resolve_conflict`.
    Conflict {
        /// The server's state as JSON text.
        server_snapshot: String,
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
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Attempt {
    /// 1-based attempt number.
    pub number: u32,
    /// Start, Unix ms.
    pub started_at_ms: i64,
    /// End, Unix ms; none while in flight or if the process died.
    pub ended_at_ms: Option<i64>,
    /// `applied`, `retry`, `rejected`, `conflict`, `unauthorized` or `offline`.
    pub outcome: Option<String>,
    /// HTTP status, when there was one.
    pub http_status: Option<u16>,
    /// Error text for failed attempts.
    pub error: Option<String>,
    /// The idempotency key it was sent under (a retried failed command, or a conflict
    /// resolved with new args, gets a new one).
    pub idempotency_key: Option<String>,
}

/// A command as stored.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Command {
    /// Its id (UUID v7 text).
    pub id: String,
    /// Enqueue order within this database.
    pub seq: i64,
    /// Mutator name.
    pub mutator: String,
    /// Mutator version at enqueue.
    pub mutator_version: u32,
    /// Arguments as JSON text.
    pub args: String,
    /// Scheduling keys (empty: the serial unkeyed lane), kept after the command finishes.
    pub keys: Vec<String>,
    /// Sent on every attempt; the server applies the command once per key.
    pub idempotency_key: String,
    /// Enqueue time, Unix ms.
    pub created_at_ms: i64,
    /// Current state.
    pub state: CommandState,
    /// Attempts that counted toward the limit.
    pub attempts: u32,
    /// When the next attempt is due, Unix ms.
    pub next_attempt_at_ms: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Metadata as JSON text.
    pub metadata: String,
    /// Explicit predecessors.
    pub depends_on: Vec<String>,
    /// How it settled, once it has.
    pub settlement: Option<Settlement>,
    /// The server's receipt once it succeeded: proof the server applied it, and where
    /// and when. None before that (and for commands that succeeded before receipts
    /// existed, until `check_receipt` asks).
    pub receipt: Option<Receipt>,
    /// Attempt history, oldest first (filled by `command`, empty in `peek`).
    pub history: Vec<Attempt>,
    /// What the offline risk limits count for it (from `limit_amount_field`), if any.
    pub amount: Option<i64>,
}

/// Which commands `peek` lists.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PeekFilter {
    /// Only these states (all when empty).
    #[uniffi(default = [])]
    pub states: Vec<CommandState>,
    /// Only commands holding this key.
    #[uniffi(default = None)]
    pub key: Option<String>,
    /// Only this mutator.
    #[uniffi(default = None)]
    pub mutator: Option<String>,
    /// At most this many (default 100).
    #[uniffi(default = 100)]
    pub limit: u32,
    /// Only commands after this `seq` (paging).
    #[uniffi(default = None)]
    pub after_seq: Option<i64>,
}

/// How to resolve a command in `conflict`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Resolution {
    /// Send again with new args (JSON text) under a new idempotency key.
    RetryWith {
        /// The new args as JSON text.
        args: String,
    },
    /// Give the command up; its optimistic changes are rolled back.
    Discard,
}

/// What `drain_for` achieved.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DrainReport {
    /// Attempts that finished in the window.
    pub attempts: u64,
    /// Commands that succeeded.
    pub succeeded: u64,
    /// Commands that failed permanently (including dependants).
    pub failed: u64,
    /// Commands still pending or in flight at the end.
    pub remaining: u64,
    /// True when nothing was left to send now; false when the budget ran out first.
    pub completed: bool,
}

/// What registering a mutator with an upgrader did to the queue.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UpgradeReport {
    /// Never-attempted commands that now carry the new version and upgraded args.
    pub upgraded: u64,
    /// Commands whose upgrade failed: untouched, parked as `wedged` with the reason.
    pub wedged: u64,
}

impl From<outbox::UpgradeReport> for UpgradeReport {
    fn from(r: outbox::UpgradeReport) -> Self {
        UpgradeReport { upgraded: r.upgraded, wedged: r.wedged }
    }
}

// ---- conversions ----

/// Parses JSON text from the app, naming the field in the error.
pub(crate) fn parse_json(field: &str, text: &str) -> Result<Value, OutboxError> {
    serde_json::from_str(text).map_err(|e| OutboxError::InvalidJson { detail: format!("invalid JSON in {field}: {e}") })
}

/// Parses a command id given by the app.
pub(crate) fn parse_id(id: &str) -> Result<CommandId, OutboxError> {
    id.parse::<CommandId>().map_err(OutboxError::from)
}

pub(crate) fn ms(d: Option<u64>) -> Option<Duration> {
    d.map(Duration::from_millis)
}

impl From<Durability> for CoreDurability {
    fn from(d: Durability) -> Self {
        match d {
            Durability::Full => CoreDurability::Full,
            Durability::Normal => CoreDurability::Normal,
        }
    }
}

impl From<MutatorOptions> for MutatorSpec {
    fn from(o: MutatorOptions) -> Self {
        let default = MutatorSpec::default();
        MutatorSpec {
            version: o.version,
            key_pointers: o.key_pointers,
            max_args_bytes: o.max_args_bytes.map(|n| n as usize).unwrap_or(default.max_args_bytes),
        }
    }
}

impl TryFrom<EnqueueRequest> for CoreEnqueueRequest {
    type Error = OutboxError;
    fn try_from(r: EnqueueRequest) -> Result<Self, OutboxError> {
        let after = r.after.iter().map(|id| parse_id(id)).collect::<Result<Vec<_>, _>>()?;
        let ops = r.ops.into_iter().map(CoreOp::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(CoreEnqueueRequest { mutator: r.mutator, args: r.args, keys: r.keys, after, ops, metadata: r.metadata })
    }
}

impl TryFrom<OptimisticOp> for CoreOp {
    type Error = OutboxError;
    fn try_from(op: OptimisticOp) -> Result<Self, OutboxError> {
        let kind = match op.kind {
            OpKind::Insert { value } => CoreOpKind::Insert(parse_json("op value", &value)?),
            OpKind::Patch { patch } => CoreOpKind::Patch(parse_json("op patch", &patch)?),
            OpKind::Delete => CoreOpKind::Delete,
        };
        Ok(CoreOp { collection: op.collection, id: op.id, kind })
    }
}

impl From<CoreState> for CommandState {
    fn from(s: CoreState) -> Self {
        match s {
            CoreState::Pending => CommandState::Pending,
            CoreState::InFlight => CommandState::InFlight,
            CoreState::Succeeded => CommandState::Succeeded,
            CoreState::Failed => CommandState::Failed,
            CoreState::Conflict => CommandState::Conflict,
            CoreState::Wedged => CommandState::Wedged,
            CoreState::Discarded => CommandState::Discarded,
        }
    }
}

impl From<CommandState> for CoreState {
    fn from(s: CommandState) -> Self {
        match s {
            CommandState::Pending => CoreState::Pending,
            CommandState::InFlight => CoreState::InFlight,
            CommandState::Succeeded => CoreState::Succeeded,
            CommandState::Failed => CoreState::Failed,
            CommandState::Conflict => CoreState::Conflict,
            CommandState::Wedged => CoreState::Wedged,
            CommandState::Discarded => CoreState::Discarded,
        }
    }
}

impl From<CoreSettlement> for Settlement {
    fn from(s: CoreSettlement) -> Self {
        match s {
            CoreSettlement::Succeeded { result } => Settlement::Succeeded { result: result.to_string() },
            CoreSettlement::Failed { code, message } => Settlement::Failed { code, message },
            CoreSettlement::Conflict { server_snapshot } => {
                Settlement::Conflict { server_snapshot: server_snapshot.to_string() }
            }
            CoreSettlement::Wedged { reason } => Settlement::Wedged { reason },
            CoreSettlement::Discarded => Settlement::Discarded,
        }
    }
}

impl From<CoreAttempt> for Attempt {
    fn from(a: CoreAttempt) -> Self {
        Attempt {
            number: a.number,
            started_at_ms: a.started_at,
            ended_at_ms: a.ended_at,
            outcome: a.outcome,
            http_status: a.http_status,
            error: a.error,
            idempotency_key: a.idempotency_key,
        }
    }
}

impl From<CoreCommand> for Command {
    fn from(c: CoreCommand) -> Self {
        Command {
            id: c.id.to_string(),
            seq: c.seq,
            mutator: c.mutator,
            mutator_version: c.mutator_version,
            args: c.args,
            keys: c.keys,
            idempotency_key: c.idempotency_key,
            created_at_ms: c.created_at,
            state: c.state.into(),
            attempts: c.attempts,
            next_attempt_at_ms: c.next_attempt_at,
            last_error: c.last_error,
            metadata: c.metadata,
            depends_on: c.depends_on.iter().map(ToString::to_string).collect(),
            settlement: c.settlement.map(Into::into),
            receipt: c.receipt.map(Into::into),
            history: c.history.into_iter().map(Into::into).collect(),
            amount: c.amount,
        }
    }
}

impl From<PeekFilter> for CorePeekFilter {
    fn from(f: PeekFilter) -> Self {
        CorePeekFilter {
            states: f.states.into_iter().map(Into::into).collect(),
            key: f.key,
            mutator: f.mutator,
            limit: f.limit as usize,
            after_seq: f.after_seq,
        }
    }
}

impl From<Resolution> for CoreResolution {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::RetryWith { args } => CoreResolution::RetryWith(args),
            Resolution::Discard => CoreResolution::Discard,
        }
    }
}

impl From<CoreDrainReport> for DrainReport {
    fn from(r: CoreDrainReport) -> Self {
        DrainReport {
            attempts: r.attempts,
            succeeded: r.succeeded,
            failed: r.failed,
            remaining: r.remaining,
            completed: r.completed,
        }
    }
}
