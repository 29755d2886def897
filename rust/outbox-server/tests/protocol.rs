//! The wire protocol of docs/protocol.md against a real server on loopback (fault
//! injection and the admin endpoints are in `faults.rs`).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn test_healthz(b: Backend) {
    let s = b.start().await;
    let resp = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

async fn test_missing_and_unknown_token_are_401(b: Backend) {
    let s = b.start().await;
    let body = serde_json::to_vec(&json!({"commands": [put("c1", "notes", "n1", json!({"t": 1}))]})).unwrap();
    let resp = s.post_raw(None, Some("ws-1"), body.clone()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(resp).await, "unauthorized");
    let resp = s.post_raw(Some("nope"), Some("ws-1"), body).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(s.stats().await["totals"]["applied"], 0);
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
}

async fn test_cross_workspace_is_403_and_nothing_applied(b: Backend) {
    let s = b.start().await;
    let resp = s.post_as(BOB, "ws-1", vec![put("c1", "notes", "n1", json!({"t": 1}))]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_code(resp).await, "forbidden");
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
    let resp = s.changes(BOB, "ws-1", None, 10).await;
    assert_eq!(resp.status(), 403);
}

async fn test_missing_workspace_header_is_400(b: Backend) {
    let s = b.start().await;
    let body = serde_json::to_vec(&json!({"commands": []})).unwrap();
    let resp = s.post_raw(Some(ALICE), None, body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "missing_workspace");
}

async fn test_malformed_body_is_400_json_error(b: Backend) {
    let s = b.start().await;
    for body in [&b"{not json"[..], br#"{"commands": 5}"#, br#"{"commands":[{"id":"x"}]}"#] {
        let resp = s.post_raw(Some(ALICE), Some("ws-1"), body.to_vec()).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(error_code(resp).await, "malformed_body");
    }
}

async fn test_put_is_applied_with_changes_and_server_seq(b: Backend) {
    let s = b.start().await;
    let results = s.commands(vec![put("c1", "notes", "n1", json!({"text": "hi"}))]).await;
    let r = &results[0];
    assert_eq!(r["id"], "c1");
    assert_eq!(r["status"], "applied");
    assert_eq!(r["result"], json!({"version": 1}));
    assert_eq!(r["changes"], json!([{"collection": "notes", "id": "n1", "version": 1, "doc": {"text": "hi"}}]));
    // Two products were seeded first, so this is the third change of ws-1.
    assert_eq!(r["server_seq"], 3);
    assert!(r.get("error").is_none());
}

async fn test_repeat_key_is_duplicate_with_stored_result(b: Backend) {
    let s = b.start().await;
    let c = put("c1", "notes", "n1", json!({"text": "hi"}));
    let first = s.commands(vec![c.clone()]).await;
    let second = s.commands(vec![c]).await;
    assert_eq!(second[0]["status"], "duplicate");
    assert_eq!(second[0]["result"], first[0]["result"]);
    assert_eq!(second[0]["changes"], first[0]["changes"]);
    assert_eq!(second[0]["server_seq"], first[0]["server_seq"]);
    assert_eq!(s.doc("ws-1", "notes", "n1").await.unwrap(), json!({"text": "hi"}));
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["ws-1/alice/key-c1"], json!({"applied": 1, "duplicates": 1}));
    // Only one change-log row for it.
    let page: Value = s.changes(ALICE, "ws-1", Some("2"), 10).await.json().await.unwrap();
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
}

async fn test_idempotency_is_scoped_per_user(b: Backend) {
    let s = b.start().await;
    let c = cmd("c1", "adjustStock", json!({"product_id": "widget", "delta": 1}), &["p"]);
    assert_eq!(s.commands(vec![c.clone()]).await[0]["status"], "applied");
    let resp = s.post_as(CAROL, "ws-1", vec![c]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "applied");
    assert_eq!(s.stock("widget").await, 12);
}

async fn test_base_version_mismatch_is_conflict_with_snapshot(b: Backend) {
    let s = b.start().await;
    let mut a = put("a", "notes", "n1", json!({"text": "first"}));
    a["args"]["base_version"] = json!(0);
    assert_eq!(s.commands(vec![a]).await[0]["status"], "applied");
    // A second writer also based on "no document" loses.
    let mut b = put("b", "notes", "n1", json!({"text": "second"}));
    b["base_versions"] = json!({"notes:n1": 0});
    let r = &s.commands(vec![b.clone()]).await[0];
    assert_eq!(r["status"], "conflict");
    assert_eq!(r["error"]["code"], "version_conflict");
    assert_eq!(r["snapshot"], json!({"collection": "notes", "id": "n1", "version": 1, "doc": {"text": "first"}}));
    assert_eq!(s.doc("ws-1", "notes", "n1").await.unwrap(), json!({"text": "first"}));
    // Conflicts are not stored: the same key with the right base applies.
    b["base_versions"] = json!({"notes:n1": 1});
    assert_eq!(s.commands(vec![b]).await[0]["status"], "applied");
    assert_eq!(s.stats().await["totals"]["conflicts"], 1);
}

