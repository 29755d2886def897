//! `torture --power-cut` and `torture --sigstop`: the kill torture's clients and server,
//! with the power cut under them or the drainer frozen.
//!
//! **Power cut.** Clients open their database through the crash-simulating VFS
//! (`outbox-crashvfs`), so every write since a file's last sync is kept apart. At a random
//! moment every client on the database is SIGKILLed at once (the cut), then
//! `power_cut` drops a random subset of the unsynced writes, tears some, may lose
//! never-synced files and garbles the SHM. Before the next life the harness checks the
//! file: `PRAGMA integrity_check`, optimistic state against the queue (every pending or
//! in-flight command has its one op; no op without its command), and the lease's fencing
//! generation never going back. At the end one client drains everything and the server's
//! per-key counters give `lost` (acknowledged, never applied) and `duplicates`.
//!
//! **SIGSTOP.** Two clients share a database; the drainer is frozen for `--pause-ms` at a
//! random moment, repeatedly. The harness notes whether it was frozen holding SQLite's
//! write lock (a probe connection cannot take it for 300 ms), how long the other client
//! took to become the drainer, and what its enqueues did meanwhile (latency, `busy`).

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::torture::{kill, pump, spawn_with, Book, Client, TortureArgs};

const TOKEN: &str = "tok-torture";
const FAULTS: &str = "500=0.1,429=0.05:1s,reset=0.05,drop_after_commit=0.1";
const PER_LIFE: usize = 30;

struct Server {
    rt: tokio::runtime::Runtime,
    server: outbox_server::RunningServer,
    url: String,
    _dir: tempfile::TempDir,
}

fn start_server(seed: u64) -> Result<Server, String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = outbox_server::ServerConfig::new(dir.path().join("server.db"))
        .with_faults(FAULTS)
        .map_err(|e| e.to_string())?
        .with_seed(seed);
    let server = rt.block_on(outbox_server::Server::start(config)).map_err(|e| e.to_string())?;
    rt.block_on(server.add_user("torture", TOKEN, &["ws"])).map_err(|e| e.to_string())?;
    let url = server.base_url();
    Ok(Server { rt, server, url, _dir: dir })
}

/// Final life: one client drains everything left (faults stay on). Then the server's
/// counters: (lost, duplicates, applied without ack, finished).
fn finish(
    server: Server,
    db: &Path,
    life: usize,
    book: &mut Book,
    extra: &[&str],
) -> Result<(u64, u64, u64, bool, serde_json::Value), String> {
    let mut last = spawn_with(db, &server.url, life, 0, true, "final", extra)?;
    let finished = pump(&[&last], book, Instant::now() + Duration::from_secs(180), |_, l| l == "done");
    if !finished {
        let _ = last.child.kill();
    }
    let _ = last.child.wait();
    let stats = server.server.stats();
    server.rt.block_on(server.server.shutdown());
    let acked: HashSet<&String> = book.acked.iter().collect();
    let lost = acked.iter().filter(|k| stats.key("ws", "torture", k).applied == 0).count() as u64;
    let duplicates = stats.keys.values().filter(|s| s.applied > 1).count() as u64;
    let unacked = stats
        .keys
        .iter()
        .filter(|(k, s)| {
            let key = k.rsplit_once('/').map_or(k.as_str(), |(_, key)| key).to_string();
            s.applied > 0 && !acked.contains(&key) && !book.meant_to_fail.contains(&key)
        })
        .count() as u64;
    // A command the engine recorded as rejected must never be applied afterwards, even
    // though its product was created after the rejection.
    let rejected_then_applied =
        book.rejected.iter().filter(|(key, _)| stats.key("ws", "torture", key).applied > 0).count() as u64;
    let totals = json!({
        "rejected": book.rejected.len(),
        "rejected_then_applied": rejected_then_applied,
        "acked": acked.len(),
        "applied": stats.totals.applied,
        "dedup_answers": stats.totals.duplicates,
        "requests": stats.totals.requests,
        "faults": stats.totals.faults,
    });
    Ok((lost, duplicates, unacked, finished, totals))
}

