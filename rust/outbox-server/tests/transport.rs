//! The core's HttpTransport against the real server (and, for broken answers, tiny
//! handlers on loopback).

#[macro_use]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::*;
use outbox::http::{
    parse_batch_response, HttpConfig, HttpError, HttpTransport, StaticToken, TokenError, TokenProvider,
};
use outbox::transport::{DocChange, Outcome, OutgoingCommand, PullOutcome, Transport};
use proptest::prelude::*;
use serde_json::{json, Value};

fn out(id: &str, mutator: &str, args: Value, keys: &[&str]) -> OutgoingCommand {
    OutgoingCommand {
        id: id.to_string(),
        idempotency_key: format!("key-{id}"),
        mutator: mutator.to_string(),
        mutator_version: 1,
        keys: keys.iter().map(|k| k.to_string()).collect(),
        args,
        base_versions: serde_json::Map::new(),
        metadata: json!({}),
        attempt: 1,
    }
}

fn put_cmd(id: &str, doc_id: &str, doc: Value) -> OutgoingCommand {
    out(id, "put", json!({"collection": "notes", "id": doc_id, "doc": doc}), &[&format!("notes:{doc_id}")])
}

fn transport_for(base_url: &str, token: &str) -> HttpTransport {
    HttpTransport::new(HttpConfig::new(base_url, "ws-1"), Arc::new(StaticToken::new(token))).unwrap()
}

fn transport(s: &TestServer) -> HttpTransport {
    transport_for(&s.server.base_url(), ALICE)
}

/// Records every call; returns tokens from a list (the last one repeats).
struct ScriptedTokens {
    tokens: Vec<Result<String, TokenError>>,
    calls: Mutex<Vec<bool>>,
}

impl ScriptedTokens {
    fn new(tokens: Vec<Result<String, TokenError>>) -> Arc<Self> {
        Arc::new(ScriptedTokens { tokens, calls: Mutex::new(Vec::new()) })
    }
    fn calls(&self) -> Vec<bool> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenProvider for ScriptedTokens {
    async fn token(&self, force_refresh: bool) -> Result<String, TokenError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(force_refresh);
        let i = (calls.len() - 1).min(self.tokens.len() - 1);
        self.tokens[i].clone()
    }
}

