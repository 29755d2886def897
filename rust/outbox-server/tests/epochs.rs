//! Server epochs and feed resets, end to end: the real server on 127.0.0.1 (SQLite file
//! or PostgreSQL schema), real registers (the engine over SQLite files, HttpTransport).
//!
//! The restore is a real one. SQLite: the server is stopped, its database file is copied
//! (a cold backup), later the server is stopped again, the file replaced by that copy and
//! the server restarted on it. PostgreSQL: every table of the server's schema is copied
//! into a backup schema (`CREATE TABLE … AS TABLE …`, a logical backup of the rows as
//! `pg_dump --data-only` would take them), later the tables are truncated and refilled
//! from the copies and the `apply_log` sequence is set past the restored rows, as
//! `pg_restore` would, and the server restarted on the schema.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{CommandState, Config, DocStatus, EnqueueRequest, MutatorSpec, OpKind, Outbox, Query, RetryPolicy};
use serde_json::{json, Value};
use tempfile::TempDir;

const LONG: Duration = Duration::from_secs(60);

/// The answer to a pull with `cursor`: status and body.
async fn pull(s: &TestServer, cursor: &str) -> (u16, Value) {
    let resp = s.changes(ALICE, "ws-1", Some(cursor), 100).await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn test_a_cursor_past_the_head_gets_cursor_reset(b: Backend) {
    let s = b.start().await;
    // Seeded: two products, head 2. A cursor 1,000 past the head used to get
    // `200 {"changes": []}` and would have skipped positions 3..1002 for good.
    let epoch = s.server.storage().epoch().to_string();
    for cursor in [s.cursor(1002), "1002".to_string(), s.cursor(3)] {
        let (status, body) = pull(&s, &cursor).await;
        assert_eq!(status, 410, "{cursor}: {body}");
        assert_eq!(body["error"]["code"], "cursor_reset", "{body}");
        assert_eq!(body["reset"], json!({"epoch": epoch, "reason": "past_head", "cursor": s.cursor(0)}));
    }
    // At the head: an empty page, not a reset.
    let (status, body) = pull(&s, &s.cursor(2)).await;
    assert_eq!((status, &body["changes"], &body["cursor"]), (200, &json!([]), &json!(s.cursor(2))));
}

async fn test_a_cursor_from_another_epoch_gets_cursor_reset(b: Backend) {
    let s = b.start().await;
    // Another database: a fresh file, or a fresh schema.
    let other = match b {
        Backend::Sqlite => Backend::Sqlite,
        Backend::Postgres(_) => Backend::postgres().unwrap(),
    };
    let other = other.start().await;
    let (mine, theirs) = (s.server.storage().epoch().to_string(), other.server.storage().epoch().to_string());
    assert_ne!(mine, theirs, "two databases, two epochs");
    // Same position, other database: a reset, even though position 1 exists here.
    let (status, body) = pull(&s, &other.cursor(1)).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["reset"]["reason"], "other_epoch");
    assert_eq!(body["reset"]["epoch"], mine);
    // A cursor this server issued continues.
    let (status, body) = pull(&s, &s.cursor(1)).await;
    assert_eq!((status, body["changes"].as_array().unwrap().len()), (200, 1));
}

async fn test_plain_cursors_from_clients_before_epochs_continue(b: Backend) {
    let s = b.start().await;
    let (status, body) = pull(&s, "1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changes"][0]["id"], "gadget");
    assert_eq!(body["cursor"], s.cursor(2), "the answer moves the client to an epoch cursor");
    let (status, body) = pull(&s, "").await;
    assert_eq!((status, body["cursor"].clone()), (200, json!(s.cursor(2))));
}

async fn test_the_epoch_survives_restarts(b: Backend) {
    let s = b.start().await;
    let epoch = s.server.storage().epoch().to_string();
    assert_eq!(uuid_version(&epoch), Some('7'), "{epoch}");
    let addr = s.server.addr();
    let (backend, dir) = stop(s).await;
    let s = start_in(&backend, dir, |c| c.with_addr(addr)).await;
    assert_eq!(s.server.storage().epoch(), epoch);
    let (status, _) = pull(&s, &s.cursor(2)).await;
    assert_eq!(status, 200);
}

fn uuid_version(text: &str) -> Option<char> {
    text.split('-').nth(2).and_then(|g| g.chars().next())
}

