//! Retries, backoff, Retry-After, attempt timeouts, wedging (promise 4).
mod common;

use std::time::{Duration, Instant};

use common::*;
use outbox::{CommandState, EnqueueRequest, Event, Outcome, RetryPolicy, Settlement};

#[tokio::test]
async fn transient_failures_retry_with_growing_backoff_then_succeed() {
    let h = Harness::offline();
    h.transport.respond_to_mutator(
        "note",
        [
            Outcome::retry("503"),
            Outcome::retry("503"),
            Outcome::retry("503"),
            Outcome::applied(serde_json::json!({"ok": true})),
        ],
    );
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    let s = tokio::time::timeout(WAIT, h.outbox.wait_for(&id)).await.unwrap().unwrap();
    assert_eq!(s, Settlement::Succeeded { result: serde_json::json!({"ok": true}) });
    let calls = h.transport.calls();
    assert_eq!(calls.len(), 4);
    // Base 20 ms, no jitter: gaps of at least 20, 40, 80 ms.
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, min) in gaps.iter().zip([20u64, 40, 80]) {
        assert!(*gap >= Duration::from_millis(min - 2), "gap {gap:?} shorter than {min} ms");
    }
    let cmd = h.cmd(&id);
    assert_eq!(cmd.attempts, 4);
    assert_eq!(cmd.history.len(), 4);
    assert_eq!(cmd.history[0].outcome.as_deref(), Some("retry"));
    assert_eq!(cmd.history[3].outcome.as_deref(), Some("applied"));
    assert!(cmd.history.iter().all(|a| a.ended_at.is_some()));
}

#[tokio::test]
async fn retry_after_from_the_server_wins_over_backoff() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry =
            RetryPolicy { base: Duration::from_millis(5), cap: Duration::from_secs(5), jitter: 0.0, max_attempts: 5 };
    });
    h.transport.respond_to_mutator(
        "note",
        [
            Outcome::Retry {
                reason: "slow down".into(),
                retry_after: Some(Duration::from_millis(300)),
                http_status: Some(429),
            },
            Outcome::applied(serde_json::Value::Null),
        ],
    );
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    tokio::time::timeout(WAIT, h.outbox.wait_for(&id)).await.unwrap().unwrap();
    let calls = h.transport.calls();
    assert!(calls[1].at - calls[0].at >= Duration::from_millis(300), "waited only {:?}", calls[1].at - calls[0].at);
    assert_eq!(h.cmd(&id).history[0].http_status, Some(429));
}

#[tokio::test]
async fn an_attempt_that_hangs_times_out_and_counts_as_a_failed_attempt() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.attempt_timeout = Duration::from_millis(100);
    });
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    let started = Instant::now();
    h.wait_until("a timed-out attempt", |h| h.cmd(&id).history.first().is_some_and(|a| a.ended_at.is_some())).await;
    assert!(started.elapsed() >= Duration::from_millis(95));
    let cmd = h.cmd(&id);
    assert!(cmd.history[0].error.as_deref().unwrap_or("").contains("timed out"));
    assert!(cmd.attempts >= 1);
    h.transport.release();
    h.wait_state(&id, CommandState::Succeeded).await;
}

#[tokio::test]
async fn offline_and_unauthorized_outcomes_do_not_consume_attempts() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry = RetryPolicy {
            base: Duration::from_millis(2),
            cap: Duration::from_millis(10),
            jitter: 0.0,
            max_attempts: 2,
        };
    });
    let mut events = h.outbox.subscribe().unwrap();
    h.transport.respond_to_mutator(
        "note",
        [
            Outcome::Offline,
            Outcome::Unauthorized,
            Outcome::Offline,
            Outcome::Unauthorized,
            Outcome::Offline,
            Outcome::applied(serde_json::Value::Null),
        ],
    );
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    // Five refusals with max_attempts = 2 still end in success: none of them counted.
    let s = tokio::time::timeout(WAIT, h.outbox.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(s, Settlement::Succeeded { .. }));
    assert_eq!(h.cmd(&id).attempts, 1);
    assert_eq!(h.transport.calls().len(), 6);
    expect_event(&mut events, "AuthRequired", |e| matches!(e, Event::AuthRequired)).await;
}

