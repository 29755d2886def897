//! The stall watchdog: "online, commands ready, nothing moving" never passes in silence.
//!
//! One task per engine (when `Config::stall_window` is set) looks every quarter window.
//! The queue is *stalled* when the engine is online with a transport, there is work (a
//! command ready now, or a send on the wire), and for a whole window nothing was
//! attempted or settled — by this engine or, as seen in the database, by another one.
//! Waiting out a backoff is not a stall (nothing is ready), and neither is being offline.
//!
//! On a stall the watchdog kicks the engine and says what it found, in one
//! [`Event::QueueStalled`]:
//! - the drain loop: when it last ran a pass (a stuck timer or lost wake-up shows here);
//!   the kick wakes it whatever it waits on;
//! - the lease: who holds it; a lease this engine believes it holds is re-read;
//! - the drain's own passes: when each one fails (the database cannot be written), the
//!   report names the error instead of guessing at the network;
//! - the transport: sends on the wire with no answer for a window are abandoned (their
//!   commands are retried under the same idempotency keys, so nothing applies twice);
//! - the network: one probe of the server's change feed (bounded by the window).
//!
//! When progress resumes (or there is nothing left to send, or the engine goes offline)
//! it emits [`Event::QueueRecovered`] once. `Status::stalled` mirrors the episode.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::Result;
use crate::events::{Event, StallCause, StallReport};
use crate::queue;
use crate::scheduler::{lock, Engine};
use crate::transport::PullOutcome;

/// Progress marks and the current episode, shared by the engine and the watchdog task.
pub(crate) struct Watchdog {
    epoch: Instant,
    /// Ms since `epoch` of the last attempt started or answer recorded.
    progress_at: AtomicU64,
    /// Ms since `epoch` of the drain loop's last pass.
    pass_at: AtomicU64,
    /// 1 + ms since `epoch` of the oldest wake-up the drain loop has not served (0: none).
    wake_pending: AtomicU64,
    stalled: Mutex<Option<(Instant, StallCause)>>,
    /// Since when every drain pass has failed, and the last pass's error.
    pass_failure: Mutex<Option<(Instant, String)>>,
    /// Wakes the drain loop whatever it waits on (a stuck timer included).
    pub(crate) kick: Notify,
    /// Test hook: the drain loop's next sleep ignores its timer and wake-ups.
    pub(crate) wedge_timer: AtomicBool,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            epoch: Instant::now(),
            progress_at: AtomicU64::new(0),
            pass_at: AtomicU64::new(0),
            wake_pending: AtomicU64::new(0),
            stalled: Mutex::new(None),
            pass_failure: Mutex::new(None),
            kick: Notify::new(),
            wedge_timer: AtomicBool::new(false),
        }
    }
}

impl Watchdog {
    fn ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// An attempt started or an answer was recorded.
    pub(crate) fn progress(&self) {
        self.progress_at.store(self.ms(), Ordering::SeqCst);
    }

    /// The drain loop finished a pass.
    pub(crate) fn pass_ran(&self) {
        self.pass_at.store(self.ms(), Ordering::SeqCst);
    }

    /// A drain pass returned `error`; the failure run starts at the first of them.
    pub(crate) fn pass_failed(&self, error: &str) {
        let mut failure = lock(&self.pass_failure);
        let since = failure.as_ref().map_or_else(Instant::now, |(since, _)| *since);
        *failure = Some((since, error.to_string()));
    }

    /// A drain pass succeeded: any run of failures is over.
    pub(crate) fn pass_succeeded(&self) {
        lock(&self.pass_failure).take();
    }

    /// How long every pass has failed, and the last error, when the last pass failed.
    fn failing_passes(&self) -> Option<(Duration, String)> {
        lock(&self.pass_failure).as_ref().map(|(since, error)| (since.elapsed(), error.clone()))
    }

