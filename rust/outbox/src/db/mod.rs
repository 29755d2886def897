//! Connection setup, pragmas and schema versioning.
//!
//! One writer connection and one reader connection per engine (WAL lets the reader see
//! committed state while the writer works). Opening never modifies a file it refuses: the
//! version check and the corruption check happen before any pragma that writes.
//!
//! ## The size cap and the drain reserve
//!
//! With `max_size_bytes` set, the writer's `max_page_count` caps the file at that size for
//! every write. App writes that add to the queue (`enqueue`, edits, new args) go through
//! `Db::write_capped`, which refuses with `StorageFull` once the pages in use would pass
//! the cap minus a *drain reserve* (`drain_reserve_pages`). The reserve is only ever
//! used by the engine's own writes (in-flight marks, attempts, settlements, pulls), so a
//! queue filled to the cap can always drain; under that pressure the drain also prunes
//! settled commands early (`queue::prune_for_space`) so enqueue works again. Pulls never
//! touch the reserve, and stop at 90% of the app writes' share (`Db::write_pulled`):
//! documents kept for reading cannot be pruned, so they must never take the last room a
//! sale needs. Settling falls back to one command per transaction at the cap
//! (`space::record_for_space`).

pub mod migrations;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::config::Durability;
use crate::error::{OpenError, Result};

pub use migrations::CURRENT_VERSION;

/// How long a connection waits for another connection's write lock before failing with
/// [`crate::Error::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// WAL pages between automatic checkpoints while the drain writes (see `configure`).
pub(crate) const DRAIN_AUTOCHECKPOINT_PAGES: i64 = 4000;
/// WAL pages between automatic checkpoints for durable writes (SQLite's default).
pub(crate) const DURABLE_AUTOCHECKPOINT_PAGES: i64 = 1000;
/// The WAL size (in 4 KiB pages) past which the drain checkpoints when it goes idle.
pub(crate) const IDLE_CHECKPOINT_MIN_PAGES: u64 = 256;
/// Prepared statements kept per connection (see `open_connection`).
const STATEMENT_CACHE: usize = 128;
/// After this long waiting for the write lock, a warning says so (once per wait).
const BUSY_WARN_AFTER: Duration = Duration::from_secs(1);

/// Wall-clock milliseconds since the Unix epoch (what the database stores).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The engine's two connections.
pub(crate) struct Db {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    durability: Durability,
    /// Whether the writer is switched to `synchronous=NORMAL` for a [`Commit::Relaxed`]
    /// write (read and changed only while holding the writer's lock).
    writer_relaxed: AtomicBool,
    /// With a size cap: the pages app writes may use (the cap minus the drain reserve).
    enqueue_limit_pages: Option<i64>,
    /// With a size cap: the pages pulls may fill (90% of the app writes' share: the rest
    /// of that share stays for sales, the reserve for settling answers).
    pull_limit_pages: Option<i64>,
    /// The configured cap in bytes, if any.
    cap_bytes: Option<u64>,
    /// `<database>-wal`, whose size decides the idle checkpoint.
    wal_path: PathBuf,
}

/// How a write transaction's commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// On disk before the commit returns (`synchronous` as configured, FULL by default).
    Durable,
    /// Without an fsync (WAL with `synchronous=NORMAL`): a power cut may undo the
    /// transaction but never corrupts the file, and the next durable commit or checkpoint
    /// makes it durable along with everything before it, in order. Only for writes whose
    /// loss is repaired by what follows (a resend the server answers `duplicate`, a page
    /// pulled again): see docs/guarantees.md, "What the drain writes without an fsync".
    Relaxed,
}

/// The part of a capped database only the drain may use: an eighth of the cap, at least
/// 16 pages and at most half the cap.
pub(crate) fn drain_reserve_pages(cap_pages: i64) -> i64 {
    (cap_pages / 8).max(16).min(cap_pages / 2)
}

/// Pages in use (the file's pages minus its free list) as `conn` sees them.
fn used_pages(conn: &Connection) -> rusqlite::Result<i64> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    Ok(pages - free)
}

