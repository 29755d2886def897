//! How commands leave the device.
//!
//! The engine hands a [`Transport`] a batch of [`OutgoingCommand`]s whose scheduling
//! predecessors have all succeeded, so the commands of one batch never depend on each
//! other. The transport answers with one [`Outcome`] per command, in batch order.
//! Whole-request failures (offline, 401, 403, 429, 5xx, timeouts) are reported by giving every
//! command of the batch the same outcome.
//!
//! A transport never decides what happens next: the engine's `retry` module classifies
//! each outcome (retry with backoff, park as wedged, fail, pause on conflict).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::command::Receipt;

/// One command as it goes over the wire (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingCommand {
    /// The command's id (UUID v7 text).
    pub id: String,
    /// Fixed at enqueue time and identical on every attempt; the server deduplicates by it.
    pub idempotency_key: String,
    /// Registered mutator name, e.g. `createOrder`.
    pub mutator: String,
    /// Version of the mutator's argument shape.
    pub mutator_version: u32,
    /// The command's scheduling keys. Commands of one batch from this engine never share
    /// a key; a server that receives several commands sharing a key applies them in
    /// order and stops that key's lane at the first one not applied.
    pub keys: Vec<String>,
    /// Arguments as JSON.
    pub args: Value,
    /// Server versions of the documents the command's optimistic ops touched, as
    /// `{"collection:id": version}`; empty when the command touched none.
    pub base_versions: serde_json::Map<String, Value>,
    /// Caller metadata (JSON object); `trace_id`, when present, is sent to the server.
    pub metadata: Value,
    /// 1 for the first attempt, 2 for the second, and so on.
    pub attempt: u32,
}

/// A document version the server reports with an applied command or a pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocChange {
    /// Collection name.
    pub collection: String,
    /// Document id within the collection.
    pub id: String,
    /// Server version after the change.
    pub version: i64,
    /// The document, or `None` when it was deleted.
    pub doc: Option<Value>,
}

/// What happened to one command of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server applied the command (or had applied it before: a deduplicated attempt).
    Applied {
        /// The mutator's result.
        result: Value,
        /// Documents the command changed, at their new server versions.
        changes: Vec<DocChange>,
        /// The server's receipt (`server_seq`, `applied_at`), when it sent one. Stored on
        /// the command when it succeeds.
        receipt: Option<Receipt>,
    },
    /// A transient failure: try again later. Consumes an attempt.
    Retry {
        /// Human-readable reason, stored as the command's `last_error`.
        reason: String,
        /// Server-requested delay (`Retry-After`); wins over the computed backoff.
        retry_after: Option<Duration>,
        /// HTTP status, when there was one.
        http_status: Option<u16>,
    },
    /// A permanent rejection: the command can never succeed as it is.
    Rejected {
        /// Machine-readable code from the server (e.g. `insufficient_stock`).
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The server holds a newer version of what the command changes.
    Conflict {
        /// The server's current state, kept for the app to resolve with.
        server_snapshot: Value,
    },
    /// The credentials were refused. Does not consume an attempt.
    Unauthorized,
    /// The server knows the user but refused them this action (HTTP 403: not a member of
    /// the workspace, a missing role). Nothing was applied. Sending pauses with an
    /// `AccessDenied` event and backoff; does not consume an attempt.
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// The server could not be reached at all. Does not consume an attempt.
    Offline,
}

impl Outcome {
    /// A transient failure without a server-requested delay.
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry { reason: reason.into(), retry_after: None, http_status: None }
    }

    /// An applied outcome with a result and no document changes.
    pub fn applied(result: Value) -> Self {
        Outcome::Applied { result, changes: Vec::new(), receipt: None }
    }

    /// A short label for logs, events and the attempt history.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied { .. } => "applied",
            Outcome::Retry { .. } => "retry",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Conflict { .. } => "conflict",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden { .. } => "forbidden",
            Outcome::Offline => "offline",
        }
    }
}

/// One page of the server's change feed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangePage {
    /// Changed documents at their new versions, in feed order.
    pub changes: Vec<DocChange>,
    /// Where the next pull continues.
    pub cursor: String,
    /// Whether more changes wait behind this page.
    pub has_more: bool,
}

/// What a pull from the change feed returned.
#[derive(Debug, Clone, PartialEq)]
pub enum PullOutcome {
    /// A page of changes.
    Page(ChangePage),
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// Anything else (bad status, unreadable body); retried with backoff.
    Failed(String),
    /// This transport has no change feed (sync-down is off).
    Unsupported,
    /// The server cannot continue from this cursor: it comes from another server epoch
    /// (the database was recreated) or is past the feed's head (it was restored from a
    /// backup). The engine rebuilds its synced state from the start of the feed, keeping
    /// pending changes on top throughout (docs/store.md, "Feed resets").
    CursorReset {
        /// Why, for logs.
        reason: String,
    },
}

/// What the server said about one idempotency key (`GET /v1/commands/{key}`).
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptLookup {
    /// The server applied a command under this key: its stored result and receipt.
    Applied {
        /// The mutator's result, as stored.
        result: Value,
        /// Documents the command changed, as stored.
        changes: Vec<DocChange>,
        /// Where and when it was applied.
        receipt: Receipt,
    },
    /// The server has no command under this key for this user in this workspace
    /// (404 `unknown_command`): it was never applied.
    NotFound,
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// Anything else (bad status, unreadable body, timeout).
    Failed(String),
    /// This transport (or the server behind it) cannot look commands up. The default.
    Unsupported,
}

/// Called by a transport's live channel (e.g. server-sent events) when the server says
/// something changed; the engine pulls.
pub type Nudge = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Sends batches of commands to a server.
///
/// Implementations must be cancel-safe (the engine may drop the future on timeout or
/// shutdown) and must return exactly one outcome per command, in batch order. A missing
/// outcome is treated as a transient failure; a panic inside `send` is caught and also
/// treated as a transient failure.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends one batch and reports each command's outcome.
    async fn send(&self, batch: Vec<OutgoingCommand>) -> Vec<Outcome>;

    /// Reads one page of the change feed after `cursor` (`None`: from the beginning).
    /// The default has no feed.
    async fn pull(&self, _cursor: Option<String>, _limit: u32) -> PullOutcome {
        PullOutcome::Unsupported
    }

    /// Listens for "something changed" signals until the channel ends, calling `nudge` for
    /// each. Returns `true` when the channel ended and should be reopened (the engine calls
    /// again with backoff), `false` when this transport has no live channel (the default).
    async fn listen(&self, _nudge: Nudge) -> bool {
        false
    }

    /// Asks the server whether it applied the command sent under `idempotency_key`, and
    /// with which receipt (`GET /v1/commands/{key}`). Read-only: nothing is applied. The
    /// default answers [`ReceiptLookup::Unsupported`], so transports written before
    /// receipts keep compiling and working.
    async fn receipt(&self, _idempotency_key: &str) -> ReceiptLookup {
        ReceiptLookup::Unsupported
    }
}
