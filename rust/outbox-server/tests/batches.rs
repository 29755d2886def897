//! One transaction per batch and the answers stored under each key (docs/protocol.md
//! §2.1): applied and rejected commands keep their answer, conflicts and skipped commands
//! do not, and the lane rule treats a repeated answer like the first one.

#[macro_use]
mod common;

use common::*;
use outbox_server::mutators::MutatorVersions;
use serde_json::json;

fn big_order(id: &str, keys: &[&str]) -> serde_json::Value {
    cmd(id, "createOrder", json!({"id": id, "lines": [{"product_id": "gadget", "qty": 8}]}), keys)
}

async fn test_a_repeated_rejection_stops_its_lane_like_the_first(b: Backend) {
    let s = b.start().await;
    let first = s.commands(vec![big_order("o1", &["register:1"])]).await;
    assert_eq!(first[0]["status"], "rejected");
    s.commands(vec![cmd("restock", "adjustStock", json!({"product_id": "gadget", "delta": 10}), &[])]).await;
    let results = s
        .commands(vec![
            big_order("o1", &["register:1"]),
            cmd("after", "adjustStock", json!({"product_id": "widget", "delta": 1}), &["register:1"]),
        ])
        .await;
    assert_eq!(results[0]["status"], "rejected", "{results:?}");
    assert_eq!(results[0]["error"]["code"], "insufficient_stock");
    assert_eq!(results[1]["status"], "skipped", "{results:?}");
    assert_eq!(s.stock("gadget").await, 15);
    assert_eq!(s.stock("widget").await, 10);
}

async fn test_a_conflict_is_not_stored_so_the_same_key_applies_once_rebased(b: Backend) {
    let s = b.start().await;
    assert_eq!(s.commands(vec![put("p1", "notes", "n1", json!({"t": "a"}))]).await[0]["status"], "applied");
    let stale =
        cmd("edit", "put", json!({"collection": "notes", "id": "n1", "doc": {"t": "b"}, "base_version": 0}), &[]);
    let r = &s.commands(vec![stale]).await[0];
    assert_eq!(r["status"], "conflict", "{r}");
    assert_eq!(r["snapshot"]["version"], 1);
    // Resolved by rebasing and resending under the same key: it runs again and applies.
    let rebased =
        cmd("edit", "put", json!({"collection": "notes", "id": "n1", "doc": {"t": "b"}, "base_version": 1}), &[]);
    let r = &s.commands(vec![rebased.clone()]).await[0];
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(s.commands(vec![rebased]).await[0]["status"], "duplicate");
    assert_eq!(s.doc("ws-1", "notes", "n1").await.unwrap()["t"], "b");
}

async fn test_a_key_sent_twice_in_one_batch_is_run_once(b: Backend) {
    let s = b.start().await;
    let add = cmd("a1", "adjustStock", json!({"product_id": "widget", "delta": 5}), &[]);
    let bad = cmd("b1", "adjustStock", json!({"product_id": "gadget", "delta": -50}), &[]);
    let results = s.commands(vec![add.clone(), bad.clone(), add, bad]).await;
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
    assert_eq!(statuses, ["applied", "rejected", "duplicate", "rejected"]);
    assert_eq!(results[2]["server_seq"], results[0]["server_seq"]);
    assert_eq!(results[3]["error"], results[1]["error"]);
    assert_eq!(s.stock("widget").await, 15);
}

async fn test_a_stored_answer_outlives_a_change_of_accepted_versions(b: Backend) {
    let s = b.start().await;
    let v1 = cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 2}]}), &[]);
    assert_eq!(s.commands(vec![v1.clone()]).await[0]["status"], "applied");
    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    let retired: MutatorVersions = "createOrder=2".parse().unwrap();
    let s = start_in(&backend, dir, |c| c.with_mutator_versions(retired)).await;
    // Applied before version 1 was retired: the resend is that command, applied.
    let r = &s.commands(vec![v1]).await[0];
    assert_eq!(r["status"], "duplicate", "{r}");
    // Rejected for its version: stays rejected when the version is accepted again.
    let late = cmd("o2", "createOrder", json!({"id": "o2", "lines": [{"product_id": "widget", "qty": 1}]}), &[]);
    assert_eq!(s.commands(vec![late.clone()]).await[0]["error"]["code"], "unsupported_version");
    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    let s = start_in(&backend, dir, |c| c).await;
    let r = &s.commands(vec![late]).await[0];
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["supported_versions"], json!([2]));
    assert_eq!(s.stock("widget").await, 8);
}

