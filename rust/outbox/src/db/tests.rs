//! The size cap's shares: app writes, pulls and the part only settling may use.

use super::*;

fn blob_write(tx: &Transaction<'_>, bytes: usize) -> Result<()> {
    tx.execute("INSERT INTO meta (key, value) VALUES (lower(hex(randomblob(16))), ?1)", [("x".repeat(bytes))])?;
    Ok(())
}

#[test]
fn a_pull_stops_at_half_the_drain_reserve_and_leaves_the_rest_to_settling() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("capped.db"), Durability::Full, Some(256 * 1024), None).unwrap();
    // App writes fill their share ...
    while db.write_capped(|tx| blob_write(tx, 3000)).is_ok() {}
    assert!(matches!(db.write_capped(|tx| blob_write(tx, 3000)), Err(crate::Error::StorageFull)));
    // ... pulls take up to half the reserve, and no more ...
    let mut pulled = 0;
    while db.write_pulled(|tx| blob_write(tx, 3000)).is_ok() {
        pulled += 1;
    }
    assert!(pulled > 0, "a pull could not use the reserve at all");
    assert!(matches!(db.write_pulled(|tx| blob_write(tx, 3000)), Err(crate::Error::StorageFull)));
    // ... and the drain's own writes still have room after them.
    db.write_with(Commit::Relaxed, |tx| blob_write(tx, 3000)).unwrap();
}