/// What the harness checks on the file after a cut.
#[derive(Default)]
struct FileChecks {
    integrity_failures: u64,
    op_mismatches: u64,
    generation_regressions: u64,
    max_generation: i64,
    first_failure: Option<String>,
}

impl FileChecks {
    fn check(&mut self, db: &Path, cut: usize) {
        if !db.exists() {
            return; // lost before its first sync: nothing acknowledged was in it
        }
        let fail = |what: String, counter: &mut u64| {
            *counter += 1;
            eprintln!("cut {cut}: {what}");
        };
        let conn = match rusqlite::Connection::open(db) {
            Ok(c) => c,
            Err(e) => {
                let mut n = 0;
                fail(format!("cannot open: {e}"), &mut n);
                self.integrity_failures += n;
                return;
            }
        };
        let integrity: String =
            conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap_or_else(|e| e.to_string());
        if integrity != "ok" {
            self.first_failure.get_or_insert_with(|| format!("cut {cut}: integrity_check: {integrity}"));
            fail(format!("integrity_check: {integrity}"), &mut self.integrity_failures);
            return;
        }
        let has_schema: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'commands')", [], |r| r.get(0))
            .unwrap_or(false);
        if !has_schema {
            return;
        }
        let mismatches: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM pending_ops WHERE command_seq NOT IN (SELECT seq FROM commands))
                      + (SELECT count(*) FROM commands c WHERE c.state IN ('pending', 'in_flight')
                           AND c.mutator = 'put'
                           AND (SELECT count(*) FROM pending_ops p WHERE p.command_seq = c.seq) != 1)",
                [],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        if mismatches != 0 {
            self.first_failure.get_or_insert_with(|| format!("cut {cut}: {mismatches} op/queue mismatches"));
            fail(format!("{mismatches} optimistic ops disagree with the queue"), &mut self.op_mismatches);
        }
        let generation: i64 =
            conn.query_row("SELECT coalesce(max(generation), 0) FROM lease", [], |r| r.get(0)).unwrap_or(0);
        if generation < self.max_generation {
            self.first_failure
                .get_or_insert_with(|| format!("cut {cut}: lease generation {generation} < {}", self.max_generation));
            fail(format!("lease generation went back to {generation}"), &mut self.generation_regressions);
        }
        self.max_generation = self.max_generation.max(generation);
    }
}

