//! Engine events and the `status()` snapshot as they cross the boundary.

use outbox::{Event as CoreEvent, StallReport as CoreStallReport, Status as CoreStatus};

use crate::types::CommandState;

/// A document named by collection and id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocRef {
    /// Collection name.
    pub collection: String,
    /// Document id.
    pub id: String,
}

/// Something that happened in the engine. Delivered to an `EventListener` after the state
/// it describes is committed.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum OutboxEvent {
    /// A command was durably enqueued.
    Enqueued {
        /// The command.
        id: String,
        /// Its mutator.
        mutator: String,
    },
    /// An attempt began.
    AttemptStarted {
        /// The command.
        id: String,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The command.
        id: String,
        /// 1-based attempt number.
        attempt: u32,
        /// `applied`, `retry`, `rejected`, `conflict`, `unauthorized`, `forbidden` or
        /// `offline`.
        outcome: String,
        /// The failure, if any.
        error: Option<String>,
    },
    /// A command moved between states.
    StateChanged {
        /// The command.
        id: String,
        /// Previous state.
        from: CommandState,
        /// New state.
        to: CommandState,
    },
    /// Connectivity as reported by the platform.
    OnlineChanged {
        /// Whether the device is online.
        online: bool,
    },
    /// App lifecycle as reported by the platform.
    ForegroundChanged {
        /// Whether the app is in the foreground.
        foreground: bool,
    },
    /// This engine became, or stopped being, the drainer for its file.
    LeaseChanged {
        /// Whether this engine now sends.
        is_drainer: bool,
    },
    /// The server refused the credentials; sending pauses with backoff.
    AuthRequired,
    /// The server knows the user but refused them (HTTP 403: not a member of the
    /// workspace, a missing role). Nothing was applied and no attempt was consumed:
    /// sending pauses with backoff and resumes at once on `sync_now`, `set_online(true)`
    /// or foreground (e.g. after an admin fixed the role).
    AccessDenied {
        /// The server's message.
        message: String,
    },
    /// Nothing is in flight and nothing is ready to send right now.
    Idle,
    /// Documents in these collections may read differently now.
    CollectionsChanged {
        /// Affected collections.
        collections: Vec<String>,
    },
    /// A command failed and its optimistic changes are no longer shown.
    RolledBack {
        /// The command.
        id: String,
        /// Why (`dependency_failed` when a predecessor failed).
        code: String,
        /// Human-readable reason.
        message: String,
        /// The documents it had changed.
        docs: Vec<DocRef>,
    },
    /// An enqueue brought an offline risk limit to or above its soft threshold
    /// (`limit_warn_at`, default 0.8); the command was written. Sent on every such enqueue.
    LimitWarning {
        /// Which limit.
        limit: crate::till::LimitKind,
        /// The mutator, for a per-mutator limit.
        mutator: Option<String>,
        /// The limit's value after the enqueue.
        current: i64,
        /// The configured maximum.
        max: i64,
    },
    /// A pull from the server's change feed completed.
    Synced,
    /// The stall watchdog found the queue stalled: online, commands ready, and nothing
    /// attempted or settled for `stall_window_ms`. The engine has been kicked.
    QueueStalled {
        /// What the watchdog found.
        report: StallReport,
    },
    /// A stall reported by `QueueStalled` is over.
    QueueRecovered {
        /// The cause the stall was reported with (see `StallReport.cause`).
        cause: String,
        /// How long the queue was stalled, ms.
        stalled_for_ms: u64,
        /// How it ended: `progress`, `nothing_to_send` or `offline`.
        how: String,
    },
    /// This listener fell behind and missed `missed` events; re-read `status()`.
    Lagged {
        /// How many events were dropped for this listener.
        missed: u64,
    },
}

/// What the stall watchdog found when it kicked the engine.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StallReport {
    /// `drain_loop_stuck` (a stuck timer or lost wake-up), `send_hung` (a connection
    /// that never answers; the send was abandoned and is retried under the same key),
    /// `drain_failing` (every drain pass fails: the database cannot be written; `detail`
    /// has the error), `lease_held_elsewhere` (another process holds the drainer lease),
    /// `server_unreachable` or `unknown`.
    pub cause: String,
    /// One line for logs and support.
    pub detail: String,
    /// How long nothing had moved, ms.
    pub stalled_for_ms: u64,
    /// Whether a command was ready to send.
    pub ready: bool,
    /// Commands marked in flight.
    pub in_flight: u64,
    /// Transport calls with no answer yet.
    pub sends_in_flight: u64,
    /// The drainer lease: `held here`, `held by another engine for N ms more`, `free`.
    pub lease: String,
    /// The network probe: `reachable`, `unreachable`, `unauthorized`, `failed: …`, ….
    pub network: String,
    /// How long ago the drain loop last ran, ms.
    pub last_pass_ago_ms: u64,
}

