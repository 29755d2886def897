//! The PostgreSQL backend: several server nodes over one database.
//!
//! - A [`deadpool_postgres`] pool of `tokio-postgres` connections (no TLS: the reference
//!   server talks to a database on the same host or a private network) with prepared
//!   statements cached per connection.
//! - Schema migrations run at connect ([`migrations`]), once, under an advisory lock.
//! - Exactly once across nodes through the `UNIQUE` idempotency constraint, and a change
//!   feed whose sequence numbers follow commit order per workspace ([`tx`] explains both).
//! - Cross-node stream nudges through `LISTEN`/`NOTIFY` ([`notify`]).
//!
//! [`PostgresConfig::schema`] puts every table in one PostgreSQL schema (created if
//! missing) and scopes the notification channel to it, so independent servers (tests,
//! benchmark runs) can share one database without seeing each other.

pub mod migrations;
mod notify;
mod tx;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use super::{
    AppliedEntry, BatchCommand, Change, ChangeNotice, ChangesPage, Outcome, Scope, Storage, StorageError,
    StoredCommand, StoredDoc,
};

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A libpq-style URL (`postgres://user@127.0.0.1:5432/db`) or key=value string.
    pub url: String,
    /// Keep the tables in this schema (lower-case letters, digits, `_`; created if
    /// missing) instead of the connection's default `search_path`.
    pub schema: Option<String>,
    /// Most pooled connections (each node also holds one listening connection).
    pub pool_size: usize,
}

impl PostgresConfig {
    /// A config for `url` with the default schema and 16 pooled connections.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig { url: url.into(), schema: None, pool_size: 16 }
    }

    /// Keeps the tables in `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether every host in the URL is on this machine (loopback addresses, `localhost`
    /// or a Unix socket); load and stress tools refuse anything else.
    pub fn is_local(&self) -> Result<bool, StorageError> {
        let pg: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StorageError::Config(format!("unreadable database URL: {e}")))?;
        Ok(pg.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => {
                name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            tokio_postgres::config::Host::Unix(_) => true,
        }) && pg.get_hostaddrs().iter().all(|ip| ip.is_loopback()))
    }

    /// Sets the largest pool.
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }
}

/// The URL may hold a password: it is never printed.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Aborts the listener task when the storage goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// PostgreSQL storage.
pub struct PgStorage {
    pool: Pool,
    /// The database's epoch (`server_meta`), read once at connect.
    epoch: String,
    /// The `NOTIFY` channel of this schema.
    channel: String,
    notices: broadcast::Sender<ChangeNotice>,
    _listener: AbortOnDrop,
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StorageError::Postgres(e),
        other => StorageError::Pool(other.to_string()),
    }
}

fn check_schema(schema: &str) -> Result<(), StorageError> {
    let ok = !schema.is_empty()
        && schema.len() <= 40
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StorageError::Config(format!(
            "schema {schema:?} must be 1-40 lower-case letters, digits or `_`, not starting with a digit"
        )))
    }
}

impl PgStorage {
    /// Connects, migrates the schema and starts listening for other nodes' commits.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, StorageError> {
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StorageError::Config(format!("unreadable database URL: {e}")))?;
        let channel = match &config.schema {
            Some(schema) => {
                check_schema(schema)?;
                pg.options(format!("-c search_path={schema}"));
                format!("outbox_changes_{schema}")
            }
            None => "outbox_changes".to_string(),
        };
        pg.connect_timeout(Duration::from_secs(10));

        // Migrate on a connection of its own, before the pool hands any out.
        let (mut client, connection) = pg.connect(NoTls).await?;
        let conn_task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "postgres migration connection failed");
            }
        });
        let migrated = match migrations::migrate(&mut client, config.schema.as_deref()).await {
            Ok(_) => migrations::ensure_epoch(&client).await,
            Err(e) => Err(e),
        };
        drop(client);
        let _ = conn_task.await;
        let epoch = migrated?;

        let manager =
            Manager::from_config(pg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StorageError::Config(e.to_string()))?;

        let (notices, _) = broadcast::channel(1024);
        let (ready_tx, ready_rx) = oneshot::channel();
        let listener = AbortOnDrop(tokio::spawn(notify::listen(pg, channel.clone(), notices.clone(), ready_tx)));
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(StorageError::Worker("postgres listener stopped".into())),
            Err(_) => return Err(StorageError::Pool("timed out starting the postgres listener".into())),
        }
        Ok(PgStorage { pool, epoch, channel, notices, _listener: listener })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(pool_error)
    }
}

