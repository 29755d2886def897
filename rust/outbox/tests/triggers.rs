//! Every trigger starts a drain; nothing is attempted while offline; clock jumps are tamed.
mod common;

use std::time::Duration;

use common::*;
use outbox::{CommandState, Config, EnqueueRequest, Event, Outbox, Outcome};

/// A lease TTL so long that the loop's own periodic wake-up (every TTL / 3 = 20 s) cannot
/// stand in for the trigger under test: each of these tests must see the drain well before.
const LONG_TTL: Duration = Duration::from_secs(60);
/// How soon a trigger must have taken effect: far below LONG_TTL / 3.
const PROMPT: Duration = Duration::from_secs(3);

fn no_periodic_wake(c: &mut Config) {
    c.lease_ttl = LONG_TTL;
}

/// Waits until `id` reaches `state`, failing unless it does within `PROMPT`.
async fn promptly(h: &Harness, id: &outbox::CommandId, state: CommandState) {
    let started = std::time::Instant::now();
    while h.state(id) != state {
        assert!(
            started.elapsed() < PROMPT,
            "{id} not {state} after {PROMPT:?}: only the periodic wake-up ({:?}) would get it there",
            LONG_TTL / 3
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn open_starts_a_drain_of_what_was_queued_before() {
    let h = Harness::offline();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    let ob = Outbox::open(config).unwrap(); // online by default: init trigger
    tokio::time::timeout(WAIT, ob.wait_for(&id)).await.unwrap().unwrap();
}

#[tokio::test]
async fn enqueue_while_online_starts_a_drain() {
    let h = Harness::with(no_periodic_wake);
    // Let the open's own pass finish and the loop go to sleep first.
    h.wait_until("drainer", |h| h.outbox.status().unwrap().is_drainer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    promptly(&h, &id, CommandState::Succeeded).await;
}

#[tokio::test]
async fn nothing_is_attempted_while_offline_and_going_online_drains() {
    let h = Harness::offline();
    let mut events = h.outbox.subscribe().unwrap();
    let ids: Vec<_> =
        (0..5).map(|i| h.outbox.enqueue(EnqueueRequest::new("note", format!("{{\"i\":{i}}}"))).unwrap()).collect();
    h.outbox.sync_now().unwrap();
    h.outbox.on_foreground().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.transport.call_count(), 0, "offline: nothing attempted, whatever the trigger");
    assert_eq!(h.outbox.status().unwrap().pending, 5);
    h.outbox.set_online(true).unwrap();
    expect_event(&mut events, "online", |e| matches!(e, Event::OnlineChanged { online: true })).await;
    for id in &ids {
        h.wait_state(id, CommandState::Succeeded).await;
    }
}

#[tokio::test]
async fn going_online_sends_waiting_retries_at_once() {
    let h = Harness::with(|c| {
        c.retry.base = Duration::from_secs(30);
        c.retry.cap = Duration::from_secs(30);
    });
    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::applied(serde_json::Value::Null)]);
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.wait_until("first attempt", |h| h.cmd(&id).attempts == 1 && h.state(&id) == CommandState::Pending).await;
    h.outbox.set_online(false).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
}

#[tokio::test]
async fn foreground_and_sync_now_each_send_waiting_retries_at_once() {
    let h = Harness::with(|c| {
        c.retry.base = Duration::from_secs(30);
        c.retry.cap = Duration::from_secs(30);
    });
    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::applied(serde_json::Value::Null)]);
    let a = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["a"])).unwrap();
    h.wait_until("first attempt of a", |h| h.cmd(&a).attempts == 1 && h.state(&a) == CommandState::Pending).await;
    h.outbox.on_background().unwrap();
    h.outbox.on_foreground().unwrap();
    h.wait_state(&a, CommandState::Succeeded).await;

    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::applied(serde_json::Value::Null)]);
    let b = h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["b"])).unwrap();
    h.wait_until("first attempt of b", |h| h.cmd(&b).attempts == 1 && h.state(&b) == CommandState::Pending).await;
    assert!(h.outbox.status().unwrap().next_attempt_in.unwrap() > Duration::from_secs(20));
    h.outbox.sync_now().unwrap();
    h.wait_state(&b, CommandState::Succeeded).await;
}

#[tokio::test]
async fn success_of_one_command_starts_the_next_on_its_key() {
    let h = Harness::with(|c| {
        no_periodic_wake(c);
        c.start_online = false;
    });
    // Slow enough that the pass started by `set_online` is asleep before the first answer.
    h.transport.set_delay(Duration::from_millis(50), Duration::from_millis(50));
    let ids: Vec<_> =
        (0..3).map(|_| h.outbox.enqueue(EnqueueRequest::new("note", "{}").keys(["k"])).unwrap()).collect();
    h.outbox.set_online(true).unwrap();
    for id in &ids {
        promptly(&h, id, CommandState::Succeeded).await;
    }
    assert_eq!(h.transport.call_count(), 3);
}

