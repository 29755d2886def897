//! One request's batch in one PostgreSQL transaction, and why the change feed stays in
//! order.
//!
//! [`execute_batch`] runs, in one `READ COMMITTED` transaction, with as few round trips
//! as the batch allows:
//!
//! 1. `BEGIN`.
//! 2. **Lock the workspace and claim every key, in one statement** ([`CLAIM_AND_LOCK`]):
//!    `INSERT INTO workspaces … ON CONFLICT DO UPDATE … RETURNING head_seq` locks the
//!    workspace's row until commit and reads its change-log head; then
//!    `INSERT INTO idempotency … ON CONFLICT DO NOTHING` claims the batch's keys (sorted,
//!    each once) with empty responses. The claim reads its rows from the lock's result,
//!    so the lock is always taken first.
//! 3. Only when some key was already there: read those keys' records (applied: answered
//!    `duplicate`; rejected: the same rejection), in one statement.
//! 4. **Read the documents the commands name** ([`crate::storage::Apply::reads`]: a
//!    `put`'s document, an order's products) in one statement ([`GET_DOCS`]), after the
//!    lock, so they cannot change before commit.
//! 5. **Run the commands** ([`crate::storage::batch::run`]) against [`PgBatchTx`]. A
//!    document is read from the database at most once per batch (only one that was not
//!    named up front, such as the products of an order being voided); later reads are
//!    answered from what the batch read or wrote. Writes are kept in memory, so a
//!    rejected or conflicting command is undone by dropping its writes, with no
//!    savepoint.
//! 6. **Finish in one statement** ([`FINISH`]): the documents, the change-log rows, the
//!    new head, the answers into the claimed rows (applied and rejected), the release of
//!    claims that store nothing (conflict, skipped), the apply-log rows and `pg_notify`.
//! 7. `COMMIT`.
//!
//! That is 5 round trips per batch (6 when a key was seen before), whatever its size,
//! where the transaction per command took 7 per command (`BEGIN`, claim, lock, read,
//! write, finish, `COMMIT` for a `put`).
//!
//! ## Exactly once and ordering across nodes
//!
//! Every transaction that claims a key of a workspace or appends to its change log holds
//! that workspace's row lock from before it claims or picks its first sequence number
//! until after it commits. So:
//!
//! - A key is never claimed by two transactions at once: the second waits for the lock
//!   and then finds the first one's committed record (`duplicate`), or no record when the
//!   first rolled back. Never both applied. The `UNIQUE` constraint stays as the backstop.
//! - The transactions of one workspace commit one after another, in sequence order: seq
//!   `n + 1` is assigned only after the transaction owning `n` committed, so a reader that
//!   sees seq `n + 1` also sees every change up to `n`, and a cursor never passes over a
//!   commit that lands later with a lower number.
//! - One lock per transaction, taken first: two batches cannot deadlock.
//!
//! The price is that writes to *one* workspace are serial (as on SQLite); different
//! workspaces proceed in parallel on every node.

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;

use super::notify;
use crate::storage::batch::{self, BatchTx, Ran, Record};
use crate::storage::{
    Apply, ApplyError, BatchCommand, Change, DocTx, Outcome, Scope, StorageError, StoredCommand, StoredDoc,
    StoredResult,
};

/// Locks the workspace (creating its row), reads its head, then claims the keys `$3`
/// (with command ids `$4`); returns the head and the keys claimed now.
const CLAIM_AND_LOCK: &str = "WITH ws AS (
         INSERT INTO workspaces (id, head_seq) VALUES ($1, 0)
         ON CONFLICT (id) DO UPDATE SET head_seq = workspaces.head_seq
         RETURNING head_seq),
     claimed AS (
         INSERT INTO idempotency (workspace, user_id, idempotency_key, command_id, response)
         SELECT $1, $2, k.key, k.command_id, NULL
         FROM ws, unnest($3::text[], $4::text[]) AS k(key, command_id)
         ON CONFLICT ON CONSTRAINT idempotency_once DO NOTHING
         RETURNING idempotency_key)
     SELECT (SELECT head_seq FROM ws), ARRAY(SELECT idempotency_key FROM claimed)";

/// The records of the keys `$3` that were there before this batch.
const RECORDS: &str = "SELECT idempotency_key, response, applied_at, outcome FROM idempotency
     WHERE workspace = $1 AND user_id = $2 AND idempotency_key = ANY($3::text[])";

/// The stored record of an applied command (`GET /v1/commands/{key}`). `response` is NULL
/// only inside the transaction that claimed it, which no other transaction can see.
pub(super) const STORED: &str = "SELECT command_id, response, applied_at FROM idempotency
     WHERE workspace = $1 AND user_id = $2 AND idempotency_key = $3 AND outcome IS NULL";