    /// The drain loop was asked to run a pass.
    pub(crate) fn woken(&self) {
        let _ = self.wake_pending.compare_exchange(0, self.ms() + 1, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The drain loop starts a pass (serving every wake-up so far).
    pub(crate) fn pass_starts(&self) {
        self.wake_pending.store(0, Ordering::SeqCst);
    }

    /// How long the oldest unserved wake-up has waited.
    fn wake_waiting(&self) -> Option<Duration> {
        match self.wake_pending.load(Ordering::SeqCst) {
            0 => None,
            at => Some(Duration::from_millis(self.ms().saturating_sub(at - 1))),
        }
    }

    /// Whether a stall episode is open.
    pub(crate) fn is_stalled(&self) -> bool {
        lock(&self.stalled).is_some()
    }

    fn ago(&self, mark: &AtomicU64) -> Duration {
        Duration::from_millis(self.ms().saturating_sub(mark.load(Ordering::SeqCst)))
    }
}

/// What the database says about work, for progress made by any engine on the file.
#[derive(Debug, Clone, PartialEq)]
struct Marker {
    first_ready: Option<i64>,
    first_head: Option<i64>,
    in_flight: i64,
    first_in_flight: Option<i64>,
}

impl Marker {
    fn has_work(&self) -> bool {
        self.first_ready.is_some() || self.in_flight > 0
    }
}

fn marker(engine: &Engine) -> crate::Result<Marker> {
    let now = crate::db::now_ms();
    engine.db.read(|c| {
        let first_ready = queue::ready(c, now, 1)?.first().copied();
        let first_head: Option<i64> = c.query_row("SELECT MIN(head_seq) FROM lanes", [], |r| r.get(0))?;
        let (in_flight, first_in_flight): (i64, Option<i64>) =
            c.query_row("SELECT COUNT(*), MIN(seq) FROM commands WHERE state = 'in_flight'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(Marker { first_ready, first_head, in_flight, first_in_flight })
    })
}

/// The watchdog task.
pub(crate) async fn run(engine: Arc<Engine>) {
    let Some(window) = engine.config.stall_window else { return };
    let tick = (window / 4).max(Duration::from_millis(10));
    let mut closed = engine.closed_signal();
    let dog = &engine.watchdog;
    let mut seen_progress = dog.progress_at.load(Ordering::SeqCst);
    let mut last_marker: Option<Marker> = None;
    // Since when there has been work with no progress (continuously, as far as ticks see).
    let mut stuck_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = closed.changed() => return,
        }
        let now = Instant::now();
        if !engine.is_online_with_transport() {
            stuck_since = None;
            last_marker = None;
            recover(&engine, "offline");
            continue;
        }
        let progress = dog.progress_at.load(Ordering::SeqCst);
        if progress != seen_progress {
            seen_progress = progress;
            stuck_since = None;
            last_marker = None;
            recover(&engine, "progress");
            continue;
        }
        let m = match marker(&engine) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "stall watchdog could not read the queue");
                continue;
            }
        };
        let sends = engine.sends_in_flight();
        if !m.has_work() && sends == 0 {
            stuck_since = None;
            last_marker = Some(m);
            recover(&engine, "nothing_to_send");
            continue;
        }
        // Another engine on the file moved the queue: that is progress too.
        if last_marker.as_ref().is_some_and(|prev| *prev != m) {
            stuck_since = None;
            last_marker = Some(m);
            recover(&engine, "progress");
            continue;
        }
        last_marker = Some(m.clone());
        let since = *stuck_since.get_or_insert(now);
        if now.duration_since(since) < window || dog.is_stalled() {
            continue;
        }
        let report = diagnose(&engine, &m, sends, now.duration_since(since), window).await;
        tracing::warn!(cause = report.cause.as_str(), detail = %report.detail, "the outbox queue is stalled; kicking it");
        let report_cause = report.cause;
        *lock(&dog.stalled) = Some((since, report.cause));
        kick(&engine, report_cause);
        engine.emit(Event::QueueStalled { report });
    }
}

impl Engine {
    /// When the server last applied a command of this database (Unix ms); read from the
    /// attempt history the first time, then kept up to date in memory.
    pub(crate) fn last_success_at(&self) -> Result<Option<i64>> {
        if let Some(known) = *lock(&self.last_success) {
            return Ok(known);
        }
        let stored = self.db.read(queue::last_applied_at)?;
        let mut slot = lock(&self.last_success);
        let value = match *slot {
            Some(newer) => newer.max(stored),
            None => stored,
        };
        *slot = Some(value);
        Ok(value)
    }

    /// Abandons every send on the wire: each becomes a transient failure and its commands
    /// are retried under the same idempotency keys.
    pub(crate) fn abandon_sends(&self) {
        self.abandon.send_modify(|n| *n += 1);
    }
}

/// Ends an open episode with [`Event::QueueRecovered`].
fn recover(engine: &Engine, how: &str) {
    let Some((since, cause)) = lock(&engine.watchdog.stalled).take() else { return };
    tracing::info!(cause = cause.as_str(), how, "the outbox queue is moving again");
    engine.emit(Event::QueueRecovered { cause, stalled_for: since.elapsed(), how: how.to_string() });
}

