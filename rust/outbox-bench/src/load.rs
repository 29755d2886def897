//! `outbox-bench load`: many simulated clients pushing command batches to one or more
//! reference-server nodes on loopback, for a bounded time, then an exactly-once check.
//!
//! The nodes run in this process on `127.0.0.1:0`: one over a fresh SQLite file, or any
//! number over one PostgreSQL database (`--database-url`, a fresh schema per run so runs
//! never mix). Client `c` is user `u<c>` in workspace `w<c mod workspaces>` and sends
//! batches of `put`s with fresh idempotency keys, round robin over the nodes. Every
//! `--resend-every`th batch (default 5th) is sent a second time to the next node, as a client does
//! after a lost answer; every command of the resend must come back `duplicate`.
//!
//! Bounded twice: each client stops at `--secs` or after `--max-batches` batches, and
//! each request has a 30 s timeout. At the end the shared apply log must hold every
//! idempotency key a client saw acknowledged exactly once, and no key twice.
//!
//! Prints one JSON line: `{"bench":"load","system":"sqlite"|"postgres","nodes","clients",
//! "batch","n" (commands applied),"ops_per_s" (applied per second),"requests",
//! "requests_per_s","p50_ms","p99_ms" (per request, resends included),"total_ms","errors",
//! "resent","lost","applied_twice","exactly_once","rss_mb"}`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use outbox_server::storage::PostgresConfig;
use outbox_server::{RunningServer, Server, ServerConfig};
use serde_json::{json, Value};

use crate::measure::rss_mb;

/// Options of `outbox-bench load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Simulated clients, each with one request in flight at a time.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Server nodes started in this process on 127.0.0.1; more than one needs
    /// --database-url.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// PostgreSQL URL (127.0.0.1 only); without it the node runs on a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// How long the clients send, in seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Most batches per client (a bound on count as well as on time).
    #[arg(long, default_value_t = 100_000)]
    max_batches: usize,
    /// Commands per batch.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Workspaces the clients are spread over.
    #[arg(long, default_value_t = 50)]
    workspaces: usize,
    /// Every Nth batch is resent to the next node (0: never).
    #[arg(long, default_value_t = 5)]
    resend_every: usize,
    /// Pooled PostgreSQL connections per node.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
}

/// What one client did.
#[derive(Default)]
struct ClientReport {
    latencies: Vec<Duration>,
    requests: u64,
    errors: u64,
    resent: u64,
    /// Keys answered `applied` or `duplicate` on their first send.
    acked: Vec<String>,
}

/// `outbox-bench load`.
pub fn run(args: &LoadArgs) -> i32 {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: cannot start a runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run_inner(args)) {
        Ok((line, ok)) => {
            println!("{line}");
            i32::from(!ok)
        }
        Err(e) => {
            eprintln!("load: {e}");
            1
        }
    }
}

async fn start_nodes(args: &LoadArgs, dir: &tempfile::TempDir) -> Result<(Vec<RunningServer>, &'static str), String> {
    let mut nodes = Vec::new();
    let system = match &args.database_url {
        None => {
            if args.nodes != 1 {
                return Err("more than one node needs --database-url (SQLite is one node)".into());
            }
            let config = ServerConfig::new(dir.path().join("server.db")).with_admin(true);
            nodes.push(Server::start(config).await.map_err(|e| e.to_string())?);
            "sqlite"
        }
        Some(url) => {
            let local = PostgresConfig::new(url.clone()).is_local().map_err(|e| e.to_string())?;
            if !local {
                return Err("the load test only talks to a database on this machine (127.0.0.1, localhost)".into());
            }
            let schema = format!("load_{}_{}", std::process::id(), fastrand::u32(..));
            let pg = PostgresConfig::new(url.clone()).with_schema(schema).with_pool_size(args.pool_size);
            for _ in 0..args.nodes.max(1) {
                let config = ServerConfig::new(dir.path().join("unused.db")).with_admin(true).with_postgres(pg.clone());
                nodes.push(Server::start(config).await.map_err(|e| e.to_string())?);
            }
            "postgres"
        }
    };
    for c in 0..args.clients {
        let ws = format!("w{}", c % args.workspaces.max(1));
        nodes[0].add_user(&format!("u{c}"), &format!("tok-{c}"), &[&ws]).await.map_err(|e| e.to_string())?;
    }
    Ok((nodes, system))
}