/// Commit frames in the valid part of a SQLite WAL file (docs: sqlite.org/fileformat.html,
/// "The Write-Ahead Log"): each committed transaction ends with one frame whose
/// "database size after commit" field is not zero.
fn wal_commits(path: &std::path::Path) -> usize {
    let wal = std::fs::read(path).unwrap_or_default();
    if wal.len() < 32 {
        return 0;
    }
    let be = |at: usize| u32::from_be_bytes([wal[at], wal[at + 1], wal[at + 2], wal[at + 3]]);
    let (page_size, salts) = (be(8) as usize, (be(16), be(20)));
    let mut commits = 0;
    let mut at = 32;
    while at + 24 + page_size <= wal.len() && (be(at + 8), be(at + 12)) == salts {
        if be(at + 4) != 0 {
            commits += 1;
        }
        at += 24 + page_size;
    }
    commits
}

/// Group commit: batches that wait for SQLite's one writer share its next transaction.
/// The test holds the database's write lock, lets 20 requests arrive, then lets go, and
/// counts the commits in the WAL: with a transaction per request it would be 20 (100 with
/// one per command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batches_waiting_for_the_writer_share_one_commit() {
    let s = Backend::Sqlite.start().await;
    let db = s.dir.path().join("server.db");
    let wal = s.dir.path().join("server.db-wal");
    let before = wal_commits(&wal);
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let requests: Vec<_> = (0..20)
        .map(|r| {
            let (http, url) = (s.http.clone(), s.url("/v1/commands"));
            let commands: Vec<_> =
                (0..5).map(|c| put(&format!("r{r}c{c}"), "notes", &format!("n{r}-{c}"), json!({}))).collect();
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(ALICE)
                    .header("x-workspace-id", "ws-1")
                    .json(&json!({ "commands": commands }))
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    // Every request has reached the server before the writer may go on.
    while s.stats().await["totals"]["requests"].as_u64().unwrap_or(0) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    blocker.execute_batch("COMMIT").unwrap();
    for r in requests {
        let body = r.await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r["status"] == "applied"), "{body}");
    }
    let commits = wal_commits(&wal) - before;
    // One group for the request the writer took first, one for the rest; stragglers that
    // reached the queue late (a loaded machine) share a third.
    assert!((1..=5).contains(&commits), "{commits} commits for 20 requests");
}

/// The documents a batch reads up front (PostgreSQL reads every document its commands
/// name in one statement) are its own workspace's, absent ones included.
async fn test_documents_read_for_a_batch_are_its_own_workspaces(b: Backend) {
    let s = b.start().await;
    let r = s.commands(vec![put("a1", "notes", "n1", json!({"t": "ws-1"}))]).await;
    assert_eq!(r[0]["status"], "applied");
    let patch = cmd("b1", "patch", json!({"collection": "notes", "id": "n1", "patch": {"t": "x"}}), &[]);
    let create =
        cmd("b2", "put", json!({"collection": "notes", "id": "n1", "doc": {"t": "ws-2"}, "base_version": 0}), &[]);
    let resp = s.post_as(BOB, "ws-2", vec![patch, create]).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["error"]["code"], "not_found", "{body}");
    assert_eq!(body["results"][1]["status"], "applied", "{body}");
    assert_eq!(body["results"][1]["result"]["version"], 1, "{body}");
    assert_eq!(s.doc("ws-1", "notes", "n1").await.unwrap()["t"], "ws-1");
}

backend_tests!(
    test_documents_read_for_a_batch_are_its_own_workspaces,
    test_a_repeated_rejection_stops_its_lane_like_the_first,
    test_a_conflict_is_not_stored_so_the_same_key_applies_once_rebased,
    test_a_key_sent_twice_in_one_batch_is_run_once,
    test_a_stored_answer_outlives_a_change_of_accepted_versions,
);