async fn test_patch_merges_and_delete_leaves_deleted_change(b: Backend) {
    let s = b.start().await;
    s.commands(vec![put("c1", "notes", "n1", json!({"text": "hi", "tags": {"a": 1, "b": 2}}))]).await;
    let p = cmd(
        "c2",
        "patch",
        json!({"collection": "notes", "id": "n1", "patch": {"tags": {"a": null}, "done": true}}),
        &[],
    );
    let r = &s.commands(vec![p]).await[0];
    assert_eq!(r["status"], "applied");
    assert_eq!(s.doc("ws-1", "notes", "n1").await.unwrap(), json!({"text": "hi", "tags": {"b": 2}, "done": true}));
    let d = cmd("c3", "delete", json!({"collection": "notes", "id": "n1"}), &[]);
    let r = &s.commands(vec![d]).await[0];
    assert_eq!(r["changes"], json!([{"collection": "notes", "id": "n1", "version": 3, "deleted": true}]));
    let missing = cmd("c4", "patch", json!({"collection": "notes", "id": "zzz", "patch": {}}), &[]);
    let r = &s.commands(vec![missing]).await[0];
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "not_found");
}

async fn test_create_order_decrements_stock_and_insufficient_is_rejected(b: Backend) {
    let s = b.start().await;
    let order = cmd(
        "o1",
        "createOrder",
        json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 3}, {"product_id": "gadget", "qty": 1}]}),
        &["order:o1"],
    );
    let r = &s.commands(vec![order]).await[0];
    assert_eq!(r["status"], "applied");
    assert_eq!(r["result"]["total"], 550);
    assert_eq!(r["changes"].as_array().unwrap().len(), 3);
    assert_eq!(s.stock("widget").await, 7);
    assert_eq!(s.stock("gadget").await, 4);
    assert_eq!(s.doc("ws-1", "orders", "o1").await.unwrap()["status"], "open");

    let too_many = cmd(
        "o2",
        "createOrder",
        json!({"id": "o2", "lines": [{"product_id": "widget", "qty": 5}, {"product_id": "gadget", "qty": 9}]}),
        &[],
    );
    let r = &s.commands(vec![too_many]).await[0];
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "insufficient_stock");
    // All or nothing: the widget line did not go through either.
    assert_eq!(s.stock("widget").await, 7);
    assert!(s.doc("ws-1", "orders", "o2").await.is_none());
}

async fn test_rejection_is_stored_so_the_key_is_never_applied_later(b: Backend) {
    let s = b.start().await;
    let order = cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "gadget", "qty": 8}]}), &[]);
    let first = s.commands(vec![order.clone()]).await[0].clone();
    assert_eq!(first["error"]["code"], "insufficient_stock");
    s.commands(vec![cmd("restock", "adjustStock", json!({"product_id": "gadget", "delta": 10}), &[])]).await;
    // A resend under the same key (a client that lost its `failed` mark) gets the same
    // answer, even now that stock would allow it.
    let again = &s.commands(vec![order]).await[0];
    assert_eq!(again["status"], "rejected", "{again}");
    assert_eq!(again["error"], first["error"]);
    assert_eq!(s.stock("gadget").await, 15);
    assert!(s.doc("ws-1", "orders", "o1").await.is_none());
    // The same sale under a new key is a new command and applies.
    let mut retry = cmd("o1b", "createOrder", json!({"id": "o1", "lines": [{"product_id": "gadget", "qty": 8}]}), &[]);
    retry["id"] = json!("o1");
    assert_eq!(s.commands(vec![retry]).await[0]["status"], "applied");
    assert_eq!(s.stock("gadget").await, 7);
}

async fn test_void_order_restores_stock_once(b: Backend) {
    let s = b.start().await;
    s.commands(vec![cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 4}]}), &[])])
        .await;
    assert_eq!(s.stock("widget").await, 6);
    let r = &s.commands(vec![cmd("v1", "voidOrder", json!({"id": "o1"}), &[])]).await[0];
    assert_eq!(r["status"], "applied");
    assert_eq!(s.stock("widget").await, 10);
    assert_eq!(s.doc("ws-1", "orders", "o1").await.unwrap()["status"], "voided");
    let r = &s.commands(vec![cmd("v2", "voidOrder", json!({"id": "o1"}), &[])]).await[0];
    assert_eq!(r["error"]["code"], "already_voided");
    assert_eq!(s.stock("widget").await, 10);
}

