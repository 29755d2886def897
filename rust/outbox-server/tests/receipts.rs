//! Receipts (docs/protocol.md §2.2, §2.4): an applied command's `server_seq` and
//! `applied_at`, stored with its idempotency record, answered identically for duplicates
//! and by `GET /v1/commands/{idempotency_key}`, scoped to the caller's user and workspace.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn lookup(s: &TestServer, token: &str, ws: &str, key: &str) -> (u16, Value) {
    let resp = s
        .http
        .get(s.url(&format!("/v1/commands/{key}")))
        .bearer_auth(token)
        .header("x-workspace-id", ws)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn test_an_applied_command_carries_a_receipt_repeated_identically_on_duplicate(b: Backend) {
    let s = b.start().await;
    let c = put("c1", "notes", "n1", json!({"text": "hi"}));
    let before = now_ms();
    let first = s.commands(vec![c.clone()]).await;
    let after = now_ms();
    assert_eq!(first[0]["status"], "applied");
    let applied_at = first[0]["applied_at"].as_i64().expect("applied_at on an applied result");
    assert!((before..=after).contains(&applied_at), "{before} <= {applied_at} <= {after}");
    assert!(first[0]["server_seq"].as_i64().unwrap() > 0);

    // Later, and after a restart: the same receipt, not a new time.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = s.commands(vec![c.clone()]).await;
    assert_eq!(second[0]["status"], "duplicate");
    assert_eq!(second[0]["applied_at"], first[0]["applied_at"]);
    assert_eq!(second[0]["server_seq"], first[0]["server_seq"]);

    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    let s = start_in(&backend, dir, |c| c).await;
    let third = s.commands(vec![c]).await;
    assert_eq!(third[0]["status"], "duplicate");
    assert_eq!(third[0]["applied_at"], first[0]["applied_at"]);
    assert_eq!(third[0]["server_seq"], first[0]["server_seq"]);
}

async fn test_not_applied_results_carry_no_receipt(b: Backend) {
    let s = b.start().await;
    let r = s.commands(vec![cmd("o1", "adjustStock", json!({"product_id": "widget", "delta": -100}), &["p"])]).await;
    assert_eq!(r[0]["status"], "rejected");
    assert!(r[0].get("applied_at").is_none() && r[0].get("server_seq").is_none(), "{r:?}");
    // And a rejected key has no record to look up.
    assert_eq!(lookup(&s, ALICE, "ws-1", "key-o1").await.0, 404);
}

