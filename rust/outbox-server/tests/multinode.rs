//! Several server nodes over one PostgreSQL database (issue 11): exactly once when two
//! nodes race on one idempotency key, a change feed without gaps under concurrent
//! writers on both nodes, and stream nudges that cross nodes. PostgreSQL only: each test
//! passes after printing `SKIPPED <test>` when OUTBOX_TEST_DATABASE_URL is unset
//! (and fails instead under OUTBOX_TEST_REQUIRE_POSTGRES=1).

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use outbox_server::Server;
use serde_json::{json, Value};

/// Two nodes on the same fresh schema (seeded once), or `None` without a database.
async fn two_nodes() -> Option<(TestServer, TestServer)> {
    let Some(backend) = Backend::postgres() else {
        skip_postgres();
        return None;
    };
    let a = backend.start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(backend.config(&dir)).await.unwrap();
    let b = TestServer { server, dir, backend, http: client() };
    assert_ne!(a.server.addr(), b.server.addr());
    Some((a, b))
}

fn adjust(key: &str, delta: i64) -> Value {
    cmd(key, "adjustStock", json!({"product_id": "widget", "delta": delta}), &["product:widget"])
}

async fn results(node: &TestServer, commands: Vec<Value>) -> Vec<Value> {
    let resp = node.post_as(ALICE, "ws-1", commands).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_same_key_to_both_nodes_concurrently_applies_once() {
    let Some((a, b)) = two_nodes().await else { return };
    let n = 40;
    for i in 0..n {
        let c = adjust(&format!("race-{i}"), 1);
        let (ra, rb) = tokio::join!(results(&a, vec![c.clone()]), results(&b, vec![c]));
        let mut statuses = [ra[0]["status"].as_str().unwrap(), rb[0]["status"].as_str().unwrap()];
        statuses.sort();
        assert_eq!(statuses, ["applied", "duplicate"], "{ra:?} {rb:?}");
        // The loser answers with the winner's stored result, not an error.
        assert_eq!(ra[0]["result"], rb[0]["result"]);
        assert_eq!(ra[0]["server_seq"], rb[0]["server_seq"]);
    }
    assert_eq!(a.stock("widget").await, 10 + n);
    let (sa, sb) = (a.stats().await, b.stats().await);
    for i in 0..n {
        let key = format!("ws-1/alice/key-race-{i}");
        let applied =
            sa["keys"][&key]["applied"].as_u64().unwrap_or(0) + sb["keys"][&key]["applied"].as_u64().unwrap_or(0);
        assert_eq!(applied, 1, "{key}");
    }
    let log = a.server.storage().apply_log().await.unwrap();
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for e in &log {
        *per_key.entry(e.idempotency_key.clone()).or_default() += 1;
    }
    assert_eq!(per_key.len(), n as usize);
    assert!(per_key.values().all(|&c| c == 1), "{per_key:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_clients_spread_over_both_nodes_with_resends_apply_exactly_once() {
    let Some((a, b)) = two_nodes().await else { return };
    let nodes = [&a, &b];
    let clients = 8;
    let batches = 6;
    let per_batch = 5;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let urls: Vec<String> = nodes.iter().map(|n| n.url("/v1/commands")).collect();
        let http = client();
        tasks.push(tokio::spawn(async move {
            for k in 0..batches {
                let commands: Vec<Value> = (0..per_batch)
                    .map(|j| put(&format!("c{c}-{k}-{j}"), "notes", &format!("c{c}-{k}-{j}"), json!({"c": c})))
                    .collect();
                let body = json!({ "commands": commands });
                // Every batch goes to one node and is resent to the other at the same
                // time, as after a lost answer and a fail-over.
                let send = |url: String| {
                    let http = http.clone();
                    let body = body.clone();
                    async move {
                        let r = http.post(url).bearer_auth(ALICE).header("x-workspace-id", "ws-1").json(&body).send();
                        r.await.unwrap().json::<Value>().await.unwrap()
                    }
                };
                let first = (c + k) % 2;
                let (x, y) = tokio::join!(send(urls[first].clone()), send(urls[1 - first].clone()));
                for (rx, ry) in x["results"].as_array().unwrap().iter().zip(y["results"].as_array().unwrap()) {
                    let mut s = [rx["status"].as_str().unwrap(), ry["status"].as_str().unwrap()];
                    s.sort();
                    assert_eq!(s, ["applied", "duplicate"]);
                    assert_eq!(rx["result"], ry["result"]);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = clients * batches * per_batch;
    let (sa, sb) = (a.stats().await, b.stats().await);
    let applied = sa["totals"]["applied"].as_u64().unwrap() + sb["totals"]["applied"].as_u64().unwrap();
    let duplicates = sa["totals"]["duplicates"].as_u64().unwrap() + sb["totals"]["duplicates"].as_u64().unwrap();
    assert_eq!((applied, duplicates), (total as u64, total as u64));
    assert!(sa["totals"]["applied"].as_u64().unwrap() > 0 && sb["totals"]["applied"].as_u64().unwrap() > 0);
    let log: Value = b.http.get(b.url("/v1/_log")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["entries"].as_array().unwrap().len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_change_feed_has_no_gaps_under_concurrent_writers_on_both_nodes() {
    let Some((a, b)) = two_nodes().await else { return };
    let (writers, per_writer) = (4, 40);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let url = if w % 2 == 0 { a.url("/v1/commands") } else { b.url("/v1/commands") };
        let http = client();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                // Orders touch a shared product too: transactions of different lengths.
                let c = if i % 4 == 0 {
                    cmd(&format!("w{w}-{i}"), "adjustStock", json!({"product_id": "gadget", "delta": 1}), &[])
                } else {
                    put(&format!("w{w}-{i}"), "notes", &format!("w{w}-{i}"), json!({"w": w, "i": i}))
                };
                let body = json!({ "commands": [c] });
                let r = http.post(&url).bearer_auth(ALICE).header("x-workspace-id", "ws-1").json(&body).send().await;
                assert_eq!(r.unwrap().status(), 200);
            }
        }));
    }
    // A reader follows the feed on node b while the writers run, from its own cursor.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = b.cursor(0);
    let mut idle_after_done = 0;
    loop {
        let page: Value = b.changes(ALICE, "ws-1", Some(&cursor), 7).await.json().await.unwrap();
        let got = page["changes"].as_array().unwrap().len();
        let head = b.server.storage().head_seq("ws-1").await.unwrap();
        let next = seq_of(page["cursor"].as_str().unwrap());
        let from = seq_of(&cursor);
        assert!(next >= from + got as i64);
        seen.extend(
            page["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{}:{}@{}", c["collection"], c["id"], c["version"])),
        );
        cursor = page["cursor"].as_str().unwrap().to_string();
        let done = tasks.iter().all(|t| t.is_finished());
        if done && got == 0 && next == head {
            idle_after_done += 1;
            if idle_after_done > 1 {
                break;
            }
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The live reader's pages, put together, must be the whole log in order: a commit
    // that landed after the reader's cursor passed its seq would be missing.
    let all = b.server.storage().changes_after("ws-1", 0, 10_000).await.unwrap().changes;
    let seqs: Vec<i64> = all.iter().map(|c| c.seq).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the change log itself has a gap");
    let full: Vec<String> = all.iter().map(|c| format!("\"{}\":\"{}\"@{}", c.collection, c.id, c.version)).collect();
    assert_eq!(seen, full, "the live reader missed or reordered a change");
    assert_eq!(seqs.len(), 2 + writers * per_writer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_stream_on_one_node_is_nudged_by_a_commit_on_the_other() {
    let Some((a, b)) = two_nodes().await else { return };
    let mut resp =
        b.http.get(b.url("/v1/stream")).bearer_auth(ALICE).header("x-workspace-id", "ws-1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while !text.contains(&b.nudge_data(2)) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Another workspace's commit on node a does not nudge ws-1; ws-1's does.
    assert_eq!(a.post_as(BOB, "ws-2", vec![put("b1", "notes", "n", json!({}))]).await.status(), 200);
    results(&a, vec![put("c1", "notes", "n1", json!({}))]).await;
    while !text.contains(&b.nudge_data(3)) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains(&b.nudge_data(1)), "{text}");
    // Both nodes serve one database: one epoch.
    assert_eq!(a.server.storage().epoch(), b.server.storage().epoch());
}