impl Db {
    /// Opens (creating and migrating when needed) the database at `path`.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
        max_size_bytes: Option<u64>,
        vfs: Option<&str>,
    ) -> Result<Db, OpenError> {
        let is_new = !path.exists();
        let mut writer = open_connection(path, vfs)?;
        let version = match schema_version(&writer, path) {
            Ok(v) => v,
            Err(e) => {
                close_untouched(writer);
                return Err(e);
            }
        };
        if version > CURRENT_VERSION {
            close_untouched(writer);
            return Err(OpenError::NewerVersion { found: version, supported: CURRENT_VERSION });
        }
        configure(&writer, durability, max_size_bytes).map_err(|e| open_failure(path, e))?;
        migrations::migrate(&mut writer).map_err(|e| open_failure(path, e))?;
        if is_new {
            sync_folder(path);
        }
        let reader = open_connection(path, vfs)?;
        configure(&reader, durability, None).map_err(|e| open_failure(path, e))?;
        let cap_pages = match max_size_bytes {
            Some(bytes) => {
                let page_size: i64 =
                    writer.pragma_query_value(None, "page_size", |r| r.get(0)).map_err(|e| open_failure(path, e))?;
                Some((bytes / page_size.max(512) as u64).max(1) as i64)
            }
            None => None,
        };
        let enqueue_limit_pages = cap_pages.map(|cap| cap - drain_reserve_pages(cap));
        let pull_limit_pages = enqueue_limit_pages.map(|limit| limit - limit / 10);
        Ok(Db {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            durability,
            writer_relaxed: AtomicBool::new(false),
            enqueue_limit_pages,
            pull_limit_pages,
            cap_bytes: max_size_bytes,
            wal_path: {
                let mut p = path.as_os_str().to_owned();
                p.push("-wal");
                PathBuf::from(p)
            },
        })
    }

    /// Stamps the database with its (user, workspace) on first use and refuses another.
    pub(crate) fn check_scope(&self, path: &Path, user: &str, workspace: &str) -> Result<(), OpenError> {
        let scope = format!("{}\u{1f}{}", user, workspace);
        let conn = lock(&self.writer);
        let fail = |e: rusqlite::Error| open_failure(path, e);
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'scope'", [], |r| r.get(0))
            .map(Some)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(fail)?;
        match stored {
            Some(s) if s == scope => Ok(()),
            Some(_) => Err(OpenError::ScopeMismatch { path: path.to_path_buf() }),
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('scope', ?1)", [scope]).map_err(fail)?;
                Ok(())
            }
        }
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer, committing on `Ok`; the
    /// commit is [`Commit::Durable`].
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_with(Commit::Durable, f)
    }

    /// Like [`Db::write`], with the commit's [`Commit`] mode chosen by the caller.
    pub(crate) fn write_with<T>(&self, commit: Commit, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        self.switch_sync(&conn, commit)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Sets the writer's `synchronous` and `wal_autocheckpoint` for the next transaction
    /// (SQLite refuses to change `synchronous` inside one). Switched lazily: a drain's run of relaxed commits costs one switch,
    /// and a durable write after it switches back before it begins. With
    /// `Durability::Normal` every commit is already relaxed and nothing switches.
    fn switch_sync(&self, conn: &Connection, commit: Commit) -> Result<()> {
        if self.durability != Durability::Full {
            return Ok(());
        }
        let relax = commit == Commit::Relaxed;
        if self.writer_relaxed.load(Ordering::Relaxed) != relax {
            conn.pragma_update(None, "synchronous", if relax { "NORMAL" } else { "FULL" })?;
            // The checkpoint policy in `configure`: a long WAL for the drain, a short one
            // for what the app writes.
            let pages = if relax { DRAIN_AUTOCHECKPOINT_PAGES } else { DURABLE_AUTOCHECKPOINT_PAGES };
            conn.pragma_update(None, "wal_autocheckpoint", pages)?;
            self.writer_relaxed.store(relax, Ordering::Relaxed);
        }
        Ok(())
    }

    /// [`Db::write`] for app writes that grow the queue: refused with `StorageFull` (and
    /// rolled back) when the pages in use would pass the cap minus the drain reserve.
    pub(crate) fn write_capped<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write(|tx| {
            let value = f(tx)?;
            if self.over_enqueue_limit(tx, 1.0)? {
                return Err(crate::error::Error::StorageFull);
            }
            Ok(value)
        })
    }

    /// Whether the pages in use inside `conn` (a transaction sees its own writes) pass
    /// `fraction` of what app writes may use. Always false without a cap.
    pub(crate) fn over_enqueue_limit(&self, conn: &Connection, fraction: f64) -> Result<bool> {
        let Some(limit) = self.enqueue_limit_pages else { return Ok(false) };
        Ok(used_pages(conn)? as f64 > limit as f64 * fraction)
    }

    /// [`Db::write_with`] `Relaxed` for pulled documents: refused with `StorageFull` (and
    /// rolled back) when the pages in use would pass 90% of what app writes may use. A
    /// pulled document cannot be pruned to make room, so a catalog too large for the cap
    /// is kept in part (the pull reports `StorageFull` and tries again later) rather than
    /// refusing the next sale for good; nor does a pull touch the room settling needs.
    pub(crate) fn write_pulled<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_with(Commit::Relaxed, |tx| {
            let value = f(tx)?;
            if let Some(limit) = self.pull_limit_pages {
                if used_pages(tx)? > limit {
                    return Err(crate::error::Error::StorageFull);
                }
            }
            Ok(value)
        })
    }

    /// Bytes in use (committed), the cap, and whether app writes are refused for space.
    pub(crate) fn usage(&self) -> Result<(u64, Option<u64>, bool)> {
        let conn = lock(&self.reader);
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let used = used_pages(&conn)?;
        let full = self.enqueue_limit_pages.is_some_and(|l| used >= l);
        Ok(((used.max(0) * page_size) as u64, self.cap_bytes, full))
    }

    /// An integer pragma as each connection sees it: `[writer, reader]` (pragmas such as
    /// `synchronous` are per connection).
    pub(crate) fn pragma_on_both(&self, name: &str) -> Result<[i64; 2]> {
        let writer = lock(&self.writer);
        // What the next durable write runs with (the writer may be relaxed between drains).
        self.switch_sync(&writer, Commit::Durable)?;
        let w = writer.pragma_query_value(None, name, |r| r.get(0))?;
        drop(writer);
        let r = lock(&self.reader).pragma_query_value(None, name, |r| r.get(0))?;
        Ok([w, r])
    }

    /// Waits until no write transaction of this engine is open (they all run under the
    /// writer's mutex) and runs a passive checkpoint, which never waits for other
    /// connections. Called before the app may be suspended.
    pub(crate) fn quiesce(&self) -> Result<()> {
        let conn = lock(&self.writer);
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => Ok(()),
            // Another process is checkpointing or writing: nothing of ours is open, fine.
            Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Copies the WAL back into the database file when the drain goes idle and the WAL
    /// holds more than [`IDLE_CHECKPOINT_MIN_PAGES`], with a PASSIVE checkpoint (it never
    /// waits for a reader or another process; what it cannot copy now waits for the next
    /// one). The next drain then starts with a short WAL and runs no checkpoint of its own,
    /// and the pages a drain rewrote many times are written to the file once. A small WAL
    /// is left alone: copying it would cost two fsyncs for little. Best effort: a failure
    /// is logged, the next checkpoint catches up.
    pub(crate) fn checkpoint_when_idle(&self) {
        let wal_bytes = std::fs::metadata(&self.wal_path).map(|m| m.len()).unwrap_or(0);
        if wal_bytes < IDLE_CHECKPOINT_MIN_PAGES * 4096 {
            return;
        }
        if let Err(e) = self.quiesce() {
            tracing::warn!(error = %e, "idle checkpoint failed");
        }
    }

    /// Runs `f` with the reader connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = lock(&self.reader);
        f(&conn)
    }
}

