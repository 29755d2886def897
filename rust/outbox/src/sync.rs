//! Sync-down: bring the server's versions of documents into the store.
//!
//! One loop per engine pulls the change feed page by page from a persisted cursor, on
//! open, when the device comes online or to the foreground, on `sync_now`, after a drain,
//! and when the transport's live channel nudges. Each page is applied in one transaction
//! (never moving a document back to an older version) together with the new cursor. The
//! last page of a pull also retires the overlays of commands that had succeeded before the
//! pull started: the server's version of their changes has now arrived, in this same
//! transaction, so reads go from the local change to the server's version without a gap.
//!
//! When the server answers a cursor reset (another epoch, or a cursor past its head), the
//! loop rebuilds the synced state from the start of the feed into a staging table and
//! swaps it in with the last page (`store::rebuild`): reads keep the old state with
//! pending changes on top until then, never an empty store.
//!
//! Reads never wait for the network: the local copy is always served.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::scheduler::{lock, Engine};
use crate::store;
use crate::transport::{ChangePage, PullOutcome};

/// Documents per pull request: the protocol's largest page (docs/protocol.md), so a
/// register catching up after an outage makes as few round trips as it can.
const PAGE: u32 = 1000;
/// Pages per pull before yielding to other work (a resumed pull continues from the cursor).
const MAX_PAGES: usize = 10_000;
/// Cursor resets one pull accepts before giving up until the next (a server that keeps
/// resetting, or a custom transport that answers every cursor with a reset).
const MAX_RESETS: u32 = 3;
/// Longest wait between failed pulls.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The sync-down loop.
pub(crate) async fn run(engine: Arc<Engine>) {
    let mut closed = engine.closed_signal();
    let mut failures: u32 = 0;
    loop {
        if *closed.borrow() {
            return;
        }
        let mut wait = Duration::from_secs(3600);
        if engine.online.load(Ordering::SeqCst) {
            match pull_all(&engine).await {
                Ok(true) | Ok(false) => failures = 0,
                Err(reason) => {
                    failures = failures.saturating_add(1);
                    wait = engine.config.retry.backoff(failures).min(MAX_BACKOFF);
                    tracing::debug!(%reason, "pull failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = engine.pull_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = closed.changed() => return,
        }
    }
}

/// Keeps the transport's live channel open, nudging the sync loop on every signal.
pub(crate) async fn listen(engine: Arc<Engine>) {
    let Some(transport) = engine.transport.clone() else { return };
    let mut closed = engine.closed_signal();
    let mut failures: u32 = 0;
    loop {
        let weak = Arc::downgrade(&engine);
        let nudge: crate::transport::Nudge = Arc::new(move || {
            if let Some(e) = weak.upgrade() {
                e.request_pull();
            }
        });
        let reopen = tokio::select! {
            r = transport.listen(nudge) => r,
            _ = closed.changed() => return,
        };
        if !reopen {
            return;
        }
        failures = failures.saturating_add(1);
        let wait = engine.config.retry.backoff(failures).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = closed.changed() => return,
        }
        // Something may have changed while the channel was down.
        engine.request_pull();
    }
}

/// Pulls until the feed has no more. `Ok(false)` when the transport has no feed.
///
/// Continues a feed rebuild when one is in progress (`store::rebuild`), and starts one
/// when the transport reports a cursor reset.
async fn pull_all(engine: &Arc<Engine>) -> std::result::Result<bool, String> {
    let Some(transport) = engine.transport.clone() else { return Ok(false) };
    let started = now_ms();
    let mut resets = 0;
    for _ in 0..MAX_PAGES {
        let (cursor, rebuild) =
            engine.db.read(|conn| Ok((cursor(conn)?, store::rebuild::current(conn)?))).map_err(|e| e.to_string())?;
        let from = match &rebuild {
            Some(r) => r.cursor.clone(),
            None => cursor,
        };
        let page = match transport.pull(from, PAGE).await {
            PullOutcome::Page(page) => page,
            PullOutcome::Unsupported => return Ok(false),
            PullOutcome::Offline => return Err("server unreachable".into()),
            PullOutcome::Unauthorized => {
                engine.emit(Event::AuthRequired);
                return Err("unauthorized".into());
            }
            PullOutcome::Failed(reason) => {
                *lock(&engine.last_error) = Some(format!("pull failed: {reason}"));
                return Err(reason);
            }
            PullOutcome::CursorReset { reason } => {
                resets += 1;
                if resets > MAX_RESETS {
                    let reason = format!("the feed was reset {resets} times in one pull: {reason}");
                    *lock(&engine.last_error) = Some(format!("pull failed: {reason}"));
                    return Err(reason);
                }
                tracing::info!(%reason, "the server reset the change feed; rebuilding the synced state from its start");
                engine.db.write(store::rebuild::begin).map_err(|e| e.to_string())?;
                continue;
            }
        };
        let done = !page.has_more;
        let finished = done.then_some(started);
        // Relaxed: a page lost to a power cut is pulled again from the cursor that survived.
        // At the size cap a page that does not fit fails the pull with `StorageFull`; it is
        // retried with a backoff while the drain prunes settled commands to make room.
        let applied = engine
            .db
            .write_pulled(|tx| match &rebuild {
                Some(r) => rebuild_page(tx, &r.id, &page, finished),
                None => apply_page(tx, &page, finished).map(Some),
            })
            .map_err(|e| {
                if matches!(e, Error::StorageFull) {
                    *lock(&engine.last_error) = Some(format!("pull failed: {e}"));
                }
                e.to_string()
            })?;
        // `None`: the rebuild this page belonged to was restarted or wiped meanwhile; the
        // next round reads where things stand now.
        let Some(collections) = applied else { continue };
        if !collections.is_empty() {
            engine.emit(Event::CollectionsChanged { collections: collections.into_iter().collect() });
        }
        if done {
            *lock(&engine.last_pull) = Some(now_ms());
            engine.emit(Event::Synced);
            return Ok(true);
        }
    }
    Ok(true)
}

fn cursor(conn: &rusqlite::Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'pull_cursor'")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Applies one page and its cursor. On the last page (`finished_pull_started` is the time
/// the pull began) also retires acknowledged overlays and stamps `last_synced_at`.
/// Returns the collections whose visible documents may have changed.
fn apply_page(tx: &Transaction<'_>, page: &ChangePage, finished_pull_started: Option<i64>) -> Result<BTreeSet<String>> {
    store::apply_changes(tx, None, &page.changes)?;
    tx.prepare_cached("INSERT INTO meta (key, value) VALUES ('pull_cursor', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![page.cursor])?;
    let mut collections: BTreeSet<String> = page.changes.iter().map(|c| c.collection.clone()).collect();
    if let Some(started) = finished_pull_started {
        finish_pull(tx, started, &mut collections)?;
    }
    Ok(collections)
}

/// Stages one page of feed rebuild `id`; its last page swaps the rebuilt state in (see
/// `store::rebuild`) and finishes the pull like [`apply_page`]. `None` when `id` is no
/// longer the rebuild in progress (nothing was written).
fn rebuild_page(
    tx: &Transaction<'_>,
    id: &str,
    page: &ChangePage,
    finished_pull_started: Option<i64>,
) -> Result<Option<BTreeSet<String>>> {
    if !store::rebuild::stage(tx, id, &page.changes, &page.cursor)? {
        return Ok(None);
    }
    let Some(started) = finished_pull_started else { return Ok(Some(BTreeSet::new())) };
    let Some(mut collections) = store::rebuild::finish(tx, id, &page.cursor)? else { return Ok(None) };
    finish_pull(tx, started, &mut collections)?;
    Ok(Some(collections))
}

/// The end of a complete pull that started at `started`: retires the overlays of
/// commands acknowledged before it (their server versions have now arrived) and stamps
/// `last_synced_at`. Adds the collections whose view changed to `collections`.
fn finish_pull(tx: &Transaction<'_>, started: i64, collections: &mut BTreeSet<String>) -> Result<()> {
    let retired: Vec<String> = tx
        .prepare_cached(store::RETIRED_COLLECTIONS_SQL)?
        .query_map(params![started], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    store::retire_acknowledged(tx, started)?;
    collections.extend(retired);
    let now = now_ms();
    let mut stamp = tx.prepare_cached(
        "INSERT INTO collection_sync (collection, last_synced_at) VALUES (?1, ?2)
         ON CONFLICT (collection) DO UPDATE SET last_synced_at = excluded.last_synced_at",
    )?;
    stamp.execute(params!["*", now])?;
    for c in collections.iter() {
        stamp.execute(params![c, now])?;
    }
    tx.execute("UPDATE collection_sync SET last_synced_at = ?1", params![now])?;
    Ok(())
}
