//! Traits the app implements in Kotlin, Swift or TypeScript, and the bridges that let the
//! core call them.
//!
//! The engine calls foreign code only from its own runtime threads, never inside a
//! synchronous call made by the app (a synchronous call that waits on a callback would
//! deadlock a JavaScript thread). Listeners and the logger return a [`CallbackError`], so
//! whatever they throw arrives as an error value, which the bridge logs and skips; a panic
//! from any other callback is caught the same way.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use outbox::http::{TokenError as CoreTokenError, TokenProvider as CoreTokenProvider};
use outbox::{
    ChangePage, DocChange as CoreDocChange, Outcome as CoreOutcome, OutgoingCommand as CoreOutgoing,
    PullOutcome as CorePull, ReceiptLookup as CoreReceiptLookup, Transport as CoreTransport,
};

use crate::documents::Doc;
use crate::error::{CallbackError, TokenError, UpgradeError};
use crate::events::OutboxEvent;
use crate::receipt::Receipt;
use crate::OutboxError;

/// Supplies the bearer token for each request to the sync server. Keep tokens in memory or
/// the platform keystore: Outbox never writes them to disk or logs.
#[uniffi::export(with_foreign)]
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A current access token (without `Bearer `). `force_refresh` is true when the server
    /// just refused the previous one: fetch a new one.
    async fn token(&self, force_refresh: bool) -> Result<String, TokenError>;
}

/// Receives engine events. Called from an engine thread, one event at a time, in order.
/// An exception thrown here is logged and skipped.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event. Whatever this throws is logged and that event skipped.
    fn on_event(&self, event: OutboxEvent) -> Result<(), CallbackError>;
}

/// Receives the results of a live query (`Outbox.watch`): the current result first, then
/// each changed result.
#[uniffi::export(with_foreign)]
pub trait DocsListener: Send + Sync {
    /// The query's current result.
    fn on_docs(&self, docs: Vec<Doc>) -> Result<(), CallbackError>;
    /// Reading failed (the subscription goes on and delivers again on the next change).
    fn on_error(&self, error: OutboxError) -> Result<(), CallbackError>;
}

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics.
    Debug,
    /// Notable events (open, wipe).
    Info,
    /// Something unexpected that the engine handled.
    Warn,
    /// A bug or a failure the engine could not handle.
    Error,
}

/// Receives the library's log records (never containing tokens, args or documents).
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    /// One record: `target` is the Rust module, `message` the text with its fields. A record
    /// this throws on is counted in `dropped_log_records` (never logged again, which would
    /// loop).
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), CallbackError>;
}

/// One command handed to a custom [`Transport`].
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutgoingCommand {
    /// The command's id.
    pub id: String,
    /// Send it as the idempotency key; identical on every attempt.
    pub idempotency_key: String,
    /// Mutator name.
    pub mutator: String,
    /// Mutator version.
    pub mutator_version: u32,
    /// Scheduling keys (no two commands of one batch share a key).
    pub keys: Vec<String>,
    /// Args as JSON text.
    pub args: String,
    /// `{"collection:id": version}` of the documents its optimistic ops touched, as JSON text.
    pub base_versions: String,
    /// Metadata as JSON text.
    pub metadata: String,
    /// 1 for the first attempt, 2 for the second, ...
    pub attempt: u32,
}

/// A document version reported by the server.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DocChange {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// Server version after the change.
    pub version: i64,
    /// The document as JSON text, or none when it was deleted.
    pub doc: Option<String>,
}

