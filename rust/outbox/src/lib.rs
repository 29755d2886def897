//! Outbox: an offline-first durable write queue and local store for mobile apps.
//!
//! Commands are enqueued durably (one SQLite transaction with their optimistic changes),
//! then sent by a scheduler that keeps commands sharing a key in order, runs independent
//! keys in parallel, retries with backoff, and never drops a command without an explicit
//! decision. See `docs/` and DESIGN.md for the promises this crate keeps.
//!
//! ```no_run
//! # async fn demo() -> outbox::Result<()> {
//! use std::sync::Arc;
//! use outbox::{Config, EnqueueRequest, MutatorSpec, Outbox};
//! let transport = Arc::new(outbox::testing::ScriptedTransport::new());
//! let ob = Outbox::open(Config::new("register.db", "alice", "ws-1").with_transport(transport))?;
//! ob.register_mutator("createOrder", MutatorSpec::default())?;
//! let id = ob.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1","total":1250}"#))?;
//! let outcome = ob.wait_for(&id).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod closeout;
pub mod command;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod hooks;
pub mod http;
pub mod keys;
mod lease;
mod lifecycle;
pub mod limits;
mod outbox;
pub mod queue;
mod reads;
mod receipt;
pub mod retry;
pub mod runtime;
mod scheduler;
mod settle;
mod space;
pub mod store;
mod sync;
pub mod testing;
pub mod transport;
pub mod upgrade;
mod watchdog;

pub use closeout::{CloseoutReport, StateTotal, Unsettled};
pub use command::{
    Attempt, Command, CommandId, CommandState, EnqueueRequest, MutatorSpec, OpKind, OptimisticOp, Receipt, Settlement,
};
pub use config::{Config, Durability};
pub use error::{Error, OpenError, Result};
pub use events::{Event, EventStream, StallCause, StallReport, Status};
pub use hooks::{BeforeRetry, Edit};
pub use lifecycle::DrainReport;
pub use limits::{LimitKind, LimitLevel, Limits, MutatorLimits};
pub use outbox::{LeaseInfo, Outbox, Resolution};
pub use queue::PeekFilter;
pub use reads::QueryWatch;
pub use receipt::{ReceiptCheck, ReceiptUnknown};
pub use retry::RetryPolicy;
pub use store::{Doc, DocStatus, Query};
pub use transport::{ChangePage, DocChange, Outcome, OutgoingCommand, PullOutcome, ReceiptLookup, Transport};
pub use upgrade::{UpgradeReport, Upgrader};
