//! The size cap's shares: app writes, pulls and the part only settling may use.

use super::*;

fn blob_write(tx: &Transaction<'_>, bytes: usize) -> Result<()> {
    tx.execute("INSERT INTO meta (key, value) VALUES (lower(hex(randomblob(16))), ?1)", [("x".repeat(bytes))])?;
    Ok(())
}

/// Pulled documents cannot be pruned: they stop short of the app writes' share, so sales
/// always find room after them, and settling its reserve after both.
#[test]
fn a_pull_leaves_room_for_sales_and_the_reserve_for_settling() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("capped.db"), Durability::Full, Some(256 * 1024), None).unwrap();
    // Pulls fill what they may ...
    let mut pulled = 0;
    while db.write_pulled(|tx| blob_write(tx, 3000)).is_ok() {
        pulled += 1;
    }
    assert!(pulled > 10, "a pull could barely write: {pulled}");
    assert!(matches!(db.write_pulled(|tx| blob_write(tx, 3000)), Err(crate::Error::StorageFull)));
    // ... and sales still have room after them (a tenth of their share) ...
    let mut sold = 0;
    while db.write_capped(|tx| blob_write(tx, 3000)).is_ok() {
        sold += 1;
    }
    assert!(sold >= 3, "only {sold} sales fit after a pull filled what it may");
    // ... and the drain's own writes still have room after both.
    db.write_with(Commit::Relaxed, |tx| blob_write(tx, 3000)).unwrap();
}
