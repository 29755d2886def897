//! A scriptable in-memory [`Transport`] for tests, in this crate and in apps.
//!
//! It applies every command by default. Script it per mutator, per command id or with a
//! handler; add random delays; switch it offline; hold calls until released; and read back
//! what was sent, in order, and how many calls ran at once.
//!
//! ```no_run
//! use std::sync::Arc;
//! use outbox::testing::ScriptedTransport;
//! use outbox::transport::Outcome;
//! let t = Arc::new(ScriptedTransport::new());
//! t.respond_to_mutator("createOrder", [Outcome::retry("503"), Outcome::applied(serde_json::json!({"ok": true}))]);
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::watch;

use crate::scheduler::lock;
use crate::transport::{ChangePage, DocChange, Nudge, Outcome, OutgoingCommand, PullOutcome, Transport};

/// A function deciding a command's outcome; `None` falls through to the scripts.
pub type Handler = Arc<dyn Fn(&OutgoingCommand) -> Option<Outcome> + Send + Sync>;

/// One command as the transport received it.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// What was sent.
    pub command: OutgoingCommand,
    /// When the call started.
    pub at: Instant,
    /// Sequence number of the transport call (batch) it came in.
    pub call: usize,
    /// The outcome returned.
    pub outcome: Option<Outcome>,
}

#[derive(Default)]
struct Script {
    by_id: HashMap<String, VecDeque<Outcome>>,
    by_mutator: HashMap<String, VecDeque<Outcome>>,
    default: Option<Outcome>,
    handler: Option<Handler>,
    delay: (Duration, Duration),
    calls: Vec<RecordedCall>,
    completed: Vec<String>,
    feed: Vec<DocChange>,
    /// 0 until the feed is replaced; cursors then read `e<epoch>.<position>`.
    epoch: u32,
    pull_delay: Duration,
    pull_failure: Option<PullOutcome>,
    pulls: usize,
    listeners: Vec<Nudge>,
}