/// Sends `body` once; `Ok(results)` for a 200 with one result per command.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    ws: &str,
    body: &Value,
    expected: usize,
) -> Result<Vec<Value>, String> {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("x-workspace-id", ws)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("HTTP {}", resp.status()));
    }
    let v: Value = resp.json().await.map_err(|e| format!("unreadable answer: {e}"))?;
    match v["results"].as_array() {
        Some(r) if r.len() == expected => Ok(r.clone()),
        _ => Err("wrong number of results".into()),
    }
}

async fn client(
    c: usize,
    urls: Arc<Vec<String>>,
    http: reqwest::Client,
    args: LoadArgs,
    deadline: Instant,
) -> ClientReport {
    let token = format!("tok-{c}");
    let ws = format!("w{}", c % args.workspaces.max(1));
    let mut report = ClientReport::default();
    for k in 0..args.max_batches {
        if Instant::now() >= deadline {
            break;
        }
        let keys: Vec<String> = (0..args.batch).map(|j| format!("c{c}-b{k}-{j}")).collect();
        let commands: Vec<Value> = keys
            .iter()
            .map(|key| {
                json!({
                    "id": key, "idempotency_key": key, "mutator": "put", "mutator_version": 1,
                    "args": {"collection": "load", "id": key, "doc": {"client": c, "batch": k, "note": "load test"}},
                    "keys": [format!("load:{key}")],
                })
            })
            .collect();
        let body = json!({ "commands": commands });
        let node = (c + k) % urls.len();
        let started = Instant::now();
        let first = send(&http, &urls[node], &token, &ws, &body, keys.len()).await;
        report.latencies.push(started.elapsed());
        report.requests += 1;
        match first {
            Ok(results) => {
                for (key, r) in keys.iter().zip(&results) {
                    match r["status"].as_str() {
                        Some("applied" | "duplicate") => report.acked.push(key.clone()),
                        _ => report.errors += 1,
                    }
                }
            }
            Err(_) => report.errors += keys.len() as u64,
        }
        if args.resend_every > 0 && k % args.resend_every == args.resend_every - 1 {
            let other = (node + 1) % urls.len();
            let started = Instant::now();
            let again = send(&http, &urls[other], &token, &ws, &body, keys.len()).await;
            report.latencies.push(started.elapsed());
            report.requests += 1;
            report.resent += keys.len() as u64;
            match again {
                Ok(results) => {
                    report.errors += results.iter().filter(|r| r["status"] != "duplicate").count() as u64;
                }
                Err(_) => report.errors += keys.len() as u64,
            }
        }
    }
    report
}

fn percentile(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some((sorted[i].as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
}

async fn run_inner(args: &LoadArgs) -> Result<(String, bool), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (nodes, system) = start_nodes(args, &dir).await?;
    let urls: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| format!("{}/v1/commands", n.base_url())).collect());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.clients)
        .build()
        .map_err(|e| e.to_string())?;
    eprintln!(
        "load: {} clients, {} {system} node(s), batches of {}, {} s",
        args.clients,
        nodes.len(),
        args.batch,
        args.secs
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| tokio::spawn(client(c, urls.clone(), http.clone(), args.clone(), deadline)))
        .collect();
    let mut reports = Vec::with_capacity(tasks.len());
    for t in tasks {
        reports.push(t.await.map_err(|e| format!("client task failed: {e}"))?);
    }
    let total = started.elapsed();

    // Exactly once, from the shared apply log (the database, not a node's memory).
    let log = nodes[0].storage().apply_log().await.map_err(|e| e.to_string())?;
    let mut applied: HashMap<&str, u32> = HashMap::with_capacity(log.len());
    for e in &log {
        *applied.entry(e.idempotency_key.as_str()).or_default() += 1;
    }
    let applied_twice = applied.values().filter(|&&n| n > 1).count();
    let lost = reports.iter().flat_map(|r| &r.acked).filter(|k| !applied.contains_key(k.as_str())).count();
    let node_applied: u64 = nodes.iter().map(|n| n.stats().totals.applied).sum();
    let counters_agree = node_applied == log.len() as u64;
    let exactly_once = applied_twice == 0 && lost == 0 && counters_agree;

    let mut latencies: Vec<Duration> = reports.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let requests: u64 = reports.iter().map(|r| r.requests).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let resent: u64 = reports.iter().map(|r| r.resent).sum();
    let secs = total.as_secs_f64();
    let line = json!({
        "bench": "load",
        "system": system,
        "nodes": nodes.len(),
        "clients": args.clients,
        "batch": args.batch,
        "workspaces": args.workspaces,
        "n": log.len(),
        "ops_per_s": (log.len() as f64 / secs).round(),
        "requests": requests,
        "requests_per_s": (requests as f64 / secs).round(),
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "total_ms": (secs * 1000.0 * 1000.0).round() / 1000.0,
        "errors": errors,
        "resent": resent,
        "lost": lost,
        "applied_twice": applied_twice,
        "exactly_once": exactly_once,
        "rss_mb": rss_mb(),
    });
    for n in nodes {
        n.shutdown().await;
    }
    Ok((line.to_string(), exactly_once && errors == 0))
}

