//! Promise 6 across real processes: only the lease holder drains; a holder killed with
//! SIGKILL is replaced within one lease TTL; nothing is lost or skipped.
//!
//! The test binary re-runs itself as the child drainer (`child_drainer` with
//! `OUTBOX_CHILD_DB` set); children report over stdout and append each command they apply
//! to a shared log file.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outbox::testing::ScriptedTransport;
use outbox::{Config, EnqueueRequest, Event, MutatorSpec, Outbox};

const TTL: Duration = Duration::from_millis(1000);

/// Not a test: the child process of the two-process tests, which run this binary again
/// with `--ignored --exact child_drainer`. Ignored so a normal run does not count it.
#[tokio::test]
#[ignore = "helper: runs only as the child process of the two-process tests"]
async fn child_drainer() {
    let Ok(db) = std::env::var("OUTBOX_CHILD_DB") else { return };
    let log = std::env::var("OUTBOX_CHILD_LOG").unwrap();
    let name = std::env::var("OUTBOX_CHILD_NAME").unwrap();
    let transport = Arc::new(ScriptedTransport::new());
    transport.set_delay(Duration::from_millis(15), Duration::from_millis(15));
    let tag = name.clone();
    transport.set_handler(move |cmd| {
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&log).unwrap();
        writeln!(f, "{tag} {}", cmd.idempotency_key).unwrap();
        None
    });
    let mut config = Config::new(db, "alice", "ws-1").with_transport(transport);
    config.lease_ttl = TTL;
    config.max_concurrency = 1;
    config.max_batch_size = 1;
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("note", MutatorSpec::default()).unwrap();
    let mut events = ob.subscribe().unwrap();
    println!("OUTBOX ready {}", ob.status().unwrap().is_drainer);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(Event::LeaseChanged { is_drainer })) =
            tokio::time::timeout(Duration::from_millis(50), events.next()).await
        {
            println!("OUTBOX drainer {is_drainer}");
        }
    }
}

struct Child_ {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn spawn_child(name: &str, db: &std::path::Path, log: &std::path::Path) -> Child_ {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_drainer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("OUTBOX_CHILD_DB", db)
        .env("OUTBOX_CHILD_LOG", log)
        .env("OUTBOX_CHILD_NAME", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test child_drainer ... " on the same line first.
            if let Some(at) = line.find("OUTBOX ") {
                if tx.send(line[at + 7..].to_string()).is_err() {
                    return;
                }
            }
        }
    });
    Child_ { child, lines }
}

impl Child_ {
    fn expect_line(&self, want: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == want => return Instant::now(),
                Ok(_) => {}
                Err(_) => panic!("child did not say `{want}` within {within:?}"),
            }
        }
    }
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn applied(log: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

#[test]
fn only_the_lease_holder_drains_and_a_killed_holder_is_replaced_within_one_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let log = dir.path().join("applied.log");
    let keys: Vec<String> = {
        let mut c = Config::new(&db, "alice", "ws-1");
        c.start_online = false;
        let ob = Outbox::open(c).unwrap();
        ob.register_mutator("note", MutatorSpec::default()).unwrap();
        let keys = (0..150)
            .map(|i| {
                let id = ob.enqueue(EnqueueRequest::new("note", format!("{{\"n\":{i}}}")).keys(["lane"])).unwrap();
                ob.command(&id).unwrap().idempotency_key
            })
            .collect();
        ob.close();
        keys
    };

    let a = spawn_child("A", &db, &log);
    a.expect_line("drainer true", Duration::from_secs(10));
    let b = spawn_child("B", &db, &log);
    b.expect_line("ready false", Duration::from_secs(10));
    // Let both run: only A sends.
    std::thread::sleep(Duration::from_millis(600));
    let before_kill = applied(&log);
    assert!(!before_kill.is_empty(), "A drained nothing");
    assert!(before_kill.iter().all(|(who, _)| who == "A"), "B sent while A held the lease");
    assert!(before_kill.len() < keys.len(), "A finished before it could be killed; enqueue more");

    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    a.child.wait().unwrap();
    let took_over = b.expect_line("drainer true", Duration::from_secs(10));
    let takeover = took_over - killed_at;
    println!("takeover after SIGKILL: {} ms (lease TTL {} ms)", takeover.as_millis(), TTL.as_millis());
    assert!(takeover <= TTL + Duration::from_millis(400), "takeover took {takeover:?}");

    // B finishes the queue; every command was sent, in order, none skipped. "Finished" is
    // what the database says: the transport may have applied the last batch while its
    // answer is not recorded yet (it would be resent, under the same key, at the next open).
    let deadline = Instant::now() + Duration::from_secs(20);
    let succeeded_in_file = || -> usize {
        rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM commands WHERE state = 'succeeded'", [], |r| r.get::<_, i64>(0))
            })
            .map(|n| n as usize)
            .unwrap_or(0)
    };
    loop {
        let done: std::collections::HashSet<String> = applied(&log).into_iter().map(|(_, k)| k).collect();
        if keys.iter().all(|k| done.contains(k)) && succeeded_in_file() == keys.len() {
            break;
        }
        assert!(Instant::now() < deadline, "B did not finish the queue");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b);
    let log_entries = applied(&log);
    let after: Vec<&(String, String)> = log_entries.iter().skip(before_kill.len()).collect();
    assert!(after.iter().all(|(who, _)| who == "B" || who == "A"), "unknown sender");
    // Lane order holds across the handover: first sends of each key are in enqueue order.
    let mut first_seen = Vec::new();
    for (_, k) in &log_entries {
        if !first_seen.contains(k) {
            first_seen.push(k.clone());
        }
    }
    assert_eq!(first_seen, keys);
    // At most the one command A had in flight is sent twice (same idempotency key).
    assert!(log_entries.len() <= keys.len() + 1, "{} sends for {} commands", log_entries.len(), keys.len());
    let c = Outbox::open(Config::new(&db, "alice", "ws-1")).unwrap();
    assert_eq!(c.status().unwrap().succeeded as usize, keys.len());
}

/// A drainer that was paused past its TTL and replaced cannot write its late outcome over
/// its successor's work: the fencing generation refuses it.
#[tokio::test]
async fn a_stale_drainers_outcome_is_refused_by_the_fencing_generation() {
    let h = common::Harness::new();
    let mut events = h.outbox.subscribe().unwrap();
    h.transport.hold();
    let id = h.outbox.enqueue(EnqueueRequest::new("note", "{}")).unwrap();
    h.wait_state(&id, outbox::CommandState::InFlight).await;
    // Another process takes the lease over (as it would after this one's TTL ran out).
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    conn.execute("UPDATE lease SET owner = 'successor', generation = generation + 1, expires_at = ?1", [i64::MAX])
        .unwrap();
    h.transport.release();
    common::expect_event(&mut events, "lease lost", |e| matches!(e, Event::LeaseChanged { is_drainer: false })).await;
    // The late "applied" was not written: the successor owns the command now.
    assert_eq!(h.state(&id), outbox::CommandState::InFlight);
    assert!(h.cmd(&id).history[0].ended_at.is_none());
    assert!(!h.outbox.status().unwrap().is_drainer);
}
