//! The benches: the engine and, where one exists, its baseline in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outbox::testing::ScriptedTransport;
use outbox::{CommandState, Config, EnqueueRequest, Event, MutatorSpec, OpKind, Outbox};
use serde_json::json;

use crate::measure::{order_args, Sample};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Applies every command and keeps nothing: engine overhead only, and no memory held by
/// the transport (the scripted test transport records every call).
struct ApplyAll;

#[async_trait::async_trait]
impl outbox::Transport for ApplyAll {
    async fn send(&self, batch: Vec<outbox::OutgoingCommand>) -> Vec<outbox::Outcome> {
        batch.iter().map(|_| outbox::Outcome::applied(serde_json::Value::Null)).collect()
    }
}

/// With `OUTBOX_BENCH_IO_MARKS=1`, writes `io-mark <what>` to stderr: the markers
/// `scripts/measure-drain-io.sh` looks for in an strace log to count the drain's own
/// fsyncs and writes.
fn io_mark(what: &str) {
    // `perf record --control fifo:CTL,ACK -D -1`: profile only between the marks.
    if let Some(ctl) = std::env::var_os("OUTBOX_BENCH_PERF_CTL") {
        let cmd: &[u8] = if what.ends_with("-start") { b"enable\n" } else { b"disable\n" };
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(ctl) {
            let _ = std::io::Write::write_all(&mut f, cmd);
        }
    }
    if std::env::var_os("OUTBOX_BENCH_IO_MARKS").is_some() {
        // One write call, so that the marker is one line of the strace log.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("io-mark {what}\n").as_bytes());
    }
}

fn offline_outbox(dir: &tempfile::TempDir, transport: Option<Arc<dyn outbox::Transport>>) -> Result<Outbox> {
    let mut config = Config::new(dir.path().join("bench.db"), "bench", "ws");
    config.start_online = false;
    config.max_batch_size = 100; // the protocol's largest batch (docs/protocol.md §2)
    if let Some(t) = transport {
        config.transport = Some(t);
    }
    let ob = Outbox::open(config)?;
    ob.register_mutator("createOrder", MutatorSpec::default())?;
    Ok(ob)
}

/// Durable enqueue (synchronous=FULL) against raw rusqlite inserts of the same bytes with
/// the same pragmas, one transaction per command in both.
pub fn enqueue(n: usize) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let ob = offline_outbox(&dir, None)?;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        ob.enqueue(EnqueueRequest::new("createOrder", order_args(i)))?;
        lat.push(t.elapsed());
    }
    let outbox_line =
        Sample { bench: "enqueue", system: "outbox", n, ops: n, total: start.elapsed(), latencies: lat }.line();
    ob.close();

    let raw_dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(raw_dir.path().join("raw.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -8192)?;
    conn.execute_batch(
        "CREATE TABLE commands (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, mutator TEXT NOT NULL,
           args TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, keys TEXT NOT NULL, created_at INTEGER NOT NULL,
           metadata TEXT NOT NULL)",
    )?;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let args = order_args(i);
        conn.execute(
            "INSERT INTO commands (id, mutator, args, idempotency_key, keys, created_at, metadata)
             VALUES (?1, 'createOrder', ?2, ?3, ?4, ?5, '{}')",
            rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                args,
                uuid::Uuid::now_v7().to_string(),
                format!("order-{i}"),
                i as i64
            ],
        )?;
        lat.push(t.elapsed());
    }
    let raw_line =
        Sample { bench: "enqueue", system: "sqlite-raw", n, ops: n, total: start.elapsed(), latencies: lat }.line();
    Ok(vec![outbox_line, raw_line])
}

/// Fills a database with `n` pending commands, each with one optimistic doc op.
fn fill(ob: &Outbox, n: usize) -> Result<()> {
    for i in 0..n {
        ob.enqueue(EnqueueRequest::new("createOrder", order_args(i)).op(
            "orders",
            format!("order-{i}"),
            OpKind::Insert(json!({"total": 1250, "state": "open"})),
        ))?;
    }
    Ok(())
}