/// Rechecks the drain loop, the lease, the transport and the network.
async fn diagnose(
    engine: &Arc<Engine>,
    m: &Marker,
    sends: usize,
    stalled_for: Duration,
    window: Duration,
) -> StallReport {
    let dog = &engine.watchdog;
    let last_pass_ago = dog.ago(&dog.pass_at);
    let now = crate::db::now_ms();
    let lease = match engine.db.read(crate::lease::read) {
        Ok(Some((owner, _, expires_at))) if owner == engine.owner && expires_at > now => "held here".to_string(),
        Ok(Some((_, _, expires_at))) if expires_at > now => {
            format!("held by another engine for {} ms more", expires_at - now)
        }
        Ok(Some(_)) | Ok(None) => "free".to_string(),
        Err(e) => format!("unreadable: {e}"),
    };
    let held_elsewhere = lease.starts_with("held by another");
    if held_elsewhere {
        // Whatever this engine believed, it does not drain now.
        engine.lose_lease();
    }
    let network = probe(engine, window).await;
    // The loop runs a pass at least every renew interval while online, and within
    // moments of a wake-up: anything slower means its timer or wake-up is stuck.
    let wake_waiting = dog.wake_waiting().unwrap_or_default();
    let loop_stuck =
        wake_waiting >= window / 2 || last_pass_ago >= window && last_pass_ago > engine.renew_interval() * 2;
    let failing = dog.failing_passes();
    let cause = if loop_stuck {
        StallCause::DrainLoopStuck
    } else if failing.is_some() {
        StallCause::DrainFailing
    } else if sends > 0 || m.in_flight > 0 && !held_elsewhere {
        StallCause::SendHung
    } else if held_elsewhere {
        StallCause::LeaseHeldElsewhere
    } else if network != "reachable" {
        StallCause::ServerUnreachable
    } else {
        StallCause::Unknown
    };
    let detail = match cause {
        StallCause::DrainLoopStuck => format!(
            "the drain loop has not run for {} ms (a wake-up unserved for {} ms)",
            last_pass_ago.as_millis(),
            wake_waiting.as_millis()
        ),
        StallCause::SendHung => {
            format!("{sends} send(s) unanswered for {} ms; abandoned for a retry", stalled_for.as_millis())
        }
        StallCause::DrainFailing => {
            let (failing_for, error) = failing.unwrap_or_default();
            format!("every drain pass for {} ms has failed: {error}", failing_for.as_millis())
        }
        StallCause::LeaseHeldElsewhere => format!("the drainer lease is {lease}"),
        StallCause::ServerUnreachable => format!("the server probe: {network}"),
        StallCause::Unknown => "nothing found; the drain loop was woken".to_string(),
    };
    StallReport {
        cause,
        detail,
        stalled_for,
        ready: m.first_ready.is_some(),
        in_flight: m.in_flight.max(0) as u64,
        sends_in_flight: sends as u64,
        lease,
        network,
        last_pass_ago,
    }
}

/// One bounded request to the change feed: can the server be reached at all?
async fn probe(engine: &Arc<Engine>, window: Duration) -> String {
    let Some(transport) = engine.transport.clone() else { return "no transport".into() };
    let limit = window.min(engine.config.attempt_timeout).max(Duration::from_millis(100));
    let call = crate::runtime::handle().spawn(async move { transport.pull(None, 1).await });
    let abort = call.abort_handle();
    let answer = match tokio::time::timeout(limit, call).await {
        Ok(Ok(PullOutcome::Page(_))) | Ok(Ok(PullOutcome::CursorReset { .. })) => "reachable".into(),
        Ok(Ok(PullOutcome::Unsupported)) => "unknown (the transport has no feed)".into(),
        Ok(Ok(PullOutcome::Offline)) => "unreachable".into(),
        Ok(Ok(PullOutcome::Unauthorized)) => "unauthorized".into(),
        Ok(Ok(PullOutcome::Failed(reason))) => format!("failed: {reason}"),
        Ok(Err(_)) => "failed: the transport panicked".into(),
        Err(_) => format!("no answer within {} ms", limit.as_millis()),
    };
    abort.abort();
    answer
}

/// Abandons unanswered sends (for a hung send), wakes the drain loop through anything it waits on, and
/// makes its next pass a full one (lease, hook, pull).
fn kick(engine: &Engine, cause: StallCause) {
    if cause == StallCause::SendHung {
        engine.abandon_sends();
    }
    engine.watchdog.wedge_timer.store(false, Ordering::SeqCst);
    engine.trigger(true);
    engine.watchdog.kick.notify_one();
}
