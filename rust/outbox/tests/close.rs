//! Closing an engine: `close_gracefully` returns only when nothing of it is in flight and
//! records what came back; an abrupt `close` leaves no transport call running behind it.
mod common;

use std::time::{Duration, Instant};

use common::*;
use outbox::{CommandState, EnqueueRequest, Outbox};

async fn until_in_progress(h: &Harness) {
    let deadline = Instant::now() + WAIT;
    while h.transport.calls_in_progress() == 0 {
        assert!(Instant::now() < deadline, "no send started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn close_gracefully_waits_for_the_send_on_the_wire_and_records_its_answer() {
    let h = Harness::new();
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    until_in_progress(&h).await;
    let transport = h.transport.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        transport.release();
    });
    let start = Instant::now();
    h.outbox.close_gracefully().await;
    assert!(start.elapsed() >= Duration::from_millis(250), "returned after {:?}, before the answer", start.elapsed());
    assert_eq!(h.transport.calls_in_progress(), 0, "a send was still in flight when close returned");
    release.await.unwrap();
    assert!(h.outbox.status().is_err(), "calls after close fail");
    // The answer was recorded before close returned: nothing is resent at the next open.
    h.transport.hold();
    let reopened = Outbox::open(config(&h.dir, &h.transport)).unwrap();
    assert_eq!(reopened.command(&id).unwrap().state, CommandState::Succeeded);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.transport.call_count(), 1, "the applied command was sent again");
    reopened.close();
}

#[tokio::test]
async fn close_gracefully_gives_up_at_the_attempt_timeout_and_the_command_is_resent_later() {
    let h = Harness::with(|c| c.attempt_timeout = Duration::from_millis(300));
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    until_in_progress(&h).await;
    let start = Instant::now();
    h.outbox.close_gracefully().await;
    assert!(start.elapsed() < Duration::from_secs(3), "close hung for {:?}", start.elapsed());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.transport.calls_in_progress(), 0, "the abandoned call still runs");
    h.transport.release();
    let reopened = Outbox::open(config(&h.dir, &h.transport)).unwrap();
    register_all(&reopened);
    tokio::time::timeout(WAIT, reopened.wait_for(&id)).await.unwrap().unwrap();
    assert_eq!(reopened.command(&id).unwrap().state, CommandState::Succeeded);
    reopened.close();
}

#[tokio::test]
async fn an_abrupt_close_aborts_the_transport_call_it_started() {
    let h = Harness::new();
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    until_in_progress(&h).await;
    h.outbox.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.transport.calls_in_progress(), 0, "the transport call outlived its engine");
    h.transport.release();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!h.transport.applied_order().contains(&id.to_string()), "a closed engine's request was applied");
}