fn parse_doc(text: Option<String>) -> Result<Option<Value>, StorageError> {
    Ok(match text {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

#[async_trait]
impl Storage for PgStorage {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn user_for_token(&self, token: &str) -> Result<Option<String>, StorageError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT user_id FROM tokens WHERE token = $1").await?;
        match client.query_opt(&stmt, &[&token]).await? {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn is_member(&self, user: &str, workspace: &str) -> Result<bool, StorageError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT 1 FROM members WHERE workspace = $1 AND user_id = $2").await?;
        Ok(client.query_opt(&stmt, &[&workspace, &user]).await?.is_some())
    }

    async fn authorize(&self, token: &str, workspace: &str) -> Result<Option<(String, bool)>, StorageError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT t.user_id, EXISTS (SELECT 1 FROM members m WHERE m.workspace = $2 AND m.user_id = t.user_id)
                 FROM tokens t WHERE t.token = $1",
            )
            .await?;
        match client.query_opt(&stmt, &[&token, &workspace]).await? {
            Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
            None => Ok(None),
        }
    }

    async fn execute_batch(&self, scope: &Scope, commands: Vec<BatchCommand>) -> Result<Vec<Outcome>, StorageError> {
        tx::execute_batch(&self.pool, &self.channel, scope, &commands).await
    }

    async fn stored_command(
        &self,
        scope: &Scope,
        idempotency_key: &str,
    ) -> Result<Option<StoredCommand>, StorageError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(tx::STORED).await?;
        match client.query_opt(&stmt, &[&scope.workspace, &scope.user, &idempotency_key]).await? {
            Some(row) => tx::stored_from_row(&row),
            None => Ok(None),
        }
    }

    async fn changes_after(&self, workspace: &str, after: i64, limit: u32) -> Result<ChangesPage, StorageError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT seq, collection, id, version, doc FROM changes
                 WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .await?;
        let rows = client.query(&stmt, &[&workspace, &after, &(i64::from(limit) + 1)]).await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            changes.push(Change {
                seq: row.try_get(0)?,
                collection: row.try_get(1)?,
                id: row.try_get(2)?,
                version: row.try_get(3)?,
                doc: parse_doc(row.try_get(4)?)?,
            });
        }
        let has_more = changes.len() > limit as usize;
        changes.truncate(limit as usize);
        Ok(ChangesPage { changes, has_more })
    }

    async fn head_seq(&self, workspace: &str) -> Result<i64, StorageError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT head_seq FROM workspaces WHERE id = $1").await?;
        match client.query_opt(&stmt, &[&workspace]).await? {
            Some(row) => Ok(row.try_get(0)?),
            None => Ok(0),
        }
    }

    async fn get_doc(&self, workspace: &str, collection: &str, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT version, doc FROM docs WHERE workspace = $1 AND collection = $2 AND id = $3")
            .await?;
        match client.query_opt(&stmt, &[&workspace, &collection, &id]).await? {
            Some(row) => Ok(Some(StoredDoc { version: row.try_get(0)?, doc: parse_doc(row.try_get(1)?)? })),
            None => Ok(None),
        }
    }

    async fn apply_log(&self) -> Result<Vec<AppliedEntry>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT n, workspace, user_id, idempotency_key, command_id, mutator, keys, server_seq
                 FROM apply_log ORDER BY n",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let keys: String = row.try_get(6)?;
            out.push(AppliedEntry {
                n: row.try_get(0)?,
                workspace: row.try_get(1)?,
                user: row.try_get(2)?,
                idempotency_key: row.try_get(3)?,
                command_id: row.try_get(4)?,
                mutator: row.try_get(5)?,
                keys: serde_json::from_str(&keys)?,
                server_seq: row.try_get(7)?,
            });
        }
        Ok(out)
    }

    async fn add_user(&self, user: &str, token: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO tokens (token, user_id) VALUES ($1, $2)
                 ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id",
                &[&token, &user],
            )
            .await?;
        Ok(())
    }

    async fn add_member(&self, user: &str, workspace: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .execute("INSERT INTO workspaces (id, head_seq) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING", &[&workspace])
            .await?;
        client
            .execute(
                "INSERT INTO members (workspace, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&workspace, &user],
            )
            .await?;
        Ok(())
    }

    async fn seed_doc(&self, workspace: &str, collection: &str, id: &str, doc: &Value) -> Result<Change, StorageError> {
        tx::seed_doc(&self.pool, &self.channel, workspace, collection, id, doc).await
    }

    fn notifications(&self) -> Option<broadcast::Receiver<ChangeNotice>> {
        Some(self.notices.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema("t_123_abc").is_ok());
        for bad in ["", "1abc", "Ab", "a-b", "a;drop", &"x".repeat(41)] {
            assert!(check_schema(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_loopback_hosts_are_local() {
        assert!(PostgresConfig::new("postgres://u@127.0.0.1:5432/db").is_local().unwrap());
        assert!(PostgresConfig::new("postgres://u@localhost/db").is_local().unwrap());
        assert!(!PostgresConfig::new("postgres://u@10.0.0.5/db").is_local().unwrap());
        assert!(!PostgresConfig::new("postgres://u@db.example.com/db").is_local().unwrap());
    }

    #[test]
    fn debug_hides_the_url() {
        let text = format!("{:?}", PostgresConfig::new("postgres://u:secret@127.0.0.1/db"));
        assert!(!text.contains("secret"), "{text}");
    }
}
