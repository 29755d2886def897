//! The one error type apps see ([`OutboxError`]) and the one a [`crate::TokenProvider`]
//! returns ([`TokenError`]), with the single conversion from the core's errors.
//!
//! Every variant has a stable machine-readable code ([`OutboxError::code`]); codes are
//! only ever added. Messages never contain argument payloads, documents or tokens (the
//! core guarantees that for its own messages; this layer adds none).

use outbox::Error as CoreError;
use outbox::OpenError as CoreOpenError;

/// Why an Outbox call failed. Kotlin: `OutboxException.<Variant>`; Swift: `OutboxError`;
/// TypeScript: a rejected promise whose error has a `code`.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum OutboxError {
    /// `enqueue` named a mutator that was never registered (`unknown_mutator`).
    #[error("{detail}")]
    UnknownMutator {
        /// What went wrong, for logs and developers.
        detail: String,
        /// The mutator name given.
        name: String,
    },
    /// Args, metadata, a patch or a JSON value in a query is not valid JSON (`invalid_json`).
    #[error("{detail}")]
    InvalidJson {
        /// What went wrong (position and kind, never the content).
        detail: String,
    },
    /// The args are larger than the mutator's limit (`args_too_large`).
    #[error("{detail}")]
    ArgsTooLarge {
        /// What went wrong.
        detail: String,
        /// Size of the given args in bytes.
        size: u64,
        /// The mutator's limit in bytes.
        limit: u64,
    },
    /// A scheduling key is empty or too long, or a key pointer is malformed (`invalid_key`).
    #[error("{detail}")]
    InvalidKey {
        /// What went wrong.
        detail: String,
    },
    /// Some other part of a request is malformed (`invalid_request`).
    #[error("{detail}")]
    InvalidRequest {
        /// What went wrong.
        detail: String,
    },
    /// No command with this id exists in this database (`unknown_command`).
    #[error("{detail}")]
    UnknownCommand {
        /// What went wrong.
        detail: String,
        /// The id given.
        id: String,
    },
    /// The command's state does not allow this action (`invalid_state`).
    #[error("{detail}")]
    InvalidState {
        /// What went wrong.
        detail: String,
        /// The command's current state.
        state: String,
    },
    /// The command was attempted at least once and can only be discarded (`immutable`).
    #[error("{detail}")]
    Immutable {
        /// What went wrong.
        detail: String,
    },
    /// The disk or the configured size limit is full; nothing was written (`storage_full`).
    #[error("{detail}")]
    StorageFull {
        /// What went wrong.
        detail: String,
    },
    /// The database file is damaged or not an Outbox database; it was left untouched
    /// (`db_corrupt`).
    #[error("{detail}")]
    DbCorrupt {
        /// What went wrong.
        detail: String,
    },
    /// The database was written by a newer Outbox; it was left untouched
    /// (`db_newer_version`). Update the app.
    #[error("{detail}")]
    DbNewerVersion {
        /// What went wrong.
        detail: String,
        /// Schema version found in the file.
        found: i64,
        /// Newest version this build reads.
        supported: i64,
    },
    /// The database file or its folder cannot be created or written (`db_unwritable`).
    #[error("{detail}")]
    DbUnwritable {
        /// What went wrong.
        detail: String,
    },
    /// The file belongs to another user or workspace (`scope_mismatch`). Use one file per
    /// (user, workspace).
    #[error("{detail}")]
    ScopeMismatch {
        /// What went wrong.
        detail: String,
    },
    /// The configuration is not usable (`invalid_config`).
    #[error("{detail}")]
    InvalidConfig {
        /// What went wrong.
        detail: String,
    },
    /// Another process took over as drainer; this write was refused (`fenced`).
    #[error("{detail}")]
    Fenced {
        /// What went wrong.
        detail: String,
    },
    /// The outbox was closed (`closed`).
    #[error("{detail}")]
    Closed {
        /// What went wrong.
        detail: String,
    },
    /// `wipe` without `force` found commands the server has not applied yet
    /// (`unsent_commands`).
    #[error("{detail}")]
    UnsentCommands {
        /// What went wrong.
        detail: String,
        /// How many commands are unsent.
        count: u64,
    },
    /// Waiting took longer than allowed (`timeout`).
    #[error("{detail}")]
    Timeout {
        /// What went wrong.
        detail: String,
    },
    /// Any other storage failure (`storage`).
    #[error("{detail}")]
    Storage {
        /// What went wrong.
        detail: String,
    },
    /// A bug: a panic inside the library, caught at the boundary (`internal`). The engine
    /// keeps running; please report `details`.
    #[error("{detail}")]
    Internal {
        /// What went wrong.
        detail: String,
        /// Diagnostic text for a bug report.
        details: String,
    },
    /// `enqueue` would cross an offline risk limit (`limit_exceeded`); nothing was
    /// written. Sync, or decide about failed commands, to make room.
    #[error("{detail}")]
    LimitExceeded {
        /// What went wrong.
        detail: String,
        /// Which limit.
        limit: crate::till::LimitKind,
        /// The mutator, for a per-mutator limit.
        mutator: Option<String>,
        /// The limit's value now (count, age in ms, or summed amount).
        current: i64,
        /// The configured maximum.
        max: i64,
    },
    /// Another connection held the database's write lock for the whole busy timeout (5 s),
    /// usually another process on the same file, possibly frozen by the OS mid-write
    /// (`busy`). Nothing was written; retry later.
    #[error("{detail}")]
    Busy {
        /// What went wrong.
        detail: String,
    },
}