/// Locks a connection mutex, recovering it if a panicking thread poisoned it: SQLite
/// rolls back an unfinished transaction, so the connection itself stays consistent.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_connection(path: &Path, vfs: Option<&str>) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = match vfs {
        None => Connection::open_with_flags(path, flags),
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
    }
    .map_err(|e| open_failure(path, e))?;
    conn.busy_handler(Some(wait_for_lock)).map_err(|e| open_failure(path, e))?;
    // One drain pass alone runs some 25 distinct statements (mark, history, settle, lanes,
    // store, lease), more than rusqlite's default cache of 16, so an LRU cache would evict
    // and re-parse them pass after pass.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Waits between tries for another connection's lock (SQLite calls this with the number
/// of tries so far): 1, 2, 5, 10, 20, then 50 ms per try, up to [`BUSY_TIMEOUT`] in all,
/// with one warning once the wait passes [`BUSY_WARN_AFTER`]. Returning false makes the
/// statement fail with SQLITE_BUSY, which reaches callers as [`crate::Error::Busy`].
fn wait_for_lock(tries: i32) -> bool {
    const STEPS: [u64; 5] = [1, 2, 5, 10, 20];
    const THEN: u64 = 50;
    let tries = tries.max(0) as usize;
    let waited: u64 = STEPS.iter().take(tries).sum::<u64>() + tries.saturating_sub(STEPS.len()) as u64 * THEN;
    if waited >= BUSY_TIMEOUT.as_millis() as u64 {
        return false;
    }
    let step = STEPS.get(tries).copied().unwrap_or(THEN);
    let warn_at = BUSY_WARN_AFTER.as_millis() as u64;
    if waited < warn_at && waited + step >= warn_at {
        tracing::warn!(
            waited_ms = waited + step,
            "the database's write lock is held by another connection (another process, or one frozen \
             mid-write); waiting up to {} ms before failing with `busy`",
            BUSY_TIMEOUT.as_millis()
        );
    }
    std::thread::sleep(Duration::from_millis(step));
    true
}

