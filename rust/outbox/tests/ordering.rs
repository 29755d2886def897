//! Promise 3: order where it matters, parallel where it doesn't.
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use outbox::{CommandId, CommandState, EnqueueRequest, OpKind, Outbox};
use proptest::prelude::*;
use serde_json::json;

fn enqueue(ob: &Outbox, keys: &[&str]) -> CommandId {
    ob.enqueue(EnqueueRequest::new("note", "{}").keys(keys.iter().copied())).unwrap()
}

async fn settle_all(ob: &Outbox, ids: &[CommandId]) {
    for id in ids {
        tokio::time::timeout(WAIT, ob.wait_for(id)).await.expect("settles in time").unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// Commands sharing a key are applied in enqueue order whatever the transport delays.
    #[test]
    fn same_key_commands_apply_in_enqueue_order(
        lanes in proptest::collection::vec(0usize..4, 5..40),
        max_delay_ms in 0u64..8,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let h = Harness::offline();
            h.transport.set_delay(Duration::ZERO, Duration::from_millis(max_delay_ms));
            let mut expected: HashMap<String, Vec<String>> = HashMap::new();
            let mut ids = Vec::new();
            for lane in &lanes {
                let key = format!("k{lane}");
                let id = enqueue(&h.outbox, &[&key]);
                expected.entry(key).or_default().push(id.to_string());
                ids.push(id);
            }
            h.outbox.set_online(true).unwrap();
            settle_all(&h.outbox, &ids).await;
            let lane_of: HashMap<String, String> =
                expected.iter().flat_map(|(k, v)| v.iter().map(move |id| (id.clone(), k.clone()))).collect();
            let mut seen: HashMap<String, Vec<String>> = HashMap::new();
            for id in h.transport.applied_order() {
                seen.entry(lane_of[&id].clone()).or_default().push(id);
            }
            prop_assert_eq!(seen, expected);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn different_keys_run_in_parallel_up_to_max_concurrency_and_never_beyond() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.max_concurrency = 4;
        c.max_batch_size = 1;
    });
    h.transport.set_delay(Duration::from_millis(30), Duration::from_millis(30));
    let ids: Vec<_> = (0..24).map(|i| enqueue(&h.outbox, &[&format!("order-{i}")])).collect();
    h.outbox.set_online(true).unwrap();
    settle_all(&h.outbox, &ids).await;
    assert_eq!(h.transport.max_concurrent_calls(), 4);
    assert_eq!(h.transport.call_count(), 24);
}

#[tokio::test]
async fn independent_commands_are_batched_into_one_call() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.max_concurrency = 1;
        c.max_batch_size = 10;
    });
    let ids: Vec<_> = (0..10).map(|i| enqueue(&h.outbox, &[&format!("o{i}")])).collect();
    h.outbox.set_online(true).unwrap();
    settle_all(&h.outbox, &ids).await;
    assert_eq!(h.transport.call_count(), 1);
    let calls = h.transport.calls();
    assert_eq!(calls.len(), 10);
    // No two commands of one batch share a key.
    let mut keys: Vec<_> = calls.iter().flat_map(|c| c.command.keys.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10);
}

