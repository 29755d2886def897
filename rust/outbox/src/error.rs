//! The core's error types: one enum for the public API ([`Error`]) and one for opening a
//! database ([`OpenError`]). Messages never contain argument payloads, documents or tokens.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Why a database could not be opened. In every case the file is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file was written by a newer Outbox; this version cannot read it safely.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    NewerVersion {
        /// Version found in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// The file is not a SQLite database or is damaged.
    #[error("database file {path} is corrupt or not an Outbox database: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The file or its folder cannot be created or written.
    #[error("database file {path} cannot be opened for writing: {detail}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What the operating system or SQLite reported.
        detail: String,
    },
    /// The file belongs to another (user, workspace) than the one configured. Data is
    /// scoped per user and workspace; use one file per pair.
    #[error("database {path} belongs to another user or workspace")]
    ScopeMismatch {
        /// The file.
        path: PathBuf,
    },
    /// The configuration is not usable (e.g. `max_concurrency` of 0).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Any other storage failure while opening or migrating.
    #[error("could not open database {path}: {detail}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
}

/// Errors returned by [`crate::Outbox`] operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the database failed; see [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// `enqueue` named a mutator that was never registered.
    #[error("unknown mutator `{name}`: register it before enqueueing")]
    UnknownMutator {
        /// The name given.
        name: String,
    },
    /// A JSON text (args, metadata, patch, new args) could not be parsed.
    #[error("invalid JSON in {field}: {detail}")]
    InvalidJson {
        /// Which input was invalid (`args`, `metadata`, ...).
        field: &'static str,
        /// The parser's message (position and kind, never the content).
        detail: String,
    },
    /// The arguments exceed the mutator's size limit.
    #[error("args are {size} bytes, over the limit of {limit} bytes")]
    ArgsTooLarge {
        /// Size of the given args in bytes.
        size: usize,
        /// The mutator's limit.
        limit: usize,
    },
    /// A scheduling key is empty or too long, or a key pointer is malformed.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },
    /// Some other part of the request is malformed (e.g. an optimistic op).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// No command with this id exists in this database.
    #[error("no command with id {id}")]
    UnknownCommand {
        /// The id given.
        id: String,
    },
    /// The command is not in a state that allows this action.
    #[error("cannot {action} command {id} while it is {state}")]
    InvalidState {
        /// The command.
        id: String,
        /// Its current state.
        state: String,
        /// What was attempted.
        action: &'static str,
    },
    /// The command has been attempted at least once, so its content can no longer change:
    /// the server may have applied it. It can only be discarded.
    #[error("command {id} has been attempted and can no longer be changed; discard it instead")]
    Immutable {
        /// The command.
        id: String,
    },
    /// The disk (or the configured size limit) is full. Nothing was written.
    #[error("storage is full; nothing was written")]
    StorageFull,
    /// The database file turned out to be damaged while in use.
    #[error("database is corrupt: {detail}")]
    Corrupt {
        /// What SQLite reported.
        detail: String,
    },
    /// Another process took over as drainer; this engine's write was refused.
    #[error("this engine lost the drainer lease; the write was refused")]
    Fenced,
    /// The engine was closed.
    #[error("the outbox is closed")]
    Closed,
    /// `wipe` without `force` found commands the server has not applied yet.
    #[error("{count} commands are not yet applied by the server; wipe with force to drop them")]
    UnsentCommands {
        /// Commands that are pending, in flight, in conflict, wedged or failed.
        count: u64,
    },
    /// Waiting for something took longer than allowed.
    #[error("timed out")]
    Timeout,
    /// Another connection held the database's write lock for the whole busy timeout
    /// ([`crate::db::BUSY_TIMEOUT`], 5 s): usually another process on the same file, which
    /// may be frozen by the OS in the middle of a write (an iOS app suspended mid-write
    /// looks like this). Nothing was written; retry later. A warning is logged once the
    /// wait passes 1 s.
    #[error("the database is busy: another connection held its write lock for {} s; nothing was written, retry", crate::db::BUSY_TIMEOUT.as_secs())]
    Busy,
    /// `enqueue` would cross an offline risk limit ([`crate::limits`]); nothing was
    /// written. Sync (or decide about failed commands) to make room.
    #[error("offline limit {limit}{} reached: {current} of at most {max}; nothing was written", mutator.as_ref().map(|m| format!(" for {m}")).unwrap_or_default())]
    LimitExceeded {
        /// Which limit.
        limit: crate::limits::LimitKind,
        /// The mutator, for a per-mutator limit.
        mutator: Option<String>,
        /// Its value now (before the refused command).
        current: i64,
        /// The configured maximum.
        max: i64,
    },
    /// Any other SQLite failure.
    #[error("storage error: {0}")]
    Storage(rusqlite::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::StorageFull,
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => Error::Busy,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                Error::Corrupt { detail: e.to_string() }
            }
            _ => Error::Storage(e),
        }
    }
}

/// Shorthand for results of Outbox operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