#[uniffi::export]
impl OutboxError {
    /// The stable machine-readable code of this error (`unknown_mutator`,
    /// `args_too_large`, `db_newer_version`, `storage_full`, `closed`, `internal`, ...).
    pub fn code(&self) -> String {
        self.code_str().to_string()
    }
}

impl OutboxError {
    /// The stable code as a static string (see [`OutboxError::code`]).
    pub fn code_str(&self) -> &'static str {
        match self {
            OutboxError::UnknownMutator { .. } => "unknown_mutator",
            OutboxError::InvalidJson { .. } => "invalid_json",
            OutboxError::ArgsTooLarge { .. } => "args_too_large",
            OutboxError::InvalidKey { .. } => "invalid_key",
            OutboxError::InvalidRequest { .. } => "invalid_request",
            OutboxError::UnknownCommand { .. } => "unknown_command",
            OutboxError::InvalidState { .. } => "invalid_state",
            OutboxError::Immutable { .. } => "immutable",
            OutboxError::StorageFull { .. } => "storage_full",
            OutboxError::DbCorrupt { .. } => "db_corrupt",
            OutboxError::DbNewerVersion { .. } => "db_newer_version",
            OutboxError::DbUnwritable { .. } => "db_unwritable",
            OutboxError::ScopeMismatch { .. } => "scope_mismatch",
            OutboxError::InvalidConfig { .. } => "invalid_config",
            OutboxError::Fenced { .. } => "fenced",
            OutboxError::Closed { .. } => "closed",
            OutboxError::UnsentCommands { .. } => "unsent_commands",
            OutboxError::Timeout { .. } => "timeout",
            OutboxError::Busy { .. } => "busy",
            OutboxError::LimitExceeded { .. } => "limit_exceeded",
            OutboxError::Storage { .. } => "storage",
            OutboxError::Internal { .. } => "internal",
        }
    }

    /// An invalid-config error with `detail`.
    pub(crate) fn config(detail: impl Into<String>) -> Self {
        OutboxError::InvalidConfig { detail: detail.into() }
    }

    /// The error for a panic caught at the boundary.
    pub(crate) fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = panic_text(payload);
        tracing::error!(panic = %text, "panic caught at the FFI boundary");
        OutboxError::Internal { detail: "internal error in the outbox library".into(), details: text }
    }
}

/// The message of a caught panic (a `&str` or `String` payload), or a placeholder.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_string())
}