#[tokio::test]
async fn unkeyed_commands_run_one_at_a_time_in_order() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.max_batch_size = 1;
    });
    h.transport.set_delay(Duration::from_millis(1), Duration::from_millis(5));
    // No keys, no id, no ops: the serial unkeyed lane.
    let ids: Vec<_> =
        (0..8).map(|i| h.outbox.enqueue(EnqueueRequest::new("note", format!(r#"{{"n":{i}}}"#))).unwrap()).collect();
    assert!(h.cmd(&ids[0]).keys.is_empty());
    h.outbox.set_online(true).unwrap();
    settle_all(&h.outbox, &ids).await;
    assert_eq!(h.transport.max_concurrent_calls(), 1);
    assert_eq!(h.transport.applied_order(), ids.iter().map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn multi_key_command_waits_for_all_its_keys() {
    let h = Harness::offline();
    h.transport.hold();
    let a = enqueue(&h.outbox, &["a"]);
    let b = enqueue(&h.outbox, &["b"]);
    let ab = enqueue(&h.outbox, &["a", "b"]);
    h.outbox.set_online(true).unwrap();
    h.wait_state(&a, CommandState::InFlight).await;
    h.wait_state(&b, CommandState::InFlight).await;
    assert_eq!(h.state(&ab), CommandState::Pending);
    h.transport.release();
    settle_all(&h.outbox, &[a, b, ab]).await;
    let order = h.transport.applied_order();
    assert_eq!(order.last().unwrap(), &ab.to_string(), "a+b goes only after both a and b");
}

#[tokio::test]
async fn multi_key_command_blocks_both_lanes_behind_it() {
    let h = Harness::offline();
    h.transport.hold();
    let ab = enqueue(&h.outbox, &["a", "b"]);
    let a2 = enqueue(&h.outbox, &["a"]);
    let b2 = enqueue(&h.outbox, &["b"]);
    let c = enqueue(&h.outbox, &["c"]);
    h.outbox.set_online(true).unwrap();
    h.wait_state(&ab, CommandState::InFlight).await;
    h.wait_state(&c, CommandState::InFlight).await;
    assert_eq!(h.state(&a2), CommandState::Pending);
    assert_eq!(h.state(&b2), CommandState::Pending);
    h.transport.release();
    settle_all(&h.outbox, &[ab, a2, b2, c]).await;
}

#[tokio::test]
async fn after_dependency_waits_for_a_command_on_another_key() {
    let h = Harness::offline();
    h.transport.hold();
    let order = h.outbox.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#)).unwrap();
    let pay = h.outbox.enqueue(EnqueueRequest::new("pay", r#"{"id":"pay-1"}"#).after([order])).unwrap();
    assert_eq!(h.cmd(&pay).depends_on, vec![order]);
    h.outbox.set_online(true).unwrap();
    h.wait_state(&order, CommandState::InFlight).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.state(&pay), CommandState::Pending, "payment waits for its order");
    h.transport.release();
    settle_all(&h.outbox, &[order, pay]).await;
    assert_eq!(h.transport.applied_order(), vec![order.to_string(), pay.to_string()]);
}

#[tokio::test]
async fn keys_are_derived_in_documented_order() {
    let h = Harness::offline();
    h.outbox
        .register_mutator(
            "addLine",
            outbox::MutatorSpec { key_pointers: vec!["/order_id".into()], ..Default::default() },
        )
        .unwrap();
    let explicit =
        h.outbox.enqueue(EnqueueRequest::new("addLine", r#"{"order_id":"o1","id":"l1"}"#).keys(["x"])).unwrap();
    let pointer = h.outbox.enqueue(EnqueueRequest::new("addLine", r#"{"order_id":"o1","id":"l1"}"#)).unwrap();
    let by_id = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap();
    let by_ids = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"ids":["n2","n3"]}"#)).unwrap();
    let by_ops =
        h.outbox.enqueue(EnqueueRequest::new("note", "{}").op("notes", "n4", OpKind::Insert(json!({"t": 1})))).unwrap();
    let unkeyed = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    assert_eq!(h.cmd(&explicit).keys, vec!["x"]);
    assert_eq!(h.cmd(&pointer).keys, vec!["o1"]);
    assert_eq!(h.cmd(&by_id).keys, vec!["n1"]);
    assert_eq!(h.cmd(&by_ids).keys, vec!["n2", "n3"]);
    assert_eq!(h.cmd(&by_ops).keys, vec!["notes:n4"]);
    assert!(h.cmd(&unkeyed).keys.is_empty());
    // The derived keys are what the transport sees.
    h.outbox.set_online(true).unwrap();
    settle_all(&h.outbox, &[explicit, pointer, by_id, by_ids, by_ops, unkeyed]).await;
    let sent = h.transport.calls().into_iter().find(|c| c.command.id == pointer.to_string()).unwrap();
    assert_eq!(sent.command.keys, vec!["o1"]);
}
