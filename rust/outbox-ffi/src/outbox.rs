//! The exported `Outbox` object: converts arguments, forwards to the core engine
//! (`outbox::Outbox`) and converts results. No queue behaviour lives here.
//!
//! Every call that reads or writes SQLite or may wait is `async` (Kotlin `suspend`, Swift
//! `async`, a `Promise` in TypeScript) and runs on the core's runtime: disk work on its
//! blocking pool, so no UI or JavaScript thread ever waits on an fsync. Only in-memory
//! calls stay synchronous (a test keeps that list honest). Every call runs inside a panic
//! guard: a panic in the core becomes [`OutboxError::Internal`] instead of unwinding into
//! the host. Listeners are called from runtime tasks, never inside a call.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use outbox::http::{HttpConfig, HttpTransport};
use outbox::{Config as CoreConfig, Edit as CoreEdit, Outbox as CoreOutbox, Transport as CoreTransport};

use crate::callbacks::{
    call_foreign, DocsListener, EventListener, MutatorUpgrader, TokenBridge, TokenProvider, Transport, TransportBridge,
    UpgraderBridge,
};
use crate::documents::{Doc, Query};
use crate::error::OutboxError;
use crate::events::Status;
use crate::receipt::ReceiptCheck;
use crate::subscription::{Cancelled, Subscription};
use crate::till::CloseoutReport;
use crate::types::{
    ms, parse_id, Command, DrainReport, EnqueueRequest, MutatorOptions, OutboxConfig, PeekFilter, Resolution,
    UpgradeReport,
};

/// Runs a synchronous call, turning a panic into [`OutboxError::Internal`].
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, OutboxError>) -> Result<T, OutboxError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(OutboxError::panic(p.as_ref())))
}

/// Runs an async call on the core's runtime, turning a panic into [`OutboxError::Internal`].
pub(crate) async fn run<T, F>(fut: F) -> Result<T, OutboxError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, OutboxError>> + Send + 'static,
{
    match outbox::runtime::handle().spawn(fut).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(OutboxError::panic(e.into_panic().as_ref())),
        Err(_) => Err(OutboxError::Closed { detail: "the outbox runtime stopped".into() }),
    }
}

/// Runs engine work that reads or writes SQLite on the core runtime's blocking pool, so
/// the caller's thread (a JavaScript or UI thread) never waits on the disk; a panic
/// becomes [`OutboxError::Internal`].
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, OutboxError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, OutboxError> + Send + 'static,
{
    match outbox::runtime::handle().spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(OutboxError::panic(e.into_panic().as_ref())),
        Err(_) => Err(OutboxError::Closed { detail: "the outbox runtime stopped".into() }),
    }
}

/// An edit of never-attempted pending commands (see `edit_pending`).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Edit {
    /// Replace a command's args (JSON text).
    Rewrite {
        /// The command.
        id: String,
        /// New args as JSON text.
        args: String,
    },
    /// Drop a command (discarded; its optimistic changes rolled back).
    Drop {
        /// The command.
        id: String,
    },
    /// Fold `ids` into `into`, which gets `args`; all must hold the same keys.
    Squash {
        /// The command that remains.
        into: String,
        /// The commands folded into it.
        ids: Vec<String>,
        /// The remaining command's new args (JSON text).
        args: String,
    },
}

/// An offline-first write queue and local store over one SQLite file.
///
/// Open one per (user, workspace) database file; opening the same path again in this
/// process returns the same engine. Commands are durable when `enqueue` returns, sent in
/// per-key order with retries, and applied once by the server.
#[derive(uniffi::Object)]
pub struct Outbox {
    inner: CoreOutbox,
}

#[uniffi::export(async_runtime = "tokio")]
impl Outbox {
    /// Opens (creating or migrating) the database and starts the engine with no network:
    /// commands stay queued (use `open_with_tokens` or `open_with_transport` to send). A
    /// corrupt database or one from a newer version is refused and left untouched.
    #[uniffi::constructor]
    pub async fn open(config: OutboxConfig) -> Result<Arc<Outbox>, OutboxError> {
        if config.server_url.is_some() {
            return Err(OutboxError::config("server_url is set: open with open_with_tokens to supply a TokenProvider"));
        }
        Self::open_inner(config, None).await
    }

    /// Opens the database and sends commands over HTTP to `config.server_url` (required),
    /// asking `token_provider` for a bearer token before every request.
    #[uniffi::constructor]
    pub async fn open_with_tokens(
        config: OutboxConfig,
        token_provider: Arc<dyn TokenProvider>,
    ) -> Result<Arc<Outbox>, OutboxError> {
        let http = guard(|| {
            let url =
                config.server_url.clone().ok_or_else(|| OutboxError::config("open_with_tokens needs server_url"))?;
            let _runtime = outbox::runtime::handle().enter();
            HttpTransport::new(HttpConfig::new(url, config.workspace_id.clone()), Arc::new(TokenBridge(token_provider)))
                .map_err(|e| OutboxError::config(e.to_string()))
        })?;
        Self::open_inner(config, Some(Arc::new(http))).await
    }

