//! Room at the size cap: the drain prunes settled commands early (see `db` for the cap
//! and the drain reserve).

use std::time::Duration;

use crate::error::Result;
use crate::queue;
use crate::scheduler::Engine;

/// How long a settled command is kept at least, even at the size cap: whoever waits for
/// it (`wait_for`, a listener re-reading it) finds it settled rather than unknown.
const SPACE_PRUNE_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    /// Near the size cap (app writes have used 90% of their share), prunes commands
    /// settled more than [`SPACE_PRUNE_GRACE`] ago, oldest first, whatever their
    /// retention, until app writes use 80% or none is left, so enqueue works again once
    /// the queue has drained. Runs first in the pass's transaction, in the drain reserve.
    pub(crate) fn make_room(&self, tx: &rusqlite::Transaction<'_>, now: i64) -> Result<()> {
        const CHUNK: usize = 100;
        if !self.db.over_enqueue_limit(tx, 0.9)? {
            return Ok(());
        }
        let mut pruned = 0;
        loop {
            let n = queue::prune_for_space(tx, now - SPACE_PRUNE_GRACE.as_millis() as i64, CHUNK)?;
            pruned += n;
            if n < CHUNK || !self.db.over_enqueue_limit(tx, 0.8)? {
                break;
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, "the database is at its size cap: pruned settled commands to make room");
        }
        Ok(())
    }
}