/// What happened to one command of a batch sent by a custom [`Transport`].
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Outcome {
    /// The server applied it (or had applied it before).
    Applied {
        /// The mutator's result as JSON text (empty means null).
        result: String,
        /// Documents it changed, at their new versions.
        changes: Vec<DocChange>,
    },
    /// A transient failure; counts as an attempt.
    Retry {
        /// Why (stored as the command's last error).
        reason: String,
        /// Server-requested delay (`Retry-After`), ms.
        retry_after_ms: Option<u64>,
        /// HTTP status, if any.
        http_status: Option<u16>,
    },
    /// Permanently refused.
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The server holds a newer version.
    Conflict {
        /// The server's state as JSON text.
        server_snapshot: String,
    },
    /// The credentials were refused (does not count as an attempt).
    Unauthorized,
    /// The server could not be reached (does not count as an attempt).
    Offline,
    /// The server knows the user but refused this action (HTTP 403: no membership or
    /// role). Nothing was applied; sending pauses with an `AccessDenied` event (does not
    /// count as an attempt).
    Forbidden {
        /// The server's message.
        message: String,
    },
}

/// What a custom transport's `pull` returned.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum PullOutcome {
    /// One page of the change feed.
    Page {
        /// Changed documents in feed order.
        changes: Vec<DocChange>,
        /// Where the next pull continues.
        cursor: String,
        /// Whether more changes wait.
        has_more: bool,
    },
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// Anything else; retried with backoff.
    Failed {
        /// Why.
        reason: String,
    },
    /// This transport has no change feed.
    Unsupported,
    /// The server cannot continue from this cursor: it comes from another server epoch
    /// (the database was recreated) or is past the feed's head (it was restored from a
    /// backup). Outbox then pulls again from the start (`cursor` none) and swaps the
    /// rebuilt synced state in at the end; pending changes stay on top throughout. The
    /// built-in HTTP transport reports this for `410` with code `cursor_reset`.
    CursorReset {
        /// Why, for logs.
        reason: String,
    },
}

/// What the server said about one idempotency key (a custom [`Transport`]'s `receipt`).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ReceiptLookup {
    /// The server applied a command under this key.
    Applied {
        /// Its stored result as JSON text (empty means null).
        result: String,
        /// Documents it changed, as stored.
        changes: Vec<DocChange>,
        /// Where and when it was applied.
        receipt: Receipt,
    },
    /// The server has no command under this key for this user and workspace (HTTP 404
    /// `unknown_command`): it was never applied.
    NotFound,
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// Anything else.
    Failed {
        /// Why.
        reason: String,
    },
    /// This transport cannot look commands up.
    Unsupported,
}

/// Sends commands with the app's own network stack instead of the built-in HTTP transport.
#[uniffi::export(with_foreign)]
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends one batch; returns exactly one outcome per command, in batch order. Throwing
    /// fails the attempt of every command in the batch (retried with backoff).
    async fn send(&self, batch: Vec<OutgoingCommand>) -> Result<Vec<Outcome>, CallbackError>;
    /// Reads one page of the change feed after `cursor` (none: from the start). Return
    /// `Unsupported` when there is no feed. Throwing is a failed pull.
    async fn pull(&self, cursor: Option<String>, limit: u32) -> Result<PullOutcome, CallbackError>;
    /// Asks the server whether it applied the command sent under `idempotency_key`
    /// (`GET /v1/commands/{key}`) and returns its stored result and receipt. Read-only.
    /// Return `Unsupported` when the transport cannot ask; `check_receipt` then answers
    /// "unknown". Throwing is a failed lookup.
    async fn receipt(&self, idempotency_key: String) -> Result<ReceiptLookup, CallbackError>;
}

/// Upgrades the args of commands queued under an older version of a mutator (see
/// `Outbox.register_mutator_with_upgrader`). Called once per never-attempted older
/// command, from an engine thread.
#[uniffi::export(with_foreign)]
pub trait MutatorUpgrader: Send + Sync {
    /// The new args (JSON text) for `args` (JSON text) queued with `from_version`.
    fn upgrade(&self, from_version: u32, args: String) -> Result<String, UpgradeError>;
}

/// The core's view of a foreign [`MutatorUpgrader`]: a declared failure keeps its reason;
/// anything else the app throws becomes a failure too (never a panic in the engine).
pub(crate) struct UpgraderBridge(pub Arc<dyn MutatorUpgrader>);

