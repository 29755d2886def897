//! The whole schema history. Each step runs with its `PRAGMA user_version` in one
//! IMMEDIATE transaction; steps only go forward and never drop a queued command.
//!
//! Released schemas are frozen as `tests/fixtures/v<N>.sql`; a test upgrades each one
//! and checks that every command survives and that the result equals a fresh schema.

use rusqlite::{Connection, TransactionBehavior};

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = 5;

const STEPS: [&str; 5] = [
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_lanes_deps_attempts.sql"),
    include_str!("migrations/0003_sync_state.sql"),
    include_str!("migrations/0004_feed_rebuild.sql"),
    include_str!("migrations/0005_receipts.sql"),
];

/// Upgrades the database to [`CURRENT_VERSION`], one committed step at a time.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Upgrades up to version `to` (tests stop at older versions to build fixtures).
///
/// Each step re-reads the version inside its own IMMEDIATE transaction, so two processes
/// opening the same new file at once cannot run a step twice.
pub(crate) fn migrate_to(conn: &mut Connection, to: i64) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version >= to {
            return Ok(());
        }
        let Some(sql) = usize::try_from(version).ok().and_then(|i| STEPS.get(i)) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
