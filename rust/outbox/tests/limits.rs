//! Offline risk limits (docs/engine.md, "Running a till"): a hard limit refuses the
//! enqueue with `LimitExceeded` and writes nothing; the soft threshold warns.
mod common;

use std::time::Duration;

use common::*;
use outbox::{CommandState, EnqueueRequest, Error, Event, LimitKind, Limits, MutatorLimits, Outcome, PeekFilter};
use serde_json::json;

fn sale(n: u32, cents: i64) -> EnqueueRequest {
    EnqueueRequest::new("createOrder", json!({"id": format!("o{n}"), "total_cents": cents}).to_string())
}

fn queued(h: &Harness) -> usize {
    h.outbox.peek(&PeekFilter { limit: 1000, ..PeekFilter::default() }).unwrap().len()
}

fn warnings(events: &mut outbox::EventStream) -> Vec<(LimitKind, Option<String>, i64, i64)> {
    let mut out = Vec::new();
    while let Some(e) = events.try_next() {
        if let Event::LimitWarning { limit, mutator, current, max } = e {
            out.push((limit, mutator, current, max));
        }
    }
    out
}

#[tokio::test]
async fn the_count_limit_warns_at_80_percent_refuses_past_the_max_and_frees_up_after_sync() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.limits = Limits { max_unsynced: Some(5), ..Limits::default() };
    });
    let mut events = h.outbox.subscribe().unwrap();
    for n in 1..=3 {
        h.outbox.enqueue(sale(n, 100)).unwrap();
    }
    assert_eq!(warnings(&mut events), vec![], "3 of 5 is below 80%");
    h.outbox.enqueue(sale(4, 100)).unwrap();
    h.outbox.enqueue(sale(5, 100)).unwrap();
    assert_eq!(
        warnings(&mut events),
        vec![(LimitKind::UnsyncedCount, None, 4, 5), (LimitKind::UnsyncedCount, None, 5, 5)]
    );
    match h.outbox.enqueue(sale(6, 100)) {
        Err(Error::LimitExceeded { limit: LimitKind::UnsyncedCount, mutator: None, current: 5, max: 5 }) => {}
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(queued(&h), 5, "nothing written");
    assert!(!std::iter::from_fn(|| events.try_next()).any(|e| matches!(e, Event::Enqueued { .. })));

    // Back online, the queue drains and the till may sell again.
    h.outbox.set_online(true).unwrap();
    h.wait_until("drained", |h| h.outbox.status().unwrap().succeeded == 5).await;
    h.outbox.enqueue(sale(6, 100)).unwrap();
}

#[tokio::test]
async fn the_amount_limit_sums_the_named_field_and_failed_sales_count_until_decided() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.limits = Limits {
            amount_field: Some("/total_cents".into()),
            max_unsynced_amount: Some(10_000),
            ..Limits::default()
        };
    });
    let mut events = h.outbox.subscribe().unwrap();
    let first = h.outbox.enqueue(sale(1, 6_000)).unwrap();
    assert_eq!(h.cmd(&first).amount, Some(6_000));
    h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap(); // no amount: counts 0
    assert_eq!(warnings(&mut events), vec![]);
    h.outbox.enqueue(sale(2, 2_500)).unwrap();
    assert_eq!(warnings(&mut events), vec![(LimitKind::UnsyncedAmount, None, 8_500, 10_000)]);
    match h.outbox.enqueue(sale(3, 2_000)) {
        Err(Error::LimitExceeded { limit: LimitKind::UnsyncedAmount, current: 8_500, max: 10_000, .. }) => {}
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    // A refund (negative) or a zero amount is never refused; a non-integer is refused.
    h.outbox.enqueue(sale(4, -500)).unwrap();
    let bad = EnqueueRequest::new("createOrder", json!({"id": "o5", "total_cents": "12.50"}).to_string());
    assert!(matches!(h.outbox.enqueue(bad), Err(Error::InvalidRequest { .. })));
    assert_eq!(queued(&h), 4);

    // A rejected sale stays unsynced (it needs a decision); discarding it frees its amount.
    h.transport.respond_to(&first.to_string(), [Outcome::Rejected { code: "declined".into(), message: "no".into() }]);
    h.outbox.set_online(true).unwrap();
    h.wait_state(&first, CommandState::Failed).await;
    h.wait_until("drained", |h| h.outbox.status().unwrap().pending == 0).await;
    assert!(matches!(h.outbox.enqueue(sale(6, 4_500)), Err(Error::LimitExceeded { current: 6_000, .. })));
    h.outbox.discard(&first).unwrap();
    h.outbox.enqueue(sale(6, 4_500)).unwrap();
}

#[tokio::test]
async fn a_per_mutator_limit_counts_only_that_mutator() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.limits
            .per_mutator
            .insert("createOrder".into(), MutatorLimits { max_unsynced: Some(2), ..Default::default() });
    });
    h.outbox.enqueue(sale(1, 1)).unwrap();
    h.outbox.enqueue(sale(2, 1)).unwrap();
    match h.outbox.enqueue(sale(3, 1)) {
        Err(Error::LimitExceeded { limit: LimitKind::UnsyncedCount, mutator: Some(m), current: 2, max: 2 }) => {
            assert_eq!(m, "createOrder")
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap();
}

#[tokio::test]
async fn the_age_limit_refuses_once_the_oldest_unsynced_command_is_that_old() {
    let max = Duration::from_millis(300);
    let h = Harness::with(|c| {
        c.start_online = false;
        c.limits = Limits { max_unsynced_age: Some(max), warn_at: 0.0, ..Limits::default() };
    });
    let mut events = h.outbox.subscribe().unwrap();
    h.outbox.enqueue(sale(1, 1)).unwrap();
    // warn_at 0: any unsynced age is at the soft threshold.
    h.outbox.enqueue(sale(2, 1)).unwrap();
    assert!(warnings(&mut events).iter().any(|w| w.0 == LimitKind::UnsyncedAge && w.3 == 300), "a warning");
    h.wait_until("the oldest is 300 ms old", |h| h.outbox.status().unwrap().oldest_pending_age >= Some(max)).await;
    match h.outbox.enqueue(sale(3, 1)) {
        Err(Error::LimitExceeded { limit: LimitKind::UnsyncedAge, current, max: 300, .. }) => assert!(current >= 300),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(queued(&h), 2);
}

#[tokio::test]
async fn an_invalid_amount_field_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let transport = std::sync::Arc::new(outbox::testing::ScriptedTransport::new());
    let mut c = config(&dir, &transport);
    c.limits.amount_field = Some("total_cents".into());
    assert!(matches!(outbox::Outbox::open(c), Err(Error::Open(outbox::OpenError::InvalidConfig(_)))));
}