    /// Opens the database and sends commands through the app's own `transport` (its own
    /// network stack). `config.server_url` is ignored.
    #[uniffi::constructor]
    pub async fn open_with_transport(
        config: OutboxConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<Outbox>, OutboxError> {
        Self::open_inner(config, Some(Arc::new(TransportBridge(transport)))).await
    }

    /// Allows `name` to be enqueued, with its key pointers and size limit.
    pub fn register_mutator(&self, name: String, options: MutatorOptions) -> Result<(), OutboxError> {
        guard(|| Ok(self.inner.register_mutator(&name, options.into())?))
    }

    /// Registers a new version of `name` (`options.version`) with the `upgrader` from older
    /// versions: every command of `name` that was never attempted and carries an older
    /// version gets upgraded args now, in one transaction; attempted commands keep their
    /// version and args (the server may have applied them). A failing upgrader leaves its
    /// command untouched and parks it as `wedged`. Register before going online (open
    /// with `start_online = false`), so nothing older is sent first.
    pub async fn register_mutator_with_upgrader(
        &self,
        name: String,
        options: MutatorOptions,
        upgrader: Arc<dyn MutatorUpgrader>,
    ) -> Result<UpgradeReport, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || {
            Ok(inner.register_mutator_with_upgrader(&name, options.into(), Arc::new(UpgraderBridge(upgrader)))?.into())
        })
        .await
    }

    /// Durably enqueues a command with its optimistic changes and returns its id. When
    /// this returns the command is on disk; bad input is refused and nothing is written.
    pub async fn enqueue(&self, request: EnqueueRequest) -> Result<String, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.enqueue(request.try_into()?)?.to_string())).await
    }

    /// Waits until the command settles (succeeded, failed, conflict, wedged or discarded)
    /// and returns how. Works across restarts: the state is read from the database.
    pub async fn wait_for(&self, id: String) -> Result<crate::types::Settlement, OutboxError> {
        let inner = self.inner.clone();
        run(async move {
            let id = parse_id(&id)?;
            Ok(inner.wait_for(&id).await?.into())
        })
        .await
    }

    /// Asks the server whether it applied command `id` ("did this sale reach the
    /// server?"), by the command's idempotency key; works for any command, including one
    /// that was in flight when the app died. An *applied* answer for a command that was
    /// pending, in flight or wedged is recorded: it becomes succeeded with the server's
    /// receipt (safe, the server never applies one key twice). Offline, unauthorized or
    /// a transport without lookups answer `Unknown`; errors only for an unknown id, a
    /// closed outbox or local storage.
    pub async fn check_receipt(&self, id: String) -> Result<ReceiptCheck, OutboxError> {
        let inner = self.inner.clone();
        run(async move {
            let id = parse_id(&id)?;
            Ok(inner.check_receipt(&id).await?.into())
        })
        .await
    }

    /// One command with its attempt history.
    pub async fn command(&self, id: String) -> Result<Command, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.command(&parse_id(&id)?)?.into())).await
    }

    /// Commands in enqueue order, filtered.
    pub async fn peek(&self, filter: PeekFilter) -> Result<Vec<Command>, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.peek(&filter.into())?.into_iter().map(Into::into).collect())).await
    }

    /// Sends a `wedged` or `failed` command again with a fresh attempt budget. A failed
    /// command goes out under a fresh idempotency key (the old one stays in its history),
    /// and its dependants that failed because of it (`dependency_failed`) become pending
    /// with it. Other states are refused with `InvalidState`.
    pub async fn retry(&self, id: String) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.retry(&parse_id(&id)?)?)).await
    }

    /// Gives up a command that is pending, failed, in conflict or wedged; its optimistic
    /// changes are rolled back. This is the explicit decision that drops a command.
    pub async fn discard(&self, id: String) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.discard(&parse_id(&id)?)?)).await
    }

    /// Resolves a command in `conflict`: send again with new args, or discard.
    pub async fn resolve_conflict(&self, id: String, resolution: Resolution) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.resolve_conflict(&parse_id(&id)?, resolution.into())?)).await
    }

    /// Rewrites, drops or squashes never-attempted pending commands, all or none.
    pub async fn edit_pending(&self, edits: Vec<Edit>) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || {
            let edits = edits.into_iter().map(CoreEdit::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok(inner.edit_pending(&edits)?)
        })
        .await
    }

    /// One document with pending changes applied, or none.
    pub async fn get(&self, collection: String, id: String) -> Result<Option<Doc>, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.get(&collection, &id)?.map(Into::into))).await
    }

    /// Documents matching `query`, with pending changes applied.
    pub async fn list(&self, collection: String, query: Query) -> Result<Vec<Doc>, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.list(&collection, &query.try_into()?)?.into_iter().map(Into::into).collect())).await
    }

    /// How many documents match `query` (limit and offset ignored).
    pub async fn count(&self, collection: String, query: Query) -> Result<u64, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.count(&collection, &query.try_into()?)?)).await
    }

    /// Indexes a top-level field so filters and ordering on it stay fast.
    pub async fn create_index(&self, collection: String, field: String) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.create_index(&collection, &field)?)).await
    }

    /// When each collection last received server data (Unix ms), by collection.
    pub async fn last_synced_at(&self) -> Result<HashMap<String, i64>, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.last_synced_at()?.into_iter().collect())).await
    }

    /// Live query: `listener` gets the current result, then every changed result (bursts
    /// are coalesced). Cancel the returned handle (or drop it) to stop.
    pub fn watch(
        &self,
        collection: String,
        query: Query,
        listener: Arc<dyn DocsListener>,
    ) -> Result<Arc<Subscription>, OutboxError> {
        guard(|| {
            let mut watch = self.inner.watch(&collection, query.try_into()?)?;
            let cancelled = Cancelled::default();
            let stop = cancelled.clone();
            let task = outbox::runtime::handle().spawn(async move {
                while let Some(result) = watch.next().await {
                    if stop.is_set() {
                        break;
                    }
                    let listener = Arc::clone(&listener);
                    match result {
                        Ok(docs) => {
                            let docs = docs.into_iter().map(Into::into).collect();
                            call_foreign("DocsListener.on_docs", move || listener.on_docs(docs));
                        }
                        Err(e) => call_foreign("DocsListener.on_error", move || listener.on_error(e.into())),
                    }
                }
            });
            Ok(Subscription::new(task, cancelled))
        })
    }

    /// Engine events from now on, in order, delivered to `listener` from an engine thread.
    /// Cancel the returned handle (or drop it) to stop.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) -> Result<Arc<Subscription>, OutboxError> {
        guard(|| {
            let mut events = self.inner.subscribe()?;
            let cancelled = Cancelled::default();
            let stop = cancelled.clone();
            let task = outbox::runtime::handle().spawn(async move {
                while let Some(event) = events.next().await {
                    if stop.is_set() {
                        break;
                    }
                    let listener = Arc::clone(&listener);
                    call_foreign("EventListener.on_event", move || listener.on_event(event.into()));
                }
            });
            Ok(Subscription::new(task, cancelled))
        })
    }

    /// A snapshot of the queue for status bars and offline banners.
    pub async fn status(&self) -> Result<Status, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.status()?.into())).await
    }

    /// Sends (and pulls) now, e.g. from a "sync now" button.
    pub async fn sync_now(&self) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.sync_now()?)).await
    }

    /// Reports connectivity; going online starts a drain and a pull.
    pub async fn set_online(&self, online: bool) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.set_online(online)?)).await
    }

    /// Reports that the app came to the foreground (drains and pulls).
    pub async fn on_foreground(&self) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.on_foreground()?)).await
    }

    /// Reports that the app went to the background.
    pub async fn on_background(&self) -> Result<(), OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.on_background()?)).await
    }

    /// Drains for at most `budget_ms` (a platform background task's time) and reports
    /// what happened; returns early once nothing is left to send now.
    pub async fn drain_for(&self, budget_ms: u64) -> Result<DrainReport, OutboxError> {
        let inner = self.inner.clone();
        run(async move { Ok(inner.drain_for(Duration::from_millis(budget_ms)).await?.into()) }).await
    }

    /// End of day: drains for at most `deadline_ms`, then reports whether the till may
    /// close (`clean`), counts and amounts per state, the oldest unsynced command and every
    /// unsettled one with its reason. Refuse to close the till unless `clean`.
    pub async fn closeout(&self, deadline_ms: u64) -> Result<CloseoutReport, OutboxError> {
        let inner = self.inner.clone();
        run(async move { Ok(inner.closeout(Duration::from_millis(deadline_ms)).await?.into()) }).await
    }

    /// Deletes every command, document and cursor in this database (logout). Without
    /// `force` it refuses while commands the server has not applied remain; with `force`
    /// they are dropped and their number returned.
    pub async fn wipe(&self, force: bool) -> Result<u64, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.wipe(force)?)).await
    }

    /// Logout for good: `wipe(force)`, then closes the engine and deletes the database
    /// file with its `-wal` and `-shm` files. Returns how many unsent commands were dropped.
    pub async fn delete_database(&self, force: bool) -> Result<u64, OutboxError> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.delete_database(force)?)).await
    }

    /// TEST HOOK, NOT API: never call this from an app. It exists only so the binding
    /// test suites (Kotlin, Swift, TypeScript) can exercise the stall watchdog: the drain
    /// loop's next wait ignores its timer and every wake-up (a stuck timer), so commands
    /// stay queued until the watchdog reports `QueueStalled` (cause `DrainLoopStuck`) and
    /// kicks the loop. In-memory only; nothing is written.
    pub fn wedge_drain_timer_for_test(&self) -> Result<(), OutboxError> {
        guard(|| Ok(self.inner.wedge_drain_timer_for_test()?))
    }

    /// The database file this engine uses.
    pub fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// Stops the engine and returns once nothing of it is in flight: sends already on the
    /// wire get until the attempt timeout to answer and are recorded; anything unanswered
    /// by then is abandoned and resent, under the same idempotency key, at the next open.
    /// No request of this engine reaches the server after this returns. Calls after this
    /// fail with `Closed`. (Named `shutdown` because `close` is the bindings' own "free
    /// this handle" in Kotlin and Swift; freeing a handle does not stop the engine, this
    /// does.)
    pub async fn shutdown(&self) {
        let inner = self.inner.clone();
        if let Err(e) = run(async move {
            inner.close_gracefully().await;
            Ok(())
        })
        .await
        {
            tracing::warn!(error = %e, "shutting the engine down failed");
        }
    }
}

