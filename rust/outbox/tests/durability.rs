//! Promise 1: durable before dispatch; restarts lose nothing and keep idempotency keys.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::{CommandState, EnqueueRequest, OpKind, Outbox, Settlement};
use serde_json::json;

#[tokio::test]
async fn enqueued_command_is_in_the_file_when_enqueue_returns() {
    let h = Harness::offline();
    let id = h
        .outbox
        .enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1","total":5}"#).op(
            "orders",
            "o1",
            OpKind::Insert(json!({"total": 5})),
        ))
        .unwrap();
    // A separate connection (as another process would) sees the committed row and its op.
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    let (state, args): (String, String) = conn
        .query_row("SELECT state, args FROM commands WHERE id = ?1", [id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(state, "pending");
    assert_eq!(args, r#"{"id":"o1","total":5}"#);
    let ops: i64 = conn.query_row("SELECT count(*) FROM pending_ops", [], |r| r.get(0)).unwrap();
    assert_eq!(ops, 1);
    // `synchronous` is per connection: both of the engine's must be FULL (2), the default
    // durability, so the commit above reached the disk before `enqueue` returned.
    assert_eq!(h.outbox.connection_pragma("synchronous").unwrap(), [2, 2], "synchronous on [writer, reader]");
}

#[tokio::test]
async fn normal_durability_is_normal_on_both_connections() {
    let h = Harness::with(|c| c.durability = outbox::Durability::Normal);
    assert_eq!(h.outbox.connection_pragma("synchronous").unwrap(), [1, 1], "synchronous on [writer, reader]");
}

#[tokio::test]
async fn command_interrupted_mid_attempt_is_pending_again_with_the_same_key_after_reopen() {
    let h = Harness::new();
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#)).unwrap();
    h.wait_state(&id, CommandState::InFlight).await;
    // `in_flight` is committed before the send task reaches the transport: wait for the
    // call itself, or closing now may abort the send before it was made.
    h.wait_until("the first attempt reached the transport", |h| {
        h.transport.calls().iter().any(|c| c.command.id == id.to_string())
    })
    .await;
    let key_before = h.cmd(&id).idempotency_key;
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    let Harness { dir, transport, outbox } = h;
    drop(outbox);

    // Reopen offline: the interrupted command is pending, counted once, same key.
    transport.release();
    let mut c = config.clone();
    c.start_online = false;
    let ob = Outbox::open(c).unwrap();
    register_all(&ob);
    // The lease is taken when the engine first drains; while offline the row may still say
    // in_flight, which the new drainer resets. Go online and let it be resent.
    ob.set_online(true).unwrap();
    let settled = tokio::time::timeout(WAIT, ob.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }));
    let cmd = ob.command(&id).unwrap();
    assert_eq!(cmd.idempotency_key, key_before);
    assert_eq!(cmd.attempts, 2, "the interrupted attempt stays counted");
    let sent: Vec<_> = transport.calls().into_iter().filter(|c| c.command.id == id.to_string()).collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|c| c.command.idempotency_key == key_before));
    drop(dir);
}

