//! The public engine handle.
//!
//! One engine per database file per process: opening a path that is already open returns
//! the same engine. Dropping the last handle (or calling [`Outbox::close`]) stops it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use once_cell::sync::Lazy;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::command::{Command, CommandId, CommandState, EnqueueRequest, MutatorSpec, Settlement};
use crate::config::Config;
use crate::db::{now_ms, Db};
use crate::error::{Error, OpenError, Result};
use crate::events::{Event, EventStream, Status};
use crate::hooks::{self, BeforeRetry, Edit};
use crate::queue::{self, NewCommand, PeekFilter};
use crate::scheduler::{lock, Engine};
use crate::{keys, store};

/// Open engines by canonical database path.
static REGISTRY: Lazy<Mutex<HashMap<PathBuf, Weak<Handle>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// How often `wait_for` re-reads the database in case another process settled the command.
const WAIT_POLL: Duration = Duration::from_millis(250);

struct Handle {
    engine: Arc<Engine>,
    path: PathBuf,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.engine.shutdown();
        let mut reg = lock(&REGISTRY);
        if reg.get(&self.path).is_some_and(|w| w.strong_count() == 0) {
            reg.remove(&self.path);
        }
    }
}

/// How to resolve a command in `conflict`.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Send again with new args (JSON text), under a new idempotency key.
    RetryWith(String),
    /// Give the command up; its optimistic ops are rolled back.
    Discard,
}

/// The drainer lease as stored in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseInfo {
    /// Opaque id of the holding engine (process id and a random part).
    pub owner: String,
    /// Fencing generation, bumped at each takeover.
    pub generation: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at: i64,
    /// Whether it has not expired.
    pub live: bool,
    /// Whether this engine holds it.
    pub held_here: bool,
}

/// The outbox engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Outbox {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.handle.path).finish()
    }
}

impl Outbox {
    /// Opens (creating or migrating) the database and starts the engine. A database that is
    /// corrupt or from a newer version is refused with a typed error and left untouched.
    /// Opening a path that is already open in this process returns the same engine.
    pub fn open(config: Config) -> Result<Outbox> {
        Self::open_with(config, false)
    }

    /// Opens a database for inspection and repair (the `outbox` CLI, support tools): no
    /// transport, offline, never takes the drainer lease, and adopts whatever (user,
    /// workspace) the file belongs to. An older schema is upgraded like at any open; a
    /// newer or corrupt file is refused untouched.
    pub fn inspect(path: impl Into<PathBuf>) -> Result<Outbox> {
        let mut config = Config::new(path, "", "");
        config.start_online = false;
        Self::open_with(config, true)
    }

    fn open_with(config: Config, inspect: bool) -> Result<Outbox> {
        if config.max_concurrency == 0 || config.max_batch_size == 0 {
            return Err(OpenError::InvalidConfig("max_concurrency and max_batch_size must be at least 1".into()).into());
        }
        if let Some(field) = &config.limits.amount_field {
            keys::validate_pointer(field).map_err(|e| OpenError::InvalidConfig(format!("limits.amount_field: {e}")))?;
        }
        let path = canonical(&config.path)?;
        let mut reg = lock(&REGISTRY);
        if let Some(handle) = reg.get(&path).and_then(Weak::upgrade) {
            if !handle.engine.is_closed() {
                return Ok(Outbox { handle });
            }
        }
        let db = Db::open(&path, config.durability, config.max_size_bytes, config.vfs.as_deref())?;
        if !inspect {
            db.check_scope(&path, &config.user_id, &config.workspace_id)?;
            db.write(|tx| crate::limits::refresh_amounts(tx, &config.limits))?;
        }
        let engine = Engine::new(db, config);
        let handle = Arc::new(Handle { engine: Arc::clone(&engine), path: path.clone() });
        reg.insert(path, Arc::downgrade(&handle));
        drop(reg);
        engine.start();
        Ok(Outbox { handle })
    }

    pub(crate) fn engine(&self) -> Result<&Arc<Engine>> {
        let e = &self.handle.engine;
        e.ensure_open()?;
        Ok(e)
    }

    /// The drainer lease as stored: who drains this file now, if anyone.
    pub fn drainer_lease(&self) -> Result<Option<LeaseInfo>> {
        let engine = self.engine()?;
        let row = engine.db.read(crate::lease::read)?;
        Ok(row.map(|(owner, generation, expires_at)| LeaseInfo {
            live: expires_at > now_ms(),
            held_here: engine.is_drainer(),
            owner,
            generation,
            expires_at,
        }))
    }