/// Makes a new database file's directory entry durable. SQLite fsyncs the folder after
/// creating a WAL or journal, but not after creating the main database file; without this
/// a power cut soon after the first open could lose the file with its first commits.
/// Best effort: a folder that cannot be opened (some platforms) is logged, not fatal.
fn sync_folder(path: &Path) {
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Err(e) = std::fs::File::open(folder).and_then(|f| f.sync_all()) {
            tracing::warn!(error = %e, "could not sync the database folder after creating the file");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Closes a connection to a file that is being refused without the checkpoint SQLite runs
/// when the last connection closes: frames another process left in the WAL stay there, so
/// the database file keeps every byte it had.
fn close_untouched(conn: Connection) {
    // A connection that cannot take the setting is closed as it is (nothing was written).
    let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
    drop(conn);
}

/// Reads `user_version` (which also proves the file is a SQLite database) and checks that
/// the schema can be read, without writing anything.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, OpenError> {
    let version: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| open_failure(path, e))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|e| open_failure(path, e))?;
    Ok(version)
}

/// Sets every pragma the engine relies on (see docs/pragmas.md).
fn configure(conn: &Connection, durability: Durability, max_size_bytes: Option<u64>) -> rusqlite::Result<()> {
    // WAL: readers never block the writer, and a commit is one sequential append.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    // FULL: a commit is on disk before `enqueue` returns (promise 1). NORMAL trades the
    // last transactions before a power loss for speed; an app must opt in to it.
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // Temporary b-trees (sorting) stay in memory: no extra files on a phone.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 8 MiB page cache per connection (SQLite's default is 2 MiB), filled only as pages are
    // read: keeps the queue's indexes cached at 100k commands (enqueue 1.58x -> 1.36x raw).
    conn.pragma_update(None, "cache_size", -8192)?;
    // Checkpoint policy. A checkpoint copies every page in the WAL back into the file and
    // costs two fsyncs, inside the commit that crosses the limit. A drain rewrites the same
    // pages (lanes, the state index, the lease, the unsynced totals) commit after commit, so
    // while it writes (relaxed commits under `Durability::Full`, see `Db::switch_sync`)
    // automatic checkpoints wait for DRAIN_AUTOCHECKPOINT_PAGES (16 MiB): a 10k drain
    // crossed 1,000 pages three times, 4,000 not once. When the drain goes idle a PASSIVE
    // checkpoint copies each page once ([`Db::checkpoint_when_idle`]), and again before the
    // app is suspended ([`Db::quiesce`]). Durable writes (enqueues) keep SQLite's 1,000: a
    // process killed after an offline burst leaves a WAL that the next open must read
    // through, and a 16 MiB one made that open 3.5 -> 12 ms (crash-reopen, 1k sales).
    // Under `Durability::Normal` commits are synced only at checkpoints, so 1,000 stays
    // throughout: a power cut loses no more than it did before (docs/guarantees.md).
    conn.pragma_update(None, "wal_autocheckpoint", DURABLE_AUTOCHECKPOINT_PAGES)?;
    // A WAL that grew past the drain's limit (a long reader held a checkpoint back) is
    // truncated back to it after the next checkpoint.
    conn.pragma_update(None, "journal_size_limit", DRAIN_AUTOCHECKPOINT_PAGES * 4096)?;
    if let Some(bytes) = max_size_bytes {
        // Caps the file size; writes past it fail with SQLITE_FULL, reported as StorageFull.
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (bytes / page_size.max(512) as u64).max(1);
        conn.pragma_update(None, "max_page_count", pages as i64)?;
    }
    Ok(())
}

fn open_failure(path: &Path, e: rusqlite::Error) -> OpenError {
    let path: PathBuf = path.to_path_buf();
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => OpenError::Corrupt { path, detail },
        Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::ReadOnly)
        | Some(ErrorCode::PermissionDenied)
        | Some(ErrorCode::SystemIoFailure) => OpenError::Unwritable { path, detail },
        _ => OpenError::Storage { path, detail },
    }
}

#[cfg(test)]
mod tests;
