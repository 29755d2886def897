//! The drain loop: decides when to send what.
//!
//! One task per engine wakes on a trigger (open, enqueue, online, foreground, a settled
//! attempt, `sync_now`, the next due retry, lease renewal) and runs a *pass*:
//!
//! 1. nothing happens while offline or without a transport;
//! 2. take or renew the drainer lease; only the holder sends. Taking it returns commands
//!    left `in_flight` by a dead holder to `pending`;
//! 3. on external triggers, let the `before_retry` hook edit never-attempted commands;
//! 4. pull back due times further ahead than the backoff cap (the clock moved);
//! 5. read up to `free sends × max_batch_size` ready commands from SQLite, mark them
//!    `in_flight` in one transaction, and spawn one send per batch.
//!
//! Nothing about the queue is held in memory between passes except counters, so memory
//! stays flat however many commands are pending.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinSet;

use crate::command::{CommandState, Settlement};
use crate::config::Config;
use crate::db::{now_ms, Commit, Db};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::hooks::BeforeRetry;
use crate::lease::{self, HeldLease};
use crate::queue::{self, Change};
use crate::runtime;
use crate::settle::HandOff;
use crate::transport::{Outcome, OutgoingCommand, Transport};

/// How many never-attempted commands the `before_retry` hook sees per pass.
const HOOK_WINDOW: usize = 1000;

/// Engine state shared by the public handle, the drain loop and the send tasks.
pub(crate) struct Engine {
    pub(crate) db: Db,
    pub(crate) config: Config,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) mutators: std::sync::RwLock<std::collections::HashMap<String, crate::command::MutatorSpec>>,
    pub(crate) before_retry: std::sync::RwLock<Option<Arc<dyn BeforeRetry>>>,
    pub(crate) online: AtomicBool,
    pub(crate) foreground: AtomicBool,
    closed: watch::Sender<bool>,
    wake: Notify,
    /// Wakes the sync-down loop.
    pub(crate) pull_wake: Notify,
    external_trigger: AtomicBool,
    events: broadcast::Sender<Event>,
    pub(crate) owner: String,
    pub(crate) lease: Mutex<Option<HeldLease>>,
    sends_in_flight: AtomicUsize,
    pub(crate) not_sent_streak: AtomicU32,
    was_idle: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Unix ms of the last complete pull.
    pub(crate) last_pull: Mutex<Option<i64>>,
    tasks: Mutex<JoinSet<()>>,
    /// Finished sends waiting to be recorded (group commit, see `settle`).
    pub(crate) settle_queue: crate::settle::SettleQueue,
    /// Held from recording answers until their events are emitted, so that whoever sees
    /// the database settled (`is_quiet`) has also been sent the events.
    recording: Mutex<()>,
    /// Attempts in a row that did not end `applied`.
    pub(crate) consecutive_failures: AtomicU32,
    /// When the server last applied a command (`None` until read from the history once).
    pub(crate) last_success: Mutex<Option<Option<i64>>>,
    /// Progress marks and the stall episode (see `watchdog`).
    pub(crate) watchdog: crate::watchdog::Watchdog,
    /// Bumped to abandon every send on the wire (the watchdog's kick for a hung send).
    pub(crate) abandon: watch::Sender<u64>,
}

