//! Group commit on SQLite's one writer.
//!
//! Every `POST /v1/commands` becomes a [`Job`] sent to one writer thread. The thread takes
//! the first job waiting, then every other job already queued (up to [`MAX_GROUP_JOBS`]
//! jobs or [`MAX_GROUP_COMMANDS`] commands), and runs them all in one `BEGIN IMMEDIATE`
//! transaction, each job inside its own savepoint and each command inside a nested one.
//! One `COMMIT` (one fsync under `synchronous=FULL`) then makes every job of the group
//! durable, and only then is any of them answered. While a group commits, new requests
//! queue up and form the next group, so the more clients wait, the more commands share a
//! commit.
//!
//! Failures stay contained: a job whose batch hits a storage error is rolled back to its
//! savepoint and answered with that error (nothing of it applied) while the rest of the
//! group commits; a failed `BEGIN`, savepoint or `COMMIT` rolls the whole group back and
//! answers every job of it with an error, so no job is ever answered as applied unless
//! its transaction committed.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection};
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::{get_doc, head_seq};
use crate::storage::batch::{self, BatchTx, Ran, Record};
use crate::storage::{
    Apply, ApplyError, BatchCommand, Change, DocTx, Outcome, Scope, StorageError, StoredDoc, StoredResult,
};

/// Most jobs (requests) sharing one transaction.
pub(super) const MAX_GROUP_JOBS: usize = 64;
/// A group stops taking jobs once it holds this many commands.
pub(super) const MAX_GROUP_COMMANDS: usize = 2_000;

type Reply = oneshot::Sender<Result<Vec<Outcome>, StorageError>>;

/// One request's batch, waiting for the writer.
struct Job {
    scope: Scope,
    commands: Vec<BatchCommand>,
    /// Drives the mutators' futures (they only await this transaction's calls).
    runtime: Handle,
    reply: Reply,
}

/// The handle to the writer thread. Dropping it (with the storage) ends the thread once
/// the jobs already queued are done.
pub(super) struct Writer {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Writer {
    /// Starts the writer thread over `conn`.
    pub(super) fn spawn(conn: Arc<Mutex<Connection>>) -> Result<Self, StorageError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("outbox-sqlite-writer".into())
            .spawn(move || writer_loop(&conn, &rx))
            .map_err(|e| StorageError::Worker(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs: Mutex::new(tx) })
    }

    /// Queues a batch and waits until the group holding it committed (or failed).
    pub(super) async fn submit(&self, scope: Scope, commands: Vec<BatchCommand>) -> Result<Vec<Outcome>, StorageError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { scope, commands, runtime: Handle::current(), reply };
        self.jobs
            .lock()
            .map_err(|_| StorageError::Poisoned)?
            .send(job)
            .map_err(|_| StorageError::Worker("the writer thread has stopped".into()))?;
        answer.await.map_err(|_| StorageError::Worker("the writer thread dropped a batch".into()))?
    }
}

