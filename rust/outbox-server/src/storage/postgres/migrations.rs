//! The PostgreSQL schema history: numbered SQL files, applied forward only.
//!
//! [`migrate`] runs every step the database has not recorded yet, in version order, and
//! records each one in `outbox_schema`, all in one transaction under a transaction-scoped
//! advisory lock, so several nodes starting at once migrate exactly once and never see
//! half a schema. Steps are matched by number, not by "above the highest": a database
//! that has 1 and 3 (from a build without 2) still gets 2. A database whose highest
//! version is newer than [`CURRENT_VERSION`] gets [`StorageError::NewerSchema`] and is
//! left untouched.

use tokio_postgres::Client;

use crate::storage::StorageError;

/// The schema version this build writes.
pub const CURRENT_VERSION: i32 = 4;

/// `(version, SQL)` of every step, in order.
const STEPS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_epoch.sql")),
    (3, include_str!("migrations/0003_receipts.sql")),
    (4, include_str!("migrations/0004_rejections.sql")),
];

/// The versions this build knows, in order (not necessarily contiguous).
pub fn versions() -> Vec<i32> {
    STEPS.iter().map(|(v, _)| *v).collect()
}

/// Advisory lock key held while migrating (any constant; "outbox" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f7574626f78;

/// Creates `schema` when given, then brings the tables in the session's `search_path`
/// up to [`CURRENT_VERSION`].
pub(crate) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<i32, StorageError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    if let Some(schema) = schema {
        // `schema` was checked to be a plain lower-case identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS outbox_schema (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let mut applied = Vec::new();
    for row in tx.query("SELECT version FROM outbox_schema", &[]).await? {
        applied.push(row.try_get::<_, i32>(0)?);
    }
    let found = applied.iter().copied().max().unwrap_or(0);
    if found > CURRENT_VERSION {
        tx.rollback().await?;
        return Err(StorageError::NewerSchema { found, supported: CURRENT_VERSION });
    }
    for (version, sql) in STEPS.iter().filter(|(v, _)| !applied.contains(v)) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO outbox_schema (version) VALUES ($1)", &[version]).await?;
    }
    tx.commit().await?;
    Ok(CURRENT_VERSION)
}

/// Reads the database's epoch, writing a fresh one when there is none yet (a new
/// database, or one migrated from version 1). Concurrent first starts insert at most one
/// row (`ON CONFLICT DO NOTHING`) and all read the same one back.
pub(crate) async fn ensure_epoch(client: &Client) -> Result<String, StorageError> {
    client
        .execute(
            "INSERT INTO server_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
            &[&crate::cursor::new_epoch()],
        )
        .await?;
    Ok(client.query_one("SELECT value FROM server_meta WHERE key = 'epoch'", &[]).await?.try_get(0)?)
}