/// The "Load" section of docs/benchmarks.md, from `load` result lines.
pub fn markdown(all: &[Value]) -> String {
    // Lines with a `label` (e.g. "before", "after") compare two builds in one run and get
    // their own table ([`before_after`]); the rest are the issue 11 runs.
    let lines: Vec<Value> = all.iter().filter(|v| v["label"].is_null()).cloned().collect();
    let labelled: Vec<&Value> = all.iter().filter(|v| !v["label"].is_null()).collect();
    let mut out = String::new();
    if lines.is_empty() {
        out.push_str(&before_after(&labelled));
        return out;
    }
    let _ = writeln!(out, "\n## Load\n");
    let _ = writeln!(
        out,
        "`outbox-bench load [--nodes M] [--database-url URL]` with its defaults (200 clients, \
         batches of 10, 10 s, 50 workspaces), on the same machine: the nodes, the clients and, for PostgreSQL, a private \
         PostgreSQL 15 cluster with default durability settings share its 2 CPUs. Simulated \
         clients, one request in flight each, push batches of `put`s to in-process server nodes on \
         127.0.0.1, round robin over the nodes; every 5th batch is resent to the next node (to the same node \
         when there is one) and must come back `duplicate`. `commands/s` counts commands applied (resends excluded); latency is per \
         request. `exactly once` checks the shared apply log: every acknowledged key present, none \
         twice, and the nodes' applied counters add up to the log.\n"
    );
    if let Some(build) = lines.iter().find_map(|v| v["build"].as_str()) {
        let _ = writeln!(out, "Build: {build}.\n");
    }
    // Median run (by commands/s) of each storage and node count: the machine is shared,
    // so single runs swing.
    let mut groups: Vec<((String, u64), Vec<&Value>)> = Vec::new();
    for v in &lines {
        let key = (v["system"].as_str().unwrap_or("?").to_string(), v["nodes"].as_u64().unwrap_or(0));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(v),
            None => groups.push((key, vec![v])),
        }
    }
    groups.sort_by_key(|((system, nodes), _)| (system != "sqlite", *nodes));
    let _ = writeln!(
        out,
        "Median run of each setup (by commands/s):\n\n\
         | storage | nodes | runs | commands/s | p50 ms | p99 ms | errors (all runs) | exactly once (all runs) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for ((system, nodes), g) in groups {
        let _ = writeln!(out, "| {system} | {nodes} | {} |", median_cells(g));
    }
    let _ = writeln!(
        out,
        "\nWith 200 clients each keeping one request in flight, latency is mostly queueing \
         (about clients ÷ requests/s). Every setup here is bound by the same 2 CPUs (and one \
         disk), which the clients, every node and PostgreSQL's backends share, so a second node in the same \
         process adds no capacity and costs a little (twice the connections); what the 2-node \
         runs show is that exactly once holds while both nodes take writes \
         and every 5th batch is resent to the other node. Writes to one workspace are serial \
         on both backends (docs/server.md), so throughput also depends on how many workspaces \
         the clients are spread over (`--workspaces`, default 50).\n\nEvery run:\n"
    );
    let _ = writeln!(
        out,
        "| storage | nodes | clients | batch | run | commands applied | commands/s | requests/s | p50 ms | p99 ms | errors | resent → duplicate | exactly once |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    let mut sorted: Vec<&Value> = lines.iter().collect();
    sorted.sort_by_key(|v| (v["system"] != "sqlite", v["nodes"].as_u64()));
    let mut runs: HashMap<(String, u64), usize> = HashMap::new();
    for v in sorted {
        let f = |k: &str| v[k].as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
        let p = |k: &str| v[k].as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
        let system = v["system"].as_str().unwrap_or("?");
        let run = runs.entry((system.to_string(), v["nodes"].as_u64().unwrap_or(0))).or_default();
        *run += 1;
        let _ = writeln!(
            out,
            "| {system} | {} | {} | {} | {run} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["nodes"],
            v["clients"],
            v["batch"],
            v["n"],
            f("ops_per_s"),
            f("requests_per_s"),
            p("p50_ms"),
            p("p99_ms"),
            v["errors"],
            v["resent"],
            if v["exactly_once"] == true { "yes" } else { "**no**" }
        );
    }
    out.push('\n');
    out.push_str(&before_after(&labelled));
    out
}

