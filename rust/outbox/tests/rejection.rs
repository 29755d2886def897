//! Permanent rejections roll back and fail dependants; conflicts pause keys until resolved.
mod common;

use std::time::Duration;

use common::*;
use outbox::{CommandState, EnqueueRequest, OpKind, Outcome, Resolution, Settlement};
use serde_json::json;

fn pending_ops(h: &Harness) -> i64 {
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    conn.query_row("SELECT count(*) FROM pending_ops", [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn rejection_fails_the_command_rolls_back_its_ops_and_fails_later_commands_on_its_keys() {
    let h = Harness::offline();
    h.transport.respond_to_mutator(
        "createOrder",
        [Outcome::Rejected { code: "insufficient_stock".into(), message: "only 2 left".into() }],
    );
    let order = h
        .outbox
        .enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#).op(
            "orders",
            "o1",
            OpKind::Insert(json!({"n":1})),
        ))
        .unwrap();
    let line = h
        .outbox
        .enqueue(EnqueueRequest::new("note", r#"{"id":"o1"}"#).op("orders", "o1", OpKind::Patch(json!({"note":"x"}))))
        .unwrap();
    let pay = h.outbox.enqueue(EnqueueRequest::new("pay", r#"{"id":"p1"}"#).after([order])).unwrap();
    let receipt = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"r1"}"#).after([pay])).unwrap();
    let other = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"o2"}"#)).unwrap();
    assert_eq!(pending_ops(&h), 2);
    assert_eq!(h.outbox.get("orders", "o1").unwrap().unwrap().value, json!({"n": 1, "note": "x"}));
    let mut events = h.outbox.subscribe().unwrap();
    h.outbox.set_online(true).unwrap();

    let s = tokio::time::timeout(WAIT, h.outbox.wait_for(&order)).await.unwrap().unwrap();
    assert_eq!(s, Settlement::Failed { code: "insufficient_stock".into(), message: "only 2 left".into() });
    for dependant in [line, pay, receipt] {
        match tokio::time::timeout(WAIT, h.outbox.wait_for(&dependant)).await.unwrap().unwrap() {
            Settlement::Failed { code, message } => {
                assert_eq!(code, "dependency_failed");
                assert!(message.contains(&order.to_string()) || message.contains(&pay.to_string()));
            }
            s => panic!("expected dependency_failed, got {s:?}"),
        }
    }
    h.wait_state(&other, CommandState::Succeeded).await;
    assert_eq!(h.outbox.get("orders", "o1").unwrap(), None, "the failed order's optimistic insert is no longer shown");
    // Nothing that depended on the rejected order was ever sent.
    let sent: Vec<String> = h.transport.calls().into_iter().map(|c| c.command.id).collect();
    assert!(!sent.contains(&line.to_string()) && !sent.contains(&pay.to_string()));
    let rolled_back = expect_event(
        &mut events,
        "order rolled back",
        |e| matches!(e, outbox::Event::RolledBack { id, .. } if *id == order),
    )
    .await;
    match rolled_back {
        outbox::Event::RolledBack { code, docs, .. } => {
            assert_eq!(code, "insufficient_stock");
            assert_eq!(docs, vec![("orders".to_string(), "o1".to_string())]);
        }
        _ => unreachable!(),
    }
    // Failed commands stay visible until someone discards them.
    assert_eq!(h.outbox.status().unwrap().failed, 4);
    h.outbox.discard(&order).unwrap();
    assert_eq!(h.outbox.status().unwrap().failed, 3);
    h.outbox.discard(&line).unwrap();
    assert_eq!(pending_ops(&h), 0, "discarding the failed commands deletes their ops");
}

#[tokio::test]
async fn conflict_keeps_the_server_snapshot_and_pauses_its_keys_until_resolved_with_new_args() {
    let h = Harness::offline();
    let snapshot = json!({"id": "p1", "price": 300, "version": 7});
    h.transport.respond_to_mutator(
        "put",
        [Outcome::Conflict { server_snapshot: snapshot.clone() }, Outcome::applied(json!({}))],
    );
    let put = h.outbox.enqueue(EnqueueRequest::new("put", r#"{"id":"p1","price":250}"#)).unwrap();
    let behind = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"p1"}"#)).unwrap();
    let elsewhere = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"p2"}"#)).unwrap();
    h.outbox.set_online(true).unwrap();
    let s = tokio::time::timeout(WAIT, h.outbox.wait_for(&put)).await.unwrap().unwrap();
    assert_eq!(s, Settlement::Conflict { server_snapshot: snapshot });
    h.wait_state(&elsewhere, CommandState::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.state(&behind), CommandState::Pending, "the conflict pauses its key");
    assert_eq!(h.outbox.status().unwrap().conflict, 1);

    let old_key = h.cmd(&put).idempotency_key;
    h.outbox.resolve_conflict(&put, Resolution::RetryWith(r#"{"id":"p1","price":300}"#.into())).unwrap();
    h.wait_state(&put, CommandState::Succeeded).await;
    h.wait_state(&behind, CommandState::Succeeded).await;
    let cmd = h.cmd(&put);
    assert_eq!(cmd.args, r#"{"id":"p1","price":300}"#);
    assert_ne!(cmd.idempotency_key, old_key, "new args are a new intent with a new key");
    let last = h.transport.calls().into_iter().rfind(|c| c.command.id == put.to_string()).unwrap();
    assert_eq!(last.command.args, json!({"id":"p1","price":300}));
}

#[tokio::test]
async fn conflict_resolved_by_discard_rolls_back_and_releases_the_key() {
    let h = Harness::offline();
    h.transport.respond_to_mutator("put", [Outcome::Conflict { server_snapshot: json!({}) }]);
    let put = h
        .outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p1"}"#).op("products", "p1", OpKind::Patch(json!({"price": 1}))))
        .unwrap();
    let behind = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"p1"}"#)).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&put, CommandState::Conflict).await;
    assert!(matches!(h.outbox.resolve_conflict(&behind, Resolution::Discard), Err(outbox::Error::InvalidState { .. })));
    h.outbox.resolve_conflict(&put, Resolution::Discard).unwrap();
    h.wait_state(&behind, CommandState::Succeeded).await;
    assert_eq!(h.state(&put), CommandState::Discarded);
    assert_eq!(pending_ops(&h), 0);
}

#[tokio::test]
async fn resolving_with_bad_args_is_refused_and_changes_nothing() {
    let h = Harness::offline();
    h.transport.respond_to_mutator("put", [Outcome::Conflict { server_snapshot: json!({}) }]);
    let put = h.outbox.enqueue(EnqueueRequest::new("put", r#"{"id":"p1"}"#)).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&put, CommandState::Conflict).await;
    let r = h.outbox.resolve_conflict(&put, Resolution::RetryWith("{not json".into()));
    assert!(matches!(r, Err(outbox::Error::InvalidJson { field: "args", .. })));
    assert_eq!(h.state(&put), CommandState::Conflict);
    assert_eq!(h.cmd(&put).args, r#"{"id":"p1"}"#);
}

#[tokio::test]
async fn in_flight_commands_cannot_be_discarded() {
    let h = Harness::offline();
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&id, CommandState::InFlight).await;
    assert!(matches!(h.outbox.discard(&id), Err(outbox::Error::InvalidState { .. })));
    h.transport.release();
    h.wait_state(&id, CommandState::Succeeded).await;
    assert!(matches!(h.outbox.discard(&id), Err(outbox::Error::InvalidState { .. })));
}
