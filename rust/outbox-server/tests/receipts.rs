//! Receipts (docs/protocol.md §2.2, §2.4): an applied command's `server_seq` and
//! `applied_at`, stored with its idempotency record, answered identically for duplicates
//! and by `GET /v1/commands/{idempotency_key}`, scoped to the caller's user and workspace.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::http::{parse_receipt_response, HttpConfig, HttpTransport, StaticToken};
use outbox::{
    CommandState, Config, EnqueueRequest, MutatorSpec, Outbox, Receipt, ReceiptCheck, ReceiptLookup, ReceiptUnknown,
    RetryPolicy, Settlement,
};
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
    assert_eq!(s.stats().await["keys"]["ws-1/alice/key-a1"], json!({"applied": 1, "duplicates": 0}));

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

/// A register on a real SQLite file, draining to `base_url` as alice. Retries wait a
/// minute, so a dropped answer leaves its command `pending` for the test to look at.
fn register(dir: &tempfile::TempDir, base_url: &str, online: bool) -> Outbox {
    let transport = HttpTransport::new(
        HttpConfig::new(base_url, "ws-1").with_request_timeout(Duration::from_secs(5)),
        Arc::new(StaticToken::new(ALICE)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join("register.db"), "alice", "ws-1").with_transport(Arc::new(transport));
    config.retry =
        RetryPolicy { base: Duration::from_secs(60), cap: Duration::from_secs(60), jitter: 0.0, max_attempts: 10 };
    config.start_online = online;
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("put", MutatorSpec::default()).unwrap();
    ob
}

fn sale(n: u32) -> EnqueueRequest {
    let args = json!({"collection": "sales", "id": format!("s{n}"), "doc": {"total": 1250}});
    EnqueueRequest::new("put", args.to_string())
}

/// The server's receipt for `key`, as `GET /v1/commands/{key}` answers it.
async fn server_receipt(s: &TestServer, key: &str) -> Receipt {
    let (status, body) = lookup(s, ALICE, "ws-1", key).await;
    assert_eq!(status, 200, "{body}");
    Receipt { server_seq: body["server_seq"].as_i64().unwrap(), applied_at: body["applied_at"].as_i64() }
}

async fn test_a_succeeded_command_keeps_the_servers_receipt(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register(&dir, &s.server.base_url(), true);
    let id = ob.enqueue(sale(1)).unwrap();
    let settled = tokio::time::timeout(Duration::from_secs(10), ob.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    let cmd = ob.command(&id).unwrap();
    let receipt = cmd.receipt.expect("a succeeded command keeps its receipt");
    assert_eq!(receipt, server_receipt(&s, &cmd.idempotency_key).await);
    assert!(receipt.applied_at.is_some());
    // Asking again changes nothing and gives the same receipt.
    let check = ob.check_receipt(&id).await.unwrap();
    assert_eq!(check, ReceiptCheck::Applied { receipt, recorded: false, state: CommandState::Succeeded });
}

async fn test_check_receipt_after_the_answer_was_dropped_says_applied_and_records_it(b: Backend) {
    // The server commits the sale, then drops the connection: the register never hears.
    let s = b.start_with(|c| c.with_faults("drop_after_commit=1#1").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register(&dir, &s.server.base_url(), true);
    let id = ob.enqueue(sale(1)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = ob.command(&id).unwrap();
        if c.state == CommandState::Pending && c.attempts == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the dropped answer was never recorded: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ob.command(&id).unwrap().receipt, None);
    // The app dies here, and comes back offline (it does not resend on its own).
    ob.close();
    drop(ob);
    let ob = register(&dir, &s.server.base_url(), false);
    let key = ob.command(&id).unwrap().idempotency_key;

    let check = ob.check_receipt(&id).await.unwrap();
    let expected = server_receipt(&s, &key).await;
    assert_eq!(check, ReceiptCheck::Applied { receipt: expected, recorded: true, state: CommandState::Succeeded });
    let cmd = ob.command(&id).unwrap();
    assert_eq!((cmd.state, cmd.receipt), (CommandState::Succeeded, Some(expected)));
    assert!(matches!(ob.wait_for(&id).await.unwrap(), Settlement::Succeeded { ref result } if result["version"] == 1));
    // Recorded from the receipt, never sent again: applied once, no duplicate.
    assert_eq!(s.stats().await["keys"][format!("ws-1/alice/{key}")], json!({"applied": 1, "duplicates": 0}));
}

async fn test_check_receipt_for_a_command_never_sent_says_not_applied(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = register(&dir, &s.server.base_url(), false);
    let id = ob.enqueue(sale(1)).unwrap();
    let check = ob.check_receipt(&id).await.unwrap();
    assert_eq!(check, ReceiptCheck::NotApplied { state: CommandState::Pending });
    assert_eq!(ob.command(&id).unwrap().state, CommandState::Pending);
}

backend_tests!(
    test_a_succeeded_command_keeps_the_servers_receipt,
    test_check_receipt_after_the_answer_was_dropped_says_applied_and_records_it,
    test_check_receipt_for_a_command_never_sent_says_not_applied,
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

#[tokio::test]
async fn check_receipt_without_a_server_is_unknown_offline_and_changes_nothing() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ob = register(&dir, &format!("http://127.0.0.1:{port}"), false);
    let id = ob.enqueue(sale(1)).unwrap();
    let check = ob.check_receipt(&id).await.unwrap();
    assert_eq!(check, ReceiptCheck::Unknown { reason: ReceiptUnknown::Offline });
    assert_eq!(ob.command(&id).unwrap().state, CommandState::Pending);
}

#[test]
fn a_bare_404_from_a_server_without_lookups_is_unsupported_not_not_applied() {
    assert_eq!(parse_receipt_response(404, b""), ReceiptLookup::Unsupported);
    assert_eq!(
        parse_receipt_response(404, br#"{"error":{"code":"not_found","message":"x"}}"#),
        ReceiptLookup::Unsupported
    );
    let unknown = br#"{"error":{"code":"unknown_command","message":"no command"}}"#;
    assert_eq!(parse_receipt_response(404, unknown), ReceiptLookup::NotFound);
    assert!(matches!(parse_receipt_response(200, b"{garbage"), ReceiptLookup::Failed(_)));
    let no_seq = br#"{"id":"c","idempotency_key":"k","status":"applied","result":{}}"#;
    assert!(matches!(parse_receipt_response(200, no_seq), ReceiptLookup::Failed(_)));
}
