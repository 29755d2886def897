//! Receipts across the boundary: what the server stored for an applied command, and the
//! answer to "did this command reach the server?" (`Outbox.check_receipt`).

use outbox::{Receipt as CoreReceipt, ReceiptCheck as CoreReceiptCheck, ReceiptUnknown as CoreReceiptUnknown};

use crate::types::CommandState;

/// The server's receipt for an applied command, the same on every resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Receipt {
    /// The workspace's change-feed position after the command.
    pub server_seq: i64,
    /// Server time it was applied, Unix ms (none for commands a server applied before it
    /// kept receipt times).
    pub applied_at_ms: Option<i64>,
}

/// The answer to "did this command reach the server?" (`check_receipt`).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ReceiptCheck {
    /// The server applied it, once.
    Applied {
        /// Where and when.
        receipt: Receipt,
        /// The command was pending, in flight or wedged and is now succeeded because of
        /// this answer (safe: the server deduplicates by its idempotency key).
        recorded: bool,
        /// The command's state after the check.
        state: CommandState,
    },
    /// The server has no record of it: not applied as of now (a queued command may
    /// still be). Nothing changed locally.
    NotApplied {
        /// The command's unchanged state.
        state: CommandState,
    },
    /// The server could not be asked; nothing is known and nothing changed.
    Unknown {
        /// Why.
        reason: ReceiptUnknown,
    },
}

/// Why a receipt check has no answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ReceiptUnknown {
    /// The server could not be reached.
    Offline,
    /// The credentials were refused.
    Unauthorized,
    /// No transport, or a custom transport (or server) that cannot look commands up.
    Unsupported,
    /// The server answered something else, or the question timed out.
    Failed {
        /// What went wrong.
        detail: String,
    },
}

impl From<CoreReceipt> for Receipt {
    fn from(r: CoreReceipt) -> Self {
        Receipt { server_seq: r.server_seq, applied_at_ms: r.applied_at }
    }
}

impl From<Receipt> for CoreReceipt {
    fn from(r: Receipt) -> Self {
        CoreReceipt { server_seq: r.server_seq, applied_at: r.applied_at_ms }
    }
}

impl From<CoreReceiptUnknown> for ReceiptUnknown {
    fn from(r: CoreReceiptUnknown) -> Self {
        match r {
            CoreReceiptUnknown::Offline => ReceiptUnknown::Offline,
            CoreReceiptUnknown::Unauthorized => ReceiptUnknown::Unauthorized,
            CoreReceiptUnknown::Unsupported => ReceiptUnknown::Unsupported,
            CoreReceiptUnknown::Failed { detail } => ReceiptUnknown::Failed { detail },
        }
    }
}

impl From<CoreReceiptCheck> for ReceiptCheck {
    fn from(c: CoreReceiptCheck) -> Self {
        match c {
            CoreReceiptCheck::Applied { receipt, recorded, state } => {
                ReceiptCheck::Applied { receipt: receipt.into(), recorded, state: state.into() }
            }
            CoreReceiptCheck::NotApplied { state } => ReceiptCheck::NotApplied { state: state.into() },
            CoreReceiptCheck::Unknown { reason } => ReceiptCheck::Unknown { reason: reason.into() },
        }
    }
}
