//! Fault injection and the admin endpoints (docs/server.md): injected 500/429/503 answers,
//! resets, drops after commit, latency, counted and seeded faults, the fault spec on the
//! command line and over `/v1/_faults`, and the Retry-After statistics; against a real
//! server on loopback, on both backends.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

async fn test_fault_500_answers_before_applying(b: Backend) {
    let s = b.start().await;
    s.set_faults("500=1").await;
    let resp = s.post_as(ALICE, "ws-1", vec![put("c1", "notes", "n1", json!({}))]).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(error_code(resp).await, "injected_fault");
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
    s.clear_faults().await;
    assert_eq!(s.commands(vec![put("c1", "notes", "n1", json!({}))]).await[0]["status"], "applied");
    assert_eq!(s.stats().await["totals"]["faults"]["500"], 1);
}

async fn test_fault_429_and_503_send_retry_after(b: Backend) {
    let s = b.start().await;
    s.set_faults("429=1:2s#1,503=1:3s:date").await;
    let resp = s.post_as(ALICE, "ws-1", vec![put("c1", "notes", "n1", json!({}))]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let resp = s.post_as(ALICE, "ws-1", vec![put("c1", "notes", "n1", json!({}))]).await;
    assert_eq!(resp.status(), 503);
    let date = resp.headers()["retry-after"].to_str().unwrap().to_string();
    let at = httpdate::parse_http_date(&date).unwrap();
    let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    assert!(wait <= Duration::from_secs(3), "{wait:?}");
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
}

async fn test_fault_reset_closes_without_answer_and_applies_nothing(b: Backend) {
    let s = b.start().await;
    s.set_faults("reset=1").await;
    let err = s.try_post_as(ALICE, "ws-1", vec![put("c1", "notes", "n1", json!({}))]).await.unwrap_err();
    assert!(!err.is_connect(), "{err:?}");
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
    let stats = s.stats().await;
    assert_eq!(stats["totals"]["faults"]["reset"], 1);
    assert_eq!(stats["totals"]["applied"], 0);
}

async fn test_drop_after_commit_then_resend_is_duplicate_applied_once(b: Backend) {
    let s = b.start().await;
    s.set_faults("drop_after_commit=1").await;
    let c = cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 2}]}), &["order:o1"]);
    let sent = s.try_post_as(ALICE, "ws-1", vec![c.clone()]).await;
    assert!(sent.is_err(), "the answer must be dropped");
    // The effect committed anyway.
    assert_eq!(s.stock("widget").await, 8);
    s.clear_faults().await;
    let r = &s.commands(vec![c]).await[0];
    assert_eq!(r["status"], "duplicate");
    assert_eq!(r["result"]["order_id"], "o1");
    assert_eq!(s.stock("widget").await, 8);
    let stats = s.stats().await;
    assert_eq!(stats["keys"]["ws-1/alice/key-o1"], json!({"applied": 1, "duplicates": 1}));
    assert_eq!(stats["totals"]["faults"]["drop_after_commit"], 1);
}

async fn test_latency_fault_delays_the_answer(b: Backend) {
    let s = b.start().await;
    s.set_faults("latency=250-250ms").await;
    let started = Instant::now();
    s.commands(vec![put("c1", "notes", "n1", json!({}))]).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

async fn test_counted_fault_and_json_admin_body(b: Backend) {
    let s = b.start().await;
    let resp = s.http.post(s.url("/v1/_faults")).json(&json!({"spec": "500=1#2", "seed": 1})).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["spec"], "500=1#2");
    let mut statuses = Vec::new();
    for i in 0..3 {
        statuses.push(
            s.post_as(ALICE, "ws-1", vec![put(&format!("c{i}"), "notes", "n", json!({}))]).await.status().as_u16(),
        );
    }
    assert_eq!(statuses, [500, 500, 200]);
    let bad = s.http.post(s.url("/v1/_faults")).body("500=lots").send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

async fn test_seeded_random_faults_are_reproducible(b: Backend) {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let s = b.start_with(|c| c.with_faults("500=0.5").unwrap().with_seed(99)).await;
        let mut statuses = Vec::new();
        for i in 0..20 {
            statuses.push(
                s.post_as(ALICE, "ws-1", vec![put(&format!("c{i}"), "notes", "n", json!({}))]).await.status().as_u16(),
            );
        }
        assert!(statuses.contains(&500) && statuses.contains(&200), "{statuses:?}");
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
}

async fn test_admin_endpoints_are_off_without_flag(b: Backend) {
    let s = b.start_with(|c| c.with_admin(false)).await;
    assert_eq!(s.http.get(s.url("/v1/_stats")).send().await.unwrap().status(), 404);
    assert_eq!(s.http.post(s.url("/v1/_faults")).body("500=1").send().await.unwrap().status(), 404);
}

async fn test_stats_catch_an_attempt_earlier_than_retry_after(b: Backend) {
    let s = b.start().await;
    s.set_faults("429=1:1s#1").await;
    let c = put("c1", "notes", "n1", json!({}));
    assert_eq!(s.post_as(ALICE, "ws-1", vec![c.clone()]).await.status(), 429);
    // Straight back, ignoring Retry-After: counted as early.
    assert_eq!(s.commands(vec![c]).await[0]["status"], "applied");
    let ra = &s.stats().await["totals"]["retry_after"];
    assert_eq!(ra["sent"], 1);
    assert_eq!(ra["checked"], 1);
    assert_eq!(ra["early"], 1);
    assert!(ra["max_early_ms"].as_u64().unwrap() > 500, "{ra}");
}

#[tokio::test]
async fn test_binary_refuses_a_bad_fault_spec() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_outbox-server"))
        .args(["--addr", "127.0.0.1:0", "--faults", "500=often", "--db"])
        .arg(dir.path().join("bin.db"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid fault spec"));
}

async fn test_get_faults_shows_the_active_spec(b: Backend) {
    let s = b.start_with(|c| c.with_faults("503=0.5:2s,latency=0-10ms").unwrap()).await;
    let body: Value = s.http.get(s.url("/v1/_faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["spec"], "503=0.5:2000ms,latency=0-10ms");
    s.clear_faults().await;
    let body: Value = s.http.get(s.url("/v1/_faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["spec"], "");
}

backend_tests!(
    test_fault_500_answers_before_applying,
    test_fault_429_and_503_send_retry_after,
    test_fault_reset_closes_without_answer_and_applies_nothing,
    test_drop_after_commit_then_resend_is_duplicate_applied_once,
    test_latency_fault_delays_the_answer,
    test_counted_fault_and_json_admin_body,
    test_seeded_random_faults_are_reproducible,
    test_admin_endpoints_are_off_without_flag,
    test_stats_catch_an_attempt_earlier_than_retry_after,
    test_get_faults_shows_the_active_spec,
);