#[tokio::test]
async fn exhausted_attempts_park_the_command_as_wedged_blocking_only_its_keys() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry = RetryPolicy {
            base: Duration::from_millis(2),
            cap: Duration::from_millis(10),
            jitter: 0.0,
            max_attempts: 3,
        };
    });
    h.transport.set_handler(|c| (c.keys == ["bad"]).then(|| Outcome::retry("HTTP 500")));
    let bad = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["bad"])).unwrap();
    let behind = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["bad"])).unwrap();
    let other = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["good"])).unwrap();
    h.outbox.set_online(true).unwrap();
    let s = tokio::time::timeout(WAIT, h.outbox.wait_for(&bad)).await.unwrap().unwrap();
    match s {
        Settlement::Wedged { reason } => {
            assert!(reason.contains("3 attempts") && reason.contains("HTTP 500"), "{reason}")
        }
        s => panic!("expected wedged, got {s:?}"),
    }
    h.wait_state(&other, CommandState::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.state(&behind), CommandState::Pending, "the wedged command blocks its own key");
    assert_eq!(h.cmd(&bad).attempts, 3);
    assert_eq!(h.outbox.status().unwrap().wedged, 1);

    // retry gives it a fresh budget; now the server accepts it and the lane moves on.
    h.transport.set_handler(|_| None);
    h.outbox.retry(&bad).unwrap();
    h.wait_state(&bad, CommandState::Succeeded).await;
    h.wait_state(&behind, CommandState::Succeeded).await;
    let same_key = h
        .transport
        .calls()
        .iter()
        .filter(|c| c.command.id == bad.to_string())
        .all(|c| c.command.idempotency_key == h.cmd(&bad).idempotency_key);
    assert!(same_key, "a retried command keeps its idempotency key");
}

#[tokio::test]
async fn discarding_a_wedged_command_releases_its_key() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry = RetryPolicy {
            base: Duration::from_millis(2),
            cap: Duration::from_millis(10),
            jitter: 0.0,
            max_attempts: 1,
        };
    });
    h.transport.set_handler(|c| (c.mutator == "createOrder").then(|| Outcome::retry("boom")));
    let bad = h.outbox.enqueue(EnqueueRequest::new("createOrder", "{}").keys(["k"])).unwrap();
    let next = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["k"])).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&bad, CommandState::Wedged).await;
    h.outbox.discard(&bad).unwrap();
    h.wait_state(&next, CommandState::Succeeded).await;
    assert_eq!(tokio::time::timeout(WAIT, h.outbox.wait_for(&bad)).await.unwrap().unwrap(), Settlement::Discarded);
    assert!(matches!(h.outbox.retry(&bad), Err(outbox::Error::InvalidState { .. })));
}

#[tokio::test]
async fn a_panicking_transport_is_a_transient_failure_not_a_crash() {
    let h = Harness::offline();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    h.transport.set_handler(move |_| {
        if c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("transport bug");
        }
        None
    });
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
    let hist = h.cmd(&id).history;
    assert!(hist[0].error.as_deref().unwrap_or("").contains("panicked"));
}

#[tokio::test]
async fn a_transport_returning_too_few_outcomes_retries_the_rest() {
    struct Short;
    #[async_trait::async_trait]
    impl outbox::Transport for Short {
        async fn send(&self, _batch: Vec<outbox::OutgoingCommand>) -> Vec<Outcome> {
            Vec::new()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = outbox::Config::new(dir.path().join("o.db"), "u", "w").with_transport(std::sync::Arc::new(Short));
    c.retry =
        RetryPolicy { base: Duration::from_millis(2), cap: Duration::from_millis(5), jitter: 0.0, max_attempts: 2 };
    let ob = outbox::Outbox::open(c).unwrap();
    ob.register_mutator("note", Default::default()).unwrap();
    let id = ob.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let s = tokio::time::timeout(WAIT, ob.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(s, Settlement::Wedged { reason } if reason.contains("no outcome")));
}