const LOCK_WORKSPACE: &str = "INSERT INTO workspaces (id, head_seq) VALUES ($1, 0)
     ON CONFLICT (id) DO UPDATE SET head_seq = workspaces.head_seq
     RETURNING head_seq";

const GET_DOC: &str = "SELECT version, doc FROM docs WHERE workspace = $1 AND collection = $2 AND id = $3";

/// The documents `($2[i], $3[i])` that exist (tombstones included).
const GET_DOCS: &str = "SELECT d.collection, d.id, d.version, d.doc
     FROM docs d JOIN unnest($2::text[], $3::text[]) AS k(collection, id)
       ON d.collection = k.collection AND d.id = k.id
     WHERE d.workspace = $1";

/// Everything a batch writes, in one statement (see the module docs).
const FINISH: &str = "WITH head AS (UPDATE workspaces SET head_seq = $3 WHERE id = $1),
     written AS (
         INSERT INTO docs (workspace, collection, id, version, doc)
         SELECT $1, d.collection, d.id, d.version, d.doc
         FROM unnest($4::text[], $5::text[], $6::int8[], $7::text[]) AS d(collection, id, version, doc)
         ON CONFLICT (workspace, collection, id) DO UPDATE SET version = excluded.version, doc = excluded.doc),
     appended AS (
         INSERT INTO changes (workspace, seq, collection, id, version, doc)
         SELECT $1, c.seq, c.collection, c.id, c.version, c.doc
         FROM unnest($8::int8[], $9::text[], $10::text[], $11::int8[], $12::text[])
              AS c(seq, collection, id, version, doc)),
     recorded AS (
         UPDATE idempotency i
         SET command_id = r.command_id, response = r.response, outcome = r.outcome, applied_at = r.applied_at
         FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::int8[])
              AS r(key, command_id, response, outcome, applied_at)
         WHERE i.workspace = $1 AND i.user_id = $2 AND i.idempotency_key = r.key),
     released AS (
         DELETE FROM idempotency
         WHERE workspace = $1 AND user_id = $2 AND idempotency_key = ANY($18::text[])),
     logged AS (
         INSERT INTO apply_log (workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq)
         SELECT $1, $2, l.key, l.command_id, l.mutator, l.keys, l.server_seq
         FROM unnest($19::text[], $20::text[], $21::text[], $22::text[], $23::int8[])
              WITH ORDINALITY AS l(key, command_id, mutator, keys, server_seq, n)
         ORDER BY l.n)
     SELECT pg_notify($24, $25) WHERE $26";

const WRITE_DOC: &str = "WITH d AS (
         INSERT INTO docs (workspace, collection, id, version, doc) VALUES ($1, $2, $3, 1, $5)
         ON CONFLICT (workspace, collection, id) DO UPDATE SET version = docs.version + 1, doc = excluded.doc
         RETURNING version)
     INSERT INTO changes (workspace, seq, collection, id, version, doc)
     SELECT $1, $4, $2, $3, d.version, $5 FROM d
     RETURNING version";

const FINISH_SEED: &str = "WITH head AS (UPDATE workspaces SET head_seq = $2 WHERE id = $1)
     SELECT pg_notify($3, $4)";

type DocKey = (String, String);

/// A change-log row to append: `(seq, collection, id, version, doc)`.
type ChangeRow = (i64, String, String, i64, Option<String>);

/// An answer to store: `(key, command_id, response, outcome, applied_at)`.
type StoredRow = (String, String, String, Option<String>, Option<i64>);

/// The batch's transaction: the workspace is locked, its keys are claimed, and every
/// write waits in memory for [`FINISH`].
struct PgBatchTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    workspace: &'t str,
    /// The change-log head: the locked head plus the changes of applied commands so far,
    /// and of the command running.
    head: i64,
    /// Records stored under the batch's keys before it began.
    records: HashMap<String, Record>,
    /// Documents as this batch sees them: read from the database, or written by an
    /// applied command of the batch.
    docs: HashMap<DocKey, Option<StoredDoc>>,
    /// Writes of the command running, dropped when it does not apply.
    pending_docs: HashMap<DocKey, StoredDoc>,
    pending_rows: Vec<ChangeRow>,
    pending_changes: Vec<Change>,
    /// Change-log rows of the applied commands, in order.
    rows: Vec<ChangeRow>,
    /// Answers to store.
    stored: Vec<StoredRow>,
    /// Apply-log rows: `(key, command_id, mutator, keys, server_seq)`.
    log: Vec<(String, String, String, String, i64)>,
}