fn writer_loop(conn: &Mutex<Connection>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut commands = first.commands.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_JOBS && commands < MAX_GROUP_COMMANDS {
            match jobs.try_recv() {
                Ok(job) => {
                    commands += job.commands.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        run_group(conn, group);
    }
}

/// Runs `group` in one transaction and answers each job.
fn run_group(conn: &Mutex<Connection>, group: Vec<Job>) {
    let mut guard = match conn.lock() {
        Ok(g) => g,
        Err(_) => {
            for job in group {
                let _ = job.reply.send(Err(StorageError::Poisoned));
            }
            return;
        }
    };
    match commit_group(&mut guard, &group) {
        Ok(answers) => {
            for (job, answer) in group.into_iter().zip(answers) {
                // The requester may have gone (its task was dropped): the commit stands.
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            let _ = guard.execute_batch("ROLLBACK");
            tracing::error!(error = %e, jobs = group.len(), "group transaction failed; rolled back");
            let message = e.to_string();
            for job in group {
                let _ = job.reply.send(Err(StorageError::Worker(format!("the transaction failed: {message}"))));
            }
        }
    }
}

/// Runs one statement without arguments from the statement cache (`execute_batch` parses
/// it again every time: the savepoints around each command were 9% of a drain's CPU).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// The group's transaction: `Ok` only when `COMMIT` succeeded.
fn commit_group(conn: &mut Connection, group: &[Job]) -> Result<Vec<Result<Vec<Outcome>, StorageError>>, StorageError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        exec(conn, "SAVEPOINT job")?;
        let mut tx = SqliteTx { conn: &mut *conn, workspace: job.scope.workspace.clone(), changes: Vec::new() };
        match job.runtime.block_on(batch::run(&mut tx, &job.scope, &job.commands)) {
            Ok(outcomes) => {
                exec(conn, "RELEASE job")?;
                answers.push(Ok(outcomes));
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                answers.push(Err(e));
            }
        }
    }
    exec(conn, "COMMIT")?;
    Ok(answers)
}

/// [`crate::storage::Storage::seed_doc`]: one document written in its own transaction.
pub(super) fn seed(
    conn: &mut Connection,
    workspace: &str,
    collection: &str,
    id: &str,
    doc: &Value,
) -> Result<Change, StorageError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    let mut tx = SqliteTx { conn: &mut *conn, workspace: workspace.to_string(), changes: Vec::new() };
    match tx.write_now(collection, id, Some(doc)) {
        Ok(change) => {
            if let Err(e) = conn.execute_batch("COMMIT") {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
            Ok(change)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Document access and records inside the group's transaction, for one job's workspace.
/// Holds `&mut Connection` (not a `rusqlite::Transaction`, which is not `Send`) so it can
/// serve as the mutators' [`DocTx`].
struct SqliteTx<'c> {
    conn: &'c mut Connection,
    workspace: String,
    /// Changes written by the command being run.
    changes: Vec<Change>,
}

impl SqliteTx<'_> {
    fn next_seq(&mut self) -> Result<i64, StorageError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO workspaces (id, head_seq) VALUES (?1, 0)")?
            .execute(params![self.workspace])?;
        // No RETURNING: SQLite builds and drops a temporary b-tree for each one it runs.
        self.conn
            .prepare_cached("UPDATE workspaces SET head_seq = head_seq + 1 WHERE id = ?1")?
            .execute(params![self.workspace])?;
        head_seq(self.conn, &self.workspace)
    }

    fn write_now(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError> {
        let current = get_doc(self.conn, &self.workspace, collection, id)?;
        let version = current.map(|d| d.version).unwrap_or(0) + 1;
        let text = match doc {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO docs (workspace, collection, id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (workspace, collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
            )?
            .execute(params![self.workspace, collection, id, version, text])?;
        let seq = self.next_seq()?;
        self.conn
            .prepare_cached(
                "INSERT INTO changes (workspace, seq, collection, id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![self.workspace, seq, collection, id, version, text])?;
        let change = Change { seq, collection: collection.to_string(), id: id.to_string(), version, doc: doc.cloned() };
        self.changes.push(change.clone());
        Ok(change)
    }
}

#[async_trait]
impl DocTx for SqliteTx<'_> {
    async fn get(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        get_doc(self.conn, &self.workspace, collection, id)
    }

    async fn write(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError> {
        self.write_now(collection, id, doc)
    }
}

#[async_trait]
impl BatchTx for SqliteTx<'_> {
    async fn record(&mut self, scope: &Scope, key: &str) -> Result<Option<Record>, StorageError> {
        record(self.conn, scope, key)
    }

    async fn run(&mut self, _scope: &Scope, apply: &dyn Apply) -> Result<Result<Ran, ApplyError>, StorageError> {
        exec(self.conn, "SAVEPOINT command")?;
        self.changes.clear();
        match apply.apply(self).await {
            Ok(result) => {
                exec(self.conn, "RELEASE command")?;
                let changes = std::mem::take(&mut self.changes);
                let head = match changes.last() {
                    Some(c) => c.seq,
                    None => head_seq(self.conn, &self.workspace)?,
                };
                Ok(Ok(Ran { result, changes, head }))
            }
            Err(ApplyError::Storage(e)) => Err(e),
            Err(refused) => {
                // Undo whatever the mutator wrote before it refused.
                self.conn.execute_batch("ROLLBACK TO command; RELEASE command")?;
                self.changes.clear();
                Ok(Err(refused))
            }
        }
    }

    async fn store(&mut self, scope: &Scope, command: &BatchCommand, record: &Record) -> Result<(), StorageError> {
        let (response, applied_at, outcome) = match record {
            Record::Applied(stored) => (serde_json::to_string(stored)?, stored.applied_at, None),
            Record::Rejected(rejection) => (serde_json::to_string(rejection)?, None, Some("rejected")),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO idempotency (workspace, user_id, idempotency_key, command_id, response, applied_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                scope.workspace,
                scope.user,
                command.idempotency_key,
                command.command_id,
                response,
                applied_at,
                outcome
            ])?;
        if let Record::Applied(stored) = record {
            self.conn
                .prepare_cached(
                    "INSERT INTO apply_log (workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    scope.workspace,
                    scope.user,
                    command.idempotency_key,
                    command.command_id,
                    command.mutator,
                    serde_json::to_string(&command.keys)?,
                    stored.server_seq
                ])?;
        }
        Ok(())
    }
}

/// The record stored under `key` in `scope`: an applied command's result and receipt, or
/// a rejected command's answer.
fn record(conn: &Connection, scope: &Scope, key: &str) -> Result<Option<Record>, StorageError> {
    use rusqlite::OptionalExtension;
    let row: Option<(String, Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT response, applied_at, outcome FROM idempotency
             WHERE workspace = ?1 AND user_id = ?2 AND idempotency_key = ?3",
        )?
        .query_row(params![scope.workspace, scope.user, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((response, applied_at, outcome)) = row else { return Ok(None) };
    match outcome.as_deref() {
        None => {
            let mut stored: StoredResult = serde_json::from_str(&response)?;
            stored.applied_at = applied_at;
            Ok(Some(Record::Applied(stored)))
        }
        Some("rejected") => Ok(Some(Record::Rejected(serde_json::from_str(&response)?))),
        Some(other) => Err(StorageError::Inconsistent(format!("unknown idempotency outcome {other:?}"))),
    }
}
