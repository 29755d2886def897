//! Room at the size cap: the drain prunes settled commands early, and records answers
//! that do not fit together one by one (see `db` for the cap and the drain reserve).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::lease;
use crate::queue;
use crate::scheduler::Engine;
use crate::settle::{commit_for, Finished, HandOff};

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

impl Engine {
    /// Records answers whose transaction together ran out of room (`StorageFull` at the
    /// size cap): one command per transaction, each pruning first, and a success whose
    /// server documents still do not fit is recorded without the documents that are new
    /// to the store (they come with the next pull, which is requested). So the drain
    /// keeps settling at the cap whatever the server sends back; only a command whose
    /// bare settlement cannot be written stays queued (in memory, and `in_flight` on
    /// disk, as after any failed pass). The caller holds the recording lock.
    pub(crate) fn record_for_space(&self, finished: Vec<Finished>, generation: i64, now: i64) -> Result<()> {
        let mut singles = finished.into_iter().flat_map(Finished::split).collect::<Vec<_>>().into_iter();
        let mut pull = false;
        let result = loop {
            let Some(one) = singles.next() else { break Ok(()) };
            let one = vec![one];
            let mut hand_off = HandOff::Full;
            let written = loop {
                let written = self.db.write_with(commit_for(&one), |tx| {
                    lease::check_fence(tx, &self.owner, generation)?;
                    self.make_room(tx, now)?;
                    self.record_in(tx, &one, generation, now, hand_off)
                });
                match written {
                    Err(Error::StorageFull) if hand_off == HandOff::Full => hand_off = HandOff::ReplacingOpsOnly,
                    other => break other,
                }
            };
            match written {
                Ok(recorded) => {
                    pull |= hand_off == HandOff::ReplacingOpsOnly;
                    self.announce_recorded(&one, recorded);
                }
                Err(Error::Fenced) => {
                    self.lose_lease();
                    break Ok(());
                }
                Err(e) => {
                    self.settle_queue.requeue(one.into_iter().chain(singles).collect());
                    break Err(e);
                }
            }
        };
        if pull {
            tracing::info!("at the size cap: answers were recorded without their new documents; pulling them");
            self.request_pull();
        }
        result
    }
}
