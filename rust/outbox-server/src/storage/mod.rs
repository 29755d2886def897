//! Where the server keeps users, documents, the change log and idempotency records.
//!
//! Everything the protocol promises about atomicity lives behind
//! [`Storage::execute_batch`]: one request's batch is one database transaction that, for
//! each command in order, looks up the idempotency record for
//! `(workspace, user, idempotency_key)`, runs the mutator against a [`DocTx`] when there
//! is none, and stores the final answer (applied: documents, change-log rows, result and
//! receipt; rejected: the rejection) under the key, then commits once. [`batch`] holds
//! those rules, the same for every backend; a backend provides the transaction.
//!
//! Two backends implement the same contract and run the same tests:
//!
//! - [`sqlite::SqliteStorage`] (the default): one writer thread that runs every batch
//!   waiting for it in one transaction (group commit: one fsync for many requests), and a
//!   reader connection for everything else.
//! - [`postgres::PgStorage`]: a connection pool over PostgreSQL, so several server nodes
//!   can share one database. The workspace's row is locked and the batch's idempotency
//!   keys are claimed through a `UNIQUE` constraint in one statement (two nodes racing on
//!   one key apply it once), change-log sequence numbers are handed out under that lock
//!   (so they are assigned in commit order and a cursor never skips a commit), the writes
//!   are sent in one statement at the end, and commits are announced with `NOTIFY`.
//!
//! The trait is async; mutators are async too ([`DocTx`] awaits the database), so the
//! PostgreSQL backend never blocks a runtime thread.

pub mod batch;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

pub use batch::{BatchCommand, Outcome, Record, Rejection, Work};
pub use postgres::{PgStorage, PostgresConfig};
pub use sqlite::SqliteStorage;

/// A storage failure (the database, not the command, went wrong).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgres error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled PostgreSQL connection could be had.
    #[error("postgres pool: {0}")]
    Pool(String),
    /// The PostgreSQL configuration (URL, schema name) is unusable.
    #[error("invalid postgres configuration: {0}")]
    Config(String),
    /// The database was migrated by a newer server; it is left untouched.
    #[error("database schema version {found} is newer than this server supports ({supported})")]
    NewerSchema {
        /// Version found in the database.
        found: i32,
        /// Highest version this build knows.
        supported: i32,
    },
    /// A stored row is not what this server wrote.
    #[error("inconsistent stored data: {0}")]
    Inconsistent(String),
    /// A blocking storage task failed (panicked or was cancelled).
    #[error("storage worker failed: {0}")]
    Worker(String),
    /// A stored JSON value could not be read back.
    #[error("stored JSON is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    /// The storage lock was poisoned by a panic in another request.
    #[error("storage lock poisoned")]
    Poisoned,
}

/// The current state of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    /// Server version; starts at 1 and grows by one with every change (deletes included).
    pub version: i64,
    /// The document, or `None` for a tombstone left by a delete.
    pub doc: Option<Value>,
}

/// One row of a workspace's change log, also what a command reports as `changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the workspace's change log (monotonically increasing, from 1).
    pub seq: i64,
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
    /// Version of the document after this change.
    pub version: i64,
    /// The document after the change, or `None` when it was deleted.
    pub doc: Option<Value>,
}

/// Why a mutator did not apply a command.
#[derive(Debug)]
pub enum ApplyError {
    /// Permanently refused (`insufficient_stock`, `invalid_args`, …).
    Rejected {
        /// Stable machine-readable code.
        code: String,
        /// Human-readable message (never contains document bodies).
        message: String,
    },
    /// The command was written against an older version of a document.
    Conflict {
        /// Stable machine-readable code (`version_conflict`).
        code: String,
        /// Human-readable message.
        message: String,
        /// The document's current state: `{collection, id, version, doc}`.
        snapshot: Value,
    },
    /// The database failed; the whole request fails with 500.
    Storage(StorageError),
}

impl ApplyError {
    /// A permanent rejection with `code`.
    pub fn rejected(code: &str, message: impl Into<String>) -> Self {
        ApplyError::Rejected { code: code.to_string(), message: message.into() }
    }
}

impl From<StorageError> for ApplyError {
    fn from(e: StorageError) -> Self {
        ApplyError::Storage(e)
    }
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Storage(StorageError::Database(e))
    }
}

impl From<tokio_postgres::Error> for ApplyError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApplyError::Storage(StorageError::Postgres(e))
    }
}

