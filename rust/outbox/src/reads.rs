//! The store side of [`Outbox`]: merged reads, query subscriptions, indexes, sync status
//! and wipe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::outbox::Outbox;
use crate::scheduler::Engine;
use crate::store::{self, Doc, Query};

/// Least time between two deliveries of a query subscription: an isolated change is
/// delivered at once, a burst is folded into one delivery per window.
const COALESCE: Duration = Duration::from_millis(16);

impl Outbox {
    /// The document as the app should show it (synced state with pending changes on top),
    /// or `None` if it does not exist or a pending change deletes it. Never waits for the
    /// network.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<Doc>> {
        self.engine()?.db.read(|c| store::get(c, collection, id))
    }

    /// Documents of `collection` matching `query`, merged, sorted and paged.
    pub fn list(&self, collection: &str, query: &Query) -> Result<Vec<Doc>> {
        self.engine()?.db.read(|c| store::list(c, collection, query))
    }

    /// How many documents of `collection` match `query`'s filters.
    pub fn count(&self, collection: &str, query: &Query) -> Result<u64> {
        self.engine()?.db.read(|c| store::count(c, collection, query))
    }

    /// Declares that `collection` is filtered or sorted by `field`, creating an index so
    /// such lists stay fast at any size. Idempotent.
    pub fn create_index(&self, collection: &str, field: &str) -> Result<()> {
        self.engine()?.db.write_capped(|tx| store::create_index(tx, collection, field))
    }

    /// When each collection was last confirmed up to date by a complete pull (Unix ms).
    /// The key `*` is the last complete pull of any collection.
    pub fn last_synced_at(&self) -> Result<BTreeMap<String, i64>> {
        self.engine()?.db.read(store::last_synced)
    }

    /// Watches the result of `query` on `collection`: the first `next()` returns the
    /// current result; each later one returns when the result changed (local enqueue,
    /// acknowledgement, rollback, pull), with bursts coalesced.
    pub fn watch(&self, collection: &str, query: Query) -> Result<QueryWatch> {
        let engine = Arc::clone(self.engine()?);
        // Subscribe before the first read so no change can fall in between.
        let rx = engine.subscribe();
        let closed = engine.closed_signal();
        Ok(QueryWatch {
            engine,
            rx,
            closed,
            collection: collection.to_string(),
            query,
            last: None,
            last_delivery: std::time::Instant::now(),
        })
    }

    /// Deletes every command, document and sync cursor in this database (logout).
    ///
    /// Without `force`, refuses with [`Error::UnsentCommands`] while commands the server has
    /// not applied remain (pending, in flight, conflict, wedged or failed): dropping them
    /// must be the caller's explicit decision. Returns how many such commands were dropped.
    pub fn wipe(&self, force: bool) -> Result<u64> {
        let engine = self.engine()?;
        let (unsent, collections): (u64, Vec<String>) = engine.db.write(|tx| {
            let unsent: i64 = tx.query_row(
                "SELECT count(*) FROM commands WHERE state IN ('pending', 'in_flight', 'conflict', 'wedged', 'failed')",
                [],
                |r| r.get(0),
            )?;
            if unsent > 0 && !force {
                return Err(Error::UnsentCommands { count: unsent as u64 });
            }
            let mut stmt = tx.prepare(
                "SELECT collection FROM synced_docs GROUP BY collection UNION SELECT collection FROM pending_ops",
            )?;
            let collections = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
            drop(stmt);
            tx.execute_batch(
                "DELETE FROM attempts; DELETE FROM command_deps; DELETE FROM command_keys; DELETE FROM lanes;
                 DELETE FROM pending_ops; DELETE FROM commands; DELETE FROM synced_docs; DELETE FROM collection_sync;
                 DELETE FROM meta WHERE key = 'pull_cursor';",
            )?;
            crate::store::rebuild::abandon(tx)?;
            Ok((unsent as u64, collections))
        })?;
        tracing::info!(at = now_ms(), dropped_unsent = unsent, "outbox wiped");
        if !collections.is_empty() {
            engine.emit(Event::CollectionsChanged { collections });
        }
        Ok(unsent)
    }

    /// Logout for good: [`Outbox::wipe`] (same `force` rule), then closes the engine and
    /// deletes the database file with its `-wal` and `-shm` files. Returns how many unsent
    /// commands were dropped. Every handle of this engine fails with `Closed` afterwards.
    pub fn delete_database(&self, force: bool) -> Result<u64> {
        let dropped = self.wipe(force)?;
        self.close();
        let path = self.path().to_path_buf();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Open(crate::OpenError::Unwritable {
                        path: std::path::PathBuf::from(file),
                        detail: format!("cannot delete: {e}"),
                    }))
                }
            }
        }
        Ok(dropped)
    }
}

/// A live query; see [`Outbox::watch`]. Dropping it unsubscribes.
pub struct QueryWatch {
    engine: Arc<Engine>,
    rx: broadcast::Receiver<Event>,
    closed: tokio::sync::watch::Receiver<bool>,
    collection: String,
    query: Query,
    last: Option<Vec<Doc>>,
    last_delivery: std::time::Instant,
}

impl QueryWatch {
    fn read(&self) -> Result<Vec<Doc>> {
        self.engine.ensure_open()?;
        self.engine.db.read(|c| store::list(c, &self.collection, &self.query))
    }

    fn concerns(&self, event: &Event) -> bool {
        match event {
            Event::CollectionsChanged { collections } => collections.contains(&self.collection),
            _ => false,
        }
    }

    /// The current result first, then each changed result. `None` once the engine closed.
    pub async fn next(&mut self) -> Option<Result<Vec<Doc>>> {
        if self.last.is_none() {
            let first = self.read();
            if let Ok(docs) = &first {
                self.last = Some(docs.clone());
                self.last_delivery = std::time::Instant::now();
            }
            return Some(first);
        }
        loop {
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.closed.wait_for(|c| *c) => return None,
            };
            match received {
                Ok(e) if self.concerns(&e) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
            // Throttle: at most one delivery per window; what queued up meanwhile is folded in.
            let wait = COALESCE.saturating_sub(self.last_delivery.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            while self.rx.try_recv().is_ok() {}
            match self.read() {
                Ok(docs) if self.last.as_ref() == Some(&docs) => continue,
                Ok(docs) => {
                    self.last = Some(docs.clone());
                    self.last_delivery = std::time::Instant::now();
                    return Some(Ok(docs));
                }
                Err(Error::Closed) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
