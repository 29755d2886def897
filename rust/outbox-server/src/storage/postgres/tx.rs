//! One command's transaction on PostgreSQL, and why the change feed stays in order.
//!
//! [`execute`] runs, in one `READ COMMITTED` transaction:
//!
//! 1. **Claim the key.** `INSERT INTO idempotency … ON CONFLICT DO NOTHING` with an empty
//!    response. The `UNIQUE (workspace, user_id, idempotency_key)` constraint makes a
//!    second transaction inserting the same key (on this node or another) wait until the
//!    first ends: if it committed, nothing is inserted and the stored response is
//!    answered as `duplicate`; if it rolled back (rejected, conflict, crash), the second
//!    one proceeds and applies the command itself. Never both.
//! 2. **Lock the workspace.** `INSERT INTO workspaces … ON CONFLICT DO UPDATE … RETURNING
//!    head_seq` locks the workspace's row until commit and reads its change-log head.
//! 3. **Run the mutator** against [`PgDocTx`]: reads see every earlier commit of the
//!    workspace (they are taken after the lock), and each write appends a change-log row
//!    with the next sequence number, counted from the locked head.
//! 4. **Finish** in one statement: the new head, the response into the claimed row, the
//!    apply-log row and `pg_notify`, then `COMMIT`.
//!
//! ## Ordering of the change feed across nodes
//!
//! Because every transaction that appends to a workspace's change log holds that
//! workspace's row lock from before it picks its first sequence number until after it
//! commits, the transactions of one workspace commit one after another, in sequence
//! order: seq `n + 1` is assigned only after the transaction owning `n` committed. So a
//! reader that sees a change with seq `n + 1` also sees every change up to `n`, and a
//! cursor (the highest seq a client has read) can never pass over a commit that lands
//! later with a lower number. The price is that writes to *one* workspace are serial
//! (as they are on SQLite); different workspaces proceed in parallel on every node.
//! The lock order is always idempotency claim, then workspace row, so two transactions
//! cannot deadlock on them.

use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;

use super::notify;
use crate::storage::{
    now_ms, Apply, ApplyError, Change, CommandRef, DocTx, Execution, Scope, StorageError, StoredCommand, StoredDoc,
    StoredResult,
};

const CLAIM: &str = "INSERT INTO idempotency (workspace, user_id, idempotency_key, command_id, response)
     VALUES ($1, $2, $3, $4, NULL)
     ON CONFLICT ON CONSTRAINT idempotency_once DO NOTHING";

/// The stored record of a key. `response` is NULL only inside the transaction that
/// claimed it, which no other transaction can see.
pub(super) const STORED: &str = "SELECT command_id, response, applied_at FROM idempotency
     WHERE workspace = $1 AND user_id = $2 AND idempotency_key = $3";

const LOCK_WORKSPACE: &str = "INSERT INTO workspaces (id, head_seq) VALUES ($1, 0)
     ON CONFLICT (id) DO UPDATE SET head_seq = workspaces.head_seq
     RETURNING head_seq";

const GET_DOC: &str = "SELECT version, doc FROM docs WHERE workspace = $1 AND collection = $2 AND id = $3";

const WRITE_DOC: &str = "WITH d AS (
         INSERT INTO docs (workspace, collection, id, version, doc) VALUES ($1, $2, $3, 1, $5)
         ON CONFLICT (workspace, collection, id) DO UPDATE SET version = docs.version + 1, doc = excluded.doc
         RETURNING version)
     INSERT INTO changes (workspace, seq, collection, id, version, doc)
     SELECT $1, $4, $2, $3, d.version, $5 FROM d
     RETURNING version";

/// New head, stored response and receipt time, apply-log row and (when `$11`) the
/// notification.
const FINISH_COMMAND: &str = "WITH head AS (UPDATE workspaces SET head_seq = $4 WHERE id = $1),
          claimed AS (UPDATE idempotency SET response = $5, applied_at = $12
                      WHERE workspace = $1 AND user_id = $2 AND idempotency_key = $3),
          logged AS (INSERT INTO apply_log (workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq)
                     VALUES ($1, $2, $3, $6, $7, $8, $4))
     SELECT pg_notify($9, $10) WHERE $11";

const FINISH_SEED: &str = "WITH head AS (UPDATE workspaces SET head_seq = $2 WHERE id = $1)
     SELECT pg_notify($3, $4)";

/// Document access inside one PostgreSQL transaction that holds its workspace's lock.
pub(super) struct PgDocTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    workspace: &'t str,
    /// The change-log head: the locked head plus the changes written so far.
    head: i64,
    changes: Vec<Change>,
}

