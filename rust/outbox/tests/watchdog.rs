//! The stall watchdog: every way we know to wedge the queue is reported as
//! `QueueStalled` with its cause, kicked, and followed by `QueueRecovered`.
mod common;

use std::time::{Duration, Instant};

use common::*;
use outbox::{CommandState, EnqueueRequest, Event, StallCause, StallReport};

const WINDOW: Duration = Duration::from_millis(300);

fn harness(f: impl FnOnce(&mut outbox::Config)) -> Harness {
    Harness::with(|c| {
        c.stall_window = Some(WINDOW);
        c.attempt_timeout = Duration::from_secs(60);
        f(c);
    })
}

async fn stalled(stream: &mut outbox::EventStream) -> StallReport {
    match expect_event(stream, "QueueStalled", |e| matches!(e, Event::QueueStalled { .. })).await {
        Event::QueueStalled { report } => report,
        _ => unreachable!(),
    }
}

async fn recovered(stream: &mut outbox::EventStream) -> (StallCause, Duration, String) {
    match expect_event(stream, "QueueRecovered", |e| matches!(e, Event::QueueRecovered { .. })).await {
        Event::QueueRecovered { cause, stalled_for, how } => (cause, stalled_for, how),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_stuck_drain_timer_is_reported_and_kicked() {
    let h = harness(|_| {});
    let mut events = h.outbox.subscribe().unwrap();
    h.outbox.wedge_drain_timer_for_test().unwrap();
    let wedged = Instant::now();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let report = stalled(&mut events).await;
    let took = wedged.elapsed();
    eprintln!("stuck timer reported after {} ms: {report:?}", took.as_millis());
    assert_eq!(report.cause, StallCause::DrainLoopStuck, "{report:?}");
    assert!(report.ready || report.in_flight > 0, "{report:?}");
    // The kick woke the loop: the command goes out and the episode ends.
    let (cause, stalled_for, how) = recovered(&mut events).await;
    assert_eq!((cause, how.as_str()), (StallCause::DrainLoopStuck, "progress"));
    assert!(stalled_for >= WINDOW, "{stalled_for:?}");
    h.wait_state(&id, CommandState::Succeeded).await;
    assert!(!h.outbox.status().unwrap().stalled);
}

#[tokio::test]
async fn a_hung_send_is_reported_abandoned_and_retried() {
    let h = harness(|_| {});
    let mut events = h.outbox.subscribe().unwrap();
    h.transport.hold();
    let wedged = Instant::now();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let report = stalled(&mut events).await;
    eprintln!("hung send reported after {} ms: {report:?}", wedged.elapsed().as_millis());
    assert_eq!(report.cause, StallCause::SendHung, "{report:?}");
    assert_eq!(report.sends_in_flight, 1);
    assert_eq!(report.lease, "held here");
    // The abandoned attempt is retried under the same key (that call hangs too) ...
    expect_event(&mut events, "the retry", |e| matches!(e, Event::AttemptStarted { attempt: 2, .. })).await;
    // ... and the connection comes back.
    h.transport.release();
    let (cause, _, how) = recovered(&mut events).await;
    assert_eq!((cause, how.as_str()), (StallCause::SendHung, "progress"));
    h.wait_state(&id, CommandState::Succeeded).await;
    let cmd = h.cmd(&id);
    assert!(cmd.history.iter().any(|a| a.error.as_deref().is_some_and(|e| e.contains("stall watchdog"))), "{cmd:?}");
    let keys: Vec<String> = h.transport.calls().iter().map(|c| c.command.idempotency_key.clone()).collect();
    assert!(keys.iter().all(|k| *k == cmd.idempotency_key));
}

#[tokio::test]
async fn a_lease_held_by_a_frozen_process_is_reported() {
    let h = harness(|_| {});
    // Another process took the drainer lease and froze (it renewed far ahead and stopped).
    let other = rusqlite::Connection::open(h.db_path()).unwrap();
    h.wait_until("this engine to hold the lease", |h| h.outbox.status().unwrap().is_drainer).await;
    let mut events = h.outbox.subscribe().unwrap();
    let far = outbox_now() + 3_600_000;
    other
        .execute("UPDATE lease SET owner = 'frozen-process', generation = generation + 1, expires_at = ?1", [far])
        .unwrap();
    let wedged = Instant::now();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let report = stalled(&mut events).await;
    eprintln!("lost lease reported after {} ms: {report:?}", wedged.elapsed().as_millis());
    assert_eq!(report.cause, StallCause::LeaseHeldElsewhere, "{report:?}");
    assert!(report.lease.starts_with("held by another engine"), "{report:?}");
    assert!(!h.outbox.status().unwrap().is_drainer);
    // The frozen holder's lease runs out: this engine takes over and drains.
    other.execute("UPDATE lease SET expires_at = 0", []).unwrap();
    let (cause, _, _) = recovered(&mut events).await;
    assert_eq!(cause, StallCause::LeaseHeldElsewhere);
    h.wait_state(&id, CommandState::Succeeded).await;
}

#[tokio::test]
async fn a_database_that_cannot_be_written_is_reported_with_its_error_and_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    // A VFS of its own: the failure switch is per VFS name, so other tests are unaffected.
    const VFS: &str = "outbox-crash-watchdog";
    outbox_crashvfs::register(VFS).unwrap();
    let h = harness(|c| {
        c.vfs = Some(VFS.into());
        c.start_online = false;
    });
    let ids: Vec<_> =
        (0..3).map(|i| h.outbox.enqueue(EnqueueRequest::new("note", format!(r#"{{"n":{i}}}"#))).unwrap()).collect();
    // The disk goes bad while the first batch is on the wire: recording its answers, and
    // every pass after that, fails.
    let (broken, healed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (b, hl) = (broken.clone(), healed.clone());
    h.transport.set_handler(move |_| {
        if !b.swap(true, Ordering::SeqCst) {
            outbox_crashvfs::fail_writes(VFS, true);
        }
        (!hl.load(Ordering::SeqCst)).then(|| outbox::Outcome::retry("busy"))
    });
    let mut events = h.outbox.subscribe().unwrap();
    h.outbox.set_online(true).unwrap();
    let report = stalled(&mut events).await;
    eprintln!("unwritable database reported: {report:?}");
    assert_eq!(report.cause, StallCause::DrainFailing, "{report:?}");
    assert!(report.detail.contains("disk I/O error"), "the detail names the error: {report:?}");
    assert_eq!(StallCause::DrainFailing.as_str(), "drain_failing");
    let status = h.outbox.status().unwrap();
    assert!(status.stalled && status.last_error.as_deref().is_some_and(|e| e.contains("disk I/O error")), "{status:?}");
    // The disk comes back: the episode ends and every command is applied, none lost.
    healed.store(true, Ordering::SeqCst);
    outbox_crashvfs::fail_writes(VFS, false);
    let (cause, _, how) = recovered(&mut events).await;
    assert_eq!((cause, how.as_str()), (StallCause::DrainFailing, "progress"));
    for id in &ids {
        h.wait_state(id, CommandState::Succeeded).await;
    }
}

#[tokio::test]
async fn waiting_offline_or_for_a_backoff_is_not_a_stall() {
    let h = harness(|c| {
        c.retry.base = Duration::from_secs(30);
        c.retry.cap = Duration::from_secs(30);
    });
    let mut events = h.outbox.subscribe().unwrap();
    h.transport.set_default(outbox::Outcome::retry("busy"));
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.wait_until("the first attempt to fail", |h| h.cmd(&id).attempts == 1 && h.state(&id) == CommandState::Pending)
        .await;
    expect_no_event(&mut events, WINDOW * 4, |e| matches!(e, Event::QueueStalled { .. })).await;
    h.outbox.set_online(false).unwrap();
    h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["other"])).unwrap();
    expect_no_event(&mut events, WINDOW * 4, |e| matches!(e, Event::QueueStalled { .. })).await;
    assert!(!h.outbox.status().unwrap().stalled);
}

fn outbox_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