#[tokio::test]
async fn the_due_timer_fires_the_next_attempt_without_any_other_trigger() {
    let h = Harness::with(no_periodic_wake);
    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::applied(serde_json::Value::Null)]);
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.wait_until("first attempt", |h| h.cmd(&id).attempts == 1 && h.state(&id) == CommandState::Pending).await;
    // Backoff is 20 ms (cap 200 ms): only the due timer can fire the second attempt in time.
    promptly(&h, &id, CommandState::Succeeded).await;
    assert_eq!(h.cmd(&id).attempts, 2);
}

#[tokio::test]
async fn a_due_time_far_in_the_future_is_pulled_back_to_the_cap() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry.cap = Duration::from_millis(300);
    });
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    // The device clock was wrong when this was stored: due in a year.
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    conn.execute("UPDATE commands SET next_attempt_at = next_attempt_at + ?1", [year_ms]).unwrap();
    drop(conn);
    // Reopen online: the init trigger alone (no "send now" trigger) must not wait a year.
    let mut config = common::config(&h.dir, &h.transport);
    config.retry.cap = Duration::from_millis(300);
    h.outbox.close();
    let started = std::time::Instant::now();
    let ob = Outbox::open(config).unwrap();
    tokio::time::timeout(WAIT, ob.wait_for(&id)).await.unwrap().unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "sent after {waited:?}: due time should be now + cap");
    assert!(waited < Duration::from_secs(5), "sent after {waited:?}");
}

#[tokio::test]
async fn idle_is_announced_when_the_queue_runs_dry() {
    let h = Harness::offline();
    let mut events = h.outbox.subscribe().unwrap();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    expect_event(
        &mut events,
        "success",
        |e| matches!(e, Event::StateChanged { id: x, to: CommandState::Succeeded, .. } if *x == id),
    )
    .await;
    expect_event(&mut events, "idle", |e| matches!(e, Event::Idle)).await;
}

#[tokio::test]
async fn events_arrive_in_lifecycle_order() {
    let h = Harness::offline();
    let mut events = h.outbox.subscribe().unwrap();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
    let mut seen = Vec::new();
    while let Some(e) = events.try_next() {
        match e {
            Event::Enqueued { id: x, .. } if x == id => seen.push("enqueued"),
            Event::AttemptStarted { id: x, .. } if x == id => seen.push("started"),
            Event::AttemptFinished { id: x, .. } if x == id => seen.push("finished"),
            Event::StateChanged { id: x, to: CommandState::Succeeded, .. } if x == id => seen.push("succeeded"),
            _ => {}
        }
    }
    assert_eq!(seen, ["enqueued", "started", "finished", "succeeded"]);
}

#[tokio::test]
async fn drain_for_reports_what_it_did_within_its_budget() {
    let h = Harness::offline();
    h.transport.respond_to_mutator("createOrder", [Outcome::Rejected { code: "x".into(), message: "y".into() }]);
    for i in 0..10 {
        h.outbox.enqueue(EnqueueRequest::new("note", format!("{{\"id\":{i}}}"))).unwrap();
    }
    h.outbox.enqueue(EnqueueRequest::new("createOrder", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    let report = h.outbox.drain_for(Duration::from_secs(5)).await.unwrap();
    assert!(report.completed);
    assert_eq!(report.remaining, 0);
    assert_eq!(h.outbox.status().unwrap().succeeded, 10);
    assert_eq!(h.outbox.status().unwrap().failed, 1);

    // A budget too short for slow sends is cut off and says so.
    h.transport.set_delay(Duration::from_millis(300), Duration::from_millis(300));
    h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let report = h.outbox.drain_for(Duration::from_millis(50)).await.unwrap();
    assert!(!report.completed);
    assert_eq!(report.remaining, 1);
}

#[tokio::test]
async fn drain_for_waits_for_a_retry_due_within_its_budget_but_not_past_it() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry = outbox::RetryPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(60),
            jitter: 0.0,
            max_attempts: 10,
        };
    });
    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::applied(serde_json::Value::Null)]);
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    // The first attempt fails; its retry is due 200 ms later, inside the 5 s budget.
    let report = h.outbox.drain_for(Duration::from_secs(5)).await.unwrap();
    assert!(report.completed, "{report:?}");
    assert_eq!((report.attempts, report.succeeded, report.remaining), (2, 1, 0), "{report:?}");
    assert!(matches!(h.outbox.command(&id).unwrap().state, CommandState::Succeeded));

    // A retry due after the budget ends the drain early, reported as complete.
    h.transport.respond_to_mutator("note", [Outcome::retry("503"), Outcome::retry("503")]);
    h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let started = std::time::Instant::now();
    let report = h.outbox.drain_for(Duration::from_millis(150)).await.unwrap();
    assert!(report.completed && report.remaining == 1, "{report:?}");
    assert!(started.elapsed() < Duration::from_millis(150), "waited for a retry past the budget");
}