/// A SQLite file written by a server before epochs (no `server_meta`) is upgraded in
/// place: its data stays, it gets an epoch, and its clients' plain cursors continue.
#[tokio::test]
async fn test_a_sqlite_file_from_before_epochs_is_upgraded_in_place() {
    let s = Backend::Sqlite.start().await;
    s.commands(vec![put("c1", "notes", "n1", json!({"a": 1}))]).await;
    let (backend, dir) = stop(s).await;
    let path = dir.path().join("server.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch("DROP TABLE server_meta").unwrap();
    let s = start_in(&backend, dir, |c| c).await;
    let epoch = s.server.storage().epoch().to_string();
    assert_eq!(uuid_version(&epoch), Some('7'));
    assert_eq!(s.doc("ws-1", "notes", "n1").await, Some(json!({"a": 1})));
    let (status, body) = pull(&s, "2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changes"][0]["id"], "n1");
    assert_eq!(body["cursor"], s.cursor(3));
}

// ---------------------------------------------------------------------------------------
// Stop, restore an older copy, restart.

/// Stops a server, keeping what it needs to start again on the same data.
async fn stop(s: TestServer) -> (Backend, TempDir) {
    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    (backend, dir)
}

enum Backup {
    /// A copy of the database file.
    Sqlite(TempDir),
    /// The name of a schema holding a copy of every table.
    Postgres(String),
}

async fn pg_client(pg: &outbox_server::storage::PostgresConfig) -> tokio_postgres::Client {
    let config: tokio_postgres::Config = pg.url.parse().unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn pg_tables(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Takes a backup of a stopped server's database.
async fn backup(backend: &Backend, dir: &TempDir) -> Backup {
    match backend {
        Backend::Sqlite => {
            let path = dir.path().join("server.db");
            // Stopped: fold the WAL into the file, so the file alone is the database.
            rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
            let copy = tempfile::tempdir().unwrap();
            std::fs::copy(&path, copy.path().join("server.db")).unwrap();
            Backup::Sqlite(copy)
        }
        Backend::Postgres(pg) => {
            let schema = pg.schema.clone().unwrap();
            let saved = format!("{schema}_bak");
            let client = pg_client(pg).await;
            client.batch_execute(&format!("CREATE SCHEMA {saved}")).await.unwrap();
            for t in pg_tables(&client, &schema).await {
                client.batch_execute(&format!("CREATE TABLE {saved}.{t} AS TABLE {schema}.{t}")).await.unwrap();
            }
            Backup::Postgres(saved)
        }
    }
}

/// Puts a backup back in place of a stopped server's database.
async fn restore(backend: &Backend, dir: &TempDir, backup: &Backup) {
    match (backend, backup) {
        (Backend::Sqlite, Backup::Sqlite(copy)) => {
            let path = dir.path().join("server.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            std::fs::copy(copy.path().join("server.db"), &path).unwrap();
        }
        (Backend::Postgres(pg), Backup::Postgres(saved)) => {
            let schema = pg.schema.clone().unwrap();
            let client = pg_client(pg).await;
            let tables = pg_tables(&client, &schema).await;
            let list: Vec<String> = tables.iter().map(|t| format!("{schema}.{t}")).collect();
            client.batch_execute(&format!("TRUNCATE {}", list.join(", "))).await.unwrap();
            for t in &tables {
                client.batch_execute(&format!("INSERT INTO {schema}.{t} SELECT * FROM {saved}.{t}")).await.unwrap();
            }
            client
                .batch_execute(&format!(
                    "SELECT setval(pg_get_serial_sequence('{schema}.apply_log', 'n'),
                                   COALESCE((SELECT max(n) FROM {schema}.apply_log), 0) + 1, false)"
                ))
                .await
                .unwrap();
        }
        _ => unreachable!("backup of another backend"),
    }
}

fn register(dir: &TempDir, name: &str, base_url: &str, token: &str, user: &str) -> Outbox {
    let transport = HttpTransport::new(
        HttpConfig::new(base_url, "ws-1").with_request_timeout(Duration::from_secs(5)),
        Arc::new(StaticToken::new(token)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join(name), user, "ws-1").with_transport(Arc::new(transport));
    config.retry = RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
        jitter: 0.2,
        max_attempts: 1000,
    };
    let ob = Outbox::open(config).unwrap();
    for m in ["put", "delete"] {
        ob.register_mutator(m, MutatorSpec::default()).unwrap();
    }
    ob
}

/// The server's live documents of ws-1: `(collection, id) -> (version, doc)`.
async fn server_docs(s: &TestServer) -> BTreeMap<(String, String), (i64, Value)> {
    let mut docs = BTreeMap::new();
    for c in s.server.storage().changes_after("ws-1", 0, 100_000).await.unwrap().changes {
        match c.doc {
            Some(doc) => docs.insert((c.collection, c.id), (c.version, doc)),
            None => docs.remove(&(c.collection, c.id)),
        };
    }
    docs
}

/// A register's documents, as the app reads them.
fn register_docs(ob: &Outbox) -> BTreeMap<(String, String), (Option<i64>, Value, DocStatus)> {
    let mut docs = BTreeMap::new();
    for collection in ["notes", "products"] {
        for d in ob.list(collection, &Query::all()).unwrap() {
            docs.insert((d.collection, d.id), (d.version, d.value, d.status));
        }
    }
    docs
}

/// Whether the register's synced state is the server's: every server document at the
/// server's version (and value, unless a pending change is on top), nothing else except
/// documents only pending changes create.
fn synced_matches(ob: &Outbox, server: &BTreeMap<(String, String), (i64, Value)>) -> bool {
    let mine = register_docs(ob);
    let same = server.iter().all(|(k, (version, doc))| {
        mine.get(k)
            .is_some_and(|(v, value, status)| *v == Some(*version) && (*status != DocStatus::Synced || value == doc))
    });
    same && mine.iter().all(|(k, (v, _, _))| server.contains_key(k) || v.is_none())
}

async fn converge(s: &TestServer, registers: &[&Outbox], what: &str) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let server = server_docs(s).await;
        if registers.iter().all(|ob| synced_matches(ob, &server)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "registers did not converge: {what}");
        for ob in registers {
            ob.sync_now().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every result a watch delivered, as `id -> value`.
type Deliveries = Arc<Mutex<Vec<BTreeMap<String, Value>>>>;

/// Every result a watch delivers on `notes`, until the task is aborted.
fn record(ob: &Outbox) -> (Deliveries, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut watch = ob.watch("notes", Query::all()).unwrap();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(docs)) = watch.next().await {
            out.lock().unwrap().push(docs.into_iter().map(|d| (d.id, d.value)).collect());
        }
    });
    (seen, task)
}

