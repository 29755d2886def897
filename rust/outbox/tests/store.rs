//! The local store: merged reads, statuses, sync-down, hand-off without flicker,
//! subscriptions, conflicts, scope and wipe.
mod common;

use std::time::Duration;

use common::*;
use outbox::{
    CommandState, Config, DocChange, DocStatus, EnqueueRequest, Error, Event, MutatorSpec, OpKind, OpenError, Outbox,
    Outcome, PullOutcome, Query, Resolution,
};
use serde_json::{json, Value};

fn change(collection: &str, id: &str, version: i64, doc: Value) -> DocChange {
    DocChange { collection: collection.into(), id: id.into(), version, doc: Some(doc) }
}

/// Seeds the server feed and waits until the engine has applied all of it (the cursor is
/// written in the same transaction as the documents).
async fn seed(h: &Harness, changes: Vec<DocChange>) {
    h.transport.push_changes(changes);
    let fed = h.transport.feed_len().to_string();
    h.transport.nudge();
    let path = h.db_path();
    h.wait_until("the feed to be applied", |_| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let cursor: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'pull_cursor'", [], |r| r.get(0)).ok();
        cursor.as_deref() == Some(fed.as_str())
    })
    .await;
}

fn catalog(n: usize) -> Vec<DocChange> {
    (0..n)
        .map(|i| {
            change(
                "products",
                &format!("p{i:03}"),
                1,
                json!({"name": format!("item {i}"), "stock": 10, "aisle": i % 3}),
            )
        })
        .collect()
}

#[tokio::test]
async fn pull_brings_documents_in_pages_from_a_persisted_cursor() {
    let h = Harness::new();
    seed(&h, catalog(1200)).await; // 3 pages of 500
    assert_eq!(h.outbox.count("products", &Query::all()).unwrap(), 1200);
    let pulls = h.transport.pull_count();
    assert!(pulls >= 3);
    let p = h.outbox.get("products", "p007").unwrap().unwrap();
    assert_eq!(p.value["stock"], 10);
    assert_eq!(p.version, Some(1));
    assert_eq!(p.status, DocStatus::Synced);
    let synced = h.outbox.last_synced_at().unwrap();
    assert!(synced.contains_key("*") && synced.contains_key("products"));
    // A reopened engine continues from the cursor: only the new change is fetched.
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    h.transport.push_changes(vec![change("products", "p007", 2, json!({"name": "item 7", "stock": 4, "aisle": 1}))]);
    let ob = Outbox::open(config).unwrap();
    h.transport.nudge();
    h.wait_until("the new change", |_| ob.get("products", "p007").unwrap().unwrap().value["stock"] == 4).await;
    assert_eq!(ob.count("products", &Query::all()).unwrap(), 1200);
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_one() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 5, json!({"stock": 5}))]).await;
    seed(&h, vec![change("products", "p1", 3, json!({"stock": 99}))]).await;
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!((p.version, p.value["stock"].as_i64()), (Some(5), Some(5)));
    seed(&h, vec![DocChange { collection: "products".into(), id: "p1".into(), version: 6, doc: None }]).await;
    assert_eq!(h.outbox.get("products", "p1").unwrap(), None, "a delete from the server removes it");
}

#[tokio::test]
async fn reads_apply_pending_ops_in_enqueue_order_with_status_and_commands() {
    let h = Harness::offline();
    h.transport.push_changes(vec![change("products", "p1", 1, json!({"name": "tea", "stock": 10, "price": 300}))]);
    h.outbox.set_online(true).unwrap();
    h.wait_until("pulled", |h| h.outbox.get("products", "p1").unwrap().is_some()).await;
    h.outbox.set_online(false).unwrap();
    let a = h
        .outbox
        .enqueue(EnqueueRequest::new("adjustStock", r#"{"product_id":"p1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"stock": 9})),
        ))
        .unwrap();
    let b = h
        .outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"stock": 8, "price": null})),
        ))
        .unwrap();
    let c = h
        .outbox
        .enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#).op(
            "orders",
            "o1",
            OpKind::Insert(json!({"total": 300})),
        ))
        .unwrap();
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!(p.value, json!({"name": "tea", "stock": 8}));
    assert_eq!(p.status, DocStatus::Pending);
    assert_eq!(p.commands, vec![a, b]);
    assert_eq!(p.version, Some(1));
    let o = h.outbox.get("orders", "o1").unwrap().unwrap();
    assert_eq!((o.status, o.version, o.commands.clone()), (DocStatus::Pending, None, vec![c]));
    // A pending delete hides the document.
    h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"o1"}"#).op("orders", "o1", OpKind::Delete)).unwrap();
    assert_eq!(h.outbox.get("orders", "o1").unwrap(), None);
    assert_eq!(h.outbox.count("orders", &Query::all()).unwrap(), 0);
}