/// The median run (by commands/s) of each label and storage, then every run, for lines
/// that carry a `label` (two builds measured back to back in interleaved rounds).
fn before_after(lines: &[&Value]) -> String {
    let mut out = String::new();
    if lines.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "### Before and after one transaction per batch (issue 17)\n\n{}\
         Median run of each build and storage (by commands/s), 200 clients, 1 node:\n\n\
         | build | storage | runs | commands/s | p50 ms | p99 ms | errors (all runs) | exactly once (all runs) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        crate::before_after::builds(lines)
    );
    let mut groups: Vec<((String, String), Vec<&Value>)> = Vec::new();
    for v in lines {
        let key = (v["label"].as_str().unwrap_or("?").to_string(), v["system"].as_str().unwrap_or("?").to_string());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(v),
            None => groups.push((key, vec![v])),
        }
    }
    groups.sort_by_key(|((label, system), _)| (system != "sqlite", system.clone(), label != "before", label.clone()));
    for ((label, system), g) in groups {
        let _ = writeln!(out, "| {label} | {system} | {} |", median_cells(g));
    }
    let _ = writeln!(
        out,
        "\nEvery run, in the order measured:\n\n\
         | round | build | storage | commands applied | commands/s | p50 ms | p99 ms | errors | resent → duplicate | exactly once |\n\
         | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for v in lines {
        let f = |k: &str| v[k].as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["round"],
            v["label"].as_str().unwrap_or("?"),
            v["system"].as_str().unwrap_or("?"),
            v["n"],
            f("ops_per_s"),
            f("p50_ms"),
            f("p99_ms"),
            v["errors"],
            v["resent"],
            if v["exactly_once"] == true { "yes" } else { "**no**" }
        );
    }
    out.push('\n');
    out
}

/// The cells a load table shows for one setup's runs: runs, then the median run's (by
/// commands/s) commands/s, p50 and p99, then errors over all runs and whether every run
/// was exactly once.
fn median_cells(mut runs: Vec<&Value>) -> String {
    runs.sort_by(|a, b| {
        a["ops_per_s"].as_f64().partial_cmp(&b["ops_per_s"].as_f64()).unwrap_or(std::cmp::Ordering::Equal)
    });
    let Some(m) = runs.get(runs.len() / 2) else { return "0 | – | – | – | 0 | –".into() };
    let errors: u64 = runs.iter().map(|v| v["errors"].as_u64().unwrap_or(0)).sum();
    let all_once = runs.iter().all(|v| v["exactly_once"] == true);
    let f = |k: &str| m[k].as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
    format!(
        "{} | {} | {} | {} | {errors} | {}",
        runs.len(),
        f("ops_per_s"),
        f("p50_ms"),
        f("p99_ms"),
        if all_once { "yes" } else { "**no**" }
    )
}