    /// The (user, workspace) this database belongs to, once stamped by an app's open.
    pub fn scope(&self) -> Result<Option<(String, String)>> {
        self.engine()?.db.read(|c| {
            let stored: Option<String> = c
                .query_row("SELECT value FROM meta WHERE key = 'scope'", [], |r| r.get(0))
                .map(Some)
                .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
            Ok(stored.and_then(|s| s.split_once('\u{1f}').map(|(u, w)| (u.to_string(), w.to_string()))))
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.engine()?.db.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    /// An integer pragma as the engine's writer and reader connections see it
    /// (`[writer, reader]`), for tests that check the connection setup.
    #[doc(hidden)]
    pub fn connection_pragma(&self, name: &str) -> Result<[i64; 2]> {
        self.engine()?.db.pragma_on_both(name)
    }

    /// The database file this engine uses.
    pub fn path(&self) -> &Path {
        &self.handle.path
    }

    /// Allows `name` to be enqueued, with its key pointers and limits. Registering again
    /// replaces the spec.
    pub fn register_mutator(&self, name: &str, spec: MutatorSpec) -> Result<()> {
        let engine = self.engine()?;
        if name.is_empty() {
            return Err(Error::InvalidRequest { reason: "mutator names must not be empty".into() });
        }
        for p in &spec.key_pointers {
            keys::validate_pointer(p)?;
        }
        engine.mutators.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), spec);
        Ok(())
    }

    /// Registers a new version of `name` with the [`Upgrader`](crate::Upgrader) from older versions: every
    /// command of `name` that was never attempted and carries an older version is
    /// upgraded now, in one transaction (see [`crate::upgrade`]). Attempted commands keep
    /// their version and args. Register before going online (open with
    /// `start_online = false`), so nothing older is sent first.
    pub fn register_mutator_with_upgrader(
        &self,
        name: &str,
        spec: MutatorSpec,
        upgrader: Arc<dyn crate::upgrade::Upgrader>,
    ) -> Result<crate::upgrade::UpgradeReport> {
        self.register_mutator(name, spec.clone())?;
        crate::upgrade::upgrade_queued(self.engine()?, name, &spec, upgrader.as_ref())
    }

    /// Durably enqueues a command with its optimistic ops and returns its id. When this
    /// returns, the command is committed to disk. Bad input is refused with a typed error
    /// and nothing is written.
    pub fn enqueue(&self, req: EnqueueRequest) -> Result<CommandId> {
        let engine = self.engine()?;
        let spec = engine
            .mutators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req.mutator)
            .cloned()
            .ok_or_else(|| Error::UnknownMutator { name: req.mutator.clone() })?;
        if req.args.len() > spec.max_args_bytes {
            return Err(Error::ArgsTooLarge { size: req.args.len(), limit: spec.max_args_bytes });
        }
        let args: Value =
            serde_json::from_str(&req.args).map_err(|e| Error::InvalidJson { field: "args", detail: e.to_string() })?;
        let metadata = match &req.metadata {
            None => "{}".to_string(),
            Some(text) => {
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| Error::InvalidJson { field: "metadata", detail: e.to_string() })?;
                if !v.is_object() {
                    return Err(Error::InvalidJson {
                        field: "metadata",
                        detail: "metadata must be a JSON object".into(),
                    });
                }
                v.to_string()
            }
        };
        for op in &req.ops {
            store::validate_op(op)?;
        }
        let keys = keys::derive(&req.keys, &spec, &args, &req.ops)?;
        let amount = engine.config.limits.amount_of(&args)?;
        let id = CommandId::new();
        let new = NewCommand {
            id,
            idempotency_key: uuid::Uuid::now_v7().to_string(),
            mutator: &req.mutator,
            mutator_version: spec.version,
            args: &req.args,
            keys: &keys,
            after: &req.after,
            ops: &req.ops,
            metadata: &metadata,
            now: now_ms(),
            amount,
        };
        let warnings = engine.db.write_capped(|tx| {
            let warnings = engine.config.limits.check(tx, &req.mutator, amount, new.now)?;
            queue::insert(tx, &new)?;
            Ok(warnings)
        })?;
        engine.emit(Event::Enqueued { id, mutator: req.mutator });
        for w in warnings {
            engine.emit(Event::LimitWarning { limit: w.limit, mutator: w.mutator, current: w.current, max: w.max });
        }
        if !req.ops.is_empty() {
            let mut collections: Vec<String> = req.ops.iter().map(|o| o.collection.clone()).collect();
            collections.sort();
            collections.dedup();
            engine.emit(Event::CollectionsChanged { collections });
        }
        engine.trigger(false);
        Ok(id)
    }

    /// One command with its keys, dependencies and attempt history.
    pub fn command(&self, id: &CommandId) -> Result<Command> {
        self.engine()?.db.read(|c| {
            let mut cmd = queue::load(c, id)?;
            cmd.history = queue::history(c, cmd.seq)?;
            Ok(cmd)
        })
    }

    /// Commands matching `filter`, in enqueue order.
    pub fn peek(&self, filter: &PeekFilter) -> Result<Vec<Command>> {
        self.engine()?.db.read(|c| queue::peek(c, filter))
    }

    /// Waits until the command needs nothing more from the engine: it succeeded, failed,
    /// was discarded, or waits for a decision (`conflict`, `wedged`). Works across
    /// restarts: the state is read from the database.
    pub async fn wait_for(&self, id: &CommandId) -> Result<Settlement> {
        let engine = Arc::clone(self.engine()?);
        let mut rx = engine.subscribe();
        let mut closed = engine.closed_signal();
        loop {
            let cmd = engine.db.read(|c| queue::load(c, id))?;
            if let Some(s) = cmd.settlement.filter(|_| cmd.state.is_settled()) {
                return Ok(s);
            }
            let wait = async {
                loop {
                    match rx.recv().await {
                        Ok(Event::StateChanged { id: changed, .. }) if changed == *id => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(WAIT_POLL) => {}
                _ = closed.changed() => return Err(Error::Closed),
            }
        }
    }

    /// Sends a `wedged` or `failed` command again with a fresh attempt budget.
    ///
    /// A wedged command keeps its idempotency key. A failed one is sent under a fresh key
    /// (the old one stays in its attempt history), so a rejection the server stored is not
    /// replayed; the key is kept only when an attempt under it may have been applied (it
    /// timed out or the app died during it). Its dependants that failed because of it
    /// (`dependency_failed`) become pending again with it, and its optimistic changes show
    /// again. Any other state is refused with `InvalidState`.
    pub fn retry(&self, id: &CommandId) -> Result<()> {
        let engine = self.engine()?;
        let changes = engine.db.write(|tx| queue::retry(tx, id, now_ms()))?;
        engine.emit_changes(&changes);
        engine.trigger(true);
        Ok(())
    }

    /// Removes a command by explicit decision (any state but `in_flight` and the
    /// terminal ones). Its ops are rolled back; commands that named it in `after` fail.
    pub fn discard(&self, id: &CommandId) -> Result<()> {
        let engine = self.engine()?;
        let collections = engine.db.read(|c| {
            let seq = queue::load(c, id)?.seq;
            Ok(queue::touched_docs(c, seq)?.into_iter().map(|(coll, _)| coll).collect())
        })?;
        let changes = engine.db.write(|tx| queue::discard(tx, id, now_ms()))?;
        engine.announce(&changes, collections);
        engine.trigger(false);
        Ok(())
    }

    /// Resolves a command in `conflict`.
    pub fn resolve_conflict(&self, id: &CommandId, resolution: Resolution) -> Result<()> {
        let engine = self.engine()?;
        match resolution {
            Resolution::Discard => {
                let state = engine.db.read(|c| queue::load(c, id))?.state;
                if state != CommandState::Conflict {
                    return Err(Error::InvalidState {
                        id: id.to_string(),
                        state: state.to_string(),
                        action: "resolve",
                    });
                }
                self.discard(id)
            }
            Resolution::RetryWith(args) => {
                let cmd = engine.db.read(|c| queue::load(c, id))?;
                let limit = engine
                    .mutators
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&cmd.mutator)
                    .map_or(crate::command::DEFAULT_MAX_ARGS_BYTES, |s| s.max_args_bytes);
                if args.len() > limit {
                    return Err(Error::ArgsTooLarge { size: args.len(), limit });
                }
                serde_json::from_str::<Value>(&args)
                    .map_err(|e| Error::InvalidJson { field: "args", detail: e.to_string() })?;
                let amount = hooks::amount_of(engine, &args)?;
                let change = engine.db.write_capped(|tx| {
                    let change = queue::retry_conflict_with(tx, id, &args, now_ms())?;
                    queue::set_amount(tx, change.seq, amount)?;
                    Ok(change)
                })?;
                engine.emit_changes(&[change]);
                engine.trigger(true);
                Ok(())
            }
        }
    }

    /// Installs (or with `None` removes) the hook that may edit never-attempted commands
    /// before the engine sends after an external trigger.
    pub fn set_before_retry(&self, hook: Option<Arc<dyn BeforeRetry>>) -> Result<()> {
        let engine = self.engine()?;
        *engine.before_retry.write().unwrap_or_else(|p| p.into_inner()) = hook;
        Ok(())
    }

    /// Applies edits to never-attempted pending commands now, all or none.
    pub fn edit_pending(&self, edits: &[Edit]) -> Result<()> {
        let engine = self.engine()?;
        let (changes, collections) = hooks::apply_edits(engine, edits)?;
        engine.announce(&changes, collections);
        engine.trigger(false);
        Ok(())
    }

    /// A snapshot of the queue's health for status bars and offline banners: counts per
    /// state, the oldest unsynced command's age, the last successful send and pull, the
    /// last error and the failures in a row since, storage used against the cap, online,
    /// lease and stall. Reads only (cheap enough to poll once a second).
    pub fn status(&self) -> Result<Status> {
        let engine = self.engine()?;
        let now = now_ms();
        let (counts, oldest, next, last_pull) = engine.db.read(|c| {
            Ok((queue::counts(c)?, queue::oldest_unfinished(c)?, queue::next_due(c, now)?, queue::last_pull_at(c)?))
        })?;
        let (storage_used_bytes, storage_cap_bytes, storage_full) = engine.db.usage()?;
        let mut s = Status {
            online: engine.online.load(Ordering::SeqCst),
            foreground: engine.foreground.load(Ordering::SeqCst),
            is_drainer: engine.is_drainer(),
            last_error: lock(&engine.last_error).clone(),
            consecutive_failures: engine.consecutive_failures.load(Ordering::SeqCst),
            last_success_at: engine.last_success_at()?,
            last_pull_at: last_pull,
            storage_used_bytes,
            storage_cap_bytes,
            storage_full,
            stalled: engine.watchdog.is_stalled(),
            oldest_pending_age: oldest.map(|t| Duration::from_millis((now - t).max(0) as u64)),
            next_attempt_in: next.map(|t| Duration::from_millis((t - now).max(0) as u64)),
            ..Status::default()
        };
        for (state, n) in counts {
            match state {
                CommandState::Pending => s.pending = n,
                CommandState::InFlight => s.in_flight = n,
                CommandState::Failed => s.failed = n,
                CommandState::Conflict => s.conflict = n,
                CommandState::Wedged => s.wedged = n,
                CommandState::Succeeded => s.succeeded = n,
                CommandState::Discarded => {}
            }
        }
        Ok(s)
    }

    /// Test hook for the stall watchdog: the drain loop's next wait ignores its timer and
    /// every wake-up (a stuck timer), so only the watchdog's kick ends it.
    #[doc(hidden)]
    pub fn wedge_drain_timer_for_test(&self) -> Result<()> {
        let engine = self.engine()?;
        engine.watchdog.wedge_timer.store(true, Ordering::SeqCst);
        engine.trigger(false);
        Ok(())
    }

    /// Subscribes to engine events from now on.
    pub fn subscribe(&self) -> Result<EventStream> {
        Ok(EventStream::new(self.engine()?.subscribe()))
    }

    /// Stops the engine for every handle and returns once nothing of it is in flight.
    ///
    /// Sends already on the wire get until the attempt timeout to answer and their answers
    /// are recorded, so a command the server applied is `succeeded` here rather than resent
    /// at the next open, and no request of this engine reaches the server after this
    /// returns. Then the lease is released. Calls after this fail with `Closed`.
    pub async fn close_gracefully(&self) {
        self.handle.engine.shutdown_gracefully().await;
        self.unregister();
    }

    /// Stops the engine for every handle at once: in-flight sends are abandoned (they resume,
    /// with the same idempotency keys, at the next open) and the lease is released.
    pub fn close(&self) {
        self.handle.engine.shutdown();
        self.unregister();
    }

    fn unregister(&self) {
        let mut reg = lock(&REGISTRY);
        if reg.get(&self.handle.path).is_some_and(|w| w.as_ptr() == Arc::as_ptr(&self.handle)) {
            reg.remove(&self.handle.path);
        }
    }
}

/// The registry key: the absolute, symlink-free path (the file may not exist yet).
fn canonical(path: &Path) -> Result<PathBuf> {
    let unwritable = |detail: String| Error::Open(OpenError::Unwritable { path: path.to_path_buf(), detail });
    let file = path.file_name().ok_or_else(|| unwritable("the path names no file".into()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|e| unwritable(format!("folder: {e}")))?;
    if !parent.is_dir() {
        return Err(unwritable("the parent is not a folder".into()));
    }
    Ok(parent.join(file))
}
