use rusqlite::{Connection, OpenFlags};

use super::*;

const NAME: &str = "outbox-crash-test";

fn open(path: &std::path::Path) -> Connection {
    register(NAME).unwrap();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags_and_vfs(path, flags, NAME).unwrap();
    c.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).unwrap();
    c
}

/// Closes like a process that dies: no checkpoint, the WAL stays as it is.
fn die(c: Connection) {
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true).unwrap();
    drop(c);
}

fn check(path: &std::path::Path) -> (String, i64) {
    let c = Connection::open(path).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let n = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap_or(-1);
    (ok, n)
}

#[test]
fn synced_commits_survive_every_cut() {
    for seed in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let c = open(&path);
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch("CREATE TABLE t(x); ").unwrap();
        for i in 0..40 {
            c.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>300}")]).unwrap();
        }
        // An uncommitted transaction's pages may already be in the WAL: not durable.
        c.execute_batch("BEGIN; INSERT INTO t SELECT x FROM t;").unwrap();
        die(c);
        let mut rng = fastrand::Rng::with_seed(seed);
        power_cut(dir.path(), &mut rng).unwrap();
        assert_eq!(check(&path), ("ok".to_string(), 40), "seed {seed}");
    }
}

#[test]
fn unsynced_commits_can_vanish_and_the_cut_says_so() {
    let (mut dropped, mut unsynced, mut torn, mut short) = (0, 0, 0, 0);
    for seed in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let c = open(&path);
        c.execute_batch("CREATE TABLE t(x);").unwrap();
        c.pragma_update(None, "synchronous", "NORMAL").unwrap(); // WAL commits are not synced
        for i in 0..40 {
            c.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>300}")]).unwrap();
        }
        die(c);
        let mut rng = fastrand::Rng::with_seed(seed);
        let r = power_cut(dir.path(), &mut rng).unwrap();
        dropped += r.unsynced_dropped;
        unsynced += r.unsynced;
        torn += r.torn_writes;
        // WAL frames carry checksums: whatever survives is a prefix of the commits, intact.
        let (ok, n) = check(&path);
        assert_eq!(ok, "ok", "seed {seed}");
        assert!((0..=40).contains(&n), "seed {seed}: {n}");
        short += i64::from(n < 40);
    }
    assert!(unsynced > 0 && dropped > 0 && torn > 0, "unsynced {unsynced} dropped {dropped} torn {torn}");
    assert!(short > 0, "NORMAL lost nothing in 20 cuts: the cut is not dropping anything");
}

#[test]
fn a_panic_in_a_callback_is_an_error_code_not_an_unwind() {
    assert_eq!(guard(ffi::SQLITE_IOERR_WRITE, || panic!("boom")), ffi::SQLITE_IOERR_WRITE);
}

#[test]
fn a_record_cut_short_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.crashlog");
    let mut bytes = log::encode(&log::Record::Created);
    let w = log::encode(&log::Record::Write { off: 0, old_size: 0, pre: vec![], data: vec![1, 2, 3] });
    bytes.extend_from_slice(&w);
    bytes.extend_from_slice(&w[..w.len() - 1]);
    std::fs::write(&p, bytes).unwrap();
    assert_eq!(log::read_all(&p).unwrap().len(), 2);
}