#[tokio::test]
async fn list_filters_sorts_and_pages_across_synced_and_local_documents() {
    let h = Harness::offline();
    h.transport.push_changes(catalog(30));
    h.outbox.set_online(true).unwrap();
    h.wait_until("pulled", |h| h.outbox.count("products", &Query::all()).unwrap() == 30).await;
    h.outbox.set_online(false).unwrap();
    h.outbox.create_index("products", "stock").unwrap();
    // Local changes: p005 sells out, a new product appears, p010 is deleted.
    h.outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p005"}"#).op(
            "products",
            "p005",
            OpKind::Patch(json!({"stock": 0})),
        ))
        .unwrap();
    h.outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p999"}"#).op(
            "products",
            "p999",
            OpKind::Insert(json!({"name": "new", "stock": 3, "aisle": 0})),
        ))
        .unwrap();
    h.outbox.enqueue(EnqueueRequest::new("put", r#"{"id":"p010"}"#).op("products", "p010", OpKind::Delete)).unwrap();

    let by_stock = h.outbox.list("products", &Query::all().order_by("stock", false).page(0, 3)).unwrap();
    let ids: Vec<&str> = by_stock.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["p005", "p999", "p000"]);
    assert_eq!(by_stock[0].status, DocStatus::Pending);
    assert_eq!(by_stock[2].status, DocStatus::Synced);

    let aisle0 = Query::all().filter("aisle", 0);
    assert_eq!(h.outbox.count("products", &aisle0).unwrap(), 10 + 1);
    let page2 = h.outbox.list("products", &aisle0.clone().page(5, 5)).unwrap();
    assert_eq!(page2.len(), 5);
    let all_aisle0 = h.outbox.list("products", &aisle0).unwrap();
    assert_eq!(all_aisle0.len(), 11);
    assert_eq!(page2, all_aisle0[5..10].to_vec(), "pages are slices of the whole ordered result");
    let desc = h.outbox.list("products", &Query::all().order_by("stock", true).page(0, 1)).unwrap();
    assert_eq!(desc[0].value["stock"], 10);
    assert!(h.outbox.list("products", &Query::all()).unwrap().iter().all(|d| d.id != "p010"));
    assert_eq!(h.outbox.count("products", &Query::all()).unwrap(), 30);
    assert_eq!(h.outbox.count("products", &Query::all().filter("name", "new")).unwrap(), 1);
    // Bad field names are refused (they never reach SQL).
    assert!(matches!(
        h.outbox.list("products", &Query::all().order_by("x'); DROP", false)),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(h.outbox.create_index("products", "a.b"), Err(Error::InvalidRequest { .. })));
}

#[tokio::test]
async fn applied_commands_hand_over_to_the_server_version_without_flicker() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 1, json!({"stock": 10}))]).await;
    let mut watch = h.outbox.watch("products", Query::all()).unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first[0].value["stock"], 10);
    // The server answers with its new version of the document.
    h.transport.set_handler(|c| {
        (c.mutator == "adjustStock").then(|| Outcome::Applied {
            result: json!({}),
            changes: vec![change("products", "p1", 2, json!({"stock": 9}))],
            receipt: None,
        })
    });
    let id = h
        .outbox
        .enqueue(EnqueueRequest::new("adjustStock", r#"{"product_id":"p1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"stock": 9})),
        ))
        .unwrap();
    // Every value the subscriber ever sees is 10 then 9: never back to 10.
    let mut seen = Vec::new();
    loop {
        let docs = tokio::time::timeout(WAIT, watch.next()).await.unwrap().unwrap().unwrap();
        seen.push((docs[0].value["stock"].as_i64().unwrap(), docs[0].status));
        if docs[0].status == DocStatus::Synced && docs[0].version == Some(2) {
            break;
        }
    }
    assert!(seen.iter().all(|(stock, _)| *stock == 9), "saw {seen:?}");
    assert_eq!(h.state(&id), CommandState::Succeeded);
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!((p.version, p.status, p.commands.len()), (Some(2), DocStatus::Synced, 0));
}

#[tokio::test]
async fn an_applied_command_without_changes_keeps_its_overlay_until_a_pull_brings_the_version() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 1, json!({"stock": 10}))]).await;
    // The server applies but answers without documents, and its feed lags at first.
    h.transport.fail_pulls(Some(PullOutcome::Offline));
    let id = h
        .outbox
        .enqueue(EnqueueRequest::new("adjustStock", r#"{"product_id":"p1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"stock": 9})),
        ))
        .unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!(p.value["stock"], 9, "the acknowledged change stays visible");
    assert_eq!(p.status, DocStatus::Synced, "the server has it; nothing is pending");
    // The feed catches up: the server's version replaces the overlay.
    h.transport.fail_pulls(None);
    seed(&h, vec![change("products", "p1", 2, json!({"stock": 9}))]).await;
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    let ops: i64 = conn.query_row("SELECT count(*) FROM pending_ops", [], |r| r.get(0)).unwrap();
    assert_eq!(ops, 0, "the overlay was retired by the pull");
    assert_eq!(h.outbox.get("products", "p1").unwrap().unwrap().version, Some(2));
}