/// `outbox-bench torture --power-cut --cuts N [--durability full|normal]`.
pub fn run_cuts(args: &TortureArgs) -> Result<bool, String> {
    let normal = match args.durability.as_str() {
        "full" => false,
        "normal" => true,
        other => return Err(format!("--durability must be full or normal, not {other}")),
    };
    let server = start_server(args.seed)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // Its own folder: a cut touches every file in it (and would garble the server's SHM).
    let client_dir = dir.path().join("client");
    std::fs::create_dir(&client_dir).map_err(|e| e.to_string())?;
    let db = client_dir.join("client.db");
    let mut extra = vec!["--vfs", outbox_crashvfs::VFS_NAME, "--ops", "--rejects"];
    if normal {
        extra.push("--normal");
    }
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_secs);
    let mut book = Book::default();
    let mut checks = FileChecks::default();
    let mut report = outbox_crashvfs::CutReport::default();
    let (mut cuts, mut pairs, mut seeded) = (0, 0, 0);
    while cuts < args.cuts {
        if Instant::now() >= deadline {
            return Err(format!("out of time after {cuts} cuts"));
        }
        let life = cuts;
        let mut clients = vec![spawn_with(&db, &server.url, life, PER_LIFE, false, "a", &extra)?];
        if life % 10 == 9 {
            pairs += 1;
            clients.push(spawn_with(&db, &server.url, life, PER_LIFE, false, "b", &extra)?);
        }
        let want = clients.len();
        let mut ready = HashSet::new();
        let up =
            pump(&clients.iter().collect::<Vec<_>>(), &mut book, Instant::now() + Duration::from_secs(20), |w, l| {
                if l == "ready" {
                    ready.insert(w.to_string());
                }
                ready.len() == want
            });
        if !up {
            for c in &mut clients {
                kill(c, &mut book);
            }
            return Err(format!("life {life}: a client did not start"));
        }
        let run_for = Duration::from_millis(rng.u64(20..400));
        pump(&clients.iter().collect::<Vec<_>>(), &mut book, Instant::now() + run_for, |_, _| false);
        // The cut: every process on the file dies at once, then the disk loses what was
        // not synced.
        for c in &mut clients {
            let _ = c.child.kill();
        }
        for c in &mut clients {
            kill(c, &mut book);
        }
        let r = outbox_crashvfs::power_cut(&client_dir, &mut rng).map_err(|e| format!("power cut: {e}"))?;
        add(&mut report, r);
        cuts += 1;
        checks.check(&db, cuts);
        // Restock what the cashier saw rejected: from now on a resend of a rejected command
        // under its key would be applied, so only a durable `failed` mark keeps it failed.
        for (_, product) in &book.rejected[seeded..] {
            let doc = json!({"name": product, "stock": 5});
            server.rt.block_on(server.server.seed_doc("ws", "products", product, &doc)).map_err(|e| e.to_string())?;
        }
        seeded = book.rejected.len();
    }
    let (lost, duplicates, unacked, finished, totals) = finish(server, &db, cuts, &mut book, &extra)?;
    let rejected_then_applied = totals["rejected_then_applied"].as_u64().unwrap_or(u64::MAX);
    let ok_full = finished
        && lost == 0
        && duplicates == 0
        && rejected_then_applied == 0
        && checks.integrity_failures == 0
        && checks.op_mismatches == 0
        && checks.generation_regressions == 0
        && book.overlaps == 0;
    // Normal may lose acknowledged commands (that is what it trades); everything else holds.
    let ok = if normal {
        ok_full
            || (finished
                && duplicates == 0
                && checks.integrity_failures == 0
                && checks.op_mismatches == 0
                && checks.generation_regressions == 0
                && book.overlaps == 0)
    } else {
        ok_full
    };
    let mut summary = json!({
        "bench": "torture-power-cut",
        "durability": args.durability,
        "cuts": cuts,
        "lives": cuts + 1,
        "two_process_lives": pairs,
        "lost": lost,
        "duplicates": duplicates,
        "applied_without_ack": unacked,
        "integrity_failures": checks.integrity_failures,
        "op_mismatches": checks.op_mismatches,
        "lease_generation_regressions": checks.generation_regressions,
        "lease_overlaps": book.overlaps,
        "unsynced_writes": report.unsynced,
        "unsynced_dropped": report.unsynced_dropped,
        "torn_writes": report.torn_writes,
        "files_vanished": report.files_vanished,
        "shm_damaged": report.shm_damaged,
        "final_drain_finished": finished,
        "total_ms": started.elapsed().as_millis() as u64,
        "ok": ok,
    });
    if let (Some(m), Some(t)) = (summary.as_object_mut(), totals.as_object()) {
        m.extend(t.clone());
        if let Some(f) = &checks.first_failure {
            m.insert("first_failure".into(), json!(f));
        }
    }
    println!("{summary}");
    Ok(ok)
}

fn add(total: &mut outbox_crashvfs::CutReport, r: outbox_crashvfs::CutReport) {
    total.unsynced += r.unsynced;
    total.unsynced_dropped += r.unsynced_dropped;
    total.torn_writes += r.torn_writes;
    total.files_vanished += r.files_vanished;
    total.shm_damaged += r.shm_damaged;
}

/// Sends SIGSTOP or SIGCONT to one of our own children, by PID.
fn signal(c: &Client, sig: &str) -> Result<(), String> {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(c.child.id().to_string()).status();
    match status {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("kill -{sig} {}: {other:?}", c.child.id())),
    }
}