/// Serves `router` on 127.0.0.1:0 and returns its base URL.
async fn tiny_server(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn junk_server(status: StatusCode, content_type: &'static str, body: &'static str) -> String {
    tiny_server(axum::Router::new().route(
        "/v1/commands",
        post(move || async move { (status, [(header::CONTENT_TYPE, content_type)], body).into_response() }),
    ))
    .await
}

fn assert_retry(o: &Outcome, status: Option<u16>) -> String {
    match o {
        Outcome::Retry { reason, http_status, .. } => {
            assert_eq!(*http_status, status, "{reason}");
            reason.clone()
        }
        other => panic!("expected Retry, got {other:?}"),
    }
}

async fn test_applied_maps_result_and_changes(b: Backend) {
    let s = b.start().await;
    let t = transport(&s);
    let outcomes = t
        .send(vec![
            put_cmd("c1", "n1", json!({"text": "hi"})),
            out("c2", "delete", json!({"collection": "notes", "id": "n1"}), &["notes:n1"]),
        ])
        .await;
    let Outcome::Applied { result, changes, receipt } = &outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(*result, json!({"version": 1}));
    assert_eq!(
        *changes,
        vec![DocChange { collection: "notes".into(), id: "n1".into(), version: 1, doc: Some(json!({"text": "hi"})) }]
    );
    // The receipt: the feed position of the put (after the two seeded products) and a time.
    let receipt = receipt.expect("an applied answer carries a receipt");
    assert_eq!(receipt.server_seq, 3);
    assert!(receipt.applied_at.is_some_and(|t| t > 1_700_000_000_000), "{receipt:?}");
    match &outcomes[1] {
        Outcome::Applied { changes, .. } => assert_eq!(changes[0].doc, None),
        other => panic!("{other:?}"),
    }
}

async fn test_duplicate_maps_to_applied_with_the_stored_result(b: Backend) {
    let s = b.start().await;
    let t = transport(&s);
    let c = out("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 1}]}), &["order:o1"]);
    let first = t.send(vec![c.clone()]).await;
    let mut again = c.clone();
    again.attempt = 2;
    let second = t.send(vec![again]).await;
    assert_eq!(first, second);
    assert!(matches!(first[0], Outcome::Applied { .. }));
    assert_eq!(s.stats().await["keys"]["ws-1/alice/key-o1"], json!({"applied": 1, "duplicates": 1}));
    assert_eq!(s.stock("widget").await, 9);
}

async fn test_rejected_and_conflict_and_skipped(b: Backend) {
    let s = b.start().await;
    let t = transport(&s);
    t.send(vec![put_cmd("seed", "n1", json!({"v": 1}))]).await;
    let mut stale = put_cmd("stale", "n1", json!({"v": 2}));
    stale.base_versions.insert("notes:n1".into(), json!(0));
    let outcomes = t
        .send(vec![
            out("big", "createOrder", json!({"id": "o1", "lines": [{"product_id": "gadget", "qty": 50}]}), &["reg"]),
            out("next", "adjustStock", json!({"product_id": "gadget", "delta": 1}), &["reg"]),
            stale,
        ])
        .await;
    assert_eq!(outcomes.len(), 3);
    match &outcomes[0] {
        Outcome::Rejected { code, message } => {
            assert_eq!(code, "insufficient_stock");
            assert!(message.contains("gadget"));
        }
        other => panic!("{other:?}"),
    }
    let reason = assert_retry(&outcomes[1], None);
    assert!(reason.starts_with("skipped"), "{reason}");
    assert_eq!(
        outcomes[2],
        Outcome::Conflict {
            server_snapshot: json!({"collection": "notes", "id": "n1", "version": 1, "doc": {"v": 1}})
        }
    );
}

async fn test_unknown_mutator_is_rejected(b: Backend) {
    let s = b.start().await;
    let outcomes = transport(&s).send(vec![out("x", "nope", json!({}), &[])]).await;
    assert!(matches!(&outcomes[0], Outcome::Rejected { code, .. } if code == "unknown_mutator"));
}

async fn test_401_refreshes_once_then_unauthorized(b: Backend) {
    let s = b.start().await;
    let tokens = ScriptedTokens::new(vec![Ok("stale".into()), Ok("still-bad".into())]);
    let t = HttpTransport::new(HttpConfig::new(s.server.base_url(), "ws-1"), tokens.clone()).unwrap();
    let outcomes = t.send(vec![put_cmd("a", "n1", json!({})), put_cmd("b", "n2", json!({}))]).await;
    assert_eq!(outcomes, vec![Outcome::Unauthorized, Outcome::Unauthorized]);
    assert_eq!(tokens.calls(), vec![false, true]);
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
}

async fn test_401_then_refreshed_token_applies(b: Backend) {
    let s = b.start().await;
    let tokens = ScriptedTokens::new(vec![Ok("expired".into()), Ok(ALICE.into())]);
    let t = HttpTransport::new(HttpConfig::new(s.server.base_url(), "ws-1"), tokens.clone()).unwrap();
    let outcomes = t.send(vec![put_cmd("a", "n1", json!({}))]).await;
    assert!(matches!(outcomes[0], Outcome::Applied { .. }), "{outcomes:?}");
    assert_eq!(tokens.calls(), vec![false, true]);
}

async fn test_token_provider_errors_map_to_outcomes(b: Backend) {
    let s = b.start().await;
    for (err, expected) in [
        (TokenError::Unauthorized("signed out".into()), Outcome::Unauthorized),
        (TokenError::Offline("no network".into()), Outcome::Offline),
    ] {
        let t = HttpTransport::new(HttpConfig::new(s.server.base_url(), "ws-1"), ScriptedTokens::new(vec![Err(err)]))
            .unwrap();
        assert_eq!(t.send(vec![put_cmd("a", "n1", json!({}))]).await, vec![expected]);
    }
    let t = HttpTransport::new(
        HttpConfig::new(s.server.base_url(), "ws-1"),
        ScriptedTokens::new(vec![Err(TokenError::Other("keychain locked".into()))]),
    )
    .unwrap();
    let reason = assert_retry(&t.send(vec![put_cmd("a", "n1", json!({}))]).await[0], None);
    assert!(reason.contains("keychain locked"));
    assert_eq!(s.stats().await["totals"]["requests"], 0);
}

async fn test_403_is_forbidden_for_every_command(b: Backend) {
    let s = b.start().await;
    let t = transport_for(&s.server.base_url(), BOB);
    let outcomes = t.send(vec![put_cmd("a", "n1", json!({})), put_cmd("b", "n2", json!({}))]).await;
    for o in &outcomes {
        assert!(matches!(o, Outcome::Forbidden { message } if message.contains("member")), "{o:?}");
    }
    assert_eq!(outcomes.len(), 2);
}

async fn test_429_retry_after_seconds(b: Backend) {
    let s = b.start().await;
    s.set_faults("429=1:2s").await;
    let outcomes = transport(&s).send(vec![put_cmd("a", "n1", json!({})), put_cmd("b", "n2", json!({}))]).await;
    for o in outcomes {
        match o {
            Outcome::Retry { retry_after, http_status, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
                assert_eq!(http_status, Some(429));
            }
            other => panic!("{other:?}"),
        }
    }
}

async fn test_503_retry_after_http_date(b: Backend) {
    let s = b.start().await;
    s.set_faults("503=1:5s:date").await;
    match &transport(&s).send(vec![put_cmd("a", "n1", json!({}))]).await[0] {
        Outcome::Retry { retry_after: Some(d), http_status: Some(503), .. } => {
            // Whole-second dates: between 4 and 5 seconds from now.
            assert!(*d <= Duration::from_secs(5) && *d >= Duration::from_secs(3), "{d:?}");
        }
        other => panic!("{other:?}"),
    }
}

async fn test_500_is_retry_with_status(b: Backend) {
    let s = b.start().await;
    s.set_faults("500=1").await;
    let o = &transport(&s).send(vec![put_cmd("a", "n1", json!({}))]).await[0];
    let reason = assert_retry(o, Some(500));
    assert!(reason.contains("injected_fault"), "{reason}");
    assert!(matches!(o, Outcome::Retry { retry_after: None, .. }));
}

async fn test_413_splits_the_batch_in_halves(b: Backend) {
    let s = b.start_with(|c| c.with_max_batch(2)).await;
    let batch: Vec<OutgoingCommand> =
        (0..5).map(|i| put_cmd(&format!("c{i}"), &format!("n{i}"), json!({"i": i}))).collect();
    let outcomes = transport(&s).send(batch).await;
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })), "{outcomes:?}");
    let log: Value = s.http.get(s.url("/v1/_log")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["command_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4"]);
    // 5 -> 413, 2 ok, 3 -> 413, 1 ok, 2 ok.
    assert_eq!(s.stats().await["totals"]["requests"], 5);
}