const NOTES: usize = 2_100;

async fn test_registers_converge_after_the_server_is_restored_from_a_backup(b: Backend) {
    let s = b.start().await;
    let addr: SocketAddr = s.server.addr();
    let url = s.server.base_url();
    // Enough documents that a rebuild takes three pages of 1,000.
    for i in 0..NOTES {
        s.server
            .seed_doc("ws-1", "notes", &format!("note-{i:04}"), &json!({"i": i, "era": "backed-up"}))
            .await
            .unwrap();
    }
    let devices = tempfile::tempdir().unwrap();
    let r1 = register(&devices, "r1.db", &url, ALICE, "alice");
    let r2 = register(&devices, "r2.db", &url, CAROL, "carol");
    converge(&s, &[&r1, &r2], "before the backup").await;

    // The backup, taken from the stopped server.
    let (backend, dir) = stop(s).await;
    let saved = backup(&backend, &dir).await;
    let epoch_before;
    let s = {
        let s = start_in(&backend, dir, |c| c.with_addr(addr)).await;
        epoch_before = s.server.storage().epoch().to_string();
        s
    };

    // What happens after the backup, and will be lost: new notes, an overwrite and a
    // delete from register 2, seen by both registers.
    let mut lost = Vec::new();
    for i in 0..3 {
        let args = json!({"collection": "notes", "id": format!("lost-{i}"), "doc": {"era": "lost"}});
        lost.push(
            r2.enqueue(EnqueueRequest::new("put", args.to_string()).op(
                "notes",
                format!("lost-{i}"),
                OpKind::Insert(json!({"era": "lost"})),
            ))
            .unwrap(),
        );
    }
    let args = json!({"collection": "notes", "id": "note-0005", "doc": {"i": 5, "era": "lost"}});
    lost.push(r2.enqueue(EnqueueRequest::new("put", args.to_string())).unwrap());
    let args = json!({"collection": "notes", "id": "note-0006"});
    lost.push(r2.enqueue(EnqueueRequest::new("delete", args.to_string())).unwrap());
    for id in &lost {
        tokio::time::timeout(LONG, r2.wait_for(id)).await.unwrap().unwrap();
        assert_eq!(r2.command(id).unwrap().state, CommandState::Succeeded);
    }
    converge(&s, &[&r1, &r2], "after the writes that will be lost").await;
    assert!(r1.get("notes", "lost-0").unwrap().is_some());
    assert!(r1.get("notes", "note-0006").unwrap().is_none());

    // The server goes down; register 1 keeps selling: two changes wait in its outbox.
    let (backend, dir) = stop(s).await;
    let new_note = json!({"era": "pending"});
    let p1 = r1
        .enqueue(
            EnqueueRequest::new("put", json!({"collection": "notes", "id": "pending-1", "doc": new_note}).to_string())
                .op("notes", "pending-1", OpKind::Insert(new_note.clone())),
        )
        .unwrap();
    let overwrite = json!({"i": 7, "era": "pending"});
    let p2 = r1
        .enqueue(
            EnqueueRequest::new("put", json!({"collection": "notes", "id": "note-0007", "doc": overwrite}).to_string())
                .op("notes", "note-0007", OpKind::Insert(overwrite.clone())),
        )
        .unwrap();

    // Restored from the backup and restarted. Commands are refused for now (503), so
    // register 1's changes stay pending while the registers rebuild from the feed.
    restore(&backend, &dir, &saved).await;
    let (w1, t1) = record(&r1);
    let (w2, t2) = record(&r2);
    let s = start_in(&backend, dir, |c| c.with_addr(addr).with_faults("503=1:1s").unwrap()).await;
    assert_eq!(s.server.storage().epoch(), epoch_before, "a restored database keeps its epoch");
    assert_eq!(s.server.storage().head_seq("ws-1").await.unwrap(), (2 + NOTES) as i64, "the head went back");
    converge(&s, &[&r1, &r2], "after the restore").await;
    for id in [&p1, &p2] {
        assert_ne!(r1.command(id).unwrap().state, CommandState::Succeeded, "stayed pending during the rebuild");
    }

    // The lost writes are gone from both registers, the restored state is back.
    for ob in [&r1, &r2] {
        assert!(ob.get("notes", "lost-0").unwrap().is_none());
        assert_eq!(ob.get("notes", "note-0006").unwrap().unwrap().version, Some(1));
        let n5 = ob.get("notes", "note-0005").unwrap().unwrap();
        assert_eq!((n5.version, n5.value["era"].as_str()), (Some(1), Some("backed-up")));
    }
    // Register 1's pending changes are still on top.
    assert_eq!(r1.get("notes", "pending-1").unwrap().unwrap().value, new_note);
    let n7 = r1.get("notes", "note-0007").unwrap().unwrap();
    assert_eq!((n7.value.clone(), n7.status), (overwrite.clone(), DocStatus::Pending));

    // No read ever saw an empty or half-built store, and register 1's pending changes were
    // in every result it delivered.
    t1.abort();
    t2.abort();
    for (name, seen) in [("r1", &w1), ("r2", &w2)] {
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty());
        for docs in seen.iter() {
            let backed_up = docs.values().filter(|v| v["era"] == "backed-up").count();
            assert!(backed_up >= NOTES - 3, "{name} delivered {} notes, {backed_up} from the backup", docs.len());
            if name == "r1" {
                assert_eq!(docs.get("pending-1"), Some(&new_note));
                assert_eq!(docs.get("note-0007"), Some(&overwrite));
            }
        }
    }

    // The server accepts commands again: register 1's changes apply, everything converges.
    s.clear_faults().await;
    for id in [&p1, &p2] {
        tokio::time::timeout(LONG, r1.wait_for(id)).await.unwrap().unwrap();
        assert_eq!(r1.command(id).unwrap().state, CommandState::Succeeded);
    }
    converge(&s, &[&r1, &r2], "after the pending changes applied").await;
    assert_eq!(s.doc("ws-1", "notes", "pending-1").await, Some(new_note.clone()));
    for ob in [&r1, &r2] {
        assert_eq!(ob.get("notes", "note-0007").unwrap().unwrap().value, overwrite);
        assert_eq!(ob.count("notes", &Query::all()).unwrap(), (NOTES + 1) as u64);
    }
    r1.close();
    r2.close();
}

backend_tests!(
    multi_thread;
    test_a_cursor_past_the_head_gets_cursor_reset,
    test_a_cursor_from_another_epoch_gets_cursor_reset,
    test_plain_cursors_from_clients_before_epochs_continue,
    test_the_epoch_survives_restarts,
    test_registers_converge_after_the_server_is_restored_from_a_backup,
);