/// Drains `n` pending commands through the in-memory transport: engine overhead only.
pub async fn drain_local(n: usize) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let ob = offline_outbox(&dir, Some(Arc::new(ApplyAll)))?;
    fill(&ob, n)?;
    io_mark("drain-start");
    let start = Instant::now();
    ob.set_online(true)?;
    let report = ob.drain_for(Duration::from_secs(600)).await?;
    let total = start.elapsed();
    io_mark("drain-end");
    if report.remaining != 0 || ob.status()?.succeeded as usize != n {
        return Err(format!("drain left {} commands", report.remaining).into());
    }
    ob.close();
    Ok(vec![Sample { bench: "drain-local", system: "outbox", n, ops: n, total, latencies: Vec::new() }.line()])
}

/// Opens a database holding `n` pending commands and `n` optimistic docs and measures the
/// time until the first attempt starts.
pub async fn open(n: usize) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    {
        let ob = offline_outbox(&dir, None)?;
        fill(&ob, n)?;
        ob.close();
    }
    let transport = Arc::new(ScriptedTransport::new());
    transport.hold();
    let mut config = Config::new(dir.path().join("bench.db"), "bench", "ws").with_transport(transport.clone());
    config.start_online = false;
    let start = Instant::now();
    let ob = Outbox::open(config)?;
    let mut events = ob.subscribe()?;
    ob.set_online(true)?;
    let first = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(e) = events.next().await {
            if matches!(e, Event::AttemptStarted { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    let total = start.elapsed();
    if first != Ok(true) {
        return Err("no attempt started".into());
    }
    let line = Sample { bench: "open", system: "outbox", n, ops: n, total, latencies: vec![total] }.line();
    transport.release();
    let pending =
        ob.peek(&outbox::PeekFilter { states: vec![CommandState::Pending], limit: 1, ..Default::default() })?;
    drop(pending);
    ob.close();
    Ok(vec![line])
}

/// Merged `get` and `list` latency at `n` documents with 1% of them under pending ops.
pub async fn read(n: usize) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let transport = Arc::new(ScriptedTransport::new());
    transport.push_changes((0..n).map(|i| outbox::DocChange {
        collection: "products".into(),
        id: format!("p{i:07}"),
        version: 1,
        doc: Some(json!({"name": format!("item {i}"), "stock": (i * 7919) % 1000, "aisle": i % 20})),
    }));
    let mut config = Config::new(dir.path().join("bench.db"), "bench", "ws").with_transport(transport.clone());
    config.retry.base = Duration::from_secs(60);
    let ob = Outbox::open(config)?;
    ob.register_mutator("adjustStock", MutatorSpec::default())?;
    ob.create_index("products", "stock")?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while ob.count("products", &outbox::Query::all())? < n as u64 {
        if Instant::now() > deadline {
            return Err("seeding the store timed out".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ob.set_online(false)?;
    let pending = (n / 100).max(1);
    for i in 0..pending {
        let id = format!("p{:07}", (i * 97) % n);
        ob.enqueue(EnqueueRequest::new("adjustStock", format!(r#"{{"product_id":"{id}"}}"#)).op(
            "products",
            id,
            OpKind::Patch(json!({"stock": 0})),
        ))?;
    }
    let rounds = 200;
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        let id = format!("p{:07}", (i * 7919) % n);
        if ob.get("products", &id)?.is_none() {
            return Err(format!("{id} missing").into());
        }
        lat.push(t.elapsed());
    }
    let get_line =
        Sample { bench: "read-get", system: "outbox", n, ops: rounds, total: start.elapsed(), latencies: lat }.line();
    let query = outbox::Query::all().order_by("stock", false).page(0, 50);
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        let page = ob.list("products", &query)?;
        if page.len() != 50.min(n) {
            return Err("short page".into());
        }
        lat.push(t.elapsed());
    }
    let list_line =
        Sample { bench: "read-list50", system: "outbox", n, ops: rounds, total: start.elapsed(), latencies: lat }
            .line();

    // Subscription latency: enqueue a change to a document on the watched page and time
    // until the watch delivers the new page.
    let mut watch = ob.watch("products", query.clone())?;
    watch.next().await.ok_or("watch ended")??;
    let watch_rounds = 50;
    let mut lat = Vec::with_capacity(watch_rounds);
    let start = Instant::now();
    for i in 0..watch_rounds {
        // Let the throttle window pass so each round measures an isolated change.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let page = ob.list("products", &query)?;
        let target = page.get(i % page.len().max(1)).map(|d| d.id.clone()).ok_or("empty page")?;
        let t = Instant::now();
        ob.enqueue(EnqueueRequest::new("adjustStock", format!(r#"{{"product_id":"{target}"}}"#)).op(
            "products",
            target,
            OpKind::Patch(json!({"note": i})),
        ))?;
        watch.next().await.ok_or("watch ended")??;
        lat.push(t.elapsed());
    }
    let watch_total = start.elapsed();
    let watch_line =
        Sample { bench: "read-watch", system: "outbox", n, ops: watch_rounds, total: watch_total, latencies: lat }
            .line();
    ob.close();
    Ok(vec![get_line, list_line, watch_line])
}

/// Drains `n` pending commands to the reference server on loopback (in this process,
/// fresh SQLite file) through the real HTTP transport, 100 commands per request and up to
/// 4 requests in flight (the engine's default concurrency).
pub async fn drain_http(n: usize) -> Result<Vec<String>> {
    use outbox::http::{HttpConfig, HttpTransport, StaticToken};
    let server_dir = tempfile::tempdir()?;
    let server =
        outbox_server::Server::start(outbox_server::ServerConfig::new(server_dir.path().join("server.db"))).await?;
    server.add_user("bench", "tok-bench", &["ws"]).await?;
    let transport = HttpTransport::new(
        HttpConfig::new(server.base_url(), "ws").with_max_batch(100).with_request_timeout(Duration::from_secs(60)),
        Arc::new(StaticToken::new("tok-bench")),
    )?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path().join("bench.db"), "bench", "ws").with_transport(Arc::new(transport));
    config.start_online = false;
    config.max_batch_size = 100; // the protocol's largest batch (docs/protocol.md §2)
    config.attempt_timeout = Duration::from_secs(60);
    let ob = Outbox::open(config)?;
    ob.register_mutator("put", MutatorSpec::default())?;
    for i in 0..n {
        let args = json!({"collection": "orders", "id": format!("order-{i}"), "doc": serde_json::from_str::<serde_json::Value>(&order_args(i))?});
        ob.enqueue(EnqueueRequest::new("put", args.to_string()))?;
    }
    io_mark("drain-start");
    let start = Instant::now();
    ob.set_online(true)?;
    let report = ob.drain_for(Duration::from_secs(600)).await?;
    let total = start.elapsed();
    io_mark("drain-end");
    let applied = server.stats().totals.applied as usize;
    if report.remaining != 0 || ob.status()?.succeeded as usize != n || applied != n {
        return Err(format!("drain left {} commands; server applied {applied} of {n}", report.remaining).into());
    }
    let line = Sample { bench: "drain-http", system: "outbox", n, ops: n, total, latencies: Vec::new() }.line();
    ob.close();
    server.shutdown().await;
    Ok(vec![line])
}

/// `reconnect-visible`: register A holds `n` sales queued offline; register B (a second
/// engine on its own file, same workspace, online and listening to the server's live
/// channel) holds none. Times A's `set_online(true)` until B's store holds all `n`.
///
/// The observer must not slow what it observes: counting B's documents is a scan of its
/// store, and counting after each of B's events took 15% of the process's CPU at 100k.
/// So B is counted only after a complete pull (`Synced`, or `Lagged`, which may hide one)
/// that brought the last sale A queued. Once all `n` are there the last one is too, so
/// the moment is not missed.
pub async fn reconnect_visible(n: usize) -> Result<Vec<String>> {
    use outbox::http::{HttpConfig, HttpTransport, StaticToken};
    let server_dir = tempfile::tempdir()?;
    let server =
        outbox_server::Server::start(outbox_server::ServerConfig::new(server_dir.path().join("server.db"))).await?;
    server.add_user("bench", "tok-bench", &["ws"]).await?;
    let register = |dir: &tempfile::TempDir, online: bool| -> Result<Outbox> {
        let transport = HttpTransport::new(
            HttpConfig::new(server.base_url(), "ws").with_max_batch(100).with_request_timeout(Duration::from_secs(60)),
            Arc::new(StaticToken::new("tok-bench")),
        )?;
        let mut config = Config::new(dir.path().join("register.db"), "bench", "ws").with_transport(Arc::new(transport));
        config.start_online = online;
        config.max_batch_size = 100;
        config.attempt_timeout = Duration::from_secs(60);
        let ob = Outbox::open(config)?;
        ob.register_mutator("put", MutatorSpec::default())?;
        Ok(ob)
    };
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = register(&dir_a, false)?;
    for i in 0..n {
        let doc: serde_json::Value = serde_json::from_str(&order_args(i))?;
        let args = json!({"collection": "orders", "id": format!("order-{i}"), "doc": doc});
        a.enqueue(EnqueueRequest::new("put", args.to_string()))?;
    }
    let b = register(&dir_b, true)?;
    let mut events = b.subscribe()?;
    // B is up to date (an empty feed) and its live channel is open before the clock starts.
    b.sync_now()?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = events.next().await {
            if matches!(e, Event::Synced) {
                break;
            }
        }
    })
    .await
    .map_err(|_| "register B never synced")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = outbox::Query::default();
    let last = format!("order-{}", n.saturating_sub(1));
    let start = Instant::now();
    a.set_online(true)?;
    let seen = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            // Woken by B's own events (completed pulls), never by a timer alone. After
            // `Lagged` a `Synced` may be among the events missed: look then too.
            match events.next().await {
                Some(Event::Synced | Event::Lagged { .. }) => {
                    if b.get("orders", &last)?.is_some() && b.count("orders", &all)? as usize >= n {
                        return Ok::<_, outbox::Error>(());
                    }
                }
                Some(_) => {}
                None => return Err(outbox::Error::Closed),
            }
        }
    })
    .await;
    let total = start.elapsed();
    match seen {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(format!("register B saw {} of {n}", b.count("orders", &all)?).into()),
    }
    let line = Sample { bench: "reconnect-visible", system: "outbox", n, ops: n, total, latencies: Vec::new() }.line();
    a.close();
    b.close();
    server.shutdown().await;
    Ok(vec![line])
}