impl<'t, 'c> PgDocTx<'t, 'c> {
    /// Locks `workspace` (creating its row) and reads its head.
    async fn lock(tx: &'t Transaction<'c>, workspace: &'t str) -> Result<Self, StorageError> {
        let stmt = tx.prepare_cached(LOCK_WORKSPACE).await?;
        let head: i64 = tx.query_one(&stmt, &[&workspace]).await?.try_get(0)?;
        Ok(PgDocTx { tx, workspace, head, changes: Vec::new() })
    }
}

#[async_trait::async_trait]
impl DocTx for PgDocTx<'_, '_> {
    async fn get(&mut self, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        let stmt = self.tx.prepare_cached(GET_DOC).await?;
        let Some(row) = self.tx.query_opt(&stmt, &[&self.workspace, &collection, &id]).await? else {
            return Ok(None);
        };
        let text: Option<String> = row.try_get(1)?;
        let doc = match text {
            Some(t) => Some(serde_json::from_str(&t)?),
            None => None,
        };
        Ok(Some(StoredDoc { version: row.try_get(0)?, doc }))
    }

    async fn write(&mut self, collection: &str, id: &str, doc: Option<&Value>) -> Result<Change, StorageError> {
        let text = match doc {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        let seq = self.head + 1;
        let stmt = self.tx.prepare_cached(WRITE_DOC).await?;
        let version: i64 =
            self.tx.query_one(&stmt, &[&self.workspace, &collection, &id, &seq, &text]).await?.try_get(0)?;
        self.head = seq;
        let change = Change { seq, collection: collection.to_string(), id: id.to_string(), version, doc: doc.cloned() };
        self.changes.push(change.clone());
        Ok(change)
    }
}

/// [`crate::storage::Storage::execute`] for PostgreSQL (see the module docs).
pub(super) async fn execute(
    pool: &Pool,
    channel: &str,
    scope: &Scope,
    command: &CommandRef<'_>,
    apply: &dyn Apply,
) -> Result<Execution, StorageError> {
    let mut client = pool.get().await.map_err(super::pool_error)?;
    let tx = client.transaction().await?;
    let key_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&scope.workspace, &scope.user, &command.idempotency_key];
    let claim = tx.prepare_cached(CLAIM).await?;
    let claimed =
        tx.execute(&claim, &[&scope.workspace, &scope.user, &command.idempotency_key, &command.command_id]).await?;
    if claimed == 0 {
        let stmt = tx.prepare_cached(STORED).await?;
        let row = tx.query_one(&stmt, &key_params).await?;
        tx.rollback().await?;
        let found = stored_from_row(&row)?
            .ok_or_else(|| StorageError::Inconsistent("committed idempotency record without a response".into()))?;
        return Ok(Execution::Duplicate(found.stored));
    }
    let mut doc_tx = PgDocTx::lock(&tx, &scope.workspace).await?;
    let outcome = apply.apply(&mut doc_tx).await;
    let (head, changes) = (doc_tx.head, std::mem::take(&mut doc_tx.changes));
    let result = match outcome {
        Ok(result) => result,
        Err(ApplyError::Storage(e)) => return Err(e),
        Err(other) => {
            // Also removes the claim: a rejected command leaves no record.
            tx.rollback().await?;
            return Ok(Execution::NotApplied(other));
        }
    };
    let notify = !changes.is_empty();
    let stored = StoredResult { result, changes, server_seq: head, applied_at: Some(now_ms()) };
    let response = serde_json::to_string(&stored)?;
    let keys = serde_json::to_string(command.keys)?;
    let payload = notify::payload(&scope.workspace, head);
    let finish = tx.prepare_cached(FINISH_COMMAND).await?;
    tx.execute(
        &finish,
        &[
            &scope.workspace,
            &scope.user,
            &command.idempotency_key,
            &head,
            &response,
            &command.command_id,
            &command.mutator,
            &keys,
            &channel,
            &payload,
            &notify,
            &stored.applied_at,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Execution::Applied(stored))
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
    let mut doc_tx = PgDocTx::lock(&tx, workspace).await?;
    let change = doc_tx.put(collection, id, doc).await?;
    let payload = notify::payload(workspace, change.seq);
    let finish = tx.prepare_cached(FINISH_SEED).await?;
    tx.execute(&finish, &[&workspace, &change.seq, &channel, &payload]).await?;
    tx.commit().await?;
    Ok(change)
}
