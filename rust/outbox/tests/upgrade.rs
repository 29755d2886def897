//! Shipping a new version of a mutator: never-attempted commands queued by the old app
//! are upgraded before they are sent; attempted ones are sent exactly as attempted; a
//! failing upgrader parks its command as wedged, untouched.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::{CommandState, EnqueueRequest, MutatorSpec, OpKind, Outbox, Outcome, Settlement, UpgradeReport};
use serde_json::{json, Value};

fn v1_order(id: &str) -> String {
    json!({"id": id, "lines": [{"product_id": "latte", "qty": 2}]}).to_string()
}

/// createOrder v1 → v2: `lines[{product_id, qty}]` become `items[{sku, quantity}]`.
fn v1_to_v2(from: u32, args: &str) -> Result<String, String> {
    if from != 1 {
        return Err(format!("no upgrade from version {from}"));
    }
    let mut v: Value = serde_json::from_str(args).map_err(|e| e.to_string())?;
    let lines = v.as_object_mut().and_then(|o| o.remove("lines")).ok_or("no lines")?;
    let items: Vec<Value> = lines
        .as_array()
        .ok_or("lines is not an array")?
        .iter()
        .map(|l| json!({"sku": l["product_id"], "quantity": l["qty"]}))
        .collect();
    v["items"] = Value::Array(items);
    Ok(v.to_string())
}

fn v2() -> MutatorSpec {
    MutatorSpec { version: 2, ..MutatorSpec::default() }
}

/// The old app: offline at open, and a server-requested wait of a minute is honoured.
fn old_app() -> Harness {
    Harness::with(|c| {
        c.start_online = false;
        c.retry.cap = Duration::from_secs(120);
    })
}

/// An "old app" database: A attempted once (waiting for a retry a minute away), B and
/// the note never attempted; all createOrder commands at version 1. Closed afterwards.
async fn old_app_queue(h: &Harness) -> (outbox::CommandId, outbox::CommandId, outbox::CommandId) {
    let a = h.outbox.enqueue(EnqueueRequest::new("createOrder", v1_order("A")).keys(["order:A"])).unwrap();
    h.transport.respond_to(
        &a.to_string(),
        [
            Outcome::Retry {
                reason: "busy".into(),
                retry_after: Some(Duration::from_secs(60)),
                http_status: Some(503),
            },
            Outcome::applied(json!({"ok": true})),
        ],
    );
    h.outbox.set_online(true).unwrap();
    h.wait_until("A attempted once", |h| h.cmd(&a).attempts == 1 && h.state(&a) == CommandState::Pending).await;
    h.outbox.set_online(false).unwrap();
    let b = h
        .outbox
        .enqueue(EnqueueRequest::new("createOrder", v1_order("B")).keys(["order:B"]).op(
            "orders",
            "B",
            OpKind::Insert(json!({"status": "open"})),
        ))
        .unwrap();
    let note = h.outbox.enqueue(EnqueueRequest::new("note", r#"{"text":"hi"}"#)).unwrap();
    (a, b, note)
}

fn reopen_offline(h: &Harness) -> Outbox {
    h.outbox.close();
    let mut config = config(&h.dir, &h.transport);
    config.start_online = false;
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("note", MutatorSpec::default()).unwrap();
    ob
}

#[tokio::test]
async fn never_attempted_commands_are_upgraded_and_attempted_ones_are_sent_as_attempted() {
    let h = old_app();
    let (a, b, note) = old_app_queue(&h).await;
    let key_b = h.cmd(&b).idempotency_key;
    let ob = reopen_offline(&h);
    let report = ob.register_mutator_with_upgrader("createOrder", v2(), Arc::new(v1_to_v2)).unwrap();
    assert_eq!(report, UpgradeReport { upgraded: 1, wedged: 0 });
    let (ca, cb, cn) = (ob.command(&a).unwrap(), ob.command(&b).unwrap(), ob.command(&note).unwrap());
    assert_eq!((ca.mutator_version, ca.args.as_str()), (1, v1_order("A").as_str()), "attempted: untouched");
    assert_eq!(cb.mutator_version, 2);
    assert_eq!(
        serde_json::from_str::<Value>(&cb.args).unwrap(),
        json!({"id": "B", "items": [{"sku": "latte", "quantity": 2}]})
    );
    assert_eq!(cb.idempotency_key, key_b, "the upgrade keeps the idempotency key");
    assert_eq!(ob.get("orders", "B").unwrap().map(|d| d.value), Some(json!({"status": "open"})), "ops kept");
    assert_eq!((cn.mutator_version, cn.args.as_str()), (1, r#"{"text":"hi"}"#), "other mutators untouched");
    // Registering again upgrades nothing more.
    assert_eq!(
        ob.register_mutator_with_upgrader("createOrder", v2(), Arc::new(v1_to_v2)).unwrap(),
        UpgradeReport::default()
    );

    ob.set_online(true).unwrap();
    ob.sync_now().unwrap();
    for id in [&a, &b, &note] {
        let s = tokio::time::timeout(WAIT, ob.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(s, Settlement::Succeeded { .. }), "{s:?}");
    }
    let last_sent = |id: &outbox::CommandId| {
        h.transport.calls().into_iter().rfind(|c| c.command.id == id.to_string()).unwrap().command
    };
    let (sa, sb) = (last_sent(&a), last_sent(&b));
    assert_eq!((sa.mutator_version, sa.args.clone()), (1, serde_json::from_str::<Value>(&v1_order("A")).unwrap()));
    assert_eq!(sb.mutator_version, 2);
    assert_eq!(sb.args["items"][0]["sku"], "latte");
    assert_eq!(
        h.transport.calls().iter().filter(|c| c.command.id == b.to_string()).count(),
        1,
        "B only ever went out as v2"
    );
    ob.close();
}

#[tokio::test]
async fn a_failing_upgrader_parks_its_command_wedged_and_untouched() {
    let h = old_app();
    let (_, b, _) = old_app_queue(&h).await;
    let c = h.outbox.enqueue(EnqueueRequest::new("createOrder", v1_order("C")).keys(["order:C"])).unwrap();
    let d = h.outbox.enqueue(EnqueueRequest::new("createOrder", v1_order("D")).keys(["order:D"])).unwrap();
    let ob = reopen_offline(&h);
    let upgrader = move |_from: u32, args: &str| -> Result<String, String> {
        if args.contains("\"B\"") {
            Err("B cannot be upgraded".into())
        } else if args.contains("\"C\"") {
            panic!("upgrader bug on C")
        } else {
            Ok("{not json".into())
        }
    };
    let report = ob.register_mutator_with_upgrader("createOrder", v2(), Arc::new(upgrader)).unwrap();
    assert_eq!(report, UpgradeReport { upgraded: 0, wedged: 3 });
    for (id, why) in [(&b, "B cannot be upgraded"), (&c, "panicked: upgrader bug on C"), (&d, "invalid JSON")] {
        let cmd = ob.command(id).unwrap();
        assert_eq!(cmd.state, CommandState::Wedged, "{why}");
        assert_eq!(cmd.mutator_version, 1, "{why}: version untouched");
        let Some(Settlement::Wedged { reason }) = &cmd.settlement else { panic!("{cmd:?}") };
        assert!(reason.contains(why) && reason.contains("version 1 to 2"), "{reason}");
    }
    assert_eq!(ob.command(&b).unwrap().args, v1_order("B"));
    assert_eq!(ob.get("orders", "B").unwrap().map(|d| d.value), Some(json!({"status": "open"})), "ops kept");
    ob.close();
}
