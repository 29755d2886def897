//! Where the protocol is strict (docs/protocol.md §3 "Media type and empty batches", §6
//! "Tombstones"): a body that is not declared JSON applies nothing, an empty batch has a
//! specified answer, and a deleted document keeps its version.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

async fn post_typed(s: &TestServer, content_type: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = s.http.post(s.url("/v1/commands")).bearer_auth(ALICE).header("x-workspace-id", "ws-1");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(serde_json::to_vec(&body).unwrap()).send().await.unwrap()
}

async fn test_a_body_not_declared_json_is_415_and_applies_nothing(b: Backend) {
    let s = b.start().await;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonp"), None] {
        let body = json!({"commands": [put("c1", "notes", "n1", json!({"t": 1}))]});
        let resp = post_typed(&s, ct, body).await;
        assert_eq!(resp.status(), 415, "content type {ct:?}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "unsupported_media_type");
        assert!(s.doc("ws-1", "notes", "n1").await.is_none(), "{ct:?}: the command was applied");
    }
    assert_eq!(s.stats().await["totals"]["applied"], 0);
    // JSON with parameters, in any case, is JSON.
    for ct in ["application/json; charset=utf-8", "Application/JSON"] {
        let resp =
            post_typed(&s, Some(ct), json!({"commands": [put(&format!("c-{ct}"), "notes", "n2", json!({}))]})).await;
        assert_eq!(resp.status(), 200, "{ct}");
    }
}

async fn test_an_empty_batch_is_200_with_no_results(b: Backend) {
    let s = b.start().await;
    let resp = post_typed(&s, Some("application/json"), json!({"commands": []})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"results": []}));
    assert_eq!(s.stats().await["totals"]["applied"], 0);
}

async fn test_a_tombstone_keeps_its_version_put_on_base_0_conflicts_and_base_n_recreates(b: Backend) {
    let s = b.start().await;
    let r = &s.commands(vec![put("p1", "notes", "t1", json!({"v": 1}))]).await[0];
    assert_eq!(r["status"], "applied");
    let r = &s.commands(vec![cmd("d1", "delete", json!({"collection": "notes", "id": "t1"}), &["notes:t1"])]).await[0];
    assert_eq!(r["status"], "applied");
    let tombstone = r["result"]["version"].as_i64().unwrap();
    assert_eq!(tombstone, 2);
    // Based on "it never existed": the tombstone is a version, so this conflicts.
    let r = &s
        .commands(vec![cmd(
            "p2",
            "put",
            json!({"collection": "notes", "id": "t1", "doc": {"v": 2}, "base_version": 0}),
            &["notes:t1"],
        )])
        .await[0];
    assert_eq!(r["status"], "conflict");
    assert_eq!(r["snapshot"], json!({"collection": "notes", "id": "t1", "version": tombstone, "doc": null}));
    assert!(s.doc("ws-1", "notes", "t1").await.is_none(), "the conflicting put wrote");
    // Based on the tombstone's version: recreated at the next version.
    let r = &s
        .commands(vec![cmd(
            "p3",
            "put",
            json!({"collection": "notes", "id": "t1", "doc": {"v": 3}, "base_version": tombstone}),
            &["notes:t1"],
        )])
        .await[0];
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["result"]["version"], tombstone + 1);
    assert_eq!(s.doc("ws-1", "notes", "t1").await, Some(json!({"v": 3})));
}

async fn test_stats_count_per_workspace_user_and_key(b: Backend) {
    let s = b.start().await;
    // One idempotency key, two users of ws-1: two commands, each applied once.
    for token in [ALICE, CAROL] {
        let resp = s.post_as(token, "ws-1", vec![put("same", "notes", &format!("n-{token}"), json!({}))]).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = s.post_as(ALICE, "ws-1", vec![put("same", "notes", "n-tok-alice", json!({}))]).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["results"][0]["status"], "duplicate");
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["ws-1/alice/key-same"], json!({"applied": 1, "duplicates": 1}));
    assert_eq!(stats["keys"]["ws-1/carol/key-same"], json!({"applied": 1, "duplicates": 0}));
    assert_eq!(stats["keys"].as_object().unwrap().len(), 2, "{stats}");
}

backend_tests!(
    test_stats_count_per_workspace_user_and_key,
    test_a_body_not_declared_json_is_415_and_applies_nothing,
    test_an_empty_batch_is_200_with_no_results,
    test_a_tombstone_keeps_its_version_put_on_base_0_conflicts_and_base_n_recreates,
);
