//! The Outbox reference sync server: the wire protocol of docs/protocol.md over axum,
//! SQLite or PostgreSQL storage with idempotency records written in the same transaction
//! as each command's effect, built-in document and point-of-sale mutators, and fault
//! injection. Over PostgreSQL several nodes can serve one database (docs/server.md).
//!
//! Tests start it in-process on a free loopback port:
//!
//! ```no_run
//! # async fn demo() -> Result<(), outbox_server::ServerError> {
//! use outbox_server::{Server, ServerConfig};
//! let server = Server::start(ServerConfig::new("/tmp/server.db").with_admin(true)).await?;
//! server.add_user("alice", "token-a", &["ws-1"]).await?;
//! println!("{}", server.base_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod api;
pub mod cursor;
pub mod faults;
pub mod mutators;
pub mod protocol;
pub mod stats;
pub mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tower_service::Service;

use crate::api::{ConnKill, Shared};
use crate::faults::{FaultSpec, FaultSpecError, Faults};
use crate::stats::{Stats, StatsSnapshot};
use crate::storage::{ChangeNotice, PgStorage, PostgresConfig, SqliteStorage, Storage, StorageError};

/// Everything needed to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// SQLite database file (created if missing); unused when [`postgres`](Self::postgres) is set.
    pub db_path: PathBuf,
    /// Store everything in PostgreSQL instead of SQLite (several nodes may share it).
    pub postgres: Option<PostgresConfig>,
    /// Seed the development users, workspaces and POS catalog (see [`seed_dev`]).
    pub dev: bool,
    /// Fault spec active from the start (see [`faults`]).
    pub faults: FaultSpec,
    /// Seed for the fault RNG (reproducible runs).
    pub seed: Option<u64>,
    /// Enable `/v1/_faults`, `/v1/_stats` and `/v1/_log`.
    pub admin: bool,
    /// Most commands per batch; more is answered 413. Default 100.
    pub max_batch: usize,
    /// Largest request body in bytes; more is answered 413. Default 32 MiB.
    pub max_body_bytes: usize,
    /// Which versions of each mutator are accepted (default: every implemented one).
    pub mutator_versions: mutators::MutatorVersions,
}

impl ServerConfig {
    /// A config for a database at `db_path`, listening on `127.0.0.1:0`, no faults, no admin.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: db_path.into(),
            postgres: None,
            dev: false,
            faults: FaultSpec::default(),
            seed: None,
            admin: false,
            max_batch: protocol::MAX_BATCH,
            max_body_bytes: 32 * 1024 * 1024,
            mutator_versions: mutators::MutatorVersions::default(),
        }
    }

    /// Sets the listen address.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Uses PostgreSQL instead of the SQLite file.
    pub fn with_postgres(mut self, postgres: PostgresConfig) -> Self {
        self.postgres = Some(postgres);
        self
    }

    /// Turns the development seed on or off.
    pub fn with_dev(mut self, dev: bool) -> Self {
        self.dev = dev;
        self
    }

    /// Parses and sets a fault spec.
    pub fn with_faults(mut self, spec: &str) -> Result<Self, FaultSpecError> {
        self.faults = spec.parse()?;
        Ok(self)
    }

    /// Seeds the fault RNG.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Enables the admin endpoints.
    pub fn with_admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    /// Sets the largest batch accepted.
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// Sets which versions of each mutator are accepted.
    pub fn with_mutator_versions(mut self, versions: mutators::MutatorVersions) -> Self {
        self.mutator_versions = versions;
        self
    }
}

/// Why the server could not start or a helper failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Any other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Entry point: [`Server::start`].
pub struct Server;

impl Server {
    /// Opens the database (PostgreSQL when `config.postgres` is set, else the SQLite
    /// file), seeds it when asked, binds the address and serves until
    /// [`RunningServer::shutdown`].
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let storage = open_storage(&config).await?;
        Self::start_with_storage(config, storage).await
    }

    /// Like [`start`](Self::start) over a storage backend the caller opened
    /// (`config.db_path` is then unused).
    pub async fn start_with_storage(
        config: ServerConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<RunningServer, ServerError> {
        if config.dev {
            seed_dev(storage.as_ref()).await?;
        }
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| ServerError::Bind { addr: config.addr, source })?;
        let addr = listener.local_addr()?;
        let (changed, _) = broadcast::channel(256);
        let notices = storage.notifications();
        let shared = Arc::new(Shared {
            storage: storage.clone(),
            faults: Faults::new(config.faults.clone(), config.seed),
            stats: Stats::default(),
            changed: changed.clone(),
            local_nudges: notices.is_none(),
            max_batch: config.max_batch,
            versions: config.mutator_versions.clone(),
        });
        let forwarder = notices.map(|rx| tokio::spawn(forward_notices(rx, changed)));
        let router = api::router(shared.clone(), config.admin, config.max_body_bytes);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, stop_rx));
        Ok(RunningServer { addr, shared, stop: stop_tx, task, forwarder })
    }
}

