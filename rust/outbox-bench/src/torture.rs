//! Crash/fault torture: client processes (this binary re-run as `torture-child`) enqueue
//! and drain through the real HTTP transport into the reference server, which runs in
//! this process on loopback with faults on (500, 429 with Retry-After, connection resets,
//! answers dropped after commit). The harness SIGKILLs each client at a random moment,
//! restarts it on the same database, and at the end lets one client finish the queue.
//!
//! Checked from the server's per-idempotency-key counters: every command whose enqueue
//! returned to the caller (the child printed `ack <key>` after `enqueue` returned) was
//! applied exactly once: `lost` (acknowledged, never applied) and `duplicates` (applied
//! more than once) must both be 0. Every 10th life runs two clients on the same database
//! at once; each reports its lease changes and the harness counts moments where both
//! claimed to be the drainer (`lease_overlaps`, must be 0).
//!
//! The last stdout line is a JSON summary.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

const TOKEN: &str = "tok-torture";
/// Commands each life enqueues (one every ~3 ms), then it drains until killed.
const PER_LIFE: usize = 30;
const FAULTS: &str = "500=0.1,429=0.05:1s,reset=0.05,drop_after_commit=0.1";

/// Options of `outbox-bench torture`.
#[derive(Args, Debug)]
pub struct TortureArgs {
    /// How many SIGKILLs to deliver.
    #[arg(long, default_value_t = 200)]
    kills: usize,
    /// Seed for kill timing and the server's fault RNG.
    #[arg(long, default_value_t = 2026)]
    pub(crate) seed: u64,
    /// Server fault spec (see outbox-server's faults module).
    #[arg(long, default_value = FAULTS)]
    faults: String,
    /// Give up (and fail) after this many seconds in total.
    #[arg(long, default_value_t = 600)]
    pub(crate) max_secs: u64,
    /// Cut the power instead of SIGKILLing: clients run on the crash-simulating VFS and,
    /// after each kill, unsynced writes are dropped or torn (see `powercut`).
    #[arg(long)]
    power_cut: bool,
    /// How many power cuts (with --power-cut).
    #[arg(long, default_value_t = 200)]
    pub(crate) cuts: usize,
    /// Commit durability of the clients (with --power-cut): full or normal.
    #[arg(long, default_value = "full")]
    pub(crate) durability: String,
    /// Instead: freeze the drainer with SIGSTOP this many times while another process
    /// shares the file, and report takeover times and enqueue latency during the pause.
    #[arg(long)]
    sigstop: Option<usize>,
    /// How long each SIGSTOP pause lasts, in milliseconds (with --sigstop).
    #[arg(long, default_value_t = 6000)]
    pub(crate) pause_ms: u64,
}

/// Options of the hidden `torture-child` command.
#[derive(Args, Debug)]
pub struct ChildArgs {
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    url: String,
    /// Life number: makes document ids unique across restarts.
    #[arg(long)]
    life: usize,
    /// How many commands to enqueue (one every ~3 ms while draining).
    #[arg(long)]
    count: usize,
    /// Drain everything, print `done` and exit (the final, unkilled life).
    #[arg(long)]
    finish: bool,
    /// Open the database through this SQLite VFS (the crash VFS is registered under it).
    #[arg(long)]
    vfs: Option<String>,
    /// Commit with Durability::Normal instead of Full.
    #[arg(long)]
    normal: bool,
    /// Give every command an optimistic insert of its document.
    #[arg(long)]
    ops: bool,
    /// Milliseconds between enqueues.
    #[arg(long, default_value_t = 3)]
    every_ms: u64,
    /// Report each enqueue's latency (`enq <ms>`) and keep going after a `busy` error
    /// (`busy <ms>`) instead of exiting.
    #[arg(long)]
    probe: bool,
    /// Make every fifth command one the server rejects (`adjustStock` of a product that does
    /// not exist yet): printed as `ackr <key> <product>`, and `rejected <key> <product>` once
    /// the engine has recorded the rejection. The harness then creates the product, so a
    /// resend under the same key would be applied.
    #[arg(long)]
    rejects: bool,
    /// Stay offline: enqueue `count` commands back to back, print `queued`, then wait to be
    /// killed (the `crash-reopen` bench).
    #[arg(long)]
    offline: bool,
}

