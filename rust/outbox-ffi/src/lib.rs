//! UniFFI surface of the Outbox engine, for Kotlin, Swift and React Native.
//!
//! A thin shell over the `outbox` core crate: each exported item converts its arguments,
//! calls the core and converts the result. JSON crosses as text, ids as strings, times
//! and durations as milliseconds. One error type, [`OutboxError`], with a stable
//! [`OutboxError::code`]. Foreign traits: [`TokenProvider`], [`Transport`],
//! [`EventListener`], [`DocsListener`] and [`Logger`]. No panic crosses the boundary.
#![warn(missing_docs)]

mod callbacks;
mod documents;
mod error;
mod events;
mod logging;
mod outbox;
mod receipt;
mod subscription;
mod till;
mod types;

pub use crate::callbacks::{
    DocChange, DocsListener, EventListener, LogLevel, Logger, MutatorUpgrader, Outcome, OutgoingCommand, PullOutcome,
    ReceiptLookup, TokenProvider, Transport,
};
pub use crate::documents::{Doc, DocStatus, Filter, Query};
pub use crate::error::{CallbackError, OutboxError, TokenError, UpgradeError};
pub use crate::events::{DocRef, OutboxEvent, StallReport, Status};
pub use crate::logging::{clear_logger, dropped_log_records, set_logger};
pub use crate::outbox::{Edit, Outbox};
pub use crate::receipt::{Receipt, ReceiptCheck, ReceiptUnknown};
pub use crate::subscription::Subscription;
pub use crate::till::{CloseoutReport, LimitKind, MutatorLimit, StateTotal, Unsettled};
pub use crate::types::{
    Attempt, Command, CommandState, DrainReport, Durability, EnqueueRequest, MutatorOptions, OpKind, OptimisticOp,
    OutboxConfig, PeekFilter, Resolution, Settlement, UpgradeReport,
};

/// The version of the Outbox library.
#[uniffi::export]
pub fn outbox_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

uniffi::setup_scaffolding!();