async fn test_single_command_too_large_is_rejected(b: Backend) {
    let s = b
        .start_with(|mut c| {
            c.max_body_bytes = 2048;
            c
        })
        .await;
    let outcomes = transport(&s)
        .send(vec![put_cmd("small", "n1", json!({})), put_cmd("huge", "n2", json!({"blob": "x".repeat(8192)}))])
        .await;
    assert!(matches!(outcomes[0], Outcome::Applied { .. }), "{outcomes:?}");
    assert!(matches!(&outcomes[1], Outcome::Rejected { code, .. } if code == "payload_too_large"), "{outcomes:?}");
}

async fn test_batches_over_max_are_chunked(b: Backend) {
    let s = b.start().await;
    let batch: Vec<OutgoingCommand> =
        (0..150).map(|i| put_cmd(&format!("c{i}"), &format!("n{i}"), json!({}))).collect();
    let outcomes = transport(&s).send(batch).await;
    assert_eq!(outcomes.len(), 150);
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })));
    assert_eq!(s.stats().await["totals"]["requests"], 2);
}

#[tokio::test]
async fn test_connection_refused_is_offline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = transport_for(&format!("http://{addr}"), ALICE);
    assert_eq!(
        t.send(vec![put_cmd("a", "n1", json!({})), put_cmd("b", "n2", json!({}))]).await,
        vec![Outcome::Offline, Outcome::Offline]
    );
    assert_eq!(t.pull(None, 10).await, PullOutcome::Offline);
}

async fn test_reset_is_retry_and_nothing_applied(b: Backend) {
    let s = b.start().await;
    s.set_faults("reset=1").await;
    let reason = assert_retry(&transport(&s).send(vec![put_cmd("a", "n1", json!({}))]).await[0], None);
    assert!(reason.contains("connection lost"), "{reason}");
    assert!(s.doc("ws-1", "notes", "n1").await.is_none());
}