impl outbox::Upgrader for UpgraderBridge {
    fn upgrade(&self, from: u32, args: &str) -> Result<String, String> {
        let args = args.to_string();
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.upgrade(from, args))) {
            Ok(Ok(new_args)) => Ok(new_args),
            Ok(Err(UpgradeError::Failed { reason })) => Err(reason),
            Err(payload) => Err(format!("the upgrader threw: {}", crate::error::panic_text(payload.as_ref()))),
        }
    }
}

/// Calls a foreign listener; what it threw (or a panic) comes back as the error's text.
pub(crate) fn try_foreign(f: impl FnOnce() -> Result<(), CallbackError>) -> Result<(), String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(CallbackError::Failed { reason })) => Err(reason),
        Err(payload) => Err(crate::error::panic_text(payload.as_ref())),
    }
}

/// Calls a foreign listener, turning whatever it threw into a log line.
pub(crate) fn call_foreign(what: &str, f: impl FnOnce() -> Result<(), CallbackError>) {
    if let Err(text) = try_foreign(f) {
        tracing::warn!(callback = what, error = %text, "a foreign callback threw; skipped");
    }
}

/// The core's view of a foreign [`TokenProvider`].
pub(crate) struct TokenBridge(pub Arc<dyn TokenProvider>);

#[async_trait]
impl CoreTokenProvider for TokenBridge {
    async fn token(&self, force_refresh: bool) -> Result<String, CoreTokenError> {
        match self.0.token(force_refresh).await {
            Ok(t) => Ok(t),
            Err(TokenError::Unauthorized { detail }) => Err(CoreTokenError::Unauthorized(detail)),
            Err(TokenError::Offline { detail }) => Err(CoreTokenError::Offline(detail)),
            Err(TokenError::Other { detail }) => Err(CoreTokenError::Other(detail)),
        }
    }
}

/// The core's view of a foreign [`Transport`].
pub(crate) struct TransportBridge(pub Arc<dyn Transport>);

#[async_trait]
impl CoreTransport for TransportBridge {
    async fn send(&self, batch: Vec<CoreOutgoing>) -> Vec<CoreOutcome> {
        let n = batch.len();
        let outgoing = batch.into_iter().map(OutgoingCommand::from).collect();
        match self.0.send(outgoing).await {
            Ok(outcomes) => outcomes.into_iter().map(CoreOutcome::from).collect(),
            Err(CallbackError::Failed { reason }) => {
                let reason = format!("the transport threw: {reason}");
                (0..n).map(|_| CoreOutcome::retry(reason.clone())).collect()
            }
        }
    }

    async fn pull(&self, cursor: Option<String>, limit: u32) -> CorePull {
        let page = match self.0.pull(cursor, limit).await {
            Ok(p) => p,
            Err(CallbackError::Failed { reason }) => return CorePull::Failed(format!("the transport threw: {reason}")),
        };
        match page {
            PullOutcome::Page { changes, cursor, has_more } => {
                let mut parsed = Vec::with_capacity(changes.len());
                for c in changes {
                    match CoreDocChange::try_from(c) {
                        Ok(c) => parsed.push(c),
                        Err(reason) => return CorePull::Failed(reason),
                    }
                }
                CorePull::Page(ChangePage { changes: parsed, cursor, has_more })
            }
            PullOutcome::Offline => CorePull::Offline,
            PullOutcome::Unauthorized => CorePull::Unauthorized,
            PullOutcome::Failed { reason } => CorePull::Failed(reason),
            PullOutcome::Unsupported => CorePull::Unsupported,
            PullOutcome::CursorReset { reason } => CorePull::CursorReset { reason },
        }
    }

    async fn receipt(&self, idempotency_key: &str) -> CoreReceiptLookup {
        match self.0.receipt(idempotency_key.to_string()).await {
            Ok(lookup) => lookup.into(),
            Err(CallbackError::Failed { reason }) => {
                CoreReceiptLookup::Failed(format!("the transport threw: {reason}"))
            }
        }
    }
}