/// Whether some connection holds the database's write lock for the whole `window`.
fn write_lock_held(db: &Path, window: Duration) -> bool {
    let Ok(conn) = rusqlite::Connection::open(db) else { return false };
    if conn.busy_timeout(Duration::ZERO).is_err() {
        return false;
    }
    let until = Instant::now() + window;
    while Instant::now() < until {
        if conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn ms_stats(v: &[u64]) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    json!({"n": s.len(), "min": s[0], "median": s[s.len() / 2], "max": s[s.len() - 1]})
}

/// `outbox-bench torture --sigstop N [--pause-ms P]`.
pub fn run_sigstop(args: &TortureArgs, freezes: usize) -> Result<bool, String> {
    let server = start_server(args.seed)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("client.db");
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let started = Instant::now();
    let probe = ["--probe", "--every-ms", "40"];
    let count = 1_000_000;
    let mut book = Book::default();
    let mut a = spawn_with(&db, &server.url, 0, count, false, "a", &probe)?;
    pump(&[&a], &mut book, Instant::now() + Duration::from_secs(20), |_, l| l == "drainer true");
    let mut b = spawn_with(&db, &server.url, 1, count, false, "b", &probe)?;
    pump(&[&a, &b], &mut book, Instant::now() + Duration::from_secs(20), |w, l| w == "1b" && l == "ready");
    let pause = Duration::from_millis(args.pause_ms);
    let (mut mid_write, mut takeovers_outside, mut takeovers_mid, mut no_takeover) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    let (mut busy, mut enq_during) = (0u64, Vec::new());
    for _ in 0..freezes {
        if Instant::now() > started + Duration::from_secs(args.max_secs) {
            return Err("out of time".into());
        }
        let run_for = Duration::from_millis(rng.u64(200..1200));
        pump(&[&a, &b], &mut book, Instant::now() + run_for, |_, _| false);
        // Freeze whoever drains now.
        let a_drains = book.drainer.get(&a.name).copied().unwrap_or(false);
        let (holder, other) = if a_drains { (&a, &b) } else { (&b, &a) };
        signal(holder, "STOP")?;
        let stopped = Instant::now();
        let held = write_lock_held(&db, Duration::from_millis(300));
        mid_write.push(held);
        let other_name = other.name.clone();
        let mut took: Option<u64> = None;
        let _ = pump(&[other], &mut book, stopped + pause, |w, l| {
            if let Some(ms) = l.strip_prefix("busy ").and_then(|m| m.parse::<u64>().ok()) {
                busy += 1;
                enq_during.push(ms);
            } else if let Some(ms) = l.strip_prefix("enq ").and_then(|m| m.parse::<u64>().ok()) {
                enq_during.push(ms);
            } else if w == other_name && l == "drainer true" && took.is_none() {
                took = Some(stopped.elapsed().as_millis() as u64);
            }
            false
        });
        signal(holder, "CONT")?;
        match (took, held) {
            (Some(ms), false) => takeovers_outside.push(ms),
            (Some(ms), true) => takeovers_mid.push(ms),
            (None, _) => no_takeover += 1,
        }
        // The thawed process finds itself fenced or renews; let things settle.
        pump(&[&a, &b], &mut book, Instant::now() + Duration::from_millis(1500), |_, _| false);
    }
    kill(&mut a, &mut book);
    kill(&mut b, &mut book);
    let (lost, duplicates, unacked, finished, totals) = finish(server, &db, 2, &mut book, &[])?;
    let frozen_mid_write = mid_write.iter().filter(|h| **h).count();
    let ok = finished && lost == 0 && duplicates == 0 && book.overlaps == 0;
    let mut summary = json!({
        "bench": "torture-sigstop",
        "freezes": freezes,
        "pause_ms": args.pause_ms,
        "lease_ttl_ms": 1000,
        "frozen_mid_write": frozen_mid_write,
        "takeover_ms_outside_write": ms_stats(&takeovers_outside),
        "takeover_ms_frozen_mid_write": ms_stats(&takeovers_mid),
        "no_takeover_during_pause": no_takeover,
        "enqueue_ms_during_pause": ms_stats(&enq_during),
        "busy_errors_during_pause": busy,
        "lost": lost,
        "duplicates": duplicates,
        "applied_without_ack": unacked,
        "lease_overlaps": book.overlaps,
        "final_drain_finished": finished,
        "total_ms": started.elapsed().as_millis() as u64,
        "ok": ok,
    });
    if let (Some(m), Some(t)) = (summary.as_object_mut(), totals.as_object()) {
        m.extend(t.clone());
    }
    println!("{summary}");
    Ok(ok)
}

/// The benchmark page's section for `torture-power-cut` and `torture-sigstop` lines
/// (empty without any).
pub fn markdown(lines: &[serde_json::Value]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let cuts: Vec<&serde_json::Value> = lines.iter().filter(|v| v["bench"] == "torture-power-cut").collect();
    if !cuts.is_empty() {
        let _ = writeln!(out, "### Power cut\n");
        let _ = writeln!(
            out,
            "`outbox-bench torture --power-cut --cuts N --durability full|normal`: the same clients, server and \
             faults as the kill torture, but the clients open their database through the crash-simulating VFS \
             (`rust/outbox-crashvfs`): at each cut every client on the file is killed at once, then a random \
             subset of the writes made since each file's last fsync reaches the disk at 512-byte sector \
             granularity, some sectors torn, never-synced new files may vanish and the SHM is lost or garbled \
             (SQLite's `test6.c` model). After every cut: `PRAGMA integrity_check` (`integrity_failures`), \
             optimistic ops against the queue (`op_mismatches`), the lease generation never going back. \
             `unsynced_writes` = writes not yet synced at a cut, `unsynced_dropped` = those none of whose \
             sectors reached the disk, `torn_writes` = those left with a torn sector. Every fifth command \
             is one the server rejects (`adjustStock` of a product that does not exist); once the engine has \
             recorded the rejection the harness creates the product after the next cut, so a resend would \
             be applied: `rejected then applied` must be 0 (the rejection's commit is fsynced, ADR 0002).\n"
        );
        let _ = writeln!(out, "| durability | cuts | acked | lost | duplicates | rejected | rejected then applied | integrity failures | unsynced writes | dropped | torn | run |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for v in &cuts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
                v["durability"].as_str().unwrap_or("?"),
                v["cuts"],
                v["acked"],
                v["lost"],
                v["duplicates"],
                v["rejected"],
                v["rejected_then_applied"],
                v["integrity_failures"],
                v["unsynced_writes"],
                v["unsynced_dropped"],
                v["torn_writes"],
                v["total_ms"].as_f64().unwrap_or(0.0) / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "\n`Full` loses nothing acknowledged: `enqueue` returns after the WAL fsync. `Normal` syncs only at \
             checkpoints, so acknowledged commands since the last one can vanish, as docs/guarantees.md says; \
             the file stays consistent and nothing is applied twice in either mode.\n"
        );
        for v in &cuts {
            let _ = writeln!(out, "```json\n{v}\n```\n");
        }
    }
    for v in lines.iter().filter(|v| v["bench"] == "torture-sigstop") {
        let _ = writeln!(out, "### Drainer frozen (SIGSTOP)\n");
        let _ = writeln!(
            out,
            "`outbox-bench torture --sigstop {n} --pause-ms {p}`: two clients share a database (lease TTL 1 s); \
             the drainer is frozen with SIGSTOP for {p} ms at a random moment, {n} times. `frozen_mid_write` = \
             freezes during which a probe connection could not take the write lock for 300 ms (the frozen \
             process held it); takeover = time from the freeze until the other client became the drainer; \
             enqueue latency is the other client's, during the pauses.\n",
            n = v["freezes"],
            p = v["pause_ms"]
        );
        let _ = writeln!(out, "```json\n{v}\n```\n");
    }
    out
}
