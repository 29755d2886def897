//! What the app tells the engine about its life: connectivity, foreground and background,
//! "sync now", and a drain inside the time a platform background task grants.
//!
//! Each signal is a trigger for the drain loop (`scheduler`); going online, coming to the
//! foreground and `sync_now` also make waiting retries due at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::CommandState;
use crate::db::now_ms;
use crate::error::Result;
use crate::events::Event;
use crate::outbox::Outbox;
use crate::queue;

/// What [`Outbox::drain_for`] achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainReport {
    /// Attempts that finished in the window.
    pub attempts: u64,
    /// Commands that succeeded.
    pub succeeded: u64,
    /// Commands that failed permanently (including dependants).
    pub failed: u64,
    /// Commands still pending or in flight at the end.
    pub remaining: u64,
    /// True when nothing was left to send within the budget (the rest waits for a retry
    /// time past the deadline, a decision, or the network); false when the deadline cut
    /// the drain short.
    pub completed: bool,
}

impl Outbox {
    /// Sends now: waiting retries become due and the engine drains.
    pub fn sync_now(&self) -> Result<()> {
        let engine = self.engine()?;
        engine.db.write(|tx| queue::make_due_now(tx, now_ms()))?;
        engine.trigger(true);
        Ok(())
    }

    /// Reports connectivity. Going online makes waiting retries due and drains.
    pub fn set_online(&self, online: bool) -> Result<()> {
        let engine = self.engine()?;
        if online {
            // Before the flag flips: the first pass that sees "online" also runs the
            // before_retry hook.
            engine.mark_external_trigger();
        }
        let was = engine.online.swap(online, Ordering::SeqCst);
        if was != online {
            engine.emit(Event::OnlineChanged { online });
            if online {
                engine.db.write(|tx| queue::make_due_now(tx, now_ms()))?;
                engine.trigger(true);
            }
        }
        Ok(())
    }

    /// Reports that the app came to the foreground: drains at once.
    pub fn on_foreground(&self) -> Result<()> {
        let engine = self.engine()?;
        if !engine.foreground.swap(true, Ordering::SeqCst) {
            engine.emit(Event::ForegroundChanged { foreground: true });
        }
        engine.db.write(|tx| queue::make_due_now(tx, now_ms()))?;
        engine.trigger(true);
        Ok(())
    }

    /// Reports that the app went to the background, and quiesces the database before the
    /// OS may suspend the process: it returns once no write transaction of this engine is
    /// open (each is a short synchronous step, never held across a network call) and after
    /// a passive checkpoint, so a suspended app is unlikely to hold SQLite's write lock
    /// and blocks no other process on the file. Draining continues while the OS lets the
    /// process run; use [`Outbox::drain_for`] inside granted background time.
    pub fn on_background(&self) -> Result<()> {
        let engine = self.engine()?;
        if engine.foreground.swap(false, Ordering::SeqCst) {
            engine.emit(Event::ForegroundChanged { foreground: false });
        }
        engine.db.quiesce()
    }

    /// Drains for at most `budget` (a platform background task's time) and reports what
    /// happened. Returns early once nothing is left to send within the budget: a retry
    /// due before the deadline is waited for.
    pub async fn drain_for(&self, budget: Duration) -> Result<DrainReport> {
        let engine = Arc::clone(self.engine()?);
        let deadline = Instant::now() + budget;
        let mut rx = engine.subscribe();
        let mut report = DrainReport::default();
        let count = |report: &mut DrainReport, event: Event| match event {
            Event::AttemptFinished { .. } => report.attempts += 1,
            Event::StateChanged { to: CommandState::Succeeded, .. } => report.succeeded += 1,
            Event::StateChanged { to: CommandState::Failed, .. } => report.failed += 1,
            _ => {}
        };
        self.sync_now()?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if engine.is_quiet()? {
                // A retry due inside the budget is still part of this drain: wait for it.
                let left_ms = (deadline - now).as_millis() as i64;
                let wall = now_ms();
                let due_soon = engine.is_online_with_transport()
                    && engine.db.read(|c| queue::next_due(c, wall))?.is_some_and(|t| t - wall < left_ms);
                if !due_soon {
                    report.completed = true;
                    break;
                }
            }
            let step = (deadline - now).min(Duration::from_millis(50));
            if let Ok(Ok(event)) = tokio::time::timeout(step, rx.recv()).await {
                count(&mut report, event);
            }
        }
        while let Ok(event) = rx.try_recv() {
            count(&mut report, event);
        }
        let status = self.status()?;
        report.remaining = status.pending + status.in_flight;
        Ok(report)
    }
}
