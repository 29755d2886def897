//! The SQLite backend: one writer connection behind a mutex, WAL, `synchronous=FULL`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;

use super::{
    AppliedEntry, ApplyError, ApplyFn, Change, ChangesPage, CommandRef, DocTx, Execution, Scope, Storage, StorageError,
    StoredDoc, StoredResult,
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
    PRIMARY KEY (workspace, user_id, idempotency_key)
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

/// SQLite storage (the default backend).
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and its schema.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(path)?;
        // WAL: readers do not block the writer. FULL: an acknowledged command survives
        // power loss, which the exactly-once promise depends on.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStorage { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StorageError> {
        self.conn.lock().map_err(|_| StorageError::Poisoned)
    }
}

fn parse_doc(text: Option<String>) -> Result<Option<Value>, StorageError> {
    Ok(match text {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

struct SqliteDocTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    workspace: &'t str,
    changes: Vec<Change>,
}

impl SqliteDocTx<'_, '_> {
    fn next_seq(&mut self) -> Result<i64, StorageError> {
        self.tx.execute("INSERT OR IGNORE INTO workspaces (id, head_seq) VALUES (?1, 0)", params![self.workspace])?;
        let seq: i64 = self.tx.query_row(
            "UPDATE workspaces SET head_seq = head_seq + 1 WHERE id = ?1 RETURNING head_seq",
            params![self.workspace],
            |r| r.get(0),
        )?;
        Ok(seq)
    }

    fn write(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError> {
        let current = self.get(collection, id)?;
        let version = current.map(|d| d.version).unwrap_or(0) + 1;
        let text = match doc {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        self.tx.execute(
            "INSERT INTO docs (workspace, collection, id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (workspace, collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
            params![self.workspace, collection, id, version, text],
        )?;
        let seq = self.next_seq()?;
        self.tx.execute(
            "INSERT INTO changes (workspace, seq, collection, id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![self.workspace, seq, collection, id, version, text],
        )?;
        let change = Change { seq, collection: collection.to_string(), id: id.to_string(), version, doc: doc.cloned() };
        self.changes.push(change.clone());
        Ok(change)
    }
}

impl DocTx for SqliteDocTx<'_, '_> {
    fn get(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        get_doc(self.tx, self.workspace, collection, id)
    }

    fn put(&mut self, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError> {
        self.write(collection, id, Some(doc))
    }

    fn delete(&mut self, collection: &str, id: &str) -> Result<Option<Change>, StorageError> {
        match self.get(collection, id)? {
            Some(StoredDoc { doc: Some(_), .. }) => Ok(Some(self.write(collection, id, None)?)),
            _ => Ok(None),
        }
    }
}

fn get_doc(conn: &Connection, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
    let row: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT version, doc FROM docs WHERE workspace = ?1 AND collection = ?2 AND id = ?3",
            params![workspace, collection, id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        Some((version, text)) => Ok(Some(StoredDoc { version, doc: parse_doc(text)? })),
        None => Ok(None),
    }
}

fn head_seq(conn: &Connection, workspace: &str) -> Result<i64, StorageError> {
    let seq: Option<i64> =
        conn.query_row("SELECT head_seq FROM workspaces WHERE id = ?1", params![workspace], |r| r.get(0)).optional()?;
    Ok(seq.unwrap_or(0))
}

impl Storage for SqliteStorage {
    fn user_for_token(&self, token: &str) -> Result<Option<String>, StorageError> {
        let conn = self.lock()?;
        Ok(conn.query_row("SELECT user_id FROM tokens WHERE token = ?1", params![token], |r| r.get(0)).optional()?)
    }

    fn is_member(&self, user: &str, workspace: &str) -> Result<bool, StorageError> {
        let conn = self.lock()?;
        let found: Option<i64> = conn
            .query_row("SELECT 1 FROM members WHERE workspace = ?1 AND user_id = ?2", params![workspace, user], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(found.is_some())
    }

    fn execute(&self, scope: &Scope, command: &CommandRef<'_>, apply: ApplyFn<'_>) -> Result<Execution, StorageError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT response FROM idempotency WHERE workspace = ?1 AND user_id = ?2 AND idempotency_key = ?3",
                params![scope.workspace, scope.user, command.idempotency_key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(text) = stored {
            let result: StoredResult = serde_json::from_str(&text)?;
            tx.rollback()?;
            return Ok(Execution::Duplicate(result));
        }
        let mut doc_tx = SqliteDocTx { tx: &tx, workspace: &scope.workspace, changes: Vec::new() };
        let outcome = apply(&mut doc_tx);
        let changes = std::mem::take(&mut doc_tx.changes);
        let result = match outcome {
            Ok(result) => result,
            Err(ApplyError::Storage(e)) => return Err(e),
            Err(other) => {
                tx.rollback()?;
                return Ok(Execution::NotApplied(other));
            }
        };
        let server_seq = match changes.last() {
            Some(c) => c.seq,
            None => head_seq(&tx, &scope.workspace)?,
        };
        let stored = StoredResult { result, changes, server_seq };
        tx.execute(
            "INSERT INTO idempotency (workspace, user_id, idempotency_key, command_id, response)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                scope.workspace,
                scope.user,
                command.idempotency_key,
                command.command_id,
                serde_json::to_string(&stored)?
            ],
        )?;
        tx.execute(
            "INSERT INTO apply_log (workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                scope.workspace,
                scope.user,
                command.idempotency_key,
                command.command_id,
                command.mutator,
                serde_json::to_string(command.keys)?,
                server_seq
            ],
        )?;
        tx.commit()?;
        Ok(Execution::Applied(stored))
    }

    fn changes_after(&self, workspace: &str, after: i64, limit: u32) -> Result<ChangesPage, StorageError> {
        let conn = self.lock()?;
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
    }

    fn head_seq(&self, workspace: &str) -> Result<i64, StorageError> {
        let conn = self.lock()?;
        head_seq(&conn, workspace)
    }

    fn get_doc(&self, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        let conn = self.lock()?;
        get_doc(&conn, workspace, collection, id)
    }

    fn apply_log(&self) -> Result<Vec<AppliedEntry>, StorageError> {
        let conn = self.lock()?;
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
    }

    fn add_user(&self, user: &str, token: &str) -> Result<(), StorageError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO tokens (token, user_id) VALUES (?1, ?2) ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id",
            params![token, user],
        )?;
        Ok(())
    }

    fn add_member(&self, user: &str, workspace: &str) -> Result<(), StorageError> {
        let conn = self.lock()?;
        conn.execute("INSERT OR IGNORE INTO workspaces (id, head_seq) VALUES (?1, 0)", params![workspace])?;
        conn.execute("INSERT OR IGNORE INTO members (workspace, user_id) VALUES (?1, ?2)", params![workspace, user])?;
        Ok(())
    }

    fn seed_doc(&self, workspace: &str, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let change = {
            let mut doc_tx = SqliteDocTx { tx: &tx, workspace, changes: Vec::new() };
            doc_tx.put(collection, id, doc)?
        };
        tx.commit()?;
        Ok(change)
    }
}
