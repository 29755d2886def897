//! The SQLite backend: one writer, WAL, `synchronous=FULL`, and group commit.
//!
//! Command batches go to one writer thread ([`writer`]), which runs every batch waiting
//! for it in one `BEGIN IMMEDIATE` transaction and commits once: while one group commits
//! (its fsync), the next requests queue up and share the next commit. One writer
//! serialises all commands, so change-log sequence numbers are assigned in commit order by
//! construction. Reads (tokens, memberships, the change feed, receipts) use a second
//! connection on tokio's blocking pool; under WAL they never wait for the writer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{
    AppliedEntry, BatchCommand, Change, ChangesPage, Outcome, Scope, Storage, StorageError, StoredCommand, StoredDoc,
    StoredResult,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    token   TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workspaces (
    id       TEXT PRIMARY KEY,
    head_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS members (
    workspace TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (workspace, user_id)
);
CREATE TABLE IF NOT EXISTS docs (
    workspace  TEXT NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT,
    PRIMARY KEY (workspace, collection, id)
);
CREATE TABLE IF NOT EXISTS changes (
    workspace  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT,
    PRIMARY KEY (workspace, seq)
);
CREATE TABLE IF NOT EXISTS idempotency (
    workspace       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    command_id      TEXT NOT NULL,
    response        TEXT NOT NULL,
    applied_at      INTEGER,
    -- NULL: applied (`response` is the stored result); 'rejected': `response` is the
    -- rejection, answered again to a resend under the same key.
    outcome         TEXT,
    PRIMARY KEY (workspace, user_id, idempotency_key)
);
-- The database's identity: key 'epoch' is written once, when the database (or, for a file
-- from a server before epochs, this table) is created, and never changed.
CREATE TABLE IF NOT EXISTS server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apply_log (
    n               INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    command_id      TEXT NOT NULL,
    mutator         TEXT NOT NULL,
    keys            TEXT NOT NULL,
    server_seq      INTEGER NOT NULL
);
";

mod writer;

/// SQLite storage (the default backend).
pub struct SqliteStorage {
    /// The writer connection: the writer thread's, and seeding's.
    conn: Arc<Mutex<Connection>>,
    /// A read-only connection for every read.
    reader: Arc<Mutex<Connection>>,
    writer: writer::Writer,
    epoch: String,
}

/// Settings for speed that change nothing about durability: the savepoint around each
/// command keeps its journal in memory (a temporary file before: each savepoint opened
/// one), a 16 MiB page cache, and room in the statement cache for every statement a batch
/// runs (rusqlite keeps 16 by default and re-parsed the rest).
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -16384)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and its schema. Blocking: call
    /// it from a blocking context (as [`crate::Server::start`] does).
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)?;
        // WAL: readers do not block the writer. FULL: an acknowledged command survives
        // power loss, which the exactly-once promise depends on.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        tune(&conn)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        upgrade(&conn)?;
        let epoch = ensure_epoch(&mut conn)?;
        let reader = Connection::open(path)?;
        reader.pragma_update(None, "query_only", true)?;
        tune(&reader)?;
        reader.busy_timeout(Duration::from_secs(5))?;
        let conn = Arc::new(Mutex::new(conn));
        let writer = writer::Writer::spawn(conn.clone())?;
        Ok(SqliteStorage { conn, reader: Arc::new(Mutex::new(reader)), writer, epoch })
    }

    /// Runs `f` with the reader connection on tokio's blocking pool.
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| StorageError::Poisoned)?;
            f(&guard)
        })
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StorageError::Poisoned)?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))?
    }
}

/// Reads the database's epoch, writing a fresh one first when there is none: a new file,
/// or one from a server before epochs (upgraded in place; its data is untouched, and its
/// clients' plain cursors stay valid in the new epoch, docs/protocol.md §4).
fn ensure_epoch(conn: &mut Connection) -> Result<String, StorageError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO server_meta (key, value) VALUES ('epoch', ?1) ON CONFLICT (key) DO NOTHING",
        params![crate::cursor::new_epoch()],
    )?;
    let epoch: String = tx.query_row("SELECT value FROM server_meta WHERE key = 'epoch'", [], |r| r.get(0))?;
    tx.commit()?;
    Ok(epoch)
}

/// Columns added after a table was first released: `(table, column, declaration)`.
/// `CREATE TABLE IF NOT EXISTS` leaves an older file's tables as they were, so each is
/// added here when missing. Adding a nullable column keeps every row.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // Receipts: the server time a command was applied (NULL for older records).
    ("idempotency", "applied_at", "INTEGER"),
    // Stored rejections: NULL for every older record, which were all applied.
    ("idempotency", "outcome", "TEXT"),
];

