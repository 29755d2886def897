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