/// Document access inside one command's transaction.
#[async_trait]
pub trait DocTx: Send {
    /// Reads a document (tombstones included) as of this transaction.
    async fn get(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError>;
    /// Writes a document: bumps its version and appends a change-log row.
    async fn put(&mut self, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError> {
        self.write(collection, id, Some(doc)).await
    }
    /// Deletes a document (leaves a tombstone) and appends a change-log row; `None` when
    /// there was no live document.
    async fn delete(&mut self, collection: &str, id: &str) -> Result<Option<Change>, StorageError> {
        match self.get(collection, id).await? {
            Some(StoredDoc { doc: Some(_), .. }) => Ok(Some(self.write(collection, id, None).await?)),
            _ => Ok(None),
        }
    }
    /// Writes (`Some`) or tombstones (`None`) a document; what `put` and `delete` share.
    async fn write(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError>;
}

/// The work one command does inside its transaction: the mutator call.
#[async_trait]
pub trait Apply: Send + Sync {
    /// Runs the mutator against `tx`; its result is stored with the idempotency record.
    async fn apply(&self, tx: &mut dyn DocTx) -> Result<Value, ApplyError>;
    /// `(collection, id)` of documents the call will probably read, so a backend can read
    /// them for the whole batch in one round trip before running it. Only a hint: a
    /// document missing here is read when asked for, and one listed but never read costs
    /// nothing else.
    fn reads(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Who is asking: the authenticated user inside one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Workspace id (the `X-Workspace-Id` header).
    pub workspace: String,
    /// User id the bearer token maps to.
    pub user: String,
}

/// The stored answer for an applied command; returned again for duplicates and by
/// `GET /v1/commands/{key}`. `server_seq` and `applied_at` are the command's receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The mutator's result.
    pub result: Value,
    /// Documents the command changed.
    pub changes: Vec<Change>,
    /// The workspace's change-log position after the command.
    pub server_seq: i64,
    /// Server time the command was applied, Unix milliseconds. Kept in the idempotency
    /// record's own `applied_at` column (not in this JSON), so it is `None` only for
    /// records written by a server from before receipts.
    #[serde(skip)]
    pub applied_at: Option<i64>,
}

/// A command found by its idempotency key: what `GET /v1/commands/{key}` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCommand {
    /// The client's command id the key was first applied with.
    pub command_id: String,
    /// Its stored result and receipt.
    pub stored: StoredResult,
}

/// Unix milliseconds now, the server time a receipt records.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One entry of the apply log: commands in the order the server applied them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedEntry {
    /// Position in the log (global, increasing).
    pub n: i64,
    /// Workspace id.
    pub workspace: String,
    /// User id.
    pub user: String,
    /// The command's idempotency key.
    pub idempotency_key: String,
    /// The command's id.
    pub command_id: String,
    /// Mutator name.
    pub mutator: String,
    /// The command's scheduling keys.
    pub keys: Vec<String>,
    /// Change-log position after the command.
    pub server_seq: i64,
}

/// A page read from the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    /// Changes with `seq > after`, oldest first.
    pub changes: Vec<Change>,
    /// Whether more changes follow the last one returned.
    pub has_more: bool,
}

/// A nudge that a workspace's change log advanced (what `GET /v1/stream` forwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeNotice {
    /// `workspace`'s change log reached `seq`.
    Workspace {
        /// Workspace id.
        workspace: String,
        /// Its change-log head after the commit.
        seq: i64,
    },
    /// Something may have changed anywhere (notifications were missed, e.g. while the
    /// listener reconnected): every subscriber is nudged.
    Unknown,
}

/// The server's storage backend. One [`execute_batch`](Self::execute_batch) call is one
/// transaction.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Short backend name for logs and benchmark lines (`"sqlite"`, `"postgres"`).
    fn backend(&self) -> &'static str;
    /// The database's epoch: a random id written when the database was created and kept
    /// for its life, which every feed cursor carries (`crate::cursor`).
    fn epoch(&self) -> &str;
    /// The user a bearer token belongs to, if any.
    async fn user_for_token(&self, token: &str) -> Result<Option<String>, StorageError>;
    /// Whether `user` belongs to `workspace`.
    async fn is_member(&self, user: &str, workspace: &str) -> Result<bool, StorageError>;
    /// The user `token` belongs to and whether that user is a member of `workspace`;
    /// `None` for an unknown token. One round trip where the backend allows.
    async fn authorize(&self, token: &str, workspace: &str) -> Result<Option<(String, bool)>, StorageError> {
        let Some(user) = self.user_for_token(token).await? else { return Ok(None) };
        let member = self.is_member(&user, workspace).await?;
        Ok(Some((user, member)))
    }
    /// Runs one request's commands in order, each exactly once, in one transaction
    /// ([`batch`] has the rules); one [`Outcome`] per command. On an error nothing of
    /// the batch was applied.
    async fn execute_batch(&self, scope: &Scope, commands: Vec<BatchCommand>) -> Result<Vec<Outcome>, StorageError>;
    /// The stored result of the command `scope`'s user applied in `scope`'s workspace
    /// under `idempotency_key`, if any. Another user's or workspace's key is `None`, and
    /// so is a key whose command was rejected (it was not applied).
    async fn stored_command(&self, scope: &Scope, idempotency_key: &str)
        -> Result<Option<StoredCommand>, StorageError>;
    /// Reads up to `limit` changes after `after` in `workspace`.
    async fn changes_after(&self, workspace: &str, after: i64, limit: u32) -> Result<ChangesPage, StorageError>;
    /// The workspace's latest change-log position (0 when empty).
    async fn head_seq(&self, workspace: &str) -> Result<i64, StorageError>;
    /// Reads a document's current state.
    async fn get_doc(&self, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError>;
    /// The apply log, oldest first.
    async fn apply_log(&self) -> Result<Vec<AppliedEntry>, StorageError>;
    /// Creates (or keeps) a user and maps `token` to it.
    async fn add_user(&self, user: &str, token: &str) -> Result<(), StorageError>;
    /// Makes `user` a member of `workspace` (creating the workspace).
    async fn add_member(&self, user: &str, workspace: &str) -> Result<(), StorageError>;
    /// Writes a document outside any command (seeding); appears in the change feed.
    async fn seed_doc(&self, workspace: &str, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError>;
    /// Commits of *every* node sharing this database, when the backend can see them
    /// (PostgreSQL `LISTEN`). `None` means only this process writes, and the server
    /// nudges its own subscribers after each commit.
    fn notifications(&self) -> Option<broadcast::Receiver<ChangeNotice>> {
        None
    }
}