impl PgBatchTx<'_, '_> {
    async fn read(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        let key = (collection.to_string(), id.to_string());
        if let Some(doc) = self.pending_docs.get(&key) {
            return Ok(Some(doc.clone()));
        }
        if let Some(doc) = self.docs.get(&key) {
            return Ok(doc.clone());
        }
        let stmt = self.tx.prepare_cached(GET_DOC).await?;
        let found = match self.tx.query_opt(&stmt, &[&self.workspace, &collection, &id]).await? {
            Some(row) => {
                let text: Option<String> = row.try_get(1)?;
                let doc = match text {
                    Some(t) => Some(serde_json::from_str(&t)?),
                    None => None,
                };
                Some(StoredDoc { version: row.try_get(0)?, doc })
            }
            None => None,
        };
        self.docs.insert(key, found.clone());
        Ok(found)
    }
}

#[async_trait::async_trait]
impl DocTx for PgBatchTx<'_, '_> {
    async fn get(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        self.read(collection, id).await
    }

    async fn write(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError> {
        let version = self.read(collection, id).await?.map(|d| d.version).unwrap_or(0) + 1;
        let text = match doc {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        let seq = self.head + 1;
        self.head = seq;
        let key = (collection.to_string(), id.to_string());
        self.pending_docs.insert(key, StoredDoc { version, doc: doc.cloned() });
        self.pending_rows.push((seq, collection.to_string(), id.to_string(), version, text));
        let change = Change { seq, collection: collection.to_string(), id: id.to_string(), version, doc: doc.cloned() };
        self.pending_changes.push(change.clone());
        Ok(change)
    }
}

#[async_trait::async_trait]
impl BatchTx for PgBatchTx<'_, '_> {
    async fn record(&mut self, _scope: &Scope, key: &str) -> Result<Option<Record>, StorageError> {
        Ok(self.records.get(key).cloned())
    }

    async fn run(&mut self, _scope: &Scope, apply: &dyn Apply) -> Result<Result<Ran, ApplyError>, StorageError> {
        let head_before = self.head;
        let outcome = apply.apply(self).await;
        let pending_docs = std::mem::take(&mut self.pending_docs);
        let pending_rows = std::mem::take(&mut self.pending_rows);
        let changes = std::mem::take(&mut self.pending_changes);
        match outcome {
            Ok(result) => {
                self.docs.extend(pending_docs.into_iter().map(|(k, d)| (k, Some(d))));
                self.rows.extend(pending_rows);
                Ok(Ok(Ran { result, changes, head: self.head }))
            }
            Err(ApplyError::Storage(e)) => Err(e),
            Err(refused) => {
                // Its writes never reached the database: dropping them undoes the command.
                self.head = head_before;
                Ok(Err(refused))
            }
        }
    }

    async fn store(&mut self, _scope: &Scope, command: &BatchCommand, record: &Record) -> Result<(), StorageError> {
        let key = command.idempotency_key.clone();
        match record {
            Record::Applied(stored) => {
                self.stored.push((
                    key.clone(),
                    command.command_id.clone(),
                    serde_json::to_string(stored)?,
                    None,
                    stored.applied_at,
                ));
                let keys = serde_json::to_string(&command.keys)?;
                self.log.push((key, command.command_id.clone(), command.mutator.clone(), keys, stored.server_seq));
            }
            Record::Rejected(rejection) => self.stored.push((
                key,
                command.command_id.clone(),
                serde_json::to_string(rejection)?,
                Some("rejected".to_string()),
                None,
            )),
        }
        Ok(())
    }
}

/// [`crate::storage::Storage::execute_batch`] for PostgreSQL (see the module docs).
pub(super) async fn execute_batch(
    pool: &Pool,
    channel: &str,
    scope: &Scope,
    commands: &[BatchCommand],
) -> Result<Vec<Outcome>, StorageError> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    // Each key once, sorted, with the id of the first command that carries it.
    let mut to_claim: BTreeMap<&str, &str> = BTreeMap::new();
    for c in commands.iter().filter(|c| !c.idempotency_key.is_empty()) {
        to_claim.entry(c.idempotency_key.as_str()).or_insert(c.command_id.as_str());
    }
    let keys: Vec<&str> = to_claim.keys().copied().collect();
    let ids: Vec<&str> = to_claim.values().copied().collect();

    let mut client = pool.get().await.map_err(super::pool_error)?;
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached(CLAIM_AND_LOCK).await?;
    let row = tx.query_one(&stmt, &[&scope.workspace, &scope.user, &keys, &ids]).await?;
    let head: i64 = row.try_get(0)?;
    let claimed: HashSet<String> = row.try_get::<_, Vec<String>>(1)?.into_iter().collect();
    let seen: Vec<&str> = keys.iter().copied().filter(|k| !claimed.contains(*k)).collect();
    let records = if seen.is_empty() { HashMap::new() } else { records(&tx, scope, &seen).await? };

    let mut btx = PgBatchTx {
        tx: &tx,
        workspace: &scope.workspace,
        head,
        records,
        docs: HashMap::new(),
        pending_docs: HashMap::new(),
        pending_rows: Vec::new(),
        pending_changes: Vec::new(),
        rows: Vec::new(),
        stored: Vec::new(),
        log: Vec::new(),
    };
    btx.docs = prefetch(&tx, &scope.workspace, commands).await?;
    let outcomes = batch::run(&mut btx, scope, commands).await?;
    let stored_keys: HashSet<&str> = btx.stored.iter().map(|s| s.0.as_str()).collect();
    let released: Vec<&str> = claimed.iter().map(String::as_str).filter(|k| !stored_keys.contains(k)).collect();
    if !btx.rows.is_empty() || !btx.stored.is_empty() || !released.is_empty() {
        finish(&btx, channel, scope, &released).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Reads, in one statement, every document the batch's commands name in their
/// [`Apply::reads`] hints; one that does not exist is remembered as absent. Taken after
/// the workspace lock, so nothing changes them before this transaction ends.
async fn prefetch(
    tx: &Transaction<'_>,
    workspace: &str,
    commands: &[BatchCommand],
) -> Result<HashMap<DocKey, Option<StoredDoc>>, StorageError> {
    let mut wanted: BTreeMap<DocKey, ()> = BTreeMap::new();
    for c in commands {
        if let batch::Work::Apply(apply) = &c.work {
            wanted.extend(apply.reads().into_iter().map(|k| (k, ())));
        }
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let collections: Vec<&str> = wanted.keys().map(|k| k.0.as_str()).collect();
    let ids: Vec<&str> = wanted.keys().map(|k| k.1.as_str()).collect();
    let stmt = tx.prepare_cached(GET_DOCS).await?;
    let mut docs: HashMap<DocKey, Option<StoredDoc>> = HashMap::with_capacity(wanted.len());
    for row in tx.query(&stmt, &[&workspace, &collections, &ids]).await? {
        let text: Option<String> = row.try_get(3)?;
        let doc = match text {
            Some(t) => Some(serde_json::from_str(&t)?),
            None => None,
        };
        docs.insert((row.try_get(0)?, row.try_get(1)?), Some(StoredDoc { version: row.try_get(2)?, doc }));
    }
    for key in wanted.into_keys() {
        docs.entry(key).or_insert(None);
    }
    Ok(docs)
}

/// The records already stored under `keys` (claimed by a transaction that committed).
async fn records(tx: &Transaction<'_>, scope: &Scope, keys: &[&str]) -> Result<HashMap<String, Record>, StorageError> {
    let stmt = tx.prepare_cached(RECORDS).await?;
    let mut out = HashMap::with_capacity(keys.len());
    for row in tx.query(&stmt, &[&scope.workspace, &scope.user, &keys]).await? {
        let key: String = row.try_get(0)?;
        let Some(response) = row.try_get::<_, Option<String>>(1)? else {
            return Err(StorageError::Inconsistent("committed idempotency record without a response".into()));
        };
        let record = match row.try_get::<_, Option<String>>(3)?.as_deref() {
            None => {
                let mut stored: StoredResult = serde_json::from_str(&response)?;
                stored.applied_at = row.try_get(2)?;
                Record::Applied(stored)
            }
            Some("rejected") => Record::Rejected(serde_json::from_str(&response)?),
            Some(other) => return Err(StorageError::Inconsistent(format!("unknown idempotency outcome {other:?}"))),
        };
        out.insert(key, record);
    }
    if out.len() != keys.len() {
        // Cannot happen while every claimer holds the workspace lock (module docs).
        return Err(StorageError::Inconsistent("a claimed key has no committed record".into()));
    }
    Ok(out)
}

/// Sends every write of the batch in one statement ([`FINISH`]).
async fn finish(btx: &PgBatchTx<'_, '_>, channel: &str, scope: &Scope, released: &[&str]) -> Result<(), StorageError> {
    // The documents' final state: a document written twice in the batch is one row.
    let mut final_docs: BTreeMap<(&str, &str), (i64, Option<&str>)> = BTreeMap::new();
    for (_, collection, id, version, doc) in &btx.rows {
        final_docs.insert((collection.as_str(), id.as_str()), (*version, doc.as_deref()));
    }
    let d_collection: Vec<&str> = final_docs.keys().map(|k| k.0).collect();
    let d_id: Vec<&str> = final_docs.keys().map(|k| k.1).collect();
    let d_version: Vec<i64> = final_docs.values().map(|v| v.0).collect();
    let d_doc: Vec<Option<&str>> = final_docs.values().map(|v| v.1).collect();
    let c_seq: Vec<i64> = btx.rows.iter().map(|r| r.0).collect();
    let c_collection: Vec<&str> = btx.rows.iter().map(|r| r.1.as_str()).collect();
    let c_id: Vec<&str> = btx.rows.iter().map(|r| r.2.as_str()).collect();
    let c_version: Vec<i64> = btx.rows.iter().map(|r| r.3).collect();
    let c_doc: Vec<Option<&str>> = btx.rows.iter().map(|r| r.4.as_deref()).collect();
    let r_key: Vec<&str> = btx.stored.iter().map(|s| s.0.as_str()).collect();
    let r_command: Vec<&str> = btx.stored.iter().map(|s| s.1.as_str()).collect();
    let r_response: Vec<&str> = btx.stored.iter().map(|s| s.2.as_str()).collect();
    let r_outcome: Vec<Option<&str>> = btx.stored.iter().map(|s| s.3.as_deref()).collect();
    let r_applied_at: Vec<Option<i64>> = btx.stored.iter().map(|s| s.4).collect();
    let l_key: Vec<&str> = btx.log.iter().map(|l| l.0.as_str()).collect();
    let l_command: Vec<&str> = btx.log.iter().map(|l| l.1.as_str()).collect();
    let l_mutator: Vec<&str> = btx.log.iter().map(|l| l.2.as_str()).collect();
    let l_keys: Vec<&str> = btx.log.iter().map(|l| l.3.as_str()).collect();
    let l_seq: Vec<i64> = btx.log.iter().map(|l| l.4).collect();
    let notify = !btx.rows.is_empty();
    let payload = notify::payload(&scope.workspace, btx.head);
    let stmt = btx.tx.prepare_cached(FINISH).await?;
    btx.tx
        .execute(
            &stmt,
            &[
                &scope.workspace,
                &scope.user,
                &btx.head,
                &d_collection,
                &d_id,
                &d_version,
                &d_doc,
                &c_seq,
                &c_collection,
                &c_id,
                &c_version,
                &c_doc,
                &r_key,
                &r_command,
                &r_response,
                &r_outcome,
                &r_applied_at,
                &released,
                &l_key,
                &l_command,
                &l_mutator,
                &l_keys,
                &l_seq,
                &channel,
                &payload,
                &notify,
            ],
        )
        .await?;
    Ok(())
}

/// A row of [`STORED`] as a [`StoredCommand`]; `None` for a claim without a response.
pub(super) fn stored_from_row(row: &tokio_postgres::Row) -> Result<Option<StoredCommand>, StorageError> {
    let command_id: String = row.try_get(0)?;
    let Some(text) = row.try_get::<_, Option<String>>(1)? else { return Ok(None) };
    let mut stored: StoredResult = serde_json::from_str(&text)?;
    stored.applied_at = row.try_get(2)?;
    Ok(Some(StoredCommand { command_id, stored }))
}

/// [`crate::storage::Storage::seed_doc`] for PostgreSQL: a write outside any command.
pub(super) async fn seed_doc(
    pool: &Pool,
    channel: &str,
    workspace: &str,
    collection: &str,
    id: &str,
    doc: &Value,
) -> Result<Change, StorageError> {
    let mut client = pool.get().await.map_err(super::pool_error)?;
    let tx = client.transaction().await?;
    let lock = tx.prepare_cached(LOCK_WORKSPACE).await?;
    let head: i64 = tx.query_one(&lock, &[&workspace]).await?.try_get(0)?;
    let seq = head + 1;
    let text = serde_json::to_string(doc)?;
    let write = tx.prepare_cached(WRITE_DOC).await?;
    let version: i64 = tx.query_one(&write, &[&workspace, &collection, &id, &seq, &text]).await?.try_get(0)?;
    let payload = notify::payload(workspace, seq);
    let finish = tx.prepare_cached(FINISH_SEED).await?;
    tx.execute(&finish, &[&workspace, &seq, &channel, &payload]).await?;
    tx.commit().await?;
    Ok(Change { seq, collection: collection.to_string(), id: id.to_string(), version, doc: Some(doc.clone()) })
}