/// A foreign transport's lookup. A result or change that does not parse is a failed
/// lookup, never "applied" on the strength of garbage.
impl From<ReceiptLookup> for CoreReceiptLookup {
    fn from(r: ReceiptLookup) -> Self {
        match r {
            ReceiptLookup::Applied { result, changes, receipt } => {
                let result = if result.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    match serde_json::from_str(&result) {
                        Ok(v) => v,
                        Err(e) => {
                            return CoreReceiptLookup::Failed(format!("transport returned an invalid result: {e}"))
                        }
                    }
                };
                let mut parsed = Vec::with_capacity(changes.len());
                for c in changes {
                    match CoreDocChange::try_from(c) {
                        Ok(c) => parsed.push(c),
                        Err(reason) => return CoreReceiptLookup::Failed(reason),
                    }
                }
                CoreReceiptLookup::Applied { result, changes: parsed, receipt: receipt.into() }
            }
            ReceiptLookup::NotFound => CoreReceiptLookup::NotFound,
            ReceiptLookup::Offline => CoreReceiptLookup::Offline,
            ReceiptLookup::Unauthorized => CoreReceiptLookup::Unauthorized,
            ReceiptLookup::Failed { reason } => CoreReceiptLookup::Failed(reason),
            ReceiptLookup::Unsupported => CoreReceiptLookup::Unsupported,
        }
    }
}

impl From<CoreOutgoing> for OutgoingCommand {
    fn from(c: CoreOutgoing) -> Self {
        OutgoingCommand {
            id: c.id,
            idempotency_key: c.idempotency_key,
            mutator: c.mutator,
            mutator_version: c.mutator_version,
            keys: c.keys,
            args: c.args.to_string(),
            base_versions: serde_json::Value::Object(c.base_versions).to_string(),
            metadata: c.metadata.to_string(),
            attempt: c.attempt,
        }
    }
}

impl TryFrom<DocChange> for CoreDocChange {
    type Error = String;
    fn try_from(c: DocChange) -> Result<Self, String> {
        let doc =
            match c.doc {
                Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                    format!("transport returned an invalid document for {}:{}: {e}", c.collection, c.id)
                })?),
                None => None,
            };
        Ok(CoreDocChange { collection: c.collection, id: c.id, version: c.version, doc })
    }
}

/// A foreign transport's outcome. JSON that does not parse makes the outcome a retriable
/// failure: the command is resent under the same idempotency key, never marked applied
/// on the strength of garbage.
impl From<Outcome> for CoreOutcome {
    fn from(o: Outcome) -> Self {
        let garbage = |what: &str, e: serde_json::Error| CoreOutcome::retry(format!("transport returned {what}: {e}"));
        match o {
            Outcome::Applied { result, changes } => {
                let result = if result.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    match serde_json::from_str(&result) {
                        Ok(v) => v,
                        Err(e) => return garbage("an invalid result", e),
                    }
                };
                let mut parsed = Vec::with_capacity(changes.len());
                for c in changes {
                    match CoreDocChange::try_from(c) {
                        Ok(c) => parsed.push(c),
                        Err(reason) => return CoreOutcome::retry(reason),
                    }
                }
                // A custom transport reports no receipt here; `Transport.receipt` (and
                // `check_receipt`) can still fetch it from the server.
                CoreOutcome::Applied { result, changes: parsed, receipt: None }
            }
            Outcome::Retry { reason, retry_after_ms, http_status } => {
                CoreOutcome::Retry { reason, retry_after: retry_after_ms.map(Duration::from_millis), http_status }
            }
            Outcome::Rejected { code, message } => CoreOutcome::Rejected { code, message },
            Outcome::Conflict { server_snapshot } => match serde_json::from_str(&server_snapshot) {
                Ok(snapshot) => CoreOutcome::Conflict { server_snapshot: snapshot },
                Err(e) => garbage("an invalid conflict snapshot", e),
            },
            Outcome::Unauthorized => CoreOutcome::Unauthorized,
            Outcome::Offline => CoreOutcome::Offline,
            Outcome::Forbidden { message } => CoreOutcome::Forbidden { message },
        }
    }
}
