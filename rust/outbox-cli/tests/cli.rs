//! The `outbox` binary against real database files.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use outbox::testing::ScriptedTransport;
use outbox::{CommandId, CommandState, Config, EnqueueRequest, MutatorSpec, Outbox, Outcome, PeekFilter, RetryPolicy};

fn outbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outbox")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A device database with one command in each interesting state; the engine is closed
/// (as when the file was pulled from a phone).
async fn device_db(dir: &Path) -> (std::path::PathBuf, CommandId, CommandId, CommandId) {
    let path = dir.join("device.db");
    let transport = Arc::new(ScriptedTransport::new());
    transport.respond_to_mutator("createOrder", [Outcome::retry("HTTP 503")]);
    transport.respond_to_mutator(
        "voidOrder",
        [Outcome::Rejected { code: "not_found".into(), message: "no such order".into() }],
    );
    let mut config = Config::new(&path, "alice", "ws-1").with_transport(transport.clone());
    config.retry =
        RetryPolicy { base: Duration::from_millis(2), cap: Duration::from_millis(5), jitter: 0.0, max_attempts: 2 };
    let ob = Outbox::open(config).unwrap();
    for m in ["createOrder", "voidOrder", "note"] {
        ob.register_mutator(m, MutatorSpec::default()).unwrap();
    }
    let wedged = ob.enqueue(EnqueueRequest::new("createOrder", r#"{"id":"o1","total":1250}"#)).unwrap();
    let failed = ob.enqueue(EnqueueRequest::new("voidOrder", r#"{"id":"o9"}"#)).unwrap();
    let done = ob.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap();
    for id in [wedged, failed, done] {
        tokio::time::timeout(Duration::from_secs(10), ob.wait_for(&id)).await.unwrap().unwrap();
    }
    ob.set_online(false).unwrap();
    ob.enqueue(EnqueueRequest::new("note", r#"{"id":"n2"}"#)).unwrap();
    ob.close();
    (path, wedged, failed, done)
}

#[tokio::test]
async fn status_list_and_show_describe_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wedged, failed, _) = device_db(dir.path()).await;
    let db = db.to_str().unwrap();

    let o = outbox(&["status", db]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    for line in
        ["pending     1", "wedged      1", "failed      1", "succeeded   1", "scope       user alice, workspace ws-1"]
    {
        assert!(s.contains(line), "missing `{line}` in:\n{s}");
    }
    // Queue health: the succeeded command's send, the device's last pull, and storage.
    assert!(s.contains("last sent   ") && !s.contains("last sent   never"), "{s}");
    assert!(s.contains("last pull   ") && !s.contains("last pull   never"), "{s}");
    assert!(s.contains("storage     ") && s.contains(" KiB used"), "{s}");

    let o = outbox(&["list", db, "--state", "wedged", "--state", "failed"]);
    let s = stdout(&o);
    assert!(s.contains(&wedged.to_string()) && s.contains(&failed.to_string()), "{s}");
    assert!(s.contains("2 commands"));
    assert!(stdout(&outbox(&["list", db, "--key", "o1"])).contains("1 commands"));
    let bad = outbox(&["list", db, "--state", "nope"]);
    assert_eq!(bad.status.code(), Some(2));

    let o = outbox(&["show", db, &wedged.to_string()]);
    let s = stdout(&o);
    assert!(s.contains("state            wedged"), "{s}");
    assert!(s.contains(r#"args             {"id":"o1","total":1250}"#), "{s}");
    assert!(s.contains("#1") && s.contains("#2") && s.contains("HTTP 503"), "history missing:\n{s}");
    let o = outbox(&["show", db, &failed.to_string()]);
    assert!(stdout(&o).contains("not_found: no such order"));
    let o = outbox(&["show", db, "019a0000-0000-7000-8000-000000000009"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("no command"));
}

#[tokio::test]
async fn retry_and_discard_change_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wedged, failed, done) = device_db(dir.path()).await;
    let path = db.to_str().unwrap();
    assert!(outbox(&["retry", path, &wedged.to_string()]).status.success());
    assert!(outbox(&["discard", path, &failed.to_string()]).status.success());
    let o = outbox(&["discard", path, &done.to_string()]);
    assert_eq!(o.status.code(), Some(4), "a succeeded command cannot be discarded");
    let ob = Outbox::inspect(&db).unwrap();
    assert_eq!(ob.command(&wedged).unwrap().state, CommandState::Pending);
    assert_eq!(ob.command(&wedged).unwrap().attempts, 0);
    assert_eq!(ob.command(&failed).unwrap().state, CommandState::Discarded);
}

#[tokio::test]
async fn export_writes_every_command_with_its_history_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wedged, ..) = device_db(dir.path()).await;
    let o = outbox(&["export", db.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema_version"], outbox::db::CURRENT_VERSION);
    assert_eq!(v["scope"]["user_id"], "alice");
    assert_eq!(v["commands"].as_array().unwrap().len(), 4);
    let w = v["commands"].as_array().unwrap().iter().find(|c| c["id"] == wedged.to_string()).unwrap();
    assert_eq!(w["state"], "wedged");
    assert_eq!(w["args"]["total"], 1250);
    assert_eq!(w["history"].as_array().unwrap().len(), 2);
    assert_eq!(outbox(&["export", db.to_str().unwrap()]).status.code(), Some(2));
}

#[tokio::test]
async fn modifications_refuse_while_another_process_drains_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wedged, failed, _) = device_db(dir.path()).await;
    // The app is running: an engine with a transport, online, holding the lease.
    let transport = Arc::new(ScriptedTransport::new());
    transport.hold();
    let mut config = Config::new(&db, "alice", "ws-1").with_transport(transport.clone());
    config.lease_ttl = Duration::from_secs(30);
    let app = Outbox::open(config).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !app.status().unwrap().is_drainer {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let path = db.to_str().unwrap();
    let o = outbox(&["discard", path, &failed.to_string()]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(app.command(&failed).unwrap().state, CommandState::Failed, "nothing changed");
    // Reading is always allowed.
    assert!(outbox(&["status", path]).status.success());
    assert!(outbox(&["discard", path, &failed.to_string(), "--force"]).status.success());
    assert_eq!(app.command(&failed).unwrap().state, CommandState::Discarded);
    let _ = wedged;
    transport.release();
}

#[test]
fn newer_and_corrupt_databases_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    Outbox::open(Config::new(&newer, "a", "w")).unwrap().close();
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    // Into the main file now: a connection of this test process that closes later would
    // otherwise checkpoint it there while the CLI runs.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(conn);
    let before = std::fs::read(&newer).unwrap();
    let o = outbox(&["discard", newer.to_str().unwrap(), "019a0000-0000-7000-8000-000000000001", "--force"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("newer"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&newer).unwrap(), before);

    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, vec![0x42u8; 4096]).unwrap();
    let o = outbox(&["status", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&corrupt).unwrap(), vec![0x42u8; 4096]);

    let o = outbox(&["status", dir.path().join("missing.db").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(!dir.path().join("missing.db").exists(), "status never creates a database");
}

#[tokio::test]
async fn show_and_export_print_the_receipt_of_a_succeeded_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    let transport = Arc::new(ScriptedTransport::new());
    let receipt = outbox::Receipt { server_seq: 42, applied_at: Some(1_767_225_600_000) };
    transport.respond_to_mutator(
        "note",
        [Outcome::Applied { result: serde_json::json!({"ok": true}), changes: vec![], receipt: Some(receipt) }],
    );
    let ob = Outbox::open(Config::new(&path, "alice", "ws-1").with_transport(transport.clone())).unwrap();
    ob.register_mutator("note", MutatorSpec::default()).unwrap();
    let done = ob.enqueue(EnqueueRequest::new("note", r#"{"id":"n1"}"#)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), ob.wait_for(&done)).await.unwrap().unwrap();
    ob.set_online(false).unwrap();
    let queued = ob.enqueue(EnqueueRequest::new("note", r#"{"id":"n2"}"#)).unwrap();
    ob.close();
    let db = path.to_str().unwrap();

    let o = outbox(&["show", db, &done.to_string()]);
    let s = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        s.contains("receipt          server_seq 42, applied ") && s.contains("(server time 1767225600000 ms)"),
        "{s}"
    );
    // A command the server has not applied has no receipt line.
    assert!(!stdout(&outbox(&["show", db, &queued.to_string()])).contains("receipt"));

    let o = outbox(&["export", db, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_id = |id: &CommandId| {
        doc["commands"].as_array().unwrap().iter().find(|c| c["id"] == id.to_string()).unwrap().clone()
    };
    assert_eq!(by_id(&done)["receipt"], serde_json::json!({"server_seq": 42, "applied_at": 1_767_225_600_000i64}));
    assert_eq!(by_id(&queued)["receipt"], serde_json::Value::Null);
}

#[tokio::test]
async fn closeout_reports_unsettled_commands_and_list_keeps_the_keys_of_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (db, wedged, failed, done) = device_db(dir.path()).await;
    let path = db.to_str().unwrap();
    let o = outbox(&["closeout", path, "--json"]);
    assert_eq!(o.status.code(), Some(6), "not clean: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["clean"], false);
    let unsettled = v["unsettled"].as_array().unwrap();
    assert_eq!(unsettled.len(), 3, "{v}");
    assert_eq!(v["oldest_unsynced"]["id"], wedged.to_string());
    let reason = |id: &CommandId| {
        unsettled.iter().find(|u| u["id"] == id.to_string()).unwrap()["reason"].as_str().unwrap().to_string()
    };
    assert!(reason(&wedged).starts_with("wedged:"), "{v}");
    assert!(reason(&failed).starts_with("rejected (not_found)"), "{v}");
    let states: Vec<(String, u64)> = v["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["state"].as_str().unwrap().to_string(), t["count"].as_u64().unwrap()))
        .collect();
    assert!(states.contains(&("succeeded".into(), 1)) && states.contains(&("failed".into(), 1)), "{states:?}");

    // A finished command still shows the keys it had.
    let s = stdout(&outbox(&["show", path, &done.to_string()]));
    assert!(s.contains("keys             n1"), "{s}");
    let s = stdout(&outbox(&["list", path, "--state", "succeeded", "--state", "failed"]));
    assert!(!s.contains("(unkeyed)"), "{s}");

    // Once the rest is decided the till is clean.
    for id in [wedged, failed] {
        assert!(outbox(&["discard", path, &id.to_string()]).status.success());
    }
    let pending = Outbox::inspect(&db).unwrap().peek(&PeekFilter::default()).unwrap();
    for c in pending.iter().filter(|c| c.state == CommandState::Pending) {
        assert!(outbox(&["discard", path, &c.id.to_string()]).status.success());
    }
    let o = outbox(&["closeout", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("clean"));
}
