//! Running a till against the real reference server (docs/engine.md, "Running a till"):
//! a 403 pauses sending instead of failing sales, and `retry` brings a failed command
//! back with its dependants under a fresh idempotency key.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{
    CommandId, CommandState, Config, EnqueueRequest, Event, EventStream, MutatorSpec, Outbox, RetryPolicy, Settlement,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// A register on a real SQLite file draining to the server with `token` in ws-1. Retries
/// wait a minute, so anything that moves within a test moved because of a trigger.
fn register(dir: &tempfile::TempDir, base_url: &str, token: &str, max_attempts: u32) -> Outbox {
    register_with(dir, base_url, token, max_attempts, |_| {})
}

fn register_with(
    dir: &tempfile::TempDir,
    base_url: &str,
    token: &str,
    max_attempts: u32,
    f: impl FnOnce(&mut Config),
) -> Outbox {
    let transport = HttpTransport::new(
        HttpConfig::new(base_url, "ws-1").with_request_timeout(Duration::from_secs(5)),
        Arc::new(StaticToken::new(token)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join("register.db"), "till", "ws-1").with_transport(Arc::new(transport));
    config.retry =
        RetryPolicy { base: Duration::from_secs(60), cap: Duration::from_secs(60), jitter: 0.0, max_attempts };
    f(&mut config);
    let ob = Outbox::open(config).unwrap();
    for m in ["put", "createOrder", "voidOrder"] {
        ob.register_mutator(m, MutatorSpec::default()).unwrap();
    }
    ob
}

async fn wait_state(ob: &Outbox, id: &CommandId, state: CommandState) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = ob.command(id).unwrap().state;
        if now == state {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "command {id} stuck in {now}, expected {state}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn expect_event(events: &mut EventStream, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        _ => panic!("no event: {what}"),
    }
}

fn sale(n: u32) -> EnqueueRequest {
    EnqueueRequest::new(
        "put",
        json!({"collection": "sales", "id": format!("s{n}"), "doc": {"total": 1250}}).to_string(),
    )
}

async fn test_a_403_pauses_without_consuming_attempts_and_resumes_on_sync_now(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    // Bob has a valid token but is no member of ws-1: every request is a real 403.
    let ob = register(&dir, &s.server.base_url(), BOB, 2);
    let mut events = ob.subscribe().unwrap();
    let id = ob.enqueue(sale(1)).unwrap();
    for round in 0..3 {
        if round > 0 {
            ob.sync_now().unwrap();
        }
        let e = expect_event(&mut events, "access denied", |e| matches!(e, Event::AccessDenied { .. })).await;
        assert!(matches!(&e, Event::AccessDenied { message } if message.contains("member")), "{e:?}");
        wait_state(&ob, &id, CommandState::Pending).await;
    }
    // Three refusals with max_attempts = 2: nothing consumed, nothing wedged or failed.
    let cmd = ob.command(&id).unwrap();
    assert_eq!((cmd.state, cmd.attempts), (CommandState::Pending, 0), "{cmd:?}");
    assert!(cmd.last_error.as_deref().is_some_and(|e| e.starts_with("forbidden")), "{cmd:?}");
    // An attempt that reached nobody is not counted, so its history row is reused.
    assert!(!cmd.history.is_empty());
    assert!(cmd.history.iter().all(|a| a.outcome.as_deref() == Some("forbidden") && a.http_status == Some(403)));
    assert!(s.doc("ws-1", "sales", "s1").await.is_none());

    // The admin fixes the role; the next trigger sends (the backoff alone waits a minute).
    s.server.storage().add_member("bob", "ws-1").await.unwrap();
    ob.sync_now().unwrap();
    wait_state(&ob, &id, CommandState::Succeeded).await;
    assert_eq!(s.doc("ws-1", "sales", "s1").await.unwrap()["total"], 1250);
    assert_eq!(s.server.stats().key("ws-1", "bob", &cmd.idempotency_key).applied, 1);
}

