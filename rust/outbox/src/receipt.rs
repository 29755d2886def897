//! Receipts: "did this sale reach the server?"
//!
//! A command the server applied has a receipt, stored by the server with its idempotency
//! record: the workspace's change-feed position after it (`server_seq`) and the server
//! time it was applied (`applied_at`). The receipt arrives with the `applied` (or
//! `duplicate`) answer and is stored on the command row in the same transaction that
//! marks it `succeeded` ([`crate::Command::receipt`]).
//!
//! [`Outbox::check_receipt`] asks the server directly, by the command's idempotency key,
//! through [`Transport::receipt`](crate::Transport::receipt). It works for any command in
//! any state, including one that was in flight when the app died and whose answer was
//! never read.
//!
//! ## Recording what the server says
//!
//! When the server answers *applied* and the local command is `pending`, `in_flight` or
//! `wedged`, the answer is recorded: the command becomes `succeeded` with the server's
//! result, receipt and document versions, in one transaction, exactly as if the send's
//! own answer had arrived. This is safe because the server deduplicates by the
//! idempotency key: a command it applied can never be applied again, and resending it
//! could only answer `duplicate` with this same stored result. Recording it saves that
//! resend, releases the command's keys (a `wedged` sale no longer blocks its lane), and
//! tells staff the truth at once. A send still in flight for it is ignored when its
//! answer arrives (the row is no longer `in_flight`).
//!
//! Not recorded: `failed`, `conflict` and `discarded` commands keep their state (those are
//! decisions, and a rejected or conflicting command leaves no server record anyway), and a
//! command whose idempotency key changed meanwhile (a conflict resolved with new args). A
//! `succeeded` command without a receipt (one from before receipts) gets it stored.
//!
//! *Not applied* (404 `unknown_command`) is the server's answer at the moment it was
//! asked: a command still queued or in flight may yet be applied. Nothing is recorded.
//! A `succeeded` command the server does not know means the server lost it (for
//! instance, restored from a backup); its local state is left alone for staff to see.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::command::{CommandId, CommandState, Receipt};
use crate::db::now_ms;
use crate::error::Result;
use crate::outbox::Outbox;
use crate::queue::{self, ReceiptRecord};
use crate::runtime;
use crate::transport::{ReceiptLookup, Transport};

/// The answer to "did this command reach the server?".
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptCheck {
    /// The server applied it (once, whatever the number of attempts).
    Applied {
        /// Where and when.
        receipt: Receipt,
        /// The local command was `pending`, `in_flight` or `wedged` and is now
        /// `succeeded` because of this answer.
        recorded: bool,
        /// The command's state after the check.
        state: CommandState,
    },
    /// The server has no record of it under its idempotency key: not applied (as of now;
    /// a queued command may still be).
    NotApplied {
        /// The command's (unchanged) local state.
        state: CommandState,
    },
    /// The server could not be asked; nothing is known and nothing changed.
    Unknown {
        /// Why.
        reason: ReceiptUnknown,
    },
}

/// Why a receipt check has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptUnknown {
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// No transport, or one (or a server) that cannot look commands up.
    Unsupported,
    /// The server answered something else, or the question timed out.
    Failed {
        /// What went wrong (never contains arguments or tokens).
        detail: String,
    },
}

impl std::fmt::Display for ReceiptUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiptUnknown::Offline => f.write_str("offline"),
            ReceiptUnknown::Unauthorized => f.write_str("unauthorized"),
            ReceiptUnknown::Unsupported => f.write_str("unsupported"),
            ReceiptUnknown::Failed { detail } => write!(f, "failed: {detail}"),
        }
    }
}

impl Outbox {
    /// Asks the server whether it applied command `id`, by the command's idempotency key,
    /// and records an *applied* answer locally when the command had not succeeded yet
    /// (see the module docs for why that is safe). Works for a command in any state,
    /// including one that was in flight when the app died. Waits at most the attempt
    /// timeout. `Err` only for an unknown id, a closed engine or a local storage failure.
    pub async fn check_receipt(&self, id: &CommandId) -> Result<ReceiptCheck> {
        let engine = Arc::clone(self.engine()?);
        let cmd = engine.db.read(|c| queue::load(c, id))?;
        let Some(transport) = engine.transport.clone() else {
            return Ok(ReceiptCheck::Unknown { reason: ReceiptUnknown::Unsupported });
        };
        let key = cmd.idempotency_key.clone();
        match lookup_guarded(transport, key.clone(), engine.config.attempt_timeout).await {
            ReceiptLookup::Applied { result, changes, receipt } => {
                let collections: BTreeSet<String> = changes.iter().map(|c| c.collection.clone()).collect();
                let record =
                    engine.db.write(|tx| queue::record_receipt(tx, id, &key, result, &changes, receipt, now_ms()))?;
                let (recorded, state) = match record {
                    ReceiptRecord::Succeeded(change) => {
                        engine.announce(&[change], collections);
                        engine.trigger(false);
                        (true, CommandState::Succeeded)
                    }
                    ReceiptRecord::Stored => (false, CommandState::Succeeded),
                    ReceiptRecord::Kept(state) => (false, state),
                };
                Ok(ReceiptCheck::Applied { receipt, recorded, state })
            }
            ReceiptLookup::NotFound => Ok(ReceiptCheck::NotApplied { state: cmd.state }),
            ReceiptLookup::Offline => Ok(ReceiptCheck::Unknown { reason: ReceiptUnknown::Offline }),
            ReceiptLookup::Unauthorized => Ok(ReceiptCheck::Unknown { reason: ReceiptUnknown::Unauthorized }),
            ReceiptLookup::Unsupported => Ok(ReceiptCheck::Unknown { reason: ReceiptUnknown::Unsupported }),
            ReceiptLookup::Failed(detail) => Ok(ReceiptCheck::Unknown { reason: ReceiptUnknown::Failed { detail } }),
        }
    }
}

/// Runs the transport's lookup in its own task on the engine runtime, so a panic or a
/// hang in a custom transport becomes an answer instead of taking the caller down.
async fn lookup_guarded(transport: Arc<dyn Transport>, key: String, timeout: Duration) -> ReceiptLookup {
    let call = runtime::handle().spawn(async move { transport.receipt(&key).await });
    let abort = call.abort_handle();
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => ReceiptLookup::Failed("transport failed unexpectedly (panicked)".into()),
        Err(_) => {
            abort.abort();
            ReceiptLookup::Failed(format!("receipt lookup timed out after {} ms", timeout.as_millis()))
        }
    }
}