async fn test_adjust_stock_cannot_go_negative(b: Backend) {
    let s = b.start().await;
    let r = &s.commands(vec![cmd("a", "adjustStock", json!({"product_id": "gadget", "delta": -6}), &[])]).await[0];
    assert_eq!(r["error"]["code"], "insufficient_stock");
    let r = &s.commands(vec![cmd("b", "adjustStock", json!({"product_id": "nope", "delta": 1}), &[])]).await[0];
    assert_eq!(r["error"]["code"], "unknown_product");
    let r = &s.commands(vec![cmd("c", "adjustStock", json!({"product_id": "gadget"}), &[])]).await[0];
    assert_eq!(r["error"]["code"], "invalid_args");
    assert_eq!(s.stock("gadget").await, 5);
}

async fn test_unknown_mutator_and_version_are_rejected(b: Backend) {
    let s = b.start().await;
    let r = &s.commands(vec![cmd("x", "launchRockets", json!({}), &[])]).await[0];
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"]["code"], "unknown_mutator");
    let mut v = put("y", "notes", "n", json!({}));
    v["mutator_version"] = json!(7);
    let r = &s.commands(vec![v]).await[0];
    assert_eq!(r["error"]["code"], "unsupported_version");
    assert_eq!(r["supported_versions"], json!([1]));
}

async fn test_lane_stops_at_first_non_applied_and_later_commands_are_skipped(b: Backend) {
    let s = b.start().await;
    let results = s
        .commands(vec![
            cmd(
                "bad",
                "createOrder",
                json!({"id": "o1", "lines": [{"product_id": "gadget", "qty": 99}]}),
                &["register:1"],
            ),
            cmd("after", "adjustStock", json!({"product_id": "widget", "delta": 1}), &["register:1", "stock"]),
            cmd("chained", "adjustStock", json!({"product_id": "widget", "delta": 1}), &["stock"]),
            cmd("other", "adjustStock", json!({"product_id": "gadget", "delta": 1}), &["register:2"]),
        ])
        .await;
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["rejected", "skipped", "skipped", "applied"]);
    assert_eq!(results[1]["error"]["code"], "skipped");
    assert_eq!(s.stock("widget").await, 10);
    assert_eq!(s.stock("gadget").await, 6);
    // Skipped commands were not recorded: resending applies them.
    let again = s
        .commands(vec![cmd("after", "adjustStock", json!({"product_id": "widget", "delta": 1}), &["register:1"])])
        .await;
    assert_eq!(again[0]["status"], "applied");
}