impl Engine {
    pub(crate) fn new(db: Db, mut config: Config) -> Arc<Engine> {
        let transport = config.transport.take();
        let (events, _) = broadcast::channel(4096);
        let (closed, _) = watch::channel(false);
        let online = config.start_online;
        Arc::new(Engine {
            db,
            transport,
            mutators: Default::default(),
            before_retry: Default::default(),
            online: AtomicBool::new(online),
            foreground: AtomicBool::new(true),
            closed,
            wake: Notify::new(),
            pull_wake: Notify::new(),
            external_trigger: AtomicBool::new(true),
            events,
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7()),
            lease: Mutex::new(None),
            sends_in_flight: AtomicUsize::new(0),
            not_sent_streak: AtomicU32::new(0),
            was_idle: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_pull: Mutex::new(None),
            tasks: Mutex::new(JoinSet::new()),
            settle_queue: Default::default(),
            recording: Mutex::new(()),
            consecutive_failures: AtomicU32::new(0),
            last_success: Mutex::new(None),
            watchdog: Default::default(),
            abandon: watch::channel(0).0,
            config,
        })
    }

    /// Starts the drain loop and the sync-down loops on the engine runtime.
    pub(crate) fn start(self: &Arc<Self>) {
        let handle = runtime::handle();
        let mut tasks = lock(&self.tasks);
        let engine = Arc::clone(self);
        tasks.spawn_on(async move { engine.run().await }, &handle);
        let engine = Arc::clone(self);
        tasks.spawn_on(async move { crate::sync::run(engine).await }, &handle);
        let engine = Arc::clone(self);
        tasks.spawn_on(async move { crate::sync::listen(engine).await }, &handle);
        let engine = Arc::clone(self);
        tasks.spawn_on(async move { crate::watchdog::run(engine).await }, &handle);
    }

    /// Marks the next pass as following an external trigger without waking the loop.
    pub(crate) fn mark_external_trigger(&self) {
        self.external_trigger.store(true, Ordering::SeqCst);
    }

    /// Asks the sync-down loop to pull.
    pub(crate) fn request_pull(&self) {
        self.pull_wake.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub(crate) fn closed_signal(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Announces committed state changes: a `StateChanged` per change, a `RolledBack` per
    /// failure, and one `CollectionsChanged` for every collection whose documents may now
    /// read differently (`also`: collections known to the caller, e.g. of discarded ops or
    /// of server changes).
    pub(crate) fn announce(&self, changes: &[Change], also: BTreeSet<String>) {
        let mut collections = also;
        // Only these transitions change how the command's documents read.
        let visible = |c: &Change| {
            matches!(c.to, CommandState::Succeeded | CommandState::Failed | CommandState::Conflict)
                || matches!(c.from, CommandState::Conflict | CommandState::Failed)
        };
        // The documents of every visible change (`None` for the others), one entry per
        // change, read in one read transaction (one per change was 5% of a drain's CPU
        // time: each began by revalidating the page cache).
        let mut touched = self
            .db
            .read(|conn| {
                let tx = conn.unchecked_transaction()?;
                changes.iter().map(|c| visible(c).then(|| queue::touched_docs(&tx, c.seq)).transpose()).collect()
            })
            .unwrap_or_else(|_: Error| Vec::new())
            .into_iter();
        for c in changes {
            self.emit(Event::StateChanged { id: c.id, from: c.from, to: c.to });
            let Some(docs) = touched.next().flatten() else { continue };
            if docs.is_empty() {
                continue;
            }
            collections.extend(docs.iter().map(|(coll, _)| coll.clone()));
            if c.to == CommandState::Failed {
                if let Ok(Some(Settlement::Failed { code, message })) =
                    self.db.read(|conn| queue::settlement(conn, c.seq))
                {
                    self.emit(Event::RolledBack { id: c.id, code, message, docs });
                }
            }
        }
        if !collections.is_empty() {
            self.emit(Event::CollectionsChanged { collections: collections.into_iter().collect() });
        }
    }

    /// `announce` for changes that touch no known collections beyond the commands' own.
    pub(crate) fn emit_changes(&self, changes: &[Change]) {
        self.announce(changes, BTreeSet::new());
    }

    /// Wakes the drain loop. `external` marks triggers that come from outside the queue
    /// (they also run the `before_retry` hook).
    pub(crate) fn trigger(&self, external: bool) {
        if external {
            self.external_trigger.store(true, Ordering::SeqCst);
            self.request_pull();
        }
        self.watchdog.woken();
        self.wake.notify_one();
    }

    /// Whether there is nothing to send now: offline or without a transport, or no send in
    /// progress, no command marked in flight and none ready.
    pub(crate) fn is_quiet(&self) -> Result<bool> {
        if !self.is_online_with_transport() {
            return Ok(true);
        }
        if self.sends_in_flight() > 0 {
            return Ok(false);
        }
        let now = now_ms();
        let _recording = lock(&self.recording);
        self.db.read(|c| {
            let in_flight: bool = c
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM commands WHERE state = 'in_flight')")?
                .query_row([], |r| r.get(0))?;
            Ok(!in_flight && queue::ready(c, now, 1)?.is_empty())
        })
    }

    /// Whether sends may start at all: a transport is configured and the engine is online.
    pub(crate) fn is_online_with_transport(&self) -> bool {
        self.transport.is_some() && self.online.load(Ordering::SeqCst)
    }

    pub(crate) fn sends_in_flight(&self) -> usize {
        self.sends_in_flight.load(Ordering::SeqCst)
    }

    /// Stops the loop and abandons in-flight sends (their commands stay `in_flight` in the
    /// database, exactly as after a crash, and are resumed by the next drainer). Releases
    /// the lease so another engine can take over at once.
    pub(crate) fn shutdown(&self) {
        if self.closed.send_replace(true) {
            return;
        }
        lock(&self.tasks).abort_all();
        self.release_lease();
    }

    /// Stops the loops and waits until nothing of this engine is in flight: sends already
    /// on the wire get until the attempt timeout to answer, and their answers are recorded,
    /// so no request of this engine reaches the server after this returns. Anything still
    /// unanswered at the deadline is abandoned exactly as after a crash (its command stays
    /// `in_flight` and is resent under the same idempotency key). Releases the lease last.
    pub(crate) async fn shutdown_gracefully(self: &Arc<Self>) {
        if self.closed.send_replace(true) {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.attempt_timeout;
        // A pass that was running when the flag flipped may still spawn sends into a fresh
        // set, so take the set again until it stays empty.
        loop {
            let mut set = std::mem::take(&mut *lock(&self.tasks));
            if set.is_empty() {
                break;
            }
            loop {
                match tokio::time::timeout_at(deadline, set.join_next()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        set.abort_all();
                        while set.join_next().await.is_some() {}
                        break;
                    }
                }
            }
        }
        let engine = Arc::clone(self);
        let finish = runtime::handle().spawn_blocking(move || {
            let finished = engine.settle_queue.take();
            if let Err(e) = engine.record_alone(finished) {
                tracing::warn!(error = %e, "could not record the last answers at close; they are resent at the next open");
            }
            engine.release_lease();
        });
        if let Err(e) = finish.await {
            tracing::warn!(error = %e, "closing the engine failed");
        }
    }

    async fn run(self: Arc<Self>) {
        let mut closed = self.closed.subscribe();
        loop {
            if *closed.borrow() {
                return;
            }
            if self.watchdog.wedge_timer.load(Ordering::SeqCst) {
                // Test hook: a timer that never fires and wake-ups that are lost; only
                // the watchdog's kick ends this wait.
                tokio::select! {
                    _ = self.watchdog.kick.notified() => {}
                    _ = closed.changed() => return,
                }
            }
            self.watchdog.pass_starts();
            let sleep = match self.pass() {
                Ok(next) => {
                    self.watchdog.pass_succeeded();
                    next
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox drain pass failed");
                    let error = e.to_string();
                    self.watchdog.pass_failed(&error);
                    *lock(&self.last_error) = Some(error);
                    Duration::from_secs(1)
                }
            };
            self.watchdog.pass_ran();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.watchdog.kick.notified() => {}
                _ = tokio::time::sleep(sleep) => self.external_trigger.store(true, Ordering::SeqCst),
                _ = closed.changed() => return,
            }
        }
    }

    /// One scheduling pass. Returns how long to sleep if nothing wakes the loop earlier.
    fn pass(self: &Arc<Self>) -> Result<Duration> {
        let idle_sleep = Duration::from_secs(3600);
        let finished = self.settle_queue.take();
        let Some(transport) = self.transport.clone() else { return Ok(idle_sleep) };
        if !self.online.load(Ordering::SeqCst) {
            // Answers that arrived before going offline are still recorded.
            self.record_alone(finished)?;
            return Ok(idle_sleep);
        }
        let generation = match self.hold_lease() {
            Ok(Ok(g)) => g,
            Ok(Err(retry_in)) => return Ok(retry_in), // lease lost: those answers are fenced
            Err(e) => {
                self.settle_queue.requeue(finished);
                return Err(e);
            }
        };
        if self.external_trigger.swap(false, Ordering::SeqCst) {
            self.run_before_retry();
        }
        let now = now_ms();
        let cap_ms = self.config.retry.cap.as_millis() as i64;
        let max_sends = self.config.max_concurrency.max(1);
        let free = max_sends.saturating_sub(self.sends_in_flight());
        let batch_size = self.config.max_batch_size.max(1);

        // Record what finished and start what is ready in ONE transaction: settling frees
        // lanes, so the ready set is read after it, inside the same transaction.
        let recording = lock(&self.recording);
        let written = self.db.write_with(crate::settle::commit_for(&finished), |tx| {
            lease::check_fence(tx, &self.owner, generation)?;
            self.make_room(tx, now)?;
            let recorded = self.record_in(tx, &finished, generation, now, HandOff::Full)?;
            queue::clamp_due(tx, now, cap_ms)?;
            // Checked again here: a pass that began before going offline must not start
            // sends after it (the flag may have flipped while this pass waited for the lock).
            let started = if free > 0 && self.online.load(Ordering::SeqCst) {
                let seqs = queue::ready(tx, now, free * batch_size)?;
                queue::start_attempts(tx, &seqs, now)?
            } else {
                Vec::new()
            };
            Ok((recorded, started))
        });
        let (recorded, started) = match written {
            Ok(w) => w,
            Err(Error::Fenced) => {
                tracing::warn!("drainer lease lost while sending; the new drainer resends these commands");
                self.lose_lease();
                return Ok(self.renew_interval());
            }
            Err(Error::StorageFull) if !finished.is_empty() => {
                // At the size cap the answers did not fit in one transaction: record them
                // one by one, then run again at once to start the next sends.
                self.record_for_space(finished, generation, now)?;
                return Ok(Duration::ZERO);
            }
            Err(e) => {
                self.settle_queue.requeue(finished);
                return Err(e);
            }
        };
        self.announce_recorded(&finished, recorded);
        drop(recording);
        if !started.is_empty() {
            self.watchdog.progress();
            self.was_idle.store(false, Ordering::SeqCst);
            for (_, cmd) in &started {
                self.emit(Event::AttemptStarted { id: crate::settle::parse_id(&cmd.id), attempt: cmd.attempt });
            }
            let per_batch = started.len().div_ceil(free).clamp(1, batch_size);
            let mut started = started.into_iter().peekable();
            while started.peek().is_some() {
                let batch: Vec<(i64, OutgoingCommand)> = started.by_ref().take(per_batch).collect();
                self.spawn_send(Arc::clone(&transport), batch, generation);
            }
        } else if free > 0 && self.sends_in_flight() == 0 && !self.was_idle.swap(true, Ordering::SeqCst) {
            self.emit(Event::Idle);
            // After a drain, bring the server's versions of what was sent.
            self.request_pull();
            // Idle: copy the drain's WAL into the file now, off the drain's commits (the
            // checkpoint policy in `db::configure`).
            self.db.checkpoint_when_idle();
        }
        let next_due = self.db.read(|c| queue::next_due(c, now))?;
        let until_due = next_due.map(|t| Duration::from_millis((t - now).max(0) as u64));
        Ok(until_due.map_or(self.renew_interval(), |d| d.min(self.renew_interval())))
    }

    /// Records finished sends without starting anything (offline).
    fn record_alone(&self, finished: Vec<crate::settle::Finished>) -> Result<()> {
        let Some(generation) = (*lock(&self.lease)).map(|l| l.generation) else {
            return Ok(()); // no lease: whoever takes it resends these
        };
        if finished.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let _recording = lock(&self.recording);
        match self.db.write_with(crate::settle::commit_for(&finished), |tx| {
            lease::check_fence(tx, &self.owner, generation)?;
            self.record_in(tx, &finished, generation, now, HandOff::Full)
        }) {
            Ok(recorded) => {
                self.announce_recorded(&finished, recorded);
                Ok(())
            }
            Err(Error::Fenced) => {
                self.lose_lease();
                Ok(())
            }
            Err(Error::StorageFull) => self.record_for_space(finished, generation, now),
            Err(e) => {
                self.settle_queue.requeue(finished);
                Err(e)
            }
        }
    }

    pub(crate) fn prune(&self) {
        let cutoff = now_ms() - self.config.retention.as_millis() as i64;
        if let Err(e) = self.db.write_with(Commit::Relaxed, |tx| queue::prune(tx, cutoff)) {
            tracing::warn!(error = %e, "pruning finished commands failed");
        }
    }

    fn run_before_retry(&self) {
        let hook = match self.before_retry.read() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(hook) = hook else { return };
        let editable = match self.db.read(|c| queue::editable(c, HOOK_WINDOW)) {
            Ok(cmds) if !cmds.is_empty() => cmds,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading commands for before_retry failed");
                return;
            }
        };
        let edits = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.review(&editable))) {
            Ok(edits) => edits,
            Err(_) => {
                tracing::warn!("before_retry hook panicked; no edits applied");
                return;
            }
        };
        if edits.is_empty() {
            return;
        }
        match crate::hooks::apply_edits(self, &edits) {
            Ok((changes, collections)) => self.announce(&changes, collections),
            Err(e) => tracing::warn!(error = %e, "before_retry edits refused; none applied"),
        }
    }

    fn spawn_send(
        self: &Arc<Self>,
        transport: Arc<dyn Transport>,
        batch: Vec<(i64, OutgoingCommand)>,
        generation: i64,
    ) {
        self.sends_in_flight.fetch_add(1, Ordering::SeqCst);
        let engine = Arc::clone(self);
        let handle = runtime::handle();
        let timeout = self.config.attempt_timeout;
        let abandon = self.abandon.subscribe();
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(
            async move {
                let commands: Vec<OutgoingCommand> = batch.iter().map(|(_, c)| c.clone()).collect();
                let outcomes = send_guarded(transport, commands, timeout, abandon).await;
                engine.finish_send(batch, outcomes, generation);
                engine.sends_in_flight.fetch_sub(1, Ordering::SeqCst);
                engine.trigger(false);
            },
            &handle,
        );
    }
}

/// Runs one transport call in its own task so that a panic or a hang cannot take the
/// engine down: both become transient failures.
async fn send_guarded(
    transport: Arc<dyn Transport>,
    commands: Vec<OutgoingCommand>,
    timeout: Duration,
    mut abandon: watch::Receiver<u64>,
) -> Vec<Outcome> {
    let n = commands.len();
    let call = runtime::handle().spawn(async move { transport.send(commands).await });
    // Aborted with the send task too (an abrupt close), so no request outlives its engine.
    let abort = AbortOnDrop(call.abort_handle());
    abandon.borrow_and_update();
    tokio::select! {
        answer = tokio::time::timeout(timeout, call) => match answer {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(_)) => vec![Outcome::retry("transport failed unexpectedly (panicked)"); n],
            Err(_) => {
                drop(abort);
                vec![Outcome::retry(format!("attempt timed out after {} ms", timeout.as_millis())); n]
            }
        },
        Ok(()) = abandon.changed() => {
            drop(abort);
            vec![Outcome::retry("no answer: abandoned by the stall watchdog"); n]
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
