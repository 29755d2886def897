//! Engine configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::Limits;
use crate::retry::RetryPolicy;
use crate::transport::Transport;

/// How hard a commit works to survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a command is on disk when `enqueue` returns (the default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster; the last commits may be lost on power loss (not on an
    /// app crash).
    Normal,
}

/// Everything [`crate::Outbox::open`] needs.
#[derive(Clone)]
pub struct Config {
    /// The database file. Created when missing; one engine per file per process.
    pub path: PathBuf,
    /// The signed-in user. Commands are scoped to (user, workspace).
    pub user_id: String,
    /// The workspace (tenant) the user works in.
    pub workspace_id: String,
    /// How many transport calls may be in flight at once (default 4).
    pub max_concurrency: usize,
    /// How many independent commands one transport call may carry (default 25).
    pub max_batch_size: usize,
    /// Backoff and attempt limits.
    pub retry: RetryPolicy,
    /// How long one transport call may take before it counts as a failed attempt (15 s).
    pub attempt_timeout: Duration,
    /// How long the drainer lease lasts without renewal (5 s). A dead drainer in another
    /// process is replaced within this time.
    pub lease_ttl: Duration,
    /// Where commands are sent. `None` keeps everything queued (nothing is attempted).
    pub transport: Option<Arc<dyn Transport>>,
    /// Commit durability (default [`Durability::Full`]).
    pub durability: Durability,
    /// Whether the device is online at open (default true; platform adapters correct it).
    pub start_online: bool,
    /// Optional cap on the database size; writes beyond it fail with `StorageFull`.
    pub max_size_bytes: Option<u64>,
    /// How long succeeded and discarded commands, with their attempt history, are kept for
    /// inspection (7 days). Older ones are pruned when this engine takes the drainer lease.
    pub retention: Duration,
    /// Offline risk limits checked at every enqueue (all off by default; see
    /// [`crate::limits`]).
    pub limits: Limits,
    /// How long the queue may sit with commands ready, online, and nothing attempted or
    /// settled before the stall watchdog kicks it and emits `QueueStalled` (30 s).
    /// `None` turns the watchdog off.
    pub stall_window: Option<Duration>,
    /// The SQLite VFS to open the database through (`None`: the platform default). For
    /// tests and the power-cut torture only (the crash-simulating VFS in
    /// `outbox-crashvfs`); apps and the FFI never set it.
    #[doc(hidden)]
    pub vfs: Option<String>,
}

impl Config {
    /// A configuration with the defaults of DESIGN.md for `path`, `user_id`, `workspace_id`.
    pub fn new(path: impl Into<PathBuf>, user_id: impl Into<String>, workspace_id: impl Into<String>) -> Self {
        Config {
            path: path.into(),
            user_id: user_id.into(),
            workspace_id: workspace_id.into(),
            max_concurrency: 4,
            max_batch_size: 25,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(5),
            transport: None,
            durability: Durability::Full,
            start_online: true,
            max_size_bytes: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            limits: Limits::default(),
            stall_window: Some(Duration::from_secs(30)),
            vfs: None,
        }
    }

    /// Sets the transport.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("user_id", &self.user_id)
            .field("workspace_id", &self.workspace_id)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_batch_size", &self.max_batch_size)
            .field("retry", &self.retry)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("lease_ttl", &self.lease_ttl)
            .field("transport", &self.transport.is_some())
            .field("durability", &self.durability)
            .field("limits", &self.limits)
            .field("max_size_bytes", &self.max_size_bytes)
            .field("stall_window", &self.stall_window)
            .finish()
    }
}
