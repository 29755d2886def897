//! Opening databases: migrations from frozen fixtures, newer and corrupt files refused
//! untouched, unwritable paths, a full disk, and bad input that writes nothing.
mod common;

use std::path::Path;

use common::*;
use outbox::{CommandState, Config, EnqueueRequest, Error, MutatorSpec, OpKind, OpenError, Outbox, Settlement};
use serde_json::json;

fn schema(path: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

fn fixture_db(dir: &tempfile::TempDir, sql: &str) -> std::path::PathBuf {
    let path = dir.path().join("device.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    path
}

#[tokio::test]
async fn a_v1_database_with_queued_commands_upgrades_with_every_command_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_db(&dir, include_str!("fixtures/v1.sql"));
    let transport = std::sync::Arc::new(outbox::testing::ScriptedTransport::new());
    let mut config = Config::new(&path, "alice", "ws-1").with_transport(transport.clone());
    config.start_online = false;
    let ob = Outbox::open(config).unwrap();
    register_all(&ob);
    let all = ob.peek(&outbox::PeekFilter { limit: 100, ..Default::default() }).unwrap();
    assert_eq!(all.len(), 4);
    let by_seq = |s: i64| all.iter().find(|c| c.seq == s).unwrap();
    assert_eq!(by_seq(1).state, CommandState::Succeeded);
    assert_eq!(by_seq(2).args, r#"{"id":"o2","total":500}"#);
    assert_eq!(by_seq(2).attempts, 2);
    assert_eq!(by_seq(2).idempotency_key, "key-2");
    assert_eq!(by_seq(2).metadata, r#"{"trace_id":"t-2"}"#);
    assert_eq!(by_seq(2).keys, vec!["o2"]);
    assert_eq!(by_seq(4).keys, vec!["o2"]);
    assert_eq!(by_seq(1).keys, Vec::<String>::new(), "finished commands no longer hold keys");

    // The upgraded file has exactly the schema of a fresh one.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("fresh.db");
    drop(Outbox::open(Config::new(&fresh, "a", "w")).unwrap());
    assert_eq!(schema(&path), schema(&fresh));

    // And the queue drains in order: o2's lane (seq 2 then the interrupted seq 4), p1.
    ob.set_online(true).unwrap();
    for c in all.iter().filter(|c| c.state != CommandState::Succeeded) {
        tokio::time::timeout(WAIT, ob.wait_for(&c.id)).await.unwrap().unwrap();
    }
    let sent: Vec<String> = transport.calls().iter().map(|c| c.command.idempotency_key.clone()).collect();
    let pos = |k: &str| sent.iter().position(|s| s == k).unwrap();
    assert!(pos("key-2") < pos("key-4"));
    assert!(!sent.contains(&"key-1".to_string()));
}

#[tokio::test]
async fn a_v3_database_from_before_receipts_upgrades_with_its_queue_intact_and_then_keeps_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_db(&dir, include_str!("fixtures/v3.sql"));
    let transport = std::sync::Arc::new(outbox::testing::ScriptedTransport::new());
    let receipt = |n: i64| outbox::Receipt { server_seq: n, applied_at: Some(1_767_225_600_000 + n) };
    transport.set_handler(move |c| {
        let n = if c.idempotency_key == "v3-key-2" { 10 } else { 11 };
        Some(outbox::Outcome::Applied { result: json!({"n": n}), changes: vec![], receipt: Some(receipt(n)) })
    });
    let mut config = Config::new(&path, "alice", "ws-1").with_transport(transport.clone());
    config.start_online = false;
    let ob = Outbox::open(config).unwrap();
    register_all(&ob);
    assert_eq!(ob.schema_version().unwrap(), outbox::db::CURRENT_VERSION);

    // Every command is there as it was (the one in flight when the app died is resent once
    // this engine drains: it stays `in_flight` or is already back to `pending`).
    let all = ob.peek(&outbox::PeekFilter { limit: 100, ..Default::default() }).unwrap();
    assert_eq!(all.len(), 4);
    let by_seq = |s: i64| all.iter().find(|c| c.seq == s).unwrap().clone();
    let expect = [
        (1, CommandState::Succeeded, "v3-key-1", 1),
        (2, CommandState::InFlight, "v3-key-2", 1),
        (3, CommandState::Pending, "v3-key-3", 2),
        (4, CommandState::Failed, "v3-key-4", 1),
    ];
    for (seq, state, key, attempts) in expect {
        let c = by_seq(seq);
        let state_now = if c.state == CommandState::Pending && seq == 2 { CommandState::InFlight } else { c.state };
        assert_eq!((state_now, c.idempotency_key.as_str(), c.attempts), (state, key, attempts), "command {seq}");
        assert_eq!(c.receipt, None, "no receipt before this version");
    }
    assert_eq!(by_seq(2).args, r#"{"id":"o2","lines":[{"product_id":"widget","qty":2}]}"#);
    assert_eq!(by_seq(2).metadata, r#"{"trace_id":"t-2"}"#);
    assert_eq!(by_seq(2).keys, vec!["o2"]);
    assert_eq!(by_seq(3).keys, vec!["gadget"]);
    assert!(matches!(by_seq(1).settlement, Some(Settlement::Succeeded { ref result }) if result["total"] == 100));
    assert!(matches!(by_seq(4).settlement, Some(Settlement::Failed { ref code, .. }) if code == "insufficient_stock"));
    // The optimistic state survived with them.
    assert_eq!(ob.get("orders", "o2").unwrap().unwrap().value["total"], 200);
    assert_eq!(ob.get("products", "gadget").unwrap().unwrap().value["stock"], 4);

    // The upgraded file has exactly the schema of a fresh one.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("fresh.db");
    drop(Outbox::open(Config::new(&fresh, "a", "w")).unwrap());
    assert_eq!(schema(&path), schema(&fresh));

    // The queue drains under the same keys, and the answers' receipts are kept.
    ob.set_online(true).unwrap();
    for seq in [2, 3] {
        let c = by_seq(seq);
        tokio::time::timeout(WAIT, ob.wait_for(&c.id)).await.unwrap().unwrap();
        let n = if seq == 2 { 10 } else { 11 };
        assert_eq!(ob.command(&c.id).unwrap().receipt, Some(receipt(n)));
    }
    let sent: Vec<String> = transport.calls().iter().map(|c| c.command.idempotency_key.clone()).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.contains(&"v3-key-2".to_string()) && sent.contains(&"v3-key-3".to_string()));
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_left_byte_for_byte_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_db(&dir, "CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99;");
    let before = std::fs::read(&path).unwrap();
    match Outbox::open(Config::new(&path, "a", "w")) {
        Err(Error::Open(OpenError::NewerVersion { found: 99, supported })) => assert!(supported < 99),
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_corrupt_file_is_refused_and_left_byte_for_byte_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    match Outbox::open(Config::new(&path, "a", "w")) {
        Err(Error::Open(OpenError::Corrupt { .. })) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn an_unwritable_path_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    for path in [file.join("outbox.db"), dir.path().join("missing-folder").join("outbox.db")] {
        match Outbox::open(Config::new(&path, "a", "w")) {
            Err(Error::Open(OpenError::Unwritable { .. })) => {}
            other => panic!("expected Unwritable for {path:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_zero_concurrency_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::new(dir.path().join("o.db"), "a", "w");
    c.max_concurrency = 0;
    assert!(matches!(Outbox::open(c), Err(Error::Open(OpenError::InvalidConfig(_)))));
}

fn count(h: &Harness) -> i64 {
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    conn.query_row("SELECT (SELECT count(*) FROM commands) + (SELECT count(*) FROM pending_ops)", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_writes_nothing() {
    let h = Harness::offline();
    h.outbox.register_mutator("small", MutatorSpec { max_args_bytes: 64, ..Default::default() }).unwrap();
    type Check = fn(&Error) -> bool;
    let cases: Vec<(EnqueueRequest, Check)> = vec![
        (EnqueueRequest::new("nope", "{}"), |e| matches!(e, Error::UnknownMutator { name } if name == "nope")),
        (EnqueueRequest::new("note", "{\"id\": "), |e| matches!(e, Error::InvalidJson { field: "args", .. })),
        (EnqueueRequest::new("note", "{}").metadata("[1]"), |e| {
            matches!(e, Error::InvalidJson { field: "metadata", .. })
        }),
        (EnqueueRequest::new("note", "{}").metadata("{x"), |e| {
            matches!(e, Error::InvalidJson { field: "metadata", .. })
        }),
        (EnqueueRequest::new("small", format!(r#"{{"pad":"{}"}}"#, "x".repeat(100))), |e| {
            matches!(e, Error::ArgsTooLarge { limit: 64, .. })
        }),
        (EnqueueRequest::new("note", "{}").keys([""]), |e| matches!(e, Error::InvalidKey { .. })),
        (EnqueueRequest::new("note", "{}").keys(["k".repeat(300)]), |e| matches!(e, Error::InvalidKey { .. })),
        (EnqueueRequest::new("note", "{}").op("", "x", OpKind::Delete), |e| matches!(e, Error::InvalidRequest { .. })),
        (EnqueueRequest::new("note", "{}").op("c", "x", OpKind::Insert(json!(3))), |e| {
            matches!(e, Error::InvalidRequest { .. })
        }),
        (EnqueueRequest::new("note", "{}").after([outbox::CommandId::new()]), |e| {
            matches!(e, Error::UnknownCommand { .. })
        }),
    ];
    for (req, check) in cases {
        let err = h.outbox.enqueue(req.clone()).expect_err("bad input must be refused");
        assert!(check(&err), "unexpected error {err:?} for {req:?}");
        // Messages never echo the payload.
        assert!(!err.to_string().contains("xxxxxxxxxx"));
    }
    assert_eq!(count(&h), 0, "nothing was written");
    assert!(h
        .outbox
        .register_mutator("bad", MutatorSpec { key_pointers: vec!["id".into()], ..Default::default() })
        .is_err());
    assert!(h.outbox.enqueue(EnqueueRequest::new("bad", "{}")).is_err());
}

#[tokio::test]
async fn the_default_args_limit_is_256_kib() {
    let h = Harness::offline();
    let ok = format!(r#"{{"pad":"{}"}}"#, "x".repeat(256 * 1024 - 12));
    assert!(ok.len() <= 256 * 1024);
    h.outbox.enqueue(EnqueueRequest::new("note", ok)).unwrap();
    let too_big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(256 * 1024));
    assert!(matches!(h.outbox.enqueue(EnqueueRequest::new("note", too_big)), Err(Error::ArgsTooLarge { .. })));
}

#[tokio::test]
async fn a_full_disk_is_storage_full_and_keeps_everything_already_queued() {
    let h = Harness::with(|c| {
        c.start_online = false;
        c.max_size_bytes = Some(256 * 1024);
    });
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4000));
    let mut queued = Vec::new();
    let err = loop {
        match h.outbox.enqueue(EnqueueRequest::new("note", big.clone())) {
            Ok(id) => queued.push(id),
            Err(e) => break e,
        }
        assert!(queued.len() < 1000, "the size cap never hit");
    };
    assert!(matches!(err, Error::StorageFull), "got {err:?}");
    assert!(queued.len() > 10);
    // Every command committed before the disk filled is intact and still sendable.
    for id in &queued {
        assert_eq!(h.state(id), CommandState::Pending);
    }
    assert_eq!(h.outbox.status().unwrap().pending as usize, queued.len());
    // The file never passes the cap, and enqueue keeps failing while it is full.
    assert!(std::fs::metadata(h.db_path()).unwrap().len() <= 256 * 1024);
    assert!(matches!(h.outbox.enqueue(EnqueueRequest::new("note", big.clone())), Err(Error::StorageFull)));
    // The drain has a reserve of its own: once online, the full queue empties itself
    // (in-flight marks, attempts and settlements fit in it) ...
    h.outbox.set_online(true).unwrap();
    for id in &queued {
        let settled = tokio::time::timeout(WAIT, h.outbox.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    }
    assert_eq!(h.transport.applied_order().len(), queued.len(), "every queued command was sent once");
    // ... and prunes settled commands early (a few seconds after they settle), so
    // enqueue works again without a restart.
    let again = enqueue_once_there_is_room(&h, || EnqueueRequest::new("note", big.clone())).await;
    h.wait_state(&again, CommandState::Succeeded).await;
    assert!(std::fs::metadata(h.db_path()).unwrap().len() <= 256 * 1024);
}

/// Enqueues as soon as `StorageFull` stops refusing it (the drain prunes settled commands
/// a few seconds after they settle); fails if that takes longer than `3 * WAIT`.
async fn enqueue_once_there_is_room(h: &Harness, req: impl Fn() -> EnqueueRequest) -> outbox::CommandId {
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    loop {
        match h.outbox.enqueue(req()) {
            Ok(id) => return id,
            Err(Error::StorageFull) => {
                assert!(tokio::time::Instant::now() < deadline, "enqueue never worked again after the drain");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn the_same_path_in_one_process_gives_the_same_engine() {
    let dir = tempfile::tempdir().unwrap();
    let a = Outbox::open(Config::new(dir.path().join("o.db"), "a", "w")).unwrap();
    let b = Outbox::open(Config::new(dir.path().join(".").join("o.db"), "a", "w")).unwrap();
    a.register_mutator("note", MutatorSpec::default()).unwrap();
    // b sees a's registration: they are one engine.
    b.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    assert_eq!(a.path(), b.path());
    a.close();
    assert!(matches!(b.status(), Err(Error::Closed)));
    // After close the path can be opened afresh.
    let c = Outbox::open(Config::new(dir.path().join("o.db"), "a", "w")).unwrap();
    assert_eq!(c.status().unwrap().pending, 1);
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_fails_enqueue_with_busy_after_the_timeout() {
    let h = Harness::offline();
    // Another process frozen inside a write transaction holds the lock like this.
    let other = rusqlite::Connection::open(h.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, outbox::Error::Busy), "{err:?}");
    assert!(waited >= outbox::db::BUSY_TIMEOUT - std::time::Duration::from_millis(100), "{waited:?}");
    assert!(waited < outbox::db::BUSY_TIMEOUT + std::time::Duration::from_secs(2), "{waited:?}");
    // Nothing was written, and once the lock is free the same call works.
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(h.outbox.status().unwrap().pending, 0);
    h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
}

#[tokio::test]
async fn on_background_leaves_no_transaction_open_and_checkpoints() {
    let h = Harness::offline();
    for i in 0..20 {
        h.outbox.enqueue(EnqueueRequest::new("note", format!("{{\"i\":{i}}}"))).unwrap();
    }
    h.outbox.on_background().unwrap();
    let other = rusqlite::Connection::open(h.db_path()).unwrap();
    other.busy_timeout(std::time::Duration::ZERO).unwrap();
    other.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").unwrap();
    // The passive checkpoint copied the WAL into the database file.
    let (busy, log, done): (i64, i64, i64) =
        other.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!((busy, log), (0, done), "after on_background every WAL frame is checkpointed");
}

/// The server's version of the document a `put` carries.
fn put_change(args: &serde_json::Value) -> Option<outbox::DocChange> {
    let id = args.get("id")?.as_str()?.to_string();
    Some(outbox::DocChange { collection: "docs".into(), id, version: 1, doc: Some(args.get("doc")?.clone()) })
}

/// The server answers each `put` with its version of the document (as large as the one
/// sent), as the reference server does.
fn echo_documents(h: &Harness) {
    h.transport.set_handler(move |cmd| {
        let change = put_change(&cmd.args)?;
        Some(outbox::Outcome::Applied { result: json!({}), changes: vec![change], receipt: None })
    });
}

/// Fills a capped database with `put`s of 4 KB documents (with an optimistic op on the
/// document, or without: then the server's version is new to the store), drains it with
/// every answer settling in one pass, and checks enqueue works again.
async fn drain_a_full_queue_of_large_documents(with_ops: bool) {
    // Every settlement stores the server's version of a 4 KB document: far more, summed
    // over the queue, than the drain's reserve. Settling must still fit, however the
    // answers arrive.
    let h = Harness::with(|c| {
        c.start_online = false;
        c.max_size_bytes = Some(512 * 1024);
        c.max_batch_size = 100;
    });
    echo_documents(&h);
    let args = |i: usize| json!({ "id": format!("d{i}"), "doc": { "pad": "x".repeat(4000), "n": i } });
    let put = |i: usize| {
        let args = args(i);
        let put = EnqueueRequest::new("put", args.to_string());
        if with_ops {
            put.op("docs", format!("d{i}"), OpKind::Insert(args["doc"].clone()))
        } else {
            put
        }
    };
    let mut queued = Vec::new();
    let err = loop {
        match h.outbox.enqueue(put(queued.len())) {
            Ok(id) => queued.push(id),
            Err(e) => break e,
        }
        assert!(queued.len() < 1000, "the size cap never hit");
    };
    assert!(matches!(err, Error::StorageFull), "got {err:?}");
    assert!(queued.len() > 20, "only {} queued", queued.len());
    // The server's change feed will hold them all too (a pull brings them again).
    h.transport.push_changes((0..queued.len()).filter_map(|i| put_change(&args(i))));
    h.transport.hold();
    h.outbox.set_online(true).unwrap();
    // Every send is on the wire before any answer comes back: they all settle together.
    h.wait_until("every command in flight", |h| h.outbox.status().unwrap().in_flight as usize == queued.len()).await;
    h.transport.release();
    for id in &queued {
        let settled = tokio::time::timeout(WAIT, h.outbox.wait_for(id)).await;
        let settled = settled.unwrap_or_else(|_| panic!("not settled in time: {:?}", h.outbox.status())).unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    }
    assert_eq!(h.transport.applied_order().len(), queued.len(), "every queued command was applied once");
    h.transport.push_changes(put_change(&args(10_000)));
    let again = enqueue_once_there_is_room(&h, || put(10_000)).await;
    h.wait_state(&again, CommandState::Succeeded).await;
    // Every server version reaches the store, through the answers or the pulls that
    // followed them once pruning made room: all of them when they replace optimistic ops
    // (they reuse the ops' room); without ops, 4 KB documents take two pages each and
    // they do not all fit in what pulls may fill (90% of the app's share), so the pull
    // stops and says so.
    let all = queued.len() as u64 + 1;
    h.wait_until("every document in the store, or as many as pulls may keep", |h| {
        let held = h.outbox.count("docs", &Default::default()).unwrap();
        let pull_stopped =
            h.outbox.status().unwrap().last_error.is_some_and(|e| e.contains("pull failed: storage is full"));
        held == all || (!with_ops && pull_stopped && held > 0)
    })
    .await;
    // Pulled documents cannot be pruned: whatever they filled, a sale still fits.
    h.transport.push_changes(put_change(&args(10_001)));
    let next = h.outbox.enqueue(put(10_001)).expect("a sale was refused after the pull filled the store");
    h.wait_state(&next, CommandState::Succeeded).await;
    assert!(std::fs::metadata(h.db_path()).unwrap().len() <= 512 * 1024);
}

#[tokio::test]
async fn a_full_queue_whose_answers_bring_large_new_documents_drains_and_enqueue_works_again() {
    drain_a_full_queue_of_large_documents(false).await;
}

#[tokio::test]
async fn a_full_queue_whose_answers_replace_large_optimistic_documents_drains_and_enqueue_works_again() {
    drain_a_full_queue_of_large_documents(true).await;
}