/// A snapshot of the queue's health, for status bars and offline banners.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Status {
    /// Commands waiting to be sent (including those waiting for a retry).
    pub pending: u64,
    /// Commands being sent now.
    pub in_flight: u64,
    /// Permanently rejected commands not yet discarded.
    pub failed: u64,
    /// Commands waiting for conflict resolution.
    pub conflict: u64,
    /// Commands whose attempts are exhausted.
    pub wedged: u64,
    /// Succeeded commands still kept for inspection.
    pub succeeded: u64,
    /// Age of the oldest unfinished command, ms.
    pub oldest_pending_age_ms: Option<u64>,
    /// Time until the next scheduled retry, ms.
    pub next_attempt_in_ms: Option<u64>,
    /// The last failure reported by an attempt or a pull.
    pub last_error: Option<String>,
    /// Attempts in a row that did not end `applied` (reset by the next applied one).
    pub consecutive_failures: u32,
    /// When the server last applied a command from this database, Unix ms.
    pub last_success_at_ms: Option<i64>,
    /// When the last complete pull from the server finished, Unix ms.
    pub last_pull_at_ms: Option<i64>,
    /// Bytes of the database in use.
    pub storage_used_bytes: u64,
    /// The configured size cap (`max_size_bytes`), if any.
    pub storage_cap_bytes: Option<u64>,
    /// Whether `enqueue` is refused for space now (the drain goes on and makes room).
    pub storage_full: bool,
    /// Whether the stall watchdog reports the queue stalled now.
    pub stalled: bool,
    /// Whether the platform reports the device online.
    pub online: bool,
    /// Whether the app is in the foreground.
    pub foreground: bool,
    /// Whether this engine holds the drainer lease.
    pub is_drainer: bool,
}

impl From<CoreEvent> for OutboxEvent {
    fn from(e: CoreEvent) -> Self {
        match e {
            CoreEvent::Enqueued { id, mutator } => OutboxEvent::Enqueued { id: id.to_string(), mutator },
            CoreEvent::AttemptStarted { id, attempt } => OutboxEvent::AttemptStarted { id: id.to_string(), attempt },
            CoreEvent::AttemptFinished { id, attempt, outcome, error } => {
                OutboxEvent::AttemptFinished { id: id.to_string(), attempt, outcome, error }
            }
            CoreEvent::StateChanged { id, from, to } => {
                OutboxEvent::StateChanged { id: id.to_string(), from: from.into(), to: to.into() }
            }
            CoreEvent::OnlineChanged { online } => OutboxEvent::OnlineChanged { online },
            CoreEvent::ForegroundChanged { foreground } => OutboxEvent::ForegroundChanged { foreground },
            CoreEvent::LeaseChanged { is_drainer } => OutboxEvent::LeaseChanged { is_drainer },
            CoreEvent::AuthRequired => OutboxEvent::AuthRequired,
            CoreEvent::AccessDenied { message } => OutboxEvent::AccessDenied { message },
            CoreEvent::Idle => OutboxEvent::Idle,
            CoreEvent::CollectionsChanged { collections } => OutboxEvent::CollectionsChanged { collections },
            CoreEvent::RolledBack { id, code, message, docs } => OutboxEvent::RolledBack {
                id: id.to_string(),
                code,
                message,
                docs: docs.into_iter().map(|(collection, id)| DocRef { collection, id }).collect(),
            },
            CoreEvent::Synced => OutboxEvent::Synced,
            CoreEvent::LimitWarning { limit, mutator, current, max } => {
                OutboxEvent::LimitWarning { limit: limit.into(), mutator, current, max }
            }
            CoreEvent::QueueStalled { report } => OutboxEvent::QueueStalled { report: report.into() },
            CoreEvent::QueueRecovered { cause, stalled_for, how } => {
                OutboxEvent::QueueRecovered { cause: cause.as_str().to_string(), stalled_for_ms: ms(stalled_for), how }
            }
            CoreEvent::Lagged { missed } => OutboxEvent::Lagged { missed },
        }
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<CoreStallReport> for StallReport {
    fn from(r: CoreStallReport) -> Self {
        StallReport {
            cause: r.cause.as_str().to_string(),
            detail: r.detail,
            stalled_for_ms: ms(r.stalled_for),
            ready: r.ready,
            in_flight: r.in_flight,
            sends_in_flight: r.sends_in_flight,
            lease: r.lease,
            network: r.network,
            last_pass_ago_ms: ms(r.last_pass_ago),
        }
    }
}

impl From<CoreStatus> for Status {
    fn from(s: CoreStatus) -> Self {
        Status {
            pending: s.pending,
            in_flight: s.in_flight,
            failed: s.failed,
            conflict: s.conflict,
            wedged: s.wedged,
            succeeded: s.succeeded,
            oldest_pending_age_ms: s.oldest_pending_age.map(ms),
            next_attempt_in_ms: s.next_attempt_in.map(ms),
            last_error: s.last_error,
            consecutive_failures: s.consecutive_failures,
            last_success_at_ms: s.last_success_at,
            last_pull_at_ms: s.last_pull_at,
            storage_used_bytes: s.storage_used_bytes,
            storage_cap_bytes: s.storage_cap_bytes,
            storage_full: s.storage_full,
            stalled: s.stalled,
            online: s.online,
            foreground: s.foreground,
            is_drainer: s.is_drainer,
        }
    }
}