impl Outbox {
    async fn open_inner(
        config: OutboxConfig,
        transport: Option<Arc<dyn CoreTransport>>,
    ) -> Result<Arc<Outbox>, OutboxError> {
        blocking(move || {
            let _runtime = outbox::runtime::handle().enter();
            Ok(Arc::new(Outbox { inner: CoreOutbox::open(core_config(config, transport))? }))
        })
        .await
    }
}

fn core_config(config: OutboxConfig, transport: Option<Arc<dyn CoreTransport>>) -> CoreConfig {
    let mut core = CoreConfig::new(config.path, config.user_id, config.workspace_id.clone());
    core.start_online = config.start_online;
    if let Some(d) = config.durability {
        core.durability = d.into();
    }
    core.max_size_bytes = config.max_size_bytes;
    if let Some(n) = config.max_concurrency {
        core.max_concurrency = n as usize;
    }
    if let Some(n) = config.max_batch_size {
        core.max_batch_size = n as usize;
    }
    if let Some(n) = config.max_attempts {
        core.retry.max_attempts = n;
    }
    if let Some(d) = ms(config.retry_base_ms) {
        core.retry.base = d;
    }
    if let Some(d) = ms(config.retry_cap_ms) {
        core.retry.cap = d;
    }
    if let Some(j) = config.retry_jitter {
        core.retry.jitter = if j.is_finite() { j.clamp(0.0, 1.0) } else { core.retry.jitter };
    }
    if let Some(d) = ms(config.attempt_timeout_ms) {
        core.attempt_timeout = d;
    }
    if let Some(d) = ms(config.lease_ttl_ms) {
        core.lease_ttl = d;
    }
    if let Some(d) = ms(config.retention_ms) {
        core.retention = d;
    }
    core.limits.max_unsynced = config.max_unsynced;
    core.limits.max_unsynced_age = ms(config.max_unsynced_age_ms);
    core.limits.max_unsynced_amount = config.max_unsynced_amount;
    core.limits.amount_field = config.limit_amount_field;
    if let Some(w) = config.limit_warn_at {
        core.limits.warn_at = if w.is_finite() { w.clamp(0.0, 1.0) } else { core.limits.warn_at };
    }
    for m in config.mutator_limits {
        core.limits.per_mutator.insert(
            m.mutator,
            outbox::MutatorLimits { max_unsynced: m.max_unsynced, max_unsynced_amount: m.max_unsynced_amount },
        );
    }
    match config.stall_window_ms {
        Some(0) => core.stall_window = None,
        Some(n) => core.stall_window = Some(std::time::Duration::from_millis(n)),
        None => {}
    }
    core.transport = transport;
    core
}

impl TryFrom<Edit> for CoreEdit {
    type Error = OutboxError;
    fn try_from(e: Edit) -> Result<Self, OutboxError> {
        Ok(match e {
            Edit::Rewrite { id, args } => CoreEdit::Rewrite { id: parse_id(&id)?, args },
            Edit::Drop { id } => CoreEdit::Drop { id: parse_id(&id)? },
            Edit::Squash { into, ids, args } => CoreEdit::Squash {
                into: parse_id(&into)?,
                ids: ids.iter().map(|id| parse_id(id)).collect::<Result<_, _>>()?,
                args,
            },
        })
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
