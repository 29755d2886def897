//! The demo binary end to end: real child processes, real databases, the real server.

use std::process::Output;

use outbox_server::{Server, ServerConfig};
use serde_json::Value;

fn demo(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_outbox-demo")).args(args).output().expect("the demo binary runs")
    // test harness: a missing binary is a build error
}

fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("last line is not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

fn assert_clean(v: &Value, sales: u64) {
    assert_eq!(v["sales"], sales, "{v}");
    assert_eq!(v["applied"], sales, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(v["stock_mismatches"], 0, "{v}");
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn kill_minus_nine_loses_and_doubles_nothing() {
    let out = demo(&["--crash", "--orders", "80", "--registers", "2", "--seed", "7", "--json"]);
    let v = summary(&out);
    assert!(out.status.success(), "{v}");
    assert_clean(&v, 160);
    assert!(v["restarts"].as_u64().unwrap_or(0) >= 1, "at least one kill happened: {v}");
}

#[test]
fn offline_half_the_time_with_heavy_faults_still_verifies() {
    let out = demo(&[
        "--orders",
        "40",
        "--offline-ratio",
        "0.5",
        "--faults",
        "500=0.2,503=0.1:1s,reset=0.1,drop_after_commit=0.2",
        "--seed",
        "11",
        "--json",
    ]);
    let v = summary(&out);
    assert!(out.status.success(), "{v}");
    assert_clean(&v, 120);
    assert!(v["deduplicated"].as_u64().unwrap_or(0) >= 1, "answers dropped after commit were resent: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_against_a_separately_started_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(ServerConfig::new(dir.path().join("s.db")).with_dev(true).with_admin(true))
        .await
        .expect("server starts");
    let url = server.base_url();
    let out =
        tokio::task::spawn_blocking(move || demo(&["--server", &url, "--orders", "20", "--registers", "2", "--json"]))
            .await
            .expect("demo thread");
    let v = summary(&out);
    assert!(out.status.success(), "{v}");
    assert_clean(&v, 40);
    let stats = server.stats();
    assert!(stats.totals.applied >= 40, "the 40 sales and the restocks: {:?}", stats.totals);
    assert!(stats.keys.values().all(|k| k.applied <= 1), "no key applied twice");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_admin_endpoints_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(ServerConfig::new(dir.path().join("s.db")).with_dev(true)).await.expect("server starts");
    let url = server.base_url();
    let out =
        tokio::task::spawn_blocking(move || demo(&["--server", &url, "--orders", "5"])).await.expect("demo thread");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--admin"), "{stderr}");
    server.shutdown().await;
}

#[test]
fn bad_settings_are_refused_before_anything_starts() {
    for args in
        [&["--offline-ratio", "2"][..], &["--registers", "0"], &["--faults", "teapot=1"], &["--server", "ftp://x"]]
    {
        let out = demo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("outbox-demo:"), "{args:?}");
    }
}