pub(crate) struct Client {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
    pub(crate) name: String,
}

fn spawn(
    db: &std::path::Path,
    url: &str,
    life: usize,
    count: usize,
    finish: bool,
    tag: &str,
) -> Result<Client, String> {
    spawn_with(db, url, life, count, finish, tag, &[])
}

/// Starts one client process (`extra`: more `torture-child` flags).
pub(crate) fn spawn_with(
    db: &std::path::Path,
    url: &str,
    life: usize,
    count: usize,
    finish: bool,
    tag: &str,
    extra: &[&str],
) -> Result<Client, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("torture-child").arg("--db").arg(db).args([
        "--url",
        url,
        "--life",
        &life.to_string(),
        "--count",
        &count.to_string(),
    ]);
    if finish {
        cmd.arg("--finish");
    }
    cmd.args(extra);
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok(Client { child, lines, name: format!("{life}{tag}") })
}

/// Per-run bookkeeping fed by the children's lines.
#[derive(Default)]
pub(crate) struct Book {
    pub(crate) acked: Vec<String>,
    pub(crate) drainer: HashMap<String, bool>,
    pub(crate) overlaps: u64,
    /// Keys of commands meant to be rejected (`ackr`): never counted as lost.
    pub(crate) meant_to_fail: HashSet<String>,
    /// (key, product) of rejections the engine recorded (`rejected`), in order.
    pub(crate) rejected: Vec<(String, String)>,
}