/// The storage `config` asks for.
async fn open_storage(config: &ServerConfig) -> Result<Arc<dyn Storage>, ServerError> {
    if let Some(pg) = &config.postgres {
        return Ok(Arc::new(PgStorage::connect(pg).await?));
    }
    let db_path = config.db_path.clone();
    let sqlite = tokio::task::spawn_blocking(move || SqliteStorage::open(&db_path))
        .await
        .map_err(|e| StorageError::Worker(e.to_string()))??;
    Ok(Arc::new(sqlite))
}

/// Passes the storage's notices (every node's commits) to this node's stream subscribers.
async fn forward_notices(mut rx: broadcast::Receiver<ChangeNotice>, changed: broadcast::Sender<ChangeNotice>) {
    loop {
        match rx.recv().await {
            Ok(notice) => {
                let _ = changed.send(notice);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let _ = changed.send(ChangeNotice::Unknown);
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Accepts connections and serves each with HTTP/1.1. Every connection gets a
/// [`ConnKill`] its handlers can pull to drop it without an answer (fault injection).
async fn accept_loop(listener: TcpListener, router: axum::Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let kill = ConnKill::default();
                let router = router.clone();
                let k = kill.clone();
                let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(k.clone());
                    let mut router = router.clone();
                    async move { router.call(req).await }
                });
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = kill.0.notified() => {}
                    }
                });
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// A server that is serving; dropping it without [`shutdown`](Self::shutdown) leaves
/// the accept task running until the runtime ends.
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (with the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The storage backend (for seeding and assertions in tests).
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.shared.storage.clone()
    }

    /// Creates `user` with `token` and makes it a member of each workspace.
    pub async fn add_user(&self, user: &str, token: &str, workspaces: &[&str]) -> Result<(), StorageError> {
        self.shared.storage.add_user(user, token).await?;
        for ws in workspaces {
            self.shared.storage.add_member(user, ws).await?;
        }
        Ok(())
    }

    /// Writes a document outside any command.
    pub async fn seed_doc(&self, workspace: &str, collection: &str, id: &str, doc: &Value) -> Result<(), StorageError> {
        self.shared.storage.seed_doc(workspace, collection, id, doc).await?;
        Ok(())
    }

    /// Replaces the active fault spec.
    pub fn set_faults(&self, spec: FaultSpec) {
        self.shared.faults.set(spec, None);
    }

    /// Current counters (same as `GET /v1/_stats`).
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Stops accepting, closes every connection and waits for the accept task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(f) = self.forwarder {
            f.abort();
            let _ = f.await;
        }
    }
}

/// The development seed: `alice`/`dev-alice` in `ws-1`, `bob`/`dev-bob` in `ws-2`, and a
/// POS catalog (collection `products`, `{name, price (cents), stock}`) in both workspaces.
/// Existing products are left as they are, so restarting with `--dev` keeps the data.
pub async fn seed_dev(storage: &dyn Storage) -> Result<(), StorageError> {
    storage.add_user("alice", "dev-alice").await?;
    storage.add_member("alice", "ws-1").await?;
    storage.add_user("bob", "dev-bob").await?;
    storage.add_member("bob", "ws-2").await?;
    let catalog = [
        ("espresso", "Espresso", 280, 200),
        ("latte", "Latte", 420, 200),
        ("croissant", "Croissant", 350, 40),
        ("bagel", "Bagel", 300, 30),
        ("muffin", "Blueberry muffin", 325, 25),
        ("juice", "Orange juice", 450, 20),
    ];
    for ws in ["ws-1", "ws-2"] {
        for (id, name, price, stock) in catalog {
            if storage.get_doc(ws, mutators::PRODUCTS, id).await?.is_none() {
                let doc = json!({"name": name, "price": price, "stock": stock});
                storage.seed_doc(ws, mutators::PRODUCTS, id, &doc).await?;
            }
        }
    }
    Ok(())
}
