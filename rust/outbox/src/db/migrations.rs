//! The whole schema history. Each step runs with its `PRAGMA user_version` in one
//! IMMEDIATE transaction; steps only go forward and never drop a queued command.
//!
//! Released schemas are frozen as `tests/fixtures/v<N>.sql`; a test upgrades each one
//! and checks that every command survives and that the result equals a fresh schema.

use rusqlite::{Connection, TransactionBehavior};

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = 6;

const STEPS: [&str; 6] = [
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_lanes_deps_attempts.sql"),
    include_str!("migrations/0003_sync_state.sql"),
    include_str!("migrations/0004_feed_rebuild.sql"),
    include_str!("migrations/0005_receipts.sql"),
    include_str!("migrations/0006_till.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 6 fills what it can from a version 5 queue: the keys of unfinished
    /// commands, the cause of each `dependency_failed` command, the key of each attempt,
    /// and the unsynced totals its triggers keep from then on.
    #[test]
    fn version_6_backfills_keys_causes_attempt_keys_and_totals() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 5).unwrap();
        conn.execute_batch(
            "INSERT INTO commands (seq, id, mutator, mutator_version, args, idempotency_key, created_at, state, updated_at, last_error)
             VALUES (1, '01a23ad4-1a14-722e-a575-bf3b70ce20fe', 'createOrder', 1, '{}', 'k1', 1, 'failed', 1, 'insufficient_stock: no'),
                    (2, '01a23ad4-1a14-722e-a575-bf3b70ce20ff', 'pay', 1, '{}', 'k2', 2, 'failed', 2,
                     'dependency_failed: command 01a23ad4-1a14-722e-a575-bf3b70ce20fe it depends on did not succeed'),
                    (3, '01a23ad4-1a14-722e-a575-bf3b70ce2100', 'pay', 1, '{}', 'k3', 3, 'pending', 3, NULL),
                    (4, '01a23ad4-1a14-722e-a575-bf3b70ce2101', 'pay', 1, '{}', 'k4', 4, 'succeeded', 4, NULL);
             INSERT INTO command_keys (key, command_seq) VALUES ('order:2', 3), ('b', 3);
             INSERT INTO lanes (key, head_seq) VALUES ('order:2', 3), ('b', 3);
             INSERT INTO attempts (command_seq, attempt, started_at) VALUES (1, 1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row = |seq: i64| -> (Option<String>, Option<i64>) {
            conn.query_row("SELECT keys, failed_by FROM commands WHERE seq = ?1", [seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
        };
        assert_eq!(row(1), (None, None));
        assert_eq!(row(2), (None, Some(1)));
        assert_eq!(row(3), (Some(r#"["b","order:2"]"#.to_string()), None));
        let key: String = conn.query_row("SELECT idempotency_key FROM attempts", [], |r| r.get(0)).unwrap();
        assert_eq!(key, "k1");
        let totals = |conn: &Connection| -> Vec<(String, i64)> {
            let mut stmt = conn.prepare("SELECT mutator, count FROM unsynced_totals ORDER BY mutator").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        assert_eq!(totals(&conn), vec![("createOrder".to_string(), 1), ("pay".to_string(), 2)]);
        // The triggers follow state changes, deletes and inserts.
        conn.execute_batch(
            "UPDATE commands SET state = 'succeeded' WHERE seq = 3;
             DELETE FROM commands WHERE seq = 1;
             UPDATE commands SET state = 'pending' WHERE seq = 4;",
        )
        .unwrap();
        assert_eq!(totals(&conn), vec![("createOrder".to_string(), 0), ("pay".to_string(), 2)]);
    }
}
