//! Query-plan checks of the queue's hot statements.

use super::*;

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt.query_map([1, 10], |r| r.get::<_, String>(3)).unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_ready_set_walks_lanes_by_head_without_sorting() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let p = plan(&conn, READY_SQL);
    assert!(p.starts_with("SCAN l USING COVERING INDEX lanes_by_head"), "{p}");
    assert!(!p.contains("TEMP B-TREE"), "{p}");
}

#[test]
fn the_oldest_unsynced_command_is_one_probe_of_a_partial_index() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let sql = crate::limits::OLDEST_UNSYNCED_SQL;
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let p: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
    let p = p.join("\n");
    assert!(p.contains("SCAN commands USING INDEX commands_unsynced_by_age"), "{p}");
    assert!(!p.contains("TEMP B-TREE"), "{p}");
}

/// The statements every drained command runs are parsed once, not on every use: SQLite
/// re-prepares a statement whose plan depended on a bound value each time its bindings
/// are cleared, which rusqlite does whenever a cached statement goes back to the cache.
#[test]
fn the_drain_statements_are_never_re_prepared() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let hot: [(&str, &[&dyn rusqlite::ToSql]); 10] = [
        (successes::SUCCEED_ALL_SQL, &[&"[]", &5_i64]),
        (READY_SQL, &[&1_i64, &10_i64]),
        (NEXT_HEAD_SQL, &[&"order:1"]),
        (reads::TOUCHED_DOCS_SQL, &[&1_i64]),
        (STILL_PENDING_SQL, &[&"[1,2]"]),
        (MARK_IN_FLIGHT_SQL, &[&"[1,2]", &5_i64]),
        (OPEN_ATTEMPTS_SQL, &[&"[1,2]", &5_i64]),
        (OUTGOING_SQL, &[&"[1,2]"]),
        (OUTGOING_KEYS_SQL, &[&"[1,2]"]),
        (crate::store::BASE_VERSIONS_SQL, &[&"[1,2]"]),
    ];
    for (sql, args) in hot {
        for _ in 0..3 {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let mut rows = stmt.query(args).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
    }
}

/// Starting a pass's commands looks each one up by its key, never scans a table.
#[test]
fn starting_attempts_looks_commands_up_by_seq() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    for sql in [
        STILL_PENDING_SQL,
        MARK_IN_FLIGHT_SQL,
        OPEN_ATTEMPTS_SQL,
        OUTGOING_SQL,
        OUTGOING_KEYS_SQL,
        crate::store::BASE_VERSIONS_SQL,
        successes::SUCCEED_ALL_SQL,
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let args: Vec<&dyn rusqlite::ToSql> =
            (0..n).map(|i| if i == 0 { &"[1]" as &dyn rusqlite::ToSql } else { &1_i64 }).collect();
        let p: Vec<String> =
            stmt.query_map(args.as_slice(), |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
        for step in &p {
            assert!(!step.starts_with("SCAN") || step.contains("VIRTUAL TABLE"), "{sql}: {p:?}");
            // A search of the state index visits every command in that state: a scan that
            // grows with the queue, whatever the length of the list.
            assert!(!step.contains("commands_by_state"), "{sql}: {p:?}");
        }
    }
}

#[test]
fn the_next_lane_head_is_one_probe_of_the_key_index() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {NEXT_HEAD_SQL}")).unwrap();
    let p: Vec<String> = stmt.query_map(["k"], |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
    let p = p.join("\n");
    assert!(p.contains("SEARCH command_keys USING PRIMARY KEY (key=?)"), "{p}");
}

/// Two answers for one command in the same pass (a send abandoned as hung, then its
/// retry): the first moves it, the second is ignored, as for a command already settled.
#[test]
fn a_second_answer_in_the_same_pass_is_ignored() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let tx = conn.transaction().unwrap();
    let keys = vec!["order:1".to_string()];
    let seq = insert(
        &tx,
        &NewCommand {
            id: CommandId::new(),
            idempotency_key: "k1".into(),
            mutator: "put",
            mutator_version: 1,
            args: "{}",
            keys: &keys,
            after: &[],
            ops: &[],
            metadata: "{}",
            now: 1,
            amount: None,
        },
    )
    .unwrap();
    assert_eq!(start_attempts(&tx, &[seq], 2).unwrap().len(), 1);
    let applied = || crate::retry::Disposition::Succeed {
        result: serde_json::json!({"ok": true}),
        changes: Vec::new(),
        receipt: None,
    };
    let mut successes = Successes::default();
    settle(&tx, seq, applied(), 3, &mut successes).unwrap();
    settle(&tx, seq, applied(), 3, &mut successes).unwrap();
    let retry = crate::retry::Disposition::Retry {
        delay: std::time::Duration::from_secs(1),
        consumes_attempt: true,
        reason: "late answer".into(),
    };
    assert!(settle(&tx, seq, retry, 3, &mut successes).unwrap().is_empty());
    let changes = successes.record(&tx, 3).unwrap();
    assert_eq!(changes.len(), 1);
    let (_, state, _) = current_state(&tx, seq).unwrap();
    assert_eq!(state, CommandState::Succeeded);
    let lanes: i64 = tx.query_row("SELECT count(*) FROM lanes", [], |r| r.get(0)).unwrap();
    assert_eq!(lanes, 0, "the lane was released");
}

#[test]
fn a_success_is_refused_where_the_state_machine_forbids_it() {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrations::migrate(&mut conn).unwrap();
    let tx = conn.transaction().unwrap();
    let mut successes = Successes::default();
    let err =
        successes.add(&tx, 1, CommandId::new(), CommandState::Discarded, serde_json::json!({}), &[], None).unwrap_err();
    assert!(matches!(err, Error::InvalidState { action: "move", .. }), "{err:?}");
    assert!(successes.record(&tx, 1).unwrap().is_empty(), "nothing was queued");
}