/// Brings an older server file up to [`SCHEMA`] in place, without losing a row.
fn upgrade(conn: &Connection) -> Result<(), StorageError> {
    for (table, column, decl) in ADDED_COLUMNS {
        if !has_column(conn, table, column)? {
            // Names come from the constant above, never from input.
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StorageError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map(params![table], |r| r.get::<_, String>(0))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

fn parse_doc(text: Option<String>) -> Result<Option<Value>, StorageError> {
    Ok(match text {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

fn get_doc(conn: &Connection, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT version, doc FROM docs WHERE workspace = ?1 AND collection = ?2 AND id = ?3")?
        .query_row(params![workspace, collection, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        Some((version, text)) => Ok(Some(StoredDoc { version, doc: parse_doc(text)? })),
        None => Ok(None),
    }
}

fn head_seq(conn: &Connection, workspace: &str) -> Result<i64, StorageError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT head_seq FROM workspaces WHERE id = ?1")?
        .query_row(params![workspace], |r| r.get(0))
        .optional()?;
    Ok(seq.unwrap_or(0))
}

/// The record of the command applied under `key` in `scope`, with its receipt (a
/// rejected command's record is not one).
fn stored_command(conn: &Connection, scope: &Scope, key: &str) -> Result<Option<StoredCommand>, StorageError> {
    let row: Option<(String, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT command_id, response, applied_at FROM idempotency
             WHERE workspace = ?1 AND user_id = ?2 AND idempotency_key = ?3 AND outcome IS NULL",
        )?
        .query_row(params![scope.workspace, scope.user, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((command_id, response, applied_at)) = row else { return Ok(None) };
    let mut stored: StoredResult = serde_json::from_str(&response)?;
    stored.applied_at = applied_at;
    Ok(Some(StoredCommand { command_id, stored }))
}

#[async_trait]
impl Storage for SqliteStorage {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn user_for_token(&self, token: &str) -> Result<Option<String>, StorageError> {
        let token = token.to_string();
        self.with_reader(move |conn| {
            Ok(conn
                .prepare_cached("SELECT user_id FROM tokens WHERE token = ?1")?
                .query_row(params![token], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn is_member(&self, user: &str, workspace: &str) -> Result<bool, StorageError> {
        let (user, workspace) = (user.to_string(), workspace.to_string());
        self.with_reader(move |conn| {
            let found: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM members WHERE workspace = ?1 AND user_id = ?2")?
                .query_row(params![workspace, user], |r| r.get(0))
                .optional()?;
            Ok(found.is_some())
        })
        .await
    }

    async fn execute_batch(&self, scope: &Scope, commands: Vec<BatchCommand>) -> Result<Vec<Outcome>, StorageError> {
        self.writer.submit(scope.clone(), commands).await
    }

    async fn stored_command(
        &self,
        scope: &Scope,
        idempotency_key: &str,
    ) -> Result<Option<StoredCommand>, StorageError> {
        let (scope, key) = (scope.clone(), idempotency_key.to_string());
        self.with_reader(move |conn| stored_command(conn, &scope, &key)).await
    }

    async fn changes_after(&self, workspace: &str, after: i64, limit: u32) -> Result<ChangesPage, StorageError> {
        let workspace = workspace.to_string();
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, collection, id, version, doc FROM changes
                 WHERE workspace = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![workspace, after, i64::from(limit) + 1], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut changes = Vec::new();
            for row in rows {
                let (seq, collection, id, version, doc) = row?;
                changes.push(Change { seq, collection, id, version, doc: parse_doc(doc)? });
            }
            let has_more = changes.len() > limit as usize;
            changes.truncate(limit as usize);
            Ok(ChangesPage { changes, has_more })
        })
        .await
    }

    async fn head_seq(&self, workspace: &str) -> Result<i64, StorageError> {
        let workspace = workspace.to_string();
        self.with_reader(move |conn| head_seq(conn, &workspace)).await
    }

    async fn get_doc(&self, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        let (workspace, collection, id) = (workspace.to_string(), collection.to_string(), id.to_string());
        self.with_reader(move |conn| get_doc(conn, &workspace, &collection, &id)).await
    }

    async fn apply_log(&self) -> Result<Vec<AppliedEntry>, StorageError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n, workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq
                 FROM apply_log ORDER BY n",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (n, workspace, user, idempotency_key, command_id, mutator, keys, server_seq) = row?;
                out.push(AppliedEntry {
                    n,
                    workspace,
                    user,
                    idempotency_key,
                    command_id,
                    mutator,
                    keys: serde_json::from_str(&keys)?,
                    server_seq,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn add_user(&self, user: &str, token: &str) -> Result<(), StorageError> {
        let (user, token) = (user.to_string(), token.to_string());
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT INTO tokens (token, user_id) VALUES (?1, ?2)
                 ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id",
                params![token, user],
            )?;
            Ok(())
        })
        .await
    }

    async fn add_member(&self, user: &str, workspace: &str) -> Result<(), StorageError> {
        let (user, workspace) = (user.to_string(), workspace.to_string());
        self.with_conn(move |conn| {
            conn.execute("INSERT OR IGNORE INTO workspaces (id, head_seq) VALUES (?1, 0)", params![workspace])?;
            conn.execute(
                "INSERT OR IGNORE INTO members (workspace, user_id) VALUES (?1, ?2)",
                params![workspace, user],
            )?;
            Ok(())
        })
        .await
    }

    async fn seed_doc(&self, workspace: &str, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError> {
        let (workspace, collection, id, doc) =
            (workspace.to_string(), collection.to_string(), id.to_string(), doc.clone());
        self.with_conn(move |conn| writer::seed(conn, &workspace, &collection, &id, &doc)).await
    }
}