impl Book {
    pub(crate) fn take(&mut self, who: &str, line: &str, alive: &HashSet<String>) {
        if let Some(key) = line.strip_prefix("ack ") {
            self.acked.push(key.to_string());
        } else if let Some(rest) = line.strip_prefix("ackr ") {
            if let Some((key, _)) = rest.split_once(' ') {
                self.meant_to_fail.insert(key.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("rejected ") {
            if let Some((key, product)) = rest.split_once(' ') {
                self.rejected.push((key.to_string(), product.to_string()));
            }
        } else if let Some(v) = line.strip_prefix("drainer ") {
            let is = v == "true";
            self.drainer.insert(who.to_string(), is);
            if is && self.drainer.iter().filter(|(w, d)| **d && alive.contains(*w)).count() > 1 {
                self.overlaps += 1;
            }
        }
    }
}

/// Reads lines from every client until `until` says stop or the deadline passes.
pub(crate) fn pump(
    clients: &[&Client],
    book: &mut Book,
    deadline: Instant,
    mut until: impl FnMut(&str, &str) -> bool,
) -> bool {
    let alive: HashSet<String> = clients.iter().map(|c| c.name.clone()).collect();
    loop {
        let mut any = false;
        for c in clients {
            while let Ok(line) = c.lines.try_recv() {
                any = true;
                book.take(&c.name, &line, &alive);
                if until(&c.name, &line) {
                    return true;
                }
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

pub(crate) fn kill(c: &mut Client, book: &mut Book) {
    // SIGKILL to this child's PID.
    let _ = c.child.kill();
    let _ = c.child.wait();
    // Lines it wrote before dying still count (an ack printed is an ack given).
    let none = HashSet::new();
    while let Ok(line) = c.lines.recv_timeout(Duration::from_millis(200)) {
        book.take(&c.name, &line, &none);
    }
    book.drainer.remove(&c.name);
}

/// `outbox-bench torture`.
pub fn run(args: &TortureArgs) -> i32 {
    let result = if let Some(freezes) = args.sigstop {
        crate::powercut::run_sigstop(args, freezes)
    } else if args.power_cut {
        crate::powercut::run_cuts(args)
    } else {
        run_inner(args)
    };
    match result {
        Ok(ok) => i32::from(!ok),
        Err(e) => {
            eprintln!("torture: {e}");
            1
        }
    }
}

fn run_inner(args: &TortureArgs) -> Result<bool, String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = outbox_server::ServerConfig::new(dir.path().join("server.db"))
        .with_faults(&args.faults)
        .map_err(|e| e.to_string())?
        .with_seed(args.seed);
    let server = rt.block_on(outbox_server::Server::start(config)).map_err(|e| e.to_string())?;
    rt.block_on(server.add_user("torture", TOKEN, &["ws"])).map_err(|e| e.to_string())?;
    let url = server.base_url();
    let db = dir.path().join("client.db");
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let started = Instant::now();
    let hard_deadline = started + Duration::from_secs(args.max_secs);
    let mut book = Book::default();
    let mut kills = 0;
    let mut life = 0;
    let mut pairs = 0;
    while kills < args.kills {
        if Instant::now() >= hard_deadline {
            return Err(format!("out of time after {kills} kills"));
        }
        let pair = life % 10 == 9 && args.kills - kills >= 2;
        let mut clients = vec![spawn(&db, &url, life, PER_LIFE, false, "a")?];
        if pair {
            pairs += 1;
            clients.push(spawn(&db, &url, life, PER_LIFE, false, "b")?);
        }
        // Wait for each to be up, then let them run for a random while.
        let mut ready = HashSet::new();
        let want = clients.len();
        let up =
            pump(&clients.iter().collect::<Vec<_>>(), &mut book, Instant::now() + Duration::from_secs(20), |w, l| {
                if l == "ready" {
                    ready.insert(w.to_string());
                }
                ready.len() == want
            });
        if !up {
            return Err(format!("life {life}: a client did not start"));
        }
        let run_for = Duration::from_millis(rng.u64(20..400));
        pump(&clients.iter().collect::<Vec<_>>(), &mut book, Instant::now() + run_for, |_, _| false);
        if pair {
            // Kill one, let the other take the lease over, then kill it too.
            let mut b = clients.pop().ok_or("no client")?;
            let victim = rng.usize(0..2);
            let (first, second) = if victim == 0 { (&mut clients[0], &mut b) } else { (&mut b, &mut clients[0]) };
            kill(first, &mut book);
            kills += 1;
            let more = Duration::from_millis(rng.u64(200..1500));
            pump(&[&*second], &mut book, Instant::now() + more, |_, _| false);
            kill(second, &mut book);
            kills += 1;
        } else {
            kill(&mut clients[0], &mut book);
            kills += 1;
        }
        life += 1;
    }
    // Final life: nobody kills it; it drains everything left (faults stay on).
    let mut last = spawn(&db, &url, life, 0, true, "final")?;
    let finished = pump(&[&last], &mut book, Instant::now() + Duration::from_secs(180), |_, l| l == "done");
    if !finished {
        let _ = last.child.kill();
    }
    let _ = last.child.wait();

    let stats = server.stats();
    rt.block_on(server.shutdown());
    let acked: HashSet<&String> = book.acked.iter().collect();
    let lost = acked.iter().filter(|k| stats.key("ws", "torture", k).applied == 0).count();
    let duplicates = stats.keys.values().filter(|s| s.applied > 1).count();
    let unacked_applied = stats
        .keys
        .iter()
        .filter(|(k, s)| {
            s.applied > 0 && !acked.contains(&k.rsplit_once('/').map_or(k.as_str(), |(_, key)| key).to_string())
        })
        .count();
    let ok = finished && lost == 0 && duplicates == 0 && book.overlaps == 0 && acked.len() == book.acked.len();
    let summary = json!({
        "bench": "torture",
        "kills": kills,
        "lives": life + 1,
        "two_process_lives": pairs,
        "acked": acked.len(),
        "applied": stats.totals.applied,
        "lost": lost,
        "duplicates": duplicates,
        "applied_without_ack": unacked_applied,
        "dedup_answers": stats.totals.duplicates,
        "requests": stats.totals.requests,
        "faults": stats.totals.faults,
        "lease_overlaps": book.overlaps,
        "final_drain_finished": finished,
        "total_ms": started.elapsed().as_millis() as u64,
        "ok": ok,
    });
    println!("{summary}");
    Ok(ok)
}

/// `outbox-bench torture-child`: one client life.
pub fn child(args: &ChildArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("torture-child: {e}");
            return 1;
        }
    };
    match rt.block_on(child_inner(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("torture-child {}: {e}", args.life);
            1
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn child_inner(args: &ChildArgs) -> Result<(), Box<dyn std::error::Error>> {
    use outbox::http::{HttpConfig, HttpTransport, StaticToken};
    use outbox::{Config, Durability, EnqueueRequest, Error, Event, MutatorSpec, OpKind, Outbox, RetryPolicy};
    let transport = HttpTransport::new(
        HttpConfig::new(&args.url, "ws").with_request_timeout(Duration::from_secs(2)),
        Arc::new(StaticToken::new(TOKEN)),
    )?;
    let mut config = Config::new(&args.db, "torture", "ws").with_transport(Arc::new(transport));
    config.lease_ttl = Duration::from_millis(1000);
    config.attempt_timeout = Duration::from_secs(3);
    if let Some(vfs) = &args.vfs {
        outbox_crashvfs::register(vfs)?;
        config.vfs = Some(vfs.clone());
    }
    if args.normal {
        config.durability = Durability::Normal;
    }
    config.retry = RetryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(500),
        jitter: 0.3,
        max_attempts: 10_000,
    };
    config.start_online = !args.offline;
    let ob = Outbox::open(config)?;
    ob.register_mutator("put", MutatorSpec::default())?;
    ob.register_mutator("adjustStock", MutatorSpec::default())?;
    let mut events = ob.subscribe()?;
    say(&format!("drainer {}", ob.status()?.is_drainer));
    let reader = ob.clone();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            match e {
                Event::LeaseChanged { is_drainer } => say(&format!("drainer {is_drainer}")),
                // Emitted after the commit that recorded it.
                Event::StateChanged { id, to: outbox::CommandState::Failed, .. } => {
                    if let Ok(c) = reader.command(&id) {
                        let product = serde_json::from_str::<serde_json::Value>(&c.args)
                            .ok()
                            .and_then(|a| a["product_id"].as_str().map(str::to_string));
                        if let Some(product) = product {
                            say(&format!("rejected {} {product}", c.idempotency_key));
                        }
                    }
                }
                _ => {}
            }
        }
    });
    say("ready");
    for i in 0..args.count {
        let doc_id = format!("t{}-{i}", args.life);
        let doc = json!({"i": i, "total": 1250});
        let body = json!({"collection": "orders", "id": doc_id, "doc": doc});
        let restock = args.rejects && i % 5 == 2;
        let product = format!("restock-{}-{i}", args.life);
        let mut req = if restock {
            let args = json!({"product_id": product, "delta": 1});
            EnqueueRequest::new("adjustStock", args.to_string()).keys([product.clone()])
        } else {
            EnqueueRequest::new("put", body.to_string())
        };
        if args.ops && !restock {
            req = req.op("orders", &doc_id, OpKind::Insert(doc));
        }
        let started = Instant::now();
        match ob.enqueue(req) {
            Ok(id) => {
                // The key is read back from the engine's reader; under --probe a busy
                // writer does not stop that read (WAL), so it cannot fail for that reason.
                let key = ob.command(&id)?.idempotency_key;
                if restock {
                    say(&format!("ackr {key} {product}"));
                } else {
                    say(&format!("ack {key}"));
                }
                if args.probe {
                    say(&format!("enq {}", started.elapsed().as_millis()));
                }
            }
            Err(Error::Busy) if args.probe => say(&format!("busy {}", started.elapsed().as_millis())),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(args.every_ms)).await;
    }
    if args.finish {
        let deadline = Instant::now() + Duration::from_secs(170);
        loop {
            let s = ob.status()?;
            if s.pending == 0 && s.in_flight == 0 {
                // With --rejects, `failed` holds the commands meant to be rejected; the
                // harness checks those against the server's counters.
                let failed = if args.rejects { 0 } else { s.failed };
                if failed + s.conflict + s.wedged > 0 {
                    return Err(
                        format!("ended with failed {} conflict {} wedged {}", s.failed, s.conflict, s.wedged).into()
                    );
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("still pending {} in flight {}", s.pending, s.in_flight).into());
            }
            ob.sync_now()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ob.close();
        say("done");
        return Ok(());
    }
    if args.offline {
        say("queued");
    }
    // Keep draining (or, offline, holding the queue) until killed.
    tokio::time::sleep(Duration::from_secs(120)).await;
    Ok(())
}