async fn test_batch_applies_in_order(b: Backend) {
    let s = b.start().await;
    let results = s
        .commands(vec![
            put("c1", "notes", "n", json!({"v": 1})),
            put("c2", "notes", "n", json!({"v": 2})),
            cmd("c3", "patch", json!({"collection": "notes", "id": "n", "patch": {"w": 3}}), &["notes:n"]),
        ])
        .await;
    let versions: Vec<i64> = results.iter().map(|r| r["changes"][0]["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(s.doc("ws-1", "notes", "n").await.unwrap(), json!({"v": 2, "w": 3}));
    let log: Value = s.http.get(s.url("/v1/_log")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["command_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(log["entries"][0]["keys"], json!(["notes:n"]));
}

async fn test_batch_over_100_is_413_and_nothing_applied(b: Backend) {
    let s = b.start().await;
    let commands: Vec<Value> = (0..101).map(|i| put(&format!("c{i}"), "notes", &format!("n{i}"), json!({}))).collect();
    let resp = s.post_as(ALICE, "ws-1", commands.clone()).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(error_code(resp).await, "batch_too_large");
    assert_eq!(s.stats().await["totals"]["applied"], 0);
    let results = s.commands(commands[..100].to_vec()).await;
    assert_eq!(results.len(), 100);
}

async fn test_oversized_body_is_413(b: Backend) {
    let s = b
        .start_with(|mut c| {
            c.max_body_bytes = 1024;
            c
        })
        .await;
    let resp = s.post_as(ALICE, "ws-1", vec![put("c", "notes", "n", json!({"blob": "x".repeat(4096)}))]).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(error_code(resp).await, "payload_too_large");
}

async fn test_changes_page_with_cursor(b: Backend) {
    let s = b.start().await;
    let commands: Vec<Value> =
        (0..5).map(|i| put(&format!("c{i}"), "notes", &format!("n{i}"), json!({"i": i}))).collect();
    s.commands(commands).await;
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = s.changes(ALICE, "ws-1", cursor.as_deref(), 3).await.json().await.unwrap();
        pages += 1;
        for c in page["changes"].as_array().unwrap() {
            seen.push(format!("{}:{}", c["collection"].as_str().unwrap(), c["id"].as_str().unwrap()));
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_string());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["products:widget", "products:gadget", "notes:n0", "notes:n1", "notes:n2", "notes:n3", "notes:n4"]
    );
    // Nothing new: same cursor, empty page.
    let page: Value = s.changes(ALICE, "ws-1", cursor.as_deref(), 3).await.json().await.unwrap();
    assert_eq!(page["changes"], json!([]));
    assert_eq!(page["cursor"].as_str(), cursor.as_deref());
    // Workspaces do not see each other's changes.
    let page: Value = s.changes(BOB, "ws-2", None, 100).await.json().await.unwrap();
    assert_eq!(page["changes"], json!([]));
    assert_eq!(page["cursor"], s.cursor(0));
}

async fn test_bad_cursor_is_400(b: Backend) {
    let s = b.start().await;
    let resp = s.changes(ALICE, "ws-1", Some("abc"), 10).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "invalid_cursor");
}

async fn test_stream_sends_changed_nudges(b: Backend) {
    let s = b.start().await;
    let mut resp =
        s.http.get(s.url("/v1/stream")).bearer_auth(ALICE).header("x-workspace-id", "ws-1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    // Initial nudge carries the current head.
    while !text.contains(&s.nudge_data(2)) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: changed"));
    // A command in another workspace does not nudge ws-1; one in ws-1 does.
    let r = s.post_as(BOB, "ws-2", vec![put("b1", "notes", "n", json!({}))]).await;
    assert_eq!(r.status(), 200);
    s.commands(vec![put("c1", "notes", "n1", json!({}))]).await;
    let needle = s.nudge_data(3);
    while !text.contains(&needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains(&s.nudge_data(1)));
}

async fn test_stream_requires_auth(b: Backend) {
    let s = b.start().await;
    let resp = s.http.get(s.url("/v1/stream")).header("x-workspace-id", "ws-1").send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

async fn test_idempotency_survives_restart(b: Backend) {
    let s = b.start().await;
    let c = cmd("a1", "adjustStock", json!({"product_id": "widget", "delta": 5}), &[]);
    assert_eq!(s.commands(vec![c.clone()]).await[0]["status"], "applied");
    let TestServer { server, dir, backend, .. } = s;
    server.shutdown().await;
    let s = start_in(&backend, dir, |c| c).await;
    let r = &s.commands(vec![c]).await[0];
    assert_eq!(r["status"], "duplicate");
    assert_eq!(s.stock("widget").await, 15);
}

async fn test_dev_seed_users_and_catalog(b: Backend) {
    let s = b.start_with(|c| c.with_dev(true)).await;
    let r = s
        .post_as(
            "dev-alice",
            "ws-1",
            vec![cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "latte", "qty": 2}]}), &[])],
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "applied");
    assert_eq!(body["results"][0]["result"]["total"], 840);
    assert_eq!(s.post_as("dev-bob", "ws-1", vec![]).await.status(), 403);
    assert_eq!(s.post_as("dev-bob", "ws-2", vec![]).await.status(), 200);
}

#[tokio::test]
async fn test_binary_prints_listening_line_first() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_outbox-server"))
        .args(["--addr", "127.0.0.1:0", "--dev", "--db"])
        .arg(dir.path().join("bin.db"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").expect(&first).to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let health = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    child.kill().await.unwrap();
}

backend_tests!(
    test_healthz,
    test_missing_and_unknown_token_are_401,
    test_cross_workspace_is_403_and_nothing_applied,
    test_missing_workspace_header_is_400,
    test_malformed_body_is_400_json_error,
    test_put_is_applied_with_changes_and_server_seq,
    test_repeat_key_is_duplicate_with_stored_result,
    test_idempotency_is_scoped_per_user,
    test_base_version_mismatch_is_conflict_with_snapshot,
    test_patch_merges_and_delete_leaves_deleted_change,
    test_create_order_decrements_stock_and_insufficient_is_rejected,
    test_rejection_is_stored_so_the_key_is_never_applied_later,
    test_void_order_restores_stock_once,
    test_adjust_stock_cannot_go_negative,
    test_unknown_mutator_and_version_are_rejected,
    test_lane_stops_at_first_non_applied_and_later_commands_are_skipped,
    test_batch_applies_in_order,
    test_batch_over_100_is_413_and_nothing_applied,
    test_oversized_body_is_413,
    test_changes_page_with_cursor,
    test_bad_cursor_is_400,
    test_stream_sends_changed_nudges,
    test_stream_requires_auth,
    test_idempotency_survives_restart,
    test_dev_seed_users_and_catalog,
);