#[tokio::test]
async fn a_rejected_change_rolls_back_to_the_synced_value_and_says_why() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 1, json!({"stock": 1}))]).await;
    h.transport.respond_to_mutator(
        "createOrder",
        [Outcome::Rejected { code: "insufficient_stock".into(), message: "0 left".into() }],
    );
    let mut events = h.outbox.subscribe().unwrap();
    let id = h
        .outbox
        .enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"stock": -1})),
        ))
        .unwrap();
    let e = expect_event(&mut events, "rolled back", |e| matches!(e, Event::RolledBack { .. })).await;
    assert!(matches!(e, Event::RolledBack { id: x, ref code, .. } if x == id && code == "insufficient_stock"));
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!(p.value["stock"], 1);
    assert_eq!(p.status, DocStatus::Failed);
    assert_eq!(p.commands, vec![id]);
    h.outbox.discard(&id).unwrap();
    assert_eq!(h.outbox.get("products", "p1").unwrap().unwrap().status, DocStatus::Synced);
}

#[tokio::test]
async fn a_conflict_shows_the_server_version_under_the_local_change_until_resolved() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 1, json!({"price": 100}))]).await;
    h.transport.respond_to_mutator(
        "put",
        [
            Outcome::Conflict {
                server_snapshot: json!({"collection": "products", "id": "p1", "version": 4, "doc": {"price": 150}}),
            },
            Outcome::Applied {
                result: json!({}),
                changes: vec![change("products", "p1", 5, json!({"price": 160}))],
                receipt: None,
            },
        ],
    );
    let id = h
        .outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p1"}"#).op(
            "products",
            "p1",
            OpKind::Patch(json!({"price": 120})),
        ))
        .unwrap();
    h.wait_state(&id, CommandState::Conflict).await;
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!((p.status, p.version, p.value["price"].as_i64()), (DocStatus::Conflict, Some(4), Some(120)));
    h.outbox.resolve_conflict(&id, Resolution::RetryWith(r#"{"id":"p1","price":160}"#.into())).unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!((p.status, p.version, p.value["price"].as_i64()), (DocStatus::Synced, Some(5), Some(160)));

    // Resolving by discard shows the server's version at once. (Scripted before the
    // enqueue: the engine is online and may send it at once.)
    h.transport.respond_to_mutator(
        "put",
        [Outcome::Conflict {
            server_snapshot: json!({"collection": "products", "id": "p1", "version": 6, "doc": {"price": 170}}),
        }],
    );
    let id2 = h
        .outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"p1"}"#).op("products", "p1", OpKind::Patch(json!({"price": 1}))))
        .unwrap();
    h.wait_state(&id2, CommandState::Conflict).await;
    h.outbox.resolve_conflict(&id2, Resolution::Discard).unwrap();
    let p = h.outbox.get("products", "p1").unwrap().unwrap();
    assert_eq!((p.status, p.version, p.value["price"].as_i64()), (DocStatus::Synced, Some(6), Some(170)));
}

#[tokio::test]
async fn query_watch_coalesces_bursts_and_skips_unchanged_results() {
    let h = Harness::offline();
    let mut watch = h.outbox.watch("orders", Query::all().filter("open", true)).unwrap();
    assert_eq!(watch.next().await.unwrap().unwrap().len(), 0);
    for i in 0..50 {
        h.outbox
            .enqueue(EnqueueRequest::new("createOrder", format!(r#"{{"id":"o{i}"}}"#)).op(
                "orders",
                format!("o{i}"),
                OpKind::Insert(json!({"open": true})),
            ))
            .unwrap();
    }
    let mut deliveries = 0;
    let mut last = 0;
    while last < 50 {
        last = tokio::time::timeout(WAIT, watch.next()).await.unwrap().unwrap().unwrap().len();
        deliveries += 1;
    }
    assert!(deliveries < 50, "50 enqueues coalesced into {deliveries} deliveries");
    // A change to another collection or outside the filter does not wake the watcher.
    h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"x"}"#).op("notes", "x", OpKind::Insert(json!({})))).unwrap();
    h.outbox
        .enqueue(EnqueueRequest::new("note", r#"{"id":"z"}"#).op("orders", "z", OpKind::Insert(json!({"open": false}))))
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(150), watch.next()).await.is_err());
    h.outbox.close();
    assert!(tokio::time::timeout(WAIT, watch.next()).await.unwrap().is_none(), "closing ends the watch");
}

