//! Typed events and the `status()` snapshot.
//!
//! Events are published after the state they describe is committed, on a broadcast
//! channel: a slow subscriber misses events (it is told how many with
//! [`Event::Lagged`]) but never slows the engine down. Anything that must not be missed
//! is re-read from the database (`status()`, `command()`, `wait_for`).

use std::time::Duration;

use tokio::sync::broadcast;

use crate::command::{CommandId, CommandState};

/// Something that happened in the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A command was durably enqueued.
    Enqueued {
        /// The command.
        id: CommandId,
        /// Its mutator.
        mutator: String,
    },
    /// An attempt began (the command is `in_flight`).
    AttemptStarted {
        /// The command.
        id: CommandId,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The command.
        id: CommandId,
        /// 1-based attempt number.
        attempt: u32,
        /// Outcome label (`applied`, `retry`, `rejected`, `conflict`, `unauthorized`,
        /// `forbidden`, `offline`).
        outcome: String,
        /// The failure, if any.
        error: Option<String>,
    },
    /// A command moved between states.
    StateChanged {
        /// The command.
        id: CommandId,
        /// Previous state.
        from: CommandState,
        /// New state.
        to: CommandState,
    },
    /// The platform reported connectivity.
    OnlineChanged {
        /// Whether the device is online.
        online: bool,
    },
    /// The platform reported a lifecycle change.
    ForegroundChanged {
        /// Whether the app is in the foreground.
        foreground: bool,
    },
    /// This engine became, or stopped being, the drainer.
    LeaseChanged {
        /// Whether this engine now drains.
        is_drainer: bool,
    },
    /// The server refused the credentials; sending pauses with backoff.
    AuthRequired,
    /// The server knows the user but refused them (HTTP 403: not a member of the
    /// workspace, a missing role). Nothing was applied and no attempt was consumed:
    /// sending pauses with backoff (up to the retry cap) and resumes at once on
    /// `sync_now`, `set_online(true)` or foreground, e.g. after an admin fixed the role.
    AccessDenied {
        /// The server's message.
        message: String,
    },
    /// Nothing is in flight and nothing is ready to send right now.
    Idle,
    /// Documents in these collections may read differently now (local change, rollback,
    /// acknowledgement, pull). Query subscriptions re-run on it.
    CollectionsChanged {
        /// Affected collections.
        collections: Vec<String>,
    },
    /// A command failed and its optimistic changes are no longer shown.
    RolledBack {
        /// The command.
        id: CommandId,
        /// Why (`dependency_failed` when a predecessor failed).
        code: String,
        /// Human-readable reason.
        message: String,
        /// The documents it had changed, as (collection, id).
        docs: Vec<(String, String)>,
    },
    /// An enqueue brought an offline risk limit to or above its soft threshold
    /// (`Limits::warn_at`); the command was written. Sent on every such enqueue.
    LimitWarning {
        /// Which limit.
        limit: crate::limits::LimitKind,
        /// The mutator, for a per-mutator limit.
        mutator: Option<String>,
        /// Its value after the enqueue.
        current: i64,
        /// The configured maximum.
        max: i64,
    },
    /// A pull from the server's change feed completed: the local copy is up to date.
    Synced,
    /// The stall watchdog found the queue stalled: online, commands ready, and nothing
    /// attempted or settled for `Config::stall_window`. The engine has been kicked.
    QueueStalled {
        /// What the watchdog found.
        report: StallReport,
    },
    /// A stall reported by [`Event::QueueStalled`] is over.
    QueueRecovered {
        /// The cause the stall was reported with.
        cause: StallCause,
        /// How long the queue was stalled, from the first sign of it.
        stalled_for: Duration,
        /// How it ended: `progress`, `nothing_to_send` or `offline`.
        how: String,
    },
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// How many events were dropped for this subscriber.
        missed: u64,
    },
}

/// Why the watchdog thinks the queue stalled (the first finding that explains it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallCause {
    /// The drain loop has not run for a window: its timer or wake-up is stuck.
    DrainLoopStuck,
    /// A send has been on the wire for a window with no answer (a hung connection).
    SendHung,
    /// Every drain pass fails (the database cannot be written: a disk gone bad or
    /// read-only, a file locked by a foreign process); the report's detail has the error.
    DrainFailing,
    /// Another engine (process) holds the drainer lease and is not moving the queue.
    LeaseHeldElsewhere,
    /// The probe of the server failed although the platform reports the device online.
    ServerUnreachable,
    /// Nothing explains it; the engine was woken anyway.
    Unknown,
}

impl StallCause {
    /// A stable code: `drain_loop_stuck`, `send_hung`, `drain_failing`,
    /// `lease_held_elsewhere`, `server_unreachable`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            StallCause::DrainLoopStuck => "drain_loop_stuck",
            StallCause::SendHung => "send_hung",
            StallCause::DrainFailing => "drain_failing",
            StallCause::LeaseHeldElsewhere => "lease_held_elsewhere",
            StallCause::ServerUnreachable => "server_unreachable",
            StallCause::Unknown => "unknown",
        }
    }
}

/// What the stall watchdog found when it kicked the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StallReport {
    /// The finding that explains the stall.
    pub cause: StallCause,
    /// One line for logs and support (no payloads).
    pub detail: String,
    /// How long nothing had moved.
    pub stalled_for: Duration,
    /// Whether a command was ready to send.
    pub ready: bool,
    /// Commands marked in flight in the database.
    pub in_flight: u64,
    /// Transport calls of this engine with no answer yet.
    pub sends_in_flight: u64,
    /// The drainer lease: `held here`, `held by another engine for N ms more`, `free`.
    pub lease: String,
    /// The network probe: `reachable`, `unreachable`, `unauthorized`, `failed: …`,
    /// `no answer within N ms`, or `unknown (…)`.
    pub network: String,
    /// How long ago the drain loop last ran a pass.
    pub last_pass_ago: Duration,
}

/// A subscription to engine events. Dropping it unsubscribes.
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> Self {
        EventStream { rx }
    }

    /// The next event; `None` once the engine is closed.
    pub async fn next(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is already waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(_) => None,
        }
    }
}

/// A snapshot of the queue for status bars and offline banners.
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Age of the oldest unfinished command (the oldest not yet synced).
    pub oldest_pending_age: Option<Duration>,
    /// Time until the next scheduled retry, if one is scheduled.
    pub next_attempt_in: Option<Duration>,
    /// The last failure reported by an attempt or a pull.
    pub last_error: Option<String>,
    /// Attempts in a row that did not end `applied` (reset by the next applied one).
    pub consecutive_failures: u32,
    /// When the server last applied a command sent from this database (Unix ms).
    pub last_success_at: Option<i64>,
    /// When the last complete pull from the server's change feed finished (Unix ms).
    pub last_pull_at: Option<i64>,
    /// Bytes of the database in use (pages in use × page size; the file may be larger).
    pub storage_used_bytes: u64,
    /// The configured size cap (`Config::max_size_bytes`), if any.
    pub storage_cap_bytes: Option<u64>,
    /// Whether `enqueue` is refused for space now (the cap minus the drain's reserve is
    /// reached; the drain goes on and makes room).
    pub storage_full: bool,
    /// Whether the stall watchdog reports the queue stalled now (see
    /// [`Event::QueueStalled`]).
    pub stalled: bool,
    /// Whether the platform reports the device online.
    pub online: bool,
    /// Whether the app is in the foreground.
    pub foreground: bool,
    /// Whether this engine holds the drainer lease.
    pub is_drainer: bool,
}
