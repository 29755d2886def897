//! Numbers round-trip bit for bit: every finite f64 in a document survives enqueue, the
//! device's store, the wire, the server's storage (SQLite and PostgreSQL) and the pull
//! back onto a second device. The values come from proptest's f64 strategies (normal,
//! subnormal, zero, both signs, every exponent); each run prints its seed.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{Config, EnqueueRequest, MutatorSpec, OpKind, Outbox, Query, Settlement};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

/// Random values per backend run (the independent check used 2,014).
const CASES: usize = 2_000;

fn random_f64s(n: usize) -> Vec<f64> {
    let seed: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
    eprintln!("numbers: {n} random f64 values, seed {}", seed.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let config = proptest::test_runner::Config { cases: n as u32, ..Default::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let strategy = prop::num::f64::POSITIVE
        | prop::num::f64::NEGATIVE
        | prop::num::f64::NORMAL
        | prop::num::f64::SUBNORMAL
        | prop::num::f64::ZERO;
    let mut out: Vec<f64> = (0..n)
        .filter_map(|_| strategy.new_tree(&mut runner).ok().map(|t| t.current()))
        .filter(|x: &f64| x.is_finite())
        .collect();
    // The values the issue saw change, and the extremes.
    out.extend([123456789.12345679, 3.7826751235084986e-121, f64::MAX, f64::MIN_POSITIVE, 5e-324, -0.0, 0.1 + 0.2]);
    out
}

fn device(dir: &tempfile::TempDir, name: &str, base_url: &str, online: bool) -> Outbox {
    let transport = HttpTransport::new(HttpConfig::new(base_url, "ws-1"), Arc::new(StaticToken::new(ALICE))).unwrap();
    let mut config = Config::new(dir.path().join(name), "alice", "ws-1").with_transport(Arc::new(transport));
    config.start_online = online;
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("put", MutatorSpec::default()).unwrap();
    ob
}

fn bits(v: &Value) -> Option<u64> {
    v.as_f64().map(f64::to_bits)
}

/// The value of `doc.v` as each place holds it, compared bit for bit with what was sent.
fn check(place: &str, sent: &[f64], got: &[Option<u64>]) {
    let wrong: Vec<String> = sent
        .iter()
        .zip(got)
        .filter(|(x, g)| Some(x.to_bits()) != **g && !(**x == 0.0 && g.is_some_and(|b| f64::from_bits(b) == 0.0)))
        .map(|(x, g)| format!("{x:e} came back as {:?}", g.map(f64::from_bits)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{place}: {} of {} value(s) changed, e.g. {:?}",
        wrong.len(),
        sent.len(),
        &wrong[..wrong.len().min(5)]
    );
}

async fn test_every_f64_round_trips_device_server_device(b: Backend) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let values = random_f64s(CASES);
    let a = device(&dir, "a.db", &s.server.base_url(), false);
    let mut ids = Vec::with_capacity(values.len());
    for (i, x) in values.iter().enumerate() {
        let doc = json!({ "v": x });
        let args = json!({"collection": "nums", "id": format!("n{i}"), "doc": doc});
        let req = EnqueueRequest::new("put", args.to_string()).op("nums", format!("n{i}"), OpKind::Insert(doc));
        ids.push(a.enqueue(req).unwrap());
    }
    // 1. The device's optimistic store.
    let local: Vec<Option<u64>> =
        (0..values.len()).map(|i| a.get("nums", &format!("n{i}")).unwrap().and_then(|d| bits(&d.value["v"]))).collect();
    check("device store (optimistic)", &values, &local);
    // 2. The queued args.
    let queued: Vec<Option<u64>> = ids
        .iter()
        .map(|id| serde_json::from_str::<Value>(&a.command(id).unwrap().args).ok().and_then(|v| bits(&v["doc"]["v"])))
        .collect();
    check("queued args", &values, &queued);
    // 3. The server's storage, after the wire.
    a.set_online(true).unwrap();
    for id in &ids {
        let settled = tokio::time::timeout(Duration::from_secs(120), a.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    }
    let mut server = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        server.push(s.doc("ws-1", "nums", &format!("n{i}")).await.and_then(|d| bits(&d["v"])));
    }
    check("server storage", &values, &server);
    // 4. The synced copy on the first device, and a second device that pulls.
    let synced = |ob: &Outbox| -> Vec<Option<u64>> {
        let mut docs = ob.list("nums", &Query::all()).unwrap();
        docs.sort_by_key(|d| d.id[1..].parse::<usize>().unwrap_or(usize::MAX));
        docs.iter().map(|d| bits(&d.value["v"])).collect()
    };
    let b_dev = device(&dir, "b.db", &s.server.base_url(), true);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while b_dev.count("nums", &Query::all()).unwrap() < values.len() as u64 {
        assert!(std::time::Instant::now() < deadline, "the second device did not pull every document");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check("second device (pulled)", &values, &synced(&b_dev));
    check("first device (synced)", &values, &synced(&a));
    eprintln!("numbers: {} values round-tripped on {:?}", values.len(), s.backend);
}

backend_tests!(multi_thread; test_every_f64_round_trips_device_server_device);
