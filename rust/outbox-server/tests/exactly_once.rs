//! The whole path: the real engine (SQLite on the device side) draining through
//! HttpTransport into the real server (SQLite on the server side) under injected faults.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{Config, EnqueueRequest, MutatorSpec, Outbox, Resolution, RetryPolicy, Settlement};
use serde_json::{json, Value};

fn device(dir: &tempfile::TempDir, name: &str, base_url: &str, token: &str, user: &str) -> Outbox {
    let transport = HttpTransport::new(
        HttpConfig::new(base_url, "ws-1").with_request_timeout(Duration::from_secs(5)),
        Arc::new(StaticToken::new(token)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join(name), user, "ws-1").with_transport(Arc::new(transport));
    config.retry =
        RetryPolicy { base: Duration::from_millis(10), cap: Duration::from_secs(2), jitter: 0.3, max_attempts: 1000 };
    let ob = Outbox::open(config).unwrap();
    for m in ["put", "createOrder"] {
        ob.register_mutator(m, MutatorSpec::default()).unwrap();
    }
    ob
}

/// Drains `n` commands over `lanes` keys through `spec`; asserts exactly-once, per-key
/// order and Retry-After, and returns the server's stats.
async fn drain_under_faults(b: &Backend, n: usize, lanes: usize, spec: &str, seed: u64) -> Value {
    let s = b.start_with(|c| c.with_faults(spec).unwrap().with_seed(seed)).await;
    let dir = tempfile::tempdir().unwrap();
    let ob = device(&dir, "device.db", &s.server.base_url(), ALICE, "alice");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let lane = i % lanes;
        let args = json!({"collection": "notes", "id": format!("lane{lane}-{i}"), "doc": {"i": i}});
        ids.push(ob.enqueue(EnqueueRequest::new("put", args.to_string()).keys([format!("lane:{lane}")])).unwrap());
    }
    let mut key_of = HashMap::new();
    for id in &ids {
        let settled = tokio::time::timeout(Duration::from_secs(300), ob.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
        key_of.insert(ob.command(id).unwrap().idempotency_key, id.to_string());
    }
    let elapsed = started.elapsed();

    let stats = s.stats().await;
    assert_eq!(stats["totals"]["applied"], n as u64, "{stats}");
    for key in key_of.keys() {
        assert_eq!(stats["keys"][format!("ws-1/alice/{key}")]["applied"], 1, "{key} applied more or less than once");
    }
    // Per-key order as enqueued, from the server's apply log.
    let log: Value = s.http.get(s.url("/v1/_log")).send().await.unwrap().json().await.unwrap();
    let mut per_lane: HashMap<String, Vec<String>> = HashMap::new();
    for e in log["entries"].as_array().unwrap() {
        let lane = e["keys"][0].as_str().unwrap().to_string();
        per_lane.entry(lane).or_default().push(e["command_id"].as_str().unwrap().to_string());
    }
    for lane in 0..lanes {
        let expected: Vec<String> = ids.iter().skip(lane).step_by(lanes).map(|id| id.to_string()).collect();
        assert_eq!(per_lane[&format!("lane:{lane}")], expected, "lane {lane} out of order");
    }
    let ra = &stats["totals"]["retry_after"];
    assert_eq!(ra["early"], 0, "an attempt came before Retry-After allowed: {ra}");
    eprintln!(
        "fault run: {n} commands / {lanes} keys in {:.1}s ({:.0} cmd/s); applied {}, duplicates prevented {}, \
         faults {}, requests {}, Retry-After sent {} checked {} early {} (max early {} ms, max late {} ms)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        stats["totals"]["applied"],
        stats["totals"]["duplicates"],
        stats["totals"]["faults"],
        stats["totals"]["requests"],
        ra["sent"],
        ra["checked"],
        ra["early"],
        ra["max_early_ms"],
        ra["max_late_ms"],
    );
    ob.close();
    stats
}

async fn test_exactly_once_under_faults_small(b: Backend) {
    let stats = drain_under_faults(&b, 300, 15, "500=0.2,429=0.1:1s,reset=0.05,drop_after_commit=0.1", 7).await;
    // The faults really happened, including answers lost after commit.
    let faults = &stats["totals"]["faults"];
    for kind in ["500", "429", "reset", "drop_after_commit"] {
        assert!(faults[kind].as_u64().unwrap_or(0) > 0, "no {kind} fault injected: {faults}");
    }
    assert!(stats["totals"]["duplicates"].as_u64().unwrap() > 0);
}

/// The full run (2,000 commands over 50 keys, about 20 s). `cargo test -p
/// outbox-server --test exactly_once -- --nocapture` prints the figures.
async fn test_exactly_once_under_faults_2000(b: Backend) {
    drain_under_faults(&b, 2000, 50, "500=0.2,429=0.1:1s,reset=0.05,drop_after_commit=0.1", 2026).await;
}

async fn test_throughput_without_faults(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = device(&dir, "device.db", &s.server.base_url(), ALICE, "alice");
    let n = 500;
    let started = Instant::now();
    let ids: Vec<_> = (0..n)
        .map(|i| {
            let args = json!({"collection": "notes", "id": format!("n{i}"), "doc": {"i": i}});
            ob.enqueue(EnqueueRequest::new("put", args.to_string()).keys([format!("lane:{}", i % 20)])).unwrap()
        })
        .collect();
    for id in &ids {
        let settled = tokio::time::timeout(Duration::from_secs(120), ob.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "drain: {n} commands in {:.2}s = {:.0} cmd/s against the loopback server",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(s.stats().await["totals"]["applied"], n);
    ob.close();
}

async fn test_conflict_round_trip_between_two_devices(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = device(&dir, "a.db", &s.server.base_url(), ALICE, "alice");
    let b = device(&dir, "b.db", &s.server.base_url(), CAROL, "carol");
    // Both create the same note, each expecting it not to exist yet.
    let args = |text: &str, base: i64| {
        json!({"collection": "notes", "id": "shared", "doc": {"text": text}, "base_version": base}).to_string()
    };
    let ia = a.enqueue(EnqueueRequest::new("put", args("from a", 0)).keys(["notes:shared"])).unwrap();
    let sa = tokio::time::timeout(Duration::from_secs(10), a.wait_for(&ia)).await.unwrap().unwrap();
    assert!(matches!(sa, Settlement::Succeeded { .. }), "{sa:?}");
    let ib = b.enqueue(EnqueueRequest::new("put", args("from b", 0)).keys(["notes:shared"])).unwrap();
    let sb = tokio::time::timeout(Duration::from_secs(10), b.wait_for(&ib)).await.unwrap().unwrap();
    match sb {
        Settlement::Conflict { server_snapshot } => {
            assert_eq!(server_snapshot["version"], 1);
            assert_eq!(server_snapshot["doc"], json!({"text": "from a"}));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The loser merges and retries on top of the server's version.
    b.resolve_conflict(&ib, Resolution::RetryWith(args("a and b", 1))).unwrap();
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let cmd = b.command(&ib).unwrap();
            if let Some(Settlement::Succeeded { result }) = cmd.settlement {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(settled["version"], 2);
    assert_eq!(s.doc("ws-1", "notes", "shared").await.unwrap(), json!({"text": "a and b"}));
    a.close();
    b.close();
}

async fn test_token_is_never_written_to_the_device_database(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = device(&dir, "device.db", &s.server.base_url(), ALICE, "alice");
    let order = json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 1}]}).to_string();
    let id = ob.enqueue(EnqueueRequest::new("createOrder", order).keys(["order:o1"])).unwrap();
    let settled = tokio::time::timeout(Duration::from_secs(10), ob.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }));
    let scan = |when: &str| {
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(ALICE.len()).any(|w| w == ALICE.as_bytes()), "token in {path:?} {when}");
            files += 1;
        }
        files
    };
    // While open (database, WAL and shared-memory files) and after closing.
    assert!(scan("while open") >= 2);
    ob.close();
    scan("after close");
}

backend_tests!(
    multi_thread;
    test_exactly_once_under_faults_small,
    test_exactly_once_under_faults_2000,
    test_throughput_without_faults,
    test_conflict_round_trip_between_two_devices,
    test_token_is_never_written_to_the_device_database,
);
