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