/// `crash-reopen`: a client process holds `n` sales queued offline and is SIGKILLed (its
/// WAL and SHM left as a crash leaves them). Times the next process's `Outbox::open`
/// (offline, every command still there), then `set_online(true)` until the server has
/// applied all `n`. Two lines: system `outbox-open` and `outbox-drain`.
pub async fn crash_reopen(n: usize) -> Result<Vec<String>> {
    use outbox::http::{HttpConfig, HttpTransport, StaticToken};
    let server_dir = tempfile::tempdir()?;
    let server =
        outbox_server::Server::start(outbox_server::ServerConfig::new(server_dir.path().join("server.db"))).await?;
    server.add_user("torture", "tok-torture", &["ws"]).await?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("client.db");
    let extra = ["--offline", "--every-ms", "0"];
    let mut child = crate::torture::spawn_with(&db, &server.base_url(), 0, n, false, "crash", &extra)?;
    let queued = loop {
        match child.lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line == "queued" => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    // SIGKILL by the PID we started, whatever happened.
    let _ = child.child.kill();
    let _ = child.child.wait();
    if !queued {
        return Err("the client never finished queueing".into());
    }
    let transport = HttpTransport::new(
        HttpConfig::new(server.base_url(), "ws").with_max_batch(100).with_request_timeout(Duration::from_secs(60)),
        Arc::new(StaticToken::new("tok-torture")),
    )?;
    let mut config = Config::new(&db, "torture", "ws").with_transport(Arc::new(transport));
    config.start_online = false;
    config.max_batch_size = 100;
    let start = Instant::now();
    let ob = Outbox::open(config)?;
    let opened = start.elapsed();
    if ob.status()?.pending as usize != n {
        return Err(format!("reopened with {} pending of {n}", ob.status()?.pending).into());
    }
    ob.register_mutator("put", MutatorSpec::default())?;
    let drain_start = Instant::now();
    ob.set_online(true)?;
    let report = ob.drain_for(Duration::from_secs(600)).await?;
    let drained = drain_start.elapsed();
    let applied = server.stats().totals.applied as usize;
    if report.remaining != 0 || applied != n {
        return Err(format!("drain left {}; server applied {applied} of {n}", report.remaining).into());
    }
    ob.close();
    server.shutdown().await;
    let open_line =
        Sample { bench: "crash-reopen", system: "outbox-open", n, ops: n, total: opened, latencies: Vec::new() }.line();
    let drain_line =
        Sample { bench: "crash-reopen", system: "outbox-drain", n, ops: n, total: drained, latencies: Vec::new() }
            .line();
    Ok(vec![open_line, drain_line])
}