async fn test_retry_of_a_failed_command_sends_it_under_a_fresh_key_with_its_dependants(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register(&dir, &s.server.base_url(), ALICE, 10);
    ob.set_online(false).unwrap();
    // Widget has 10 in stock: the order is rejected.
    let order = ob
        .enqueue(EnqueueRequest::new(
            "createOrder",
            json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 12}]}).to_string(),
        ))
        .unwrap();
    // On the order's key, and after it on another key: both fail with it.
    let void = ob.enqueue(EnqueueRequest::new("voidOrder", json!({"id": "o1"}).to_string())).unwrap();
    let receipt = ob.enqueue(sale(7).after([order])).unwrap();
    // Unrelated: succeeds whatever happens to the order.
    let other = ob.enqueue(sale(8)).unwrap();
    ob.set_online(true).unwrap();
    wait_state(&ob, &order, CommandState::Failed).await;
    for dep in [void, receipt] {
        wait_state(&ob, &dep, CommandState::Failed).await;
        let settled = ob.command(&dep).unwrap().settlement;
        assert!(
            matches!(settled, Some(Settlement::Failed { ref code, .. }) if code == "dependency_failed"),
            "{settled:?}"
        );
    }
    wait_state(&ob, &other, CommandState::Succeeded).await;
    let before = ob.command(&order).unwrap();
    assert!(matches!(before.settlement, Some(Settlement::Failed { ref code, .. }) if code == "insufficient_stock"));
    assert_eq!(before.keys, vec!["o1".to_string()], "a finished command keeps its keys");

    // A wedged-only retry used to be refused here; now the manager restocks and retries.
    s.server
        .seed_doc("ws-1", "products", "widget", &json!({"name": "Widget", "price": 100, "stock": 50}))
        .await
        .unwrap();
    ob.retry(&order).unwrap();
    for id in [order, void, receipt] {
        wait_state(&ob, &id, CommandState::Succeeded).await;
    }
    let after = ob.command(&order).unwrap();
    assert_ne!(after.idempotency_key, before.idempotency_key, "a fresh idempotency key");
    let keys: Vec<Option<&str>> = after.history.iter().map(|a| a.idempotency_key.as_deref()).collect();
    assert_eq!(
        keys,
        vec![Some(before.idempotency_key.as_str()), Some(after.idempotency_key.as_str())],
        "the history keeps the old key on the old attempt: {:?}",
        after.history
    );
    assert_eq!(after.history[0].outcome.as_deref(), Some("rejected"));
    assert_eq!((after.history[1].number, after.history[1].outcome.as_deref()), (2, Some("applied")));
    let stats = s.server.stats();
    assert_eq!(stats.key("ws-1", "alice", &after.idempotency_key).applied, 1);
    assert_eq!(stats.key("ws-1", "alice", &before.idempotency_key).applied, 0);
    assert_eq!(s.doc("ws-1", "orders", "o1").await.unwrap()["status"], "voided");
    assert_eq!(s.stock("widget").await, 50, "the void gave the 12 back");
    // Only failed (and wedged) commands can be retried.
    assert!(matches!(ob.retry(&order), Err(outbox::Error::InvalidState { .. })));
}

async fn test_closeout_is_clean_once_everything_is_applied(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register_with(&dir, &s.server.base_url(), ALICE, 10, |c| {
        c.limits.amount_field = Some("/doc/total".into());
        c.start_online = false;
    });
    for n in 1..=3 {
        ob.enqueue(sale(n)).unwrap();
    }
    let before = ob.closeout_report().unwrap();
    assert!(!before.clean);
    assert_eq!(before.unsettled.len(), 3);
    assert!(before.unsettled.iter().all(|u| u.reason == "not yet sent" && u.amount == Some(1250)));
    assert_eq!(before.oldest_unsynced.as_ref().map(|u| u.id), Some(before.unsettled[0].id));
    ob.set_online(true).unwrap();
    let report = ob.closeout(Duration::from_secs(10)).await.unwrap();
    assert!(report.clean, "{report:?}");
    assert!(report.drain.completed);
    assert_eq!(report.unsettled, vec![]);
    assert_eq!(report.oldest_unsynced, None);
    assert_eq!(report.states, vec![outbox::StateTotal { state: CommandState::Succeeded, count: 3, amount: 3750 }]);
}

async fn test_closeout_past_its_deadline_is_not_clean_and_says_why(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register_with(&dir, &s.server.base_url(), ALICE, 10, |c| {
        c.limits.amount_field = Some("/doc/total".into());
        c.start_online = false;
    });
    // A rejected order (widget has 10) and a sale stuck behind a slow server.
    let order = ob
        .enqueue(EnqueueRequest::new(
            "createOrder",
            json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 12}]}).to_string(),
        ))
        .unwrap();
    ob.set_online(true).unwrap();
    wait_state(&ob, &order, CommandState::Failed).await;
    s.server.set_faults("latency=3000ms".parse().unwrap());
    let slow = ob.enqueue(sale(1)).unwrap();
    let started = std::time::Instant::now();
    let report = ob.closeout(Duration::from_millis(300)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500), "closeout kept its deadline");
    assert!(!report.clean && !report.drain.completed, "{report:?}");
    let reasons: Vec<(CommandId, CommandState, &str)> =
        report.unsettled.iter().map(|u| (u.id, u.state, u.reason.as_str())).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!((reasons[0].0, reasons[0].1), (order, CommandState::Failed));
    assert!(reasons[0].2.starts_with("rejected (insufficient_stock)"), "{reasons:?}");
    assert_eq!((reasons[1].0, reasons[1].1, reasons[1].2), (slow, CommandState::InFlight, "being sent"));
    assert_eq!(report.oldest_unsynced.as_ref().map(|u| u.id), Some(order));
    let failed = report.states.iter().find(|t| t.state == CommandState::Failed).unwrap();
    assert_eq!((failed.count, failed.amount), (1, 0));
    let in_flight = report.states.iter().find(|t| t.state == CommandState::InFlight).unwrap();
    assert_eq!((in_flight.count, in_flight.amount), (1, 1250));
    // The slow answer lands; the rejected order still needs a decision.
    wait_state(&ob, &slow, CommandState::Succeeded).await;
    assert!(!ob.closeout(Duration::from_millis(100)).await.unwrap().clean);
    ob.discard(&order).unwrap();
    assert!(ob.closeout(Duration::from_millis(100)).await.unwrap().clean);
}

backend_tests!(
    test_closeout_is_clean_once_everything_is_applied,
    test_closeout_past_its_deadline_is_not_clean_and_says_why,
    test_a_403_pauses_without_consuming_attempts_and_resumes_on_sync_now,
    test_retry_of_a_failed_command_sends_it_under_a_fresh_key_with_its_dependants,
);