/// Why a [`crate::TokenProvider`] could not produce a token. Decides what the engine does
/// with the batch that needed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TokenError {
    /// The user must sign in again: sending pauses with an `AuthRequired` event.
    #[error("not signed in: {detail}")]
    Unauthorized {
        /// Why.
        detail: String,
    },
    /// The token service cannot be reached: treated like being offline.
    #[error("token service unreachable: {detail}")]
    Offline {
        /// Why.
        detail: String,
    },
    /// Anything else: the batch is retried with backoff.
    #[error("token unavailable: {detail}")]
    Other {
        /// Why.
        detail: String,
    },
}

/// A foreign implementation threw something it did not declare: treat it as `Other`.
impl From<uniffi::UnexpectedUniFFICallbackError> for TokenError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TokenError::Other { detail: e.reason }
    }
}

/// A listener, logger or transport implemented in Kotlin, Swift or TypeScript failed.
/// A listener's or logger's delivery is skipped; a transport's failure is a failed
/// attempt, retried with backoff. Never a panic in the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum CallbackError {
    /// The callback threw (declared or not).
    #[error("the callback failed: {reason}")]
    Failed {
        /// What it threw.
        reason: String,
    },
}

/// Anything the foreign code threw becomes a `Failed`, never a panic in the engine.
impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed { reason: e.reason }
    }
}

impl From<CoreError> for OutboxError {
    fn from(e: CoreError) -> Self {
        let detail = e.to_string();
        match e {
            CoreError::Open(open) => open.into(),
            CoreError::UnknownMutator { name } => OutboxError::UnknownMutator { detail, name },
            CoreError::InvalidJson { .. } => OutboxError::InvalidJson { detail },
            CoreError::ArgsTooLarge { size, limit } => {
                OutboxError::ArgsTooLarge { detail, size: size as u64, limit: limit as u64 }
            }
            CoreError::InvalidKey { .. } => OutboxError::InvalidKey { detail },
            CoreError::InvalidRequest { .. } => OutboxError::InvalidRequest { detail },
            CoreError::UnknownCommand { id } => OutboxError::UnknownCommand { detail, id },
            CoreError::InvalidState { state, .. } => OutboxError::InvalidState { detail, state },
            CoreError::Immutable { .. } => OutboxError::Immutable { detail },
            CoreError::StorageFull => OutboxError::StorageFull { detail },
            CoreError::Corrupt { .. } => OutboxError::DbCorrupt { detail },
            CoreError::Fenced => OutboxError::Fenced { detail },
            CoreError::Closed => OutboxError::Closed { detail },
            CoreError::UnsentCommands { count } => OutboxError::UnsentCommands { detail, count },
            CoreError::Timeout => OutboxError::Timeout { detail },
            CoreError::LimitExceeded { limit, mutator, current, max } => {
                OutboxError::LimitExceeded { detail, limit: limit.into(), mutator, current, max }
            }
            CoreError::Busy => {
                tracing::warn!(error = %detail, "database busy");
                OutboxError::Busy { detail }
            }
            CoreError::Storage(_) => {
                tracing::warn!(error = %detail, "storage error");
                OutboxError::Storage { detail }
            }
        }
    }
}

impl From<CoreOpenError> for OutboxError {
    fn from(e: CoreOpenError) -> Self {
        let detail = e.to_string();
        match e {
            CoreOpenError::NewerVersion { found, supported } => {
                OutboxError::DbNewerVersion { detail, found, supported }
            }
            CoreOpenError::Corrupt { .. } => OutboxError::DbCorrupt { detail },
            CoreOpenError::Unwritable { .. } => OutboxError::DbUnwritable { detail },
            CoreOpenError::ScopeMismatch { .. } => OutboxError::ScopeMismatch { detail },
            CoreOpenError::InvalidConfig(_) => OutboxError::InvalidConfig { detail },
            CoreOpenError::Storage { .. } => OutboxError::Storage { detail },
        }
    }
}

/// Why a [`crate::MutatorUpgrader`] could not upgrade a command's args. The command stays
/// as it was and is parked as `wedged` with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum UpgradeError {
    /// The args cannot be expressed in the new version.
    #[error("{reason}")]
    Failed {
        /// Why (shown to staff as the command's wedge reason).
        reason: String,
    },
}