async fn test_get_command_by_key_returns_the_stored_result_and_receipt(b: Backend) {
    let s = b.start().await;
    let applied = s.commands(vec![cmd("a1", "adjustStock", json!({"product_id": "widget", "delta": 3}), &[])]).await;
    let (status, body) = lookup(&s, ALICE, "ws-1", "key-a1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["idempotency_key"], "key-a1");
    assert_eq!(body["id"], "a1");
    assert_eq!(body["status"], "applied");
    assert_eq!(body["result"], applied[0]["result"]);
    assert_eq!(body["changes"], applied[0]["changes"]);
    assert_eq!(body["server_seq"], applied[0]["server_seq"]);
    assert_eq!(body["applied_at"], applied[0]["applied_at"]);
    assert!(body["applied_at"].is_i64());

    // Asking is read-only: nothing applied again.
    assert_eq!(s.stock("widget").await, 13);
    assert_eq!(s.stats().await["keys"]["key-a1"], json!({"applied": 1, "duplicates": 0}));

    let (status, body) = lookup(&s, ALICE, "ws-1", "key-never-sent").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_command");
}

async fn test_get_command_is_scoped_to_user_and_workspace(b: Backend) {
    let s = b.start().await;
    // alice is a member of ws-1 and ws-2; carol shares ws-1 with her; bob is in ws-2.
    s.server.add_user("alice", ALICE, &["ws-2"]).await.unwrap();
    assert_eq!(s.commands(vec![put("p1", "notes", "n1", json!({"t": 1}))]).await[0]["status"], "applied");
    assert_eq!(lookup(&s, ALICE, "ws-1", "key-p1").await.0, 200);

    // Another user of the same workspace, another user elsewhere, and the same user in
    // another workspace: each is "unknown", never "forbidden", so keys do not leak.
    for (token, ws) in [(CAROL, "ws-1"), (BOB, "ws-2"), (ALICE, "ws-2")] {
        let (status, body) = lookup(&s, token, ws, "key-p1").await;
        assert_eq!(status, 404, "{token} in {ws}: {body}");
        assert_eq!(body["error"]["code"], "unknown_command");
    }
    // The usual whole-request rules still hold: a non-member is 403, no token is 401.
    assert_eq!(lookup(&s, BOB, "ws-1", "key-p1").await.0, 403);
    let resp = s.http.get(s.url("/v1/commands/key-p1")).header("x-workspace-id", "ws-1").send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

backend_tests!(
    test_an_applied_command_carries_a_receipt_repeated_identically_on_duplicate,
    test_not_applied_results_carry_no_receipt,
    test_get_command_by_key_returns_the_stored_result_and_receipt,
    test_get_command_is_scoped_to_user_and_workspace,
);

/// A server file written before receipts: its idempotency table has no `applied_at`.
const PRE_RECEIPTS_SCHEMA: &str = "
CREATE TABLE tokens (token TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE workspaces (id TEXT PRIMARY KEY, head_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE members (workspace TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (workspace, user_id));
CREATE TABLE docs (workspace TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                   doc TEXT, PRIMARY KEY (workspace, collection, id));
CREATE TABLE changes (workspace TEXT NOT NULL, seq INTEGER NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                      version INTEGER NOT NULL, doc TEXT, PRIMARY KEY (workspace, seq));
CREATE TABLE idempotency (workspace TEXT NOT NULL, user_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
                          command_id TEXT NOT NULL, response TEXT NOT NULL,
                          PRIMARY KEY (workspace, user_id, idempotency_key));
CREATE TABLE apply_log (n INTEGER PRIMARY KEY AUTOINCREMENT, workspace TEXT NOT NULL, user_id TEXT NOT NULL,
                        idempotency_key TEXT NOT NULL, command_id TEXT NOT NULL, mutator TEXT NOT NULL,
                        keys TEXT NOT NULL, server_seq INTEGER NOT NULL);
INSERT INTO tokens VALUES ('tok-alice', 'alice');
INSERT INTO workspaces VALUES ('ws-1', 1);
INSERT INTO members VALUES ('ws-1', 'alice');
INSERT INTO docs VALUES ('ws-1', 'notes', 'old', 1, '{\"t\":0}');
INSERT INTO changes VALUES ('ws-1', 1, 'notes', 'old', 1, '{\"t\":0}');
INSERT INTO idempotency VALUES ('ws-1', 'alice', 'key-old', 'old',
  '{\"result\":{\"version\":1},\"changes\":[{\"seq\":1,\"collection\":\"notes\",\"id\":\"old\",\"version\":1,\"doc\":{\"t\":0}}],\"server_seq\":1}');
INSERT INTO apply_log (workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq)
  VALUES ('ws-1', 'alice', 'key-old', 'old', 'put', '[]', 1);
";

#[tokio::test]
async fn an_older_sqlite_server_file_is_upgraded_in_place_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    rusqlite::Connection::open(dir.path().join("server.db")).unwrap().execute_batch(PRE_RECEIPTS_SCHEMA).unwrap();
    let s = start_in(&Backend::Sqlite, dir, |c| c).await;

    // The old record is still there and still deduplicates; its time was never recorded.
    let (status, body) = lookup(&s, ALICE, "ws-1", "key-old").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["server_seq"], 1);
    assert!(body.get("applied_at").is_none(), "{body}");
    let old = json!({"id": "old", "idempotency_key": "key-old", "mutator": "put",
                     "args": {"collection": "notes", "id": "old", "doc": {"t": 0}}});
    let r = s.commands(vec![old]).await;
    assert_eq!(r[0]["status"], "duplicate");
    assert_eq!(r[0]["server_seq"], 1);

    // New commands on the upgraded file get a receipt time.
    let r = s.commands(vec![put("n1", "notes", "n1", json!({"t": 1}))]).await;
    assert!(r[0]["applied_at"].is_i64(), "{r:?}");
    assert_eq!(lookup(&s, ALICE, "ws-1", "key-n1").await.1["applied_at"], r[0]["applied_at"]);

    // Opening the upgraded file again adds nothing twice.
    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    let s = start_in(&backend, dir, |c| c).await;
    assert_eq!(lookup(&s, ALICE, "ws-1", "key-n1").await.0, 200);
    let conn = rusqlite::Connection::open(s.dir.path().join("server.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM pragma_table_info('idempotency') WHERE name = 'applied_at'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}