#[tokio::test]
async fn each_trigger_pulls_open_online_foreground_drain_and_nudge() {
    let h = Harness::offline();
    assert_eq!(h.transport.pull_count(), 0, "offline: no pull");
    let mut n = h.transport.pull_count();
    let bump = |h: &Harness, n: &mut usize, what: &str| {
        let now = h.transport.pull_count();
        assert!(now > *n, "{what} did not pull");
        *n = now;
    };
    h.outbox.set_online(true).unwrap();
    h.wait_until("pull on online", |h| h.transport.pull_count() > n).await;
    bump(&h, &mut n, "online");
    h.outbox.on_foreground().unwrap();
    h.wait_until("pull on foreground", |h| h.transport.pull_count() > n).await;
    bump(&h, &mut n, "foreground");
    h.transport.nudge();
    h.wait_until("pull on nudge", |h| h.transport.pull_count() > n).await;
    bump(&h, &mut n, "nudge");
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.wait_state(&id, CommandState::Succeeded).await;
    h.wait_until("pull after drain", |h| h.transport.pull_count() > n).await;
    bump(&h, &mut n, "drain");
    // Open: a new engine pulls at start.
    let config = common::config(&h.dir, &h.transport);
    h.outbox.close();
    let _ob = Outbox::open(config).unwrap();
    h.wait_until("pull on open", |h| h.transport.pull_count() > n).await;
}

#[tokio::test]
async fn reads_never_wait_for_the_network() {
    let h = Harness::new();
    seed(&h, vec![change("products", "p1", 1, json!({"stock": 3}))]).await;
    h.transport.hold();
    h.transport.fail_pulls(Some(PullOutcome::Offline));
    h.outbox.enqueue(EnqueueRequest::new("note", r#"{"id":"n"}"#)).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        assert_eq!(h.outbox.get("products", "p1").unwrap().unwrap().value["stock"], 3);
    }
    // 100 reads while a send hangs and the feed is down: served locally (generous bound).
    assert!(started.elapsed() < Duration::from_secs(2));
    h.transport.release();
}

#[tokio::test]
async fn wipe_refuses_unsent_commands_unless_forced_and_then_clears_everything() {
    let h = Harness::offline();
    h.outbox
        .enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1"}"#).op("orders", "o1", OpKind::Insert(json!({}))))
        .unwrap();
    assert!(matches!(h.outbox.wipe(false), Err(Error::UnsentCommands { count: 1 })));
    assert_eq!(h.outbox.status().unwrap().pending, 1, "nothing was dropped");
    assert_eq!(h.outbox.wipe(true).unwrap(), 1, "reports the dropped command");
    assert_eq!(h.outbox.status().unwrap().pending, 0);
    assert_eq!(h.outbox.get("orders", "o1").unwrap(), None);
    // With nothing unsent, wipe needs no force.
    assert_eq!(h.outbox.wipe(false).unwrap(), 0);
}

#[test]
fn delete_database_refuses_unsent_commands_then_removes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logout.db");
    let ob = Outbox::open(Config::new(&path, "alice", "ws-1")).unwrap();
    ob.register_mutator("note", MutatorSpec::default()).unwrap();
    ob.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap();
    assert!(matches!(ob.delete_database(false), Err(Error::UnsentCommands { count: 1 })));
    assert!(path.exists(), "refused: the file stays");
    assert_eq!(ob.status().unwrap().pending, 1, "refused: nothing dropped");
    assert_eq!(ob.delete_database(true).unwrap(), 1);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "database, WAL and SHM are gone: {left:?}");
    assert!(matches!(ob.status(), Err(Error::Closed)));
    // The user can sign in again: a fresh database at the same path.
    let again = Outbox::open(Config::new(&path, "alice", "ws-1")).unwrap();
    assert_eq!(again.status().unwrap().pending, 0);
}

#[test]
fn a_database_belongs_to_one_user_and_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    Outbox::open(Config::new(&path, "alice", "ws-1")).unwrap().close();
    match Outbox::open(Config::new(&path, "bob", "ws-1")) {
        Err(Error::Open(OpenError::ScopeMismatch { .. })) => {}
        other => panic!("expected ScopeMismatch, got {other:?}"),
    }
    assert!(matches!(
        Outbox::open(Config::new(&path, "alice", "ws-2")),
        Err(Error::Open(OpenError::ScopeMismatch { .. }))
    ));
    Outbox::open(Config::new(&path, "alice", "ws-1")).unwrap();
}