/// The scriptable transport.
pub struct ScriptedTransport {
    script: Mutex<Script>,
    offline: AtomicBool,
    gate: watch::Sender<bool>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Default for ScriptedTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedTransport {
    /// A transport that applies everything at once.
    pub fn new() -> Self {
        let (gate, _) = watch::channel(true);
        ScriptedTransport {
            script: Mutex::new(Script::default()),
            offline: AtomicBool::new(false),
            gate,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// The outcome for commands nothing else scripts (default: applied with `null`).
    pub fn set_default(&self, outcome: Outcome) {
        lock(&self.script).default = Some(outcome);
    }

    /// Outcomes for successive attempts of one command; the last one repeats.
    pub fn respond_to(&self, id: &str, outcomes: impl IntoIterator<Item = Outcome>) {
        lock(&self.script).by_id.insert(id.to_string(), outcomes.into_iter().collect());
    }

    /// Outcomes for successive attempts of any command of `mutator`; the last one repeats.
    pub fn respond_to_mutator(&self, mutator: &str, outcomes: impl IntoIterator<Item = Outcome>) {
        lock(&self.script).by_mutator.insert(mutator.to_string(), outcomes.into_iter().collect());
    }

    /// A function consulted first for every command.
    pub fn set_handler(&self, handler: impl Fn(&OutgoingCommand) -> Option<Outcome> + Send + Sync + 'static) {
        lock(&self.script).handler = Some(Arc::new(handler));
    }

    /// Each call waits a random time in `min..=max` before answering.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        lock(&self.script).delay = (min, max.max(min));
    }

    /// Each pull waits `delay` before answering (a slow feed, so readers can look in
    /// between pages).
    pub fn set_pull_delay(&self, delay: Duration) {
        lock(&self.script).pull_delay = delay;
    }

    /// While offline every command gets [`Outcome::Offline`] at once.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    /// Makes calls wait (after being recorded) until [`ScriptedTransport::release`].
    pub fn hold(&self) {
        self.gate.send_replace(false);
    }

    /// Lets held and future calls proceed.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Every command received, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.script).calls.clone()
    }

    /// Ids of commands answered `Applied`, in the order they were answered.
    pub fn applied_order(&self) -> Vec<String> {
        lock(&self.script).completed.clone()
    }

    /// How many transport calls (batches) were made.
    pub fn call_count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The most calls that were in progress at the same moment.
    pub fn max_concurrent_calls(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Calls in progress now.
    pub fn calls_in_progress(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Appends changes to the in-memory change feed that `pull` serves.
    pub fn push_changes(&self, changes: impl IntoIterator<Item = DocChange>) {
        lock(&self.script).feed.extend(changes);
    }

    /// Replaces the whole feed, as a server restored from a backup or recreated would:
    /// cursors issued before answer [`PullOutcome::CursorReset`] from now on.
    pub fn replace_feed(&self, changes: impl IntoIterator<Item = DocChange>) {
        let mut s = lock(&self.script);
        s.feed = changes.into_iter().collect();
        s.epoch += 1;
    }

    /// Makes every pull answer `outcome` (e.g. `Offline`) until called with `None`.
    pub fn fail_pulls(&self, outcome: Option<PullOutcome>) {
        lock(&self.script).pull_failure = outcome;
    }

    /// How many changes the feed holds (the cursor after the last one).
    pub fn feed_len(&self) -> usize {
        lock(&self.script).feed.len()
    }

    /// How many pulls were made.
    pub fn pull_count(&self) -> usize {
        lock(&self.script).pulls
    }

    /// Signals every live listener, as a server-sent "changed" event would.
    pub fn nudge(&self) {
        let listeners = lock(&self.script).listeners.clone();
        for nudge in listeners {
            nudge();
        }
    }

    fn outcome_for(script: &mut Script, cmd: &OutgoingCommand) -> Outcome {
        if let Some(h) = &script.handler {
            if let Some(o) = h(cmd) {
                return o;
            }
        }
        for queue in [script.by_id.get_mut(&cmd.id), script.by_mutator.get_mut(&cmd.mutator)].into_iter().flatten() {
            if let Some(o) = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() } {
                return o;
            }
        }
        script.default.clone().unwrap_or_else(|| Outcome::applied(Value::Null))
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Transport for ScriptedTransport {
    async fn send(&self, batch: Vec<OutgoingCommand>) -> Vec<Outcome> {
        if self.offline.load(Ordering::SeqCst) {
            return vec![Outcome::Offline; batch.len()];
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);
        let (first, delay) = {
            let mut s = lock(&self.script);
            let first = s.calls.len();
            for command in &batch {
                s.calls.push(RecordedCall { command: command.clone(), at: Instant::now(), call, outcome: None });
            }
            let (min, max) = s.delay;
            let span = max.saturating_sub(min).as_micros() as u64;
            (first, min + Duration::from_micros(if span == 0 { 0 } else { fastrand::u64(0..=span) }))
        };
        let mut gate = self.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.offline.load(Ordering::SeqCst) {
            return vec![Outcome::Offline; batch.len()];
        }
        let mut s = lock(&self.script);
        let mut out = Vec::with_capacity(batch.len());
        for (i, cmd) in batch.iter().enumerate() {
            let o = Self::outcome_for(&mut s, cmd);
            if matches!(o, Outcome::Applied { .. }) {
                s.completed.push(cmd.id.clone());
            }
            if let Some(rec) = s.calls.get_mut(first + i) {
                rec.outcome = Some(o.clone());
            }
            out.push(o);
        }
        out
    }

    async fn pull(&self, cursor: Option<String>, limit: u32) -> PullOutcome {
        let delay = lock(&self.script).pull_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut s = lock(&self.script);
        s.pulls += 1;
        if self.offline.load(Ordering::SeqCst) {
            return PullOutcome::Offline;
        }
        if let Some(failure) = &s.pull_failure {
            return failure.clone();
        }
        let epoch = s.epoch;
        let position = |c: &str| -> Option<usize> {
            let n = if epoch == 0 { c } else { c.strip_prefix(&format!("e{epoch}."))? };
            n.parse::<usize>().ok()
        };
        let from = match cursor.as_deref() {
            None | Some("") => 0,
            Some(c) => match position(c) {
                Some(n) if n <= s.feed.len() => n,
                _ => return PullOutcome::CursorReset { reason: format!("cursor {c:?} is not from this feed") },
            },
        };
        let to = (from + limit.max(1) as usize).min(s.feed.len());
        let cursor = if epoch == 0 { to.to_string() } else { format!("e{epoch}.{to}") };
        PullOutcome::Page(ChangePage { changes: s.feed[from..to].to_vec(), cursor, has_more: to < s.feed.len() })
    }

    async fn listen(&self, nudge: Nudge) -> bool {
        lock(&self.script).listeners.push(nudge);
        // The in-memory channel never drops; stay subscribed.
        std::future::pending::<()>().await;
        true
    }
}