async fn test_drop_after_commit_is_retry_then_resend_applies_once(b: Backend) {
    let s = b.start().await;
    s.set_faults("drop_after_commit=1#1").await;
    let t = transport(&s);
    let c = out("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "gadget", "qty": 2}]}), &["order:o1"]);
    assert_retry(&t.send(vec![c.clone()]).await[0], None);
    let second = t.send(vec![c]).await;
    assert!(matches!(&second[0], Outcome::Applied { result, .. } if result["order_id"] == "o1"), "{second:?}");
    assert_eq!(s.stock("gadget").await, 3);
    assert_eq!(s.stats().await["keys"]["ws-1/alice/key-o1"], json!({"applied": 1, "duplicates": 1}));
}

#[tokio::test]
async fn test_timeout_is_retry() {
    let url = tiny_server(axum::Router::new().route(
        "/v1/commands",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    ))
    .await;
    let t = HttpTransport::new(
        HttpConfig::new(url, "ws-1").with_request_timeout(Duration::from_millis(300)),
        Arc::new(StaticToken::new("t")),
    )
    .unwrap();
    let reason = assert_retry(&t.send(vec![put_cmd("a", "n1", json!({}))]).await[0], None);
    assert!(reason.contains("timed out"), "{reason}");
}

#[tokio::test]
async fn test_html_502_page_is_retry() {
    let url = junk_server(StatusCode::BAD_GATEWAY, "text/html", "<html><body>502 Bad Gateway</body></html>").await;
    let t = transport_for(&url, "t");
    let reason = assert_retry(&t.send(vec![put_cmd("a", "n1", json!({}))]).await[0], Some(502));
    assert_eq!(reason, "HTTP 502");
}

#[tokio::test]
async fn test_garbage_200_body_is_retry_never_applied() {
    for body in [
        "<html>hello</html>",
        r#"{"results": [{"id": "a", "status": "appl"#,
        r#"{"results": []}"#,
        r#"{"results": [{"id": "zzz", "status": "applied"}]}"#,
        r#"{"results": [{"id": "a", "status": "applied", "changes": [{"collection": "c", "id": "x", "version": 1}]}]}"#,
        "",
    ] {
        let url = junk_server(StatusCode::OK, "application/json", body).await;
        let t = transport_for(&url, "t");
        let outcomes = t.send(vec![put_cmd("a", "n1", json!({}))]).await;
        assert_eq!(outcomes.len(), 1);
        assert_retry(&outcomes[0], Some(200));
    }
}

#[tokio::test]
async fn test_unknown_status_for_one_command_is_retry_for_that_one() {
    let url = junk_server(
        StatusCode::OK,
        "application/json",
        r#"{"results": [{"id": "a", "status": "applied", "result": 1}, {"id": "b", "status": "teleported"}]}"#,
    )
    .await;
    let outcomes =
        transport_for(&url, "t").send(vec![put_cmd("a", "n1", json!({})), put_cmd("b", "n2", json!({}))]).await;
    assert_eq!(outcomes[0], Outcome::applied(json!(1)));
    let reason = assert_retry(&outcomes[1], None);
    assert!(reason.contains("teleported"));
}

#[tokio::test]
async fn test_huge_body_is_retry() {
    let big: &'static str = Box::leak("x".repeat(64 * 1024).into_boxed_str());
    let url = junk_server(StatusCode::OK, "application/json", big).await;
    let mut config = HttpConfig::new(url, "ws-1");
    config.max_response_bytes = 1024;
    let t = HttpTransport::new(config, Arc::new(StaticToken::new("t"))).unwrap();
    let reason = assert_retry(&t.send(vec![put_cmd("a", "n1", json!({}))]).await[0], Some(200));
    assert!(reason.contains("larger than"), "{reason}");
}

async fn test_pull_pages_through_the_change_feed(b: Backend) {
    let s = b.start().await;
    let t = transport(&s);
    let batch: Vec<OutgoingCommand> =
        (0..4).map(|i| put_cmd(&format!("c{i}"), &format!("n{i}"), json!({"i": i}))).collect();
    t.send(batch).await;
    t.send(vec![out("d", "delete", json!({"collection": "notes", "id": "n0"}), &[])]).await;
    let mut cursor = None;
    let mut all = Vec::new();
    loop {
        let page = match t.pull(cursor.clone(), 3).await {
            PullOutcome::Page(p) => p,
            other => panic!("{other:?}"),
        };
        all.extend(page.changes);
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(all.len(), 2 + 4 + 1);
    assert_eq!(all[0].collection, "products");
    assert_eq!(all[6], DocChange { collection: "notes".into(), id: "n0".into(), version: 2, doc: None });
    assert_eq!(cursor, Some(s.cursor(7)));
}

async fn test_pull_unauthorized_and_forbidden(b: Backend) {
    let s = b.start().await;
    assert_eq!(transport_for(&s.server.base_url(), "bad").pull(None, 10).await, PullOutcome::Unauthorized);
    match transport_for(&s.server.base_url(), BOB).pull(None, 10).await {
        PullOutcome::Failed(reason) => assert!(reason.contains("403"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

async fn test_listen_nudges_on_changes(b: Backend) {
    let s = b.start().await;
    let t = Arc::new(transport(&s));
    let count = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let (c, n) = (count.clone(), notify.clone());
    let listener = t.clone();
    let task = tokio::spawn(async move {
        listener
            .listen(Arc::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                n.notify_one();
            }))
            .await
    });
    // The initial nudge on connect.
    tokio::time::timeout(Duration::from_secs(5), notify.notified()).await.unwrap();
    t.send(vec![put_cmd("a", "n1", json!({}))]).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while count.load(Ordering::SeqCst) < 2 {
            notify.notified().await;
        }
    })
    .await
    .unwrap();
    // The server going away ends the listen with "reopen".
    let TestServer { server, .. } = s;
    server.shutdown().await;
    assert!(tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap());
}

#[tokio::test]
async fn test_invalid_base_url_is_an_error() {
    let tokens: Arc<dyn TokenProvider> = Arc::new(StaticToken::new("t"));
    for bad in ["not a url", "ftp://example.com", "mailto:x@example.com"] {
        let err = HttpTransport::new(HttpConfig::new(bad, "ws-1"), tokens.clone()).unwrap_err();
        assert!(matches!(err, HttpError::InvalidUrl(_)), "{bad}: {err:?}");
    }
    // https builds (TLS set up with compiled-in roots), no request made.
    assert!(HttpTransport::new(HttpConfig::new("https://sync.example.invalid/base/", "ws-1"), tokens).is_ok());
}

async fn test_base_url_with_path_prefix(b: Backend) {
    let s = b.start().await;
    // A trailing slash or none both work.
    let t = transport_for(&format!("{}/", s.server.base_url()), ALICE);
    assert!(matches!(t.send(vec![put_cmd("a", "n1", json!({}))]).await[0], Outcome::Applied { .. }));
}

#[test]
fn test_token_never_in_debug_output() {
    let t = StaticToken::new("super-secret");
    assert!(!format!("{t:?}").contains("super-secret"));
    let transport = HttpTransport::new(HttpConfig::new("http://127.0.0.1:9", "ws-1"), Arc::new(t)).unwrap();
    assert!(!format!("{transport:?}").contains("super-secret"));
}

#[test]
fn test_parse_retry_after_both_forms() {
    let now = SystemTime::now();
    assert_eq!(outbox::http::parse_retry_after("7", now), Some(Duration::from_secs(7)));
    let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
    let d = outbox::http::parse_retry_after(&date, now).unwrap();
    assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(29));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_arbitrary_bytes_never_applied(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let batch = vec![put_cmd("a", "n1", json!({}))];
        if let Ok(outcomes) = parse_batch_response(&batch, &body) {
            prop_assert_eq!(outcomes.len(), 1);
        }
    }

    #[test]
    fn prop_json_shaped_answers_keep_count_and_ids(
        statuses in proptest::collection::vec(prop_oneof![
            Just("applied"), Just("duplicate"), Just("rejected"), Just("conflict"), Just("skipped"), Just("weird")
        ], 0..4),
        ids_match in any::<bool>(),
    ) {
        let batch: Vec<OutgoingCommand> = (0..3).map(|i| put_cmd(&format!("c{i}"), "n", json!({}))).collect();
        let results: Vec<Value> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"id": if ids_match { format!("c{i}") } else { format!("x{i}") }, "status": s}))
            .collect();
        let body = serde_json::to_vec(&json!({"results": results})).unwrap();
        match parse_batch_response(&batch, &body) {
            Ok(outcomes) => {
                prop_assert!(ids_match && statuses.len() == 3);
                for (o, s) in outcomes.iter().zip(&statuses) {
                    let applied = matches!(o, Outcome::Applied { .. });
                    prop_assert_eq!(applied, *s == "applied" || *s == "duplicate");
                }
            }
            Err(_) => prop_assert!(!ids_match || statuses.len() != 3),
        }
    }
}

backend_tests!(
    test_applied_maps_result_and_changes,
    test_duplicate_maps_to_applied_with_the_stored_result,
    test_rejected_and_conflict_and_skipped,
    test_unknown_mutator_is_rejected,
    test_401_refreshes_once_then_unauthorized,
    test_401_then_refreshed_token_applies,
    test_token_provider_errors_map_to_outcomes,
    test_403_is_forbidden_for_every_command,
    test_429_retry_after_seconds,
    test_503_retry_after_http_date,
    test_500_is_retry_with_status,
    test_413_splits_the_batch_in_halves,
    test_single_command_too_large_is_rejected,
    test_batches_over_max_are_chunked,
    test_reset_is_retry_and_nothing_applied,
    test_drop_after_commit_is_retry_then_resend_applies_once,
    test_pull_pages_through_the_change_feed,
    test_pull_unauthorized_and_forbidden,
    test_listen_nudges_on_changes,
    test_base_url_with_path_prefix,
);