#[tokio::test]
async fn reopened_engine_restores_pending_commands_and_their_order() {
    let h = Harness::offline();
    let ids: Vec<_> = (0..20)
        .map(|i| h.outbox.enqueue(EnqueueRequest::new("note", format!(r#"{{"n":{i}}}"#)).keys(["lane"])).unwrap())
        .collect();
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    let ob = Outbox::open(config).unwrap();
    register_all(&ob);
    for id in &ids {
        tokio::time::timeout(WAIT, ob.wait_for(id)).await.unwrap().unwrap();
    }
    let order: Vec<String> = h.transport.applied_order();
    assert_eq!(order, ids.iter().map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn wait_for_survives_reopening_the_engine() {
    let h = Harness::offline();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    let ob = Outbox::open(config).unwrap();
    let waiter = {
        let ob = ob.clone();
        tokio::spawn(async move { ob.wait_for(&id).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    ob.sync_now().unwrap();
    let settled = tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }));
}

#[tokio::test]
async fn wait_for_reports_closed_engine() {
    let h = Harness::offline();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    let ob = h.outbox.clone();
    let waiter = tokio::spawn(async move { ob.wait_for(&id).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.outbox.close();
    let r = tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    assert!(matches!(r, Err(outbox::Error::Closed)));
    assert!(matches!(h.outbox.enqueue(EnqueueRequest::new("note", "{}")), Err(outbox::Error::Closed)));
}

#[tokio::test]
async fn succeeded_commands_and_their_history_are_pruned_after_the_retention_age() {
    assert_eq!(outbox::Config::new("x.db", "u", "w").retention, Duration::from_secs(7 * 24 * 3600), "default 7 days");
    let dir = tempfile::tempdir().unwrap();
    let transport = Arc::new(outbox::testing::ScriptedTransport::new());
    let mut c = config(&dir, &transport);
    c.retention = Duration::from_millis(200);
    let ob = Outbox::open(c.clone()).unwrap();
    register_all(&ob);
    let done = ob.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"old"}"#)).unwrap();
    assert!(matches!(ob.wait_for(&done).await.unwrap(), outbox::Settlement::Succeeded { .. }));
    assert_eq!(ob.command(&done).unwrap().history.len(), 1);
    ob.set_online(false).unwrap();
    let waiting = ob.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"new"}"#)).unwrap();
    ob.close();

    tokio::time::sleep(Duration::from_millis(300)).await;
    transport.hold(); // the unsent command stays unfinished while the engine drains
    let ob = Outbox::open(c).unwrap();
    register_all(&ob);
    // Pruning runs when the engine takes the drainer lease at open.
    let deadline = std::time::Instant::now() + WAIT;
    while ob.command(&done).is_ok() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(ob.command(&done), Err(outbox::Error::UnknownCommand { .. })), "the succeeded command is pruned");
    let state = ob.command(&waiting).unwrap().state;
    assert!(matches!(state, CommandState::Pending | CommandState::InFlight), "an unsent command is never pruned");
    let orphans: i64 = rusqlite::Connection::open(dir.path().join("outbox.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM attempts WHERE command_seq NOT IN (SELECT seq FROM commands)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(orphans, 0, "its attempt history went with it");
}

/// An engine on the crash VFS that writes nothing on its own once its queue is settled:
/// no feed to pull, and no lease renewal during the test. So the unsynced bytes measured
/// below come from the writes under test only.
fn quiet_crash_harness() -> Harness {
    outbox_crashvfs::register("outbox-crash-durability").unwrap();
    let h = Harness::with(|c| {
        c.vfs = Some("outbox-crash-durability".into());
        c.start_online = false;
        c.lease_ttl = Duration::from_secs(600);
    });
    h.transport.fail_pulls(Some(outbox::PullOutcome::Unsupported));
    h
}

/// Enqueues `n` orders `{"n": i}` and returns their ids.
fn enqueue_orders(h: &Harness, n: usize) -> Vec<outbox::CommandId> {
    (0..n).map(|i| h.outbox.enqueue(EnqueueRequest::new("createOrder", format!(r#"{{"n":{i}}}"#))).unwrap()).collect()
}

/// Bytes written to `file` since its last fsync, as the crash VFS keeps them apart.
fn unsynced_bytes(file: &std::path::Path) -> u64 {
    std::fs::metadata(outbox_crashvfs::log_path(file)).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test]
async fn the_drain_records_successes_without_fsync_and_the_next_enqueue_syncs_them() {
    let h = quiet_crash_harness();
    let wal = h.dir.path().join("outbox.db-wal");
    let ids = enqueue_orders(&h, 5);
    assert_eq!(unsynced_bytes(&wal), 0, "every enqueue is fsynced before it returns");

    h.outbox.set_online(true).unwrap();
    for id in &ids {
        h.wait_state(id, CommandState::Succeeded).await;
    }
    // Marking in flight and recording the successes wrote WAL frames that no fsync covered:
    // losing them to a power cut only resends under the same keys (answered `duplicate`).
    assert!(unsynced_bytes(&wal) > 0, "the drain's commits were fsynced");

    h.outbox.set_online(false).unwrap();
    h.outbox.enqueue(EnqueueRequest::new("createOrder", r#"{"n":99}"#)).unwrap();
    assert_eq!(unsynced_bytes(&wal), 0, "a durable commit syncs everything written before it");
}

/// The checkpoint policy (docs/pragmas.md): durable writes checkpoint every 1,000 WAL
/// pages (the drain's relaxed commits wait for 4,000), and a WAL is truncated back to
/// 16 MiB after a checkpoint.
#[test]
fn durable_writes_checkpoint_every_1000_wal_pages() {
    let h = Harness::offline();
    assert_eq!(h.outbox.connection_pragma("wal_autocheckpoint").unwrap(), [1000, 1000]);
    assert_eq!(h.outbox.connection_pragma("journal_size_limit").unwrap(), [4000 * 4096, 4000 * 4096]);
    let normal = Harness::with(|c| c.durability = outbox::Durability::Normal);
    assert_eq!(normal.outbox.connection_pragma("wal_autocheckpoint").unwrap(), [1000, 1000]);
}

/// A process killed after a burst of sales queued offline leaves a WAL the next open must
/// read through (the crash-reopen bench): enqueues keep it near 1,000 pages however much
/// they write.
#[test]
fn an_offline_burst_keeps_the_wal_short() {
    let h = Harness::offline();
    let wal = h.dir.path().join("outbox.db-wal");
    let big = "x".repeat(48 * 1024);
    // 160 x 48 KiB: some 1,900 pages of arguments alone.
    for i in 0..160 {
        h.outbox.enqueue(EnqueueRequest::new("createOrder", format!(r#"{{"n":{i},"pad":"{big}"}}"#))).unwrap();
    }
    let frame = 4096 + 24;
    let len = std::fs::metadata(&wal).unwrap().len();
    assert!(len <= 32 + 1100 * frame, "the WAL holds {} pages after an offline burst", len / frame);
}

/// Once the drain goes idle with a WAL past 1 MiB, a checkpoint copies it into the file:
/// the relaxed commits it holds are synced then, and the next drain starts with a short
/// WAL. (A smaller WAL is left alone: see the next test.)
#[tokio::test]
async fn an_idle_drain_checkpoints_a_large_wal() {
    let h = quiet_crash_harness();
    let wal = h.dir.path().join("outbox.db-wal");
    let ids = enqueue_orders(&h, 120);
    assert!(std::fs::metadata(&wal).unwrap().len() > 256 * 4096, "the test needs a WAL past the idle threshold");
    h.outbox.set_online(true).unwrap();
    for id in &ids {
        h.wait_state(id, CommandState::Succeeded).await;
    }
    // Idle comes right after the last success is recorded; the checkpoint syncs the WAL.
    h.wait_until("the idle checkpoint synced the drain's commits", |_| unsynced_bytes(&wal) == 0).await;
}

#[tokio::test]
async fn a_rejection_is_fsynced_when_it_is_recorded() {
    let h = quiet_crash_harness();
    let wal = h.dir.path().join("outbox.db-wal");
    h.transport.set_default(outbox::Outcome::Rejected { code: "out_of_stock".into(), message: "none left".into() });
    let id = h.outbox.enqueue(EnqueueRequest::new("createOrder", r#"{"n":1}"#)).unwrap();
    h.outbox.set_online(true).unwrap();
    h.wait_state(&id, CommandState::Failed).await;
    // The server keeps no answer for a rejection under its key: were the `failed` mark lost,
    // a resend could be applied later. So that commit syncs (and everything before it).
    assert_eq!(unsynced_bytes(&wal), 0, "the rejection's commit was not fsynced");
}
