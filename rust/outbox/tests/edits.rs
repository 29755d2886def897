//! `before_retry` and `edit_pending`: never-attempted commands may change; attempted ones
//! are immutable.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use outbox::{Command, CommandState, Edit, EnqueueRequest, OpKind, Outcome};
use serde_json::json;

#[tokio::test]
async fn before_retry_squashes_queued_stock_adjustments_into_one() {
    let h = Harness::offline();
    let ids: Vec<_> = (1..=3)
        .map(|d| {
            h.outbox
                .enqueue(
                    EnqueueRequest::new("adjustStock", format!(r#"{{"product_id":"p1","delta":{d}}}"#))
                        .keys(["p1"])
                        .op("products", "p1", OpKind::Patch(json!({"stock_delta": d}))),
                )
                .unwrap()
        })
        .collect();
    let hook = |pending: &[Command]| -> Vec<Edit> {
        let adjust: Vec<_> = pending.iter().filter(|c| c.mutator == "adjustStock").collect();
        if adjust.len() < 2 {
            return Vec::new();
        }
        let total: i64 = adjust
            .iter()
            .map(|c| serde_json::from_str::<serde_json::Value>(&c.args).unwrap()["delta"].as_i64().unwrap())
            .sum();
        vec![Edit::Squash {
            into: adjust[0].id,
            ids: adjust.iter().map(|c| c.id).collect(),
            args: format!(r#"{{"product_id":"p1","delta":{total}}}"#),
        }]
    };
    h.outbox.set_before_retry(Some(Arc::new(hook))).unwrap();
    h.transport.hold();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&ids[0], CommandState::InFlight).await;
    assert_eq!(h.state(&ids[1]), CommandState::Discarded);
    assert_eq!(h.state(&ids[2]), CommandState::Discarded);
    // The squashed commands' optimistic ops moved to the survivor: the view is unchanged.
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    let moved: i64 = conn
        .query_row(
            "SELECT count(*) FROM pending_ops p JOIN commands c ON c.seq = p.command_seq WHERE c.id = ?1",
            [ids[0].to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(moved, 3);
    let doc = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!(doc.value, json!({"stock_delta": 3}), "ops still apply in their original order");
    assert_eq!(doc.commands, vec![ids[0]]);
    h.transport.release();
    h.wait_state(&ids[0], CommandState::Succeeded).await;
    let calls = h.transport.calls();
    assert_eq!(calls.len(), 1, "three adjustments went as one");
    assert_eq!(calls[0].command.args, json!({"product_id": "p1", "delta": 6}));
}

#[tokio::test]
async fn edits_apply_at_any_time_not_only_at_start() {
    let h = Harness::offline();
    let a = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"v":1}"#)).unwrap();
    let b = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"v":2}"#)).unwrap();
    h.outbox.edit_pending(&[Edit::Rewrite { id: a, args: r#"{"v":10}"#.into() }, Edit::Drop { id: b }]).unwrap();
    assert_eq!(h.cmd(&a).args, r#"{"v":10}"#);
    assert_eq!(h.state(&b), CommandState::Discarded);
    h.outbox.set_online(true).unwrap();
    h.wait_state(&a, CommandState::Succeeded).await;
    assert_eq!(h.transport.calls()[0].command.args, json!({"v": 10}));
}

#[tokio::test]
async fn the_hook_runs_again_on_later_triggers() {
    let h = Harness::offline();
    let runs = Arc::new(AtomicUsize::new(0));
    let r2 = runs.clone();
    h.outbox
        .set_before_retry(Some(Arc::new(move |_: &[Command]| {
            r2.fetch_add(1, Ordering::SeqCst);
            Vec::new()
        })))
        .unwrap();
    let a = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&a, CommandState::Succeeded).await;
    let first = runs.load(Ordering::SeqCst);
    assert!(first >= 1);
    h.outbox.set_online(false).unwrap();
    let b = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&b, CommandState::Succeeded).await;
    assert!(runs.load(Ordering::SeqCst) > first, "the hook ran again after coming back online");
}

#[tokio::test]
async fn an_attempted_command_is_immutable_and_can_only_be_discarded() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.retry.base = std::time::Duration::from_secs(30);
        c.retry.cap = std::time::Duration::from_secs(30);
    });
    h.transport.respond_to_mutator("note", [Outcome::retry("503")]);
    let id = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"v":1}"#)).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_until("first attempt ends", |h| h.cmd(&id).history.first().is_some_and(|a| a.ended_at.is_some())).await;
    assert_eq!(h.state(&id), CommandState::Pending);
    for edit in [Edit::Rewrite { id, args: "{}".into() }, Edit::Drop { id }] {
        assert!(matches!(h.outbox.edit_pending(&[edit]), Err(outbox::Error::Immutable { .. })));
    }
    assert_eq!(h.cmd(&id).args, r#"{"v":1}"#);
    h.outbox.discard(&id).unwrap();
    assert_eq!(h.state(&id), CommandState::Discarded);
}

#[tokio::test]
async fn a_refused_edit_refuses_the_whole_set() {
    let h = Harness::offline();
    let a = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"v":1}"#).keys(["a"])).unwrap();
    let b = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"v":2}"#).keys(["b"])).unwrap();
    let r = h.outbox.edit_pending(&[
        Edit::Rewrite { id: a, args: r#"{"v":5}"#.into() },
        Edit::Squash { into: a, ids: vec![a, b], args: "{}".into() },
    ]);
    assert!(matches!(r, Err(outbox::Error::InvalidRequest { .. })), "different keys cannot be squashed");
    assert_eq!(h.cmd(&a).args, r#"{"v":1}"#, "the first edit was rolled back too");
    assert_eq!(h.state(&b), CommandState::Pending);
    let r = h.outbox.edit_pending(&[Edit::Rewrite { id: a, args: "{oops".into() }]);
    assert!(matches!(r, Err(outbox::Error::InvalidJson { .. })));
}
