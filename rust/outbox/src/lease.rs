//! The cross-process drainer lease: one row `(owner, generation, expires_at)`.
//!
//! Only the holder sends commands. A holder renews well before `expires_at`; a holder that
//! dies stops renewing and any other engine takes the lease once it has expired, bumping
//! `generation`. Every state write a drainer makes checks, inside its own transaction,
//! that the row still names it with the generation it acquired (fencing): a holder that
//! was paused past its TTL and replaced cannot overwrite its successor's work.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::{now_ms, Commit};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::queue;
use crate::scheduler::{lock, Engine};

/// The result of trying to take or renew the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseStatus {
    /// This engine holds it. `taken` is true when it was just acquired (not renewed).
    Held {
        /// Fencing generation to check on every write.
        generation: i64,
        /// Expiry, Unix milliseconds.
        expires_at: i64,
        /// Newly acquired rather than renewed.
        taken: bool,
    },
    /// Another engine holds it until `expires_at`.
    HeldByOther {
        /// Its expiry, Unix milliseconds.
        expires_at: i64,
    },
}

/// The stored lease row: (owner, generation, expires_at).
pub(crate) fn read(conn: &rusqlite::Connection) -> Result<Option<(String, i64, i64)>> {
    Ok(conn
        .query_row("SELECT owner, generation, expires_at FROM lease WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

/// Takes the lease if it is free or expired, renews it if `owner` holds it.
pub(crate) fn acquire(tx: &Transaction<'_>, owner: &str, ttl_ms: i64, now: i64) -> Result<LeaseStatus> {
    let row: Option<(String, i64, i64)> = tx
        .query_row("SELECT owner, generation, expires_at FROM lease WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let expires_at = now + ttl_ms;
    match row {
        Some((holder, generation, _)) if holder == owner => {
            tx.execute("UPDATE lease SET expires_at = ?1 WHERE id = 1", params![expires_at])?;
            Ok(LeaseStatus::Held { generation, expires_at, taken: false })
        }
        Some((_, _, other_expiry)) if other_expiry > now => Ok(LeaseStatus::HeldByOther { expires_at: other_expiry }),
        Some((_, generation, _)) => {
            tx.execute(
                "UPDATE lease SET owner = ?1, generation = ?2, expires_at = ?3 WHERE id = 1",
                params![owner, generation + 1, expires_at],
            )?;
            Ok(LeaseStatus::Held { generation: generation + 1, expires_at, taken: true })
        }
        None => {
            tx.execute(
                "INSERT INTO lease (id, owner, generation, expires_at) VALUES (1, ?1, 1, ?2)",
                params![owner, expires_at],
            )?;
            Ok(LeaseStatus::Held { generation: 1, expires_at, taken: true })
        }
    }
}

/// Gives the lease up early (clean shutdown, going offline) so another engine need not
/// wait for the TTL.
pub(crate) fn release(tx: &Transaction<'_>, owner: &str, generation: i64) -> Result<()> {
    tx.execute(
        "UPDATE lease SET expires_at = 0 WHERE id = 1 AND owner = ?1 AND generation = ?2",
        params![owner, generation],
    )?;
    Ok(())
}

/// Fails with [`Error::Fenced`] unless `owner` still holds `generation`.
pub(crate) fn check_fence(tx: &Transaction<'_>, owner: &str, generation: i64) -> Result<()> {
    let current: Option<(String, i64)> = tx
        .query_row("SELECT owner, generation FROM lease WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match current {
        Some((o, g)) if o == owner && g == generation => Ok(()),
        _ => Err(Error::Fenced),
    }
}

/// The lease as this engine last saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldLease {
    pub(crate) generation: i64,
    pub(crate) expires_at: i64,
}

/// The engine's side of the lease: take, renew, lose and release it.
impl Engine {
    /// Whether this engine holds an unexpired lease, so it is the one that sends.
    pub(crate) fn is_drainer(&self) -> bool {
        lock(&self.lease).is_some_and(|l| l.expires_at > now_ms())
    }

    /// How often a holder renews: a third of the TTL, at least 10 ms.
    pub(crate) fn renew_interval(&self) -> Duration {
        (self.config.lease_ttl / 3).max(Duration::from_millis(10))
    }

    /// Takes or renews the lease. `Ok(Err(d))`: another engine drains; look again in `d`.
    pub(crate) fn hold_lease(&self) -> Result<std::result::Result<i64, Duration>> {
        let now = now_ms();
        let ttl_ms = self.config.lease_ttl.as_millis() as i64;
        if let Some(l) = *lock(&self.lease) {
            // Renew once a third of the TTL has passed.
            if l.expires_at - now > ttl_ms * 2 / 3 {
                return Ok(Ok(l.generation));
            }
        }
        // Relaxed: a lease write lost to a power cut died with every process that used it.
        let status = self.db.write_with(Commit::Relaxed, |tx| {
            let status = acquire(tx, &self.owner, ttl_ms, now)?;
            let reset = match status {
                LeaseStatus::Held { taken: true, .. } => queue::reset_in_flight(tx, now)?,
                _ => Vec::new(),
            };
            Ok((status, reset))
        })?;
        match status {
            (LeaseStatus::Held { generation, expires_at, taken }, reset) => {
                *lock(&self.lease) = Some(HeldLease { generation, expires_at });
                if taken {
                    self.emit_changes(&reset);
                    self.emit(Event::LeaseChanged { is_drainer: true });
                    self.prune();
                }
                Ok(Ok(generation))
            }
            (LeaseStatus::HeldByOther { expires_at }, _) => {
                self.lose_lease();
                Ok(Err(Duration::from_millis((expires_at - now).clamp(10, ttl_ms.max(10)) as u64)))
            }
        }
    }

    /// Forgets the lease (another engine took it, or a write was fenced off).
    pub(crate) fn lose_lease(&self) {
        if lock(&self.lease).take().is_some() {
            self.emit(Event::LeaseChanged { is_drainer: false });
        }
    }

    /// Gives the lease up in the database, so another engine can take over at once.
    pub(crate) fn release_lease(&self) {
        let held = lock(&self.lease).take();
        if let Some(l) = held {
            let _ = self.db.write(|tx| release(tx, &self.owner, l.generation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations;
    use rusqlite::{Connection, TransactionBehavior};

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut c).unwrap();
        c
    }

    fn with_tx<T>(c: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> T) -> T {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
        let v = f(&tx);
        tx.commit().unwrap();
        v
    }

    #[test]
    fn first_owner_takes_generation_one_and_renews() {
        let mut c = conn();
        let s = with_tx(&mut c, |tx| acquire(tx, "a", 1000, 10).unwrap());
        assert_eq!(s, LeaseStatus::Held { generation: 1, expires_at: 1010, taken: true });
        let s = with_tx(&mut c, |tx| acquire(tx, "a", 1000, 500).unwrap());
        assert_eq!(s, LeaseStatus::Held { generation: 1, expires_at: 1500, taken: false });
    }

    #[test]
    fn others_wait_until_expiry_then_take_over_with_a_new_generation() {
        let mut c = conn();
        with_tx(&mut c, |tx| acquire(tx, "a", 1000, 0).unwrap());
        let s = with_tx(&mut c, |tx| acquire(tx, "b", 1000, 999).unwrap());
        assert_eq!(s, LeaseStatus::HeldByOther { expires_at: 1000 });
        let s = with_tx(&mut c, |tx| acquire(tx, "b", 1000, 1001).unwrap());
        assert_eq!(s, LeaseStatus::Held { generation: 2, expires_at: 2001, taken: true });
    }

    #[test]
    fn a_stale_holder_is_fenced_after_takeover() {
        let mut c = conn();
        with_tx(&mut c, |tx| acquire(tx, "a", 100, 0).unwrap());
        with_tx(&mut c, |tx| check_fence(tx, "a", 1)).unwrap();
        with_tx(&mut c, |tx| acquire(tx, "b", 100, 200).unwrap());
        assert!(matches!(with_tx(&mut c, |tx| check_fence(tx, "a", 1)), Err(Error::Fenced)));
        with_tx(&mut c, |tx| check_fence(tx, "b", 2)).unwrap();
        // The stale holder cannot renew its way back either: it sees the new owner.
        let s = with_tx(&mut c, |tx| acquire(tx, "a", 100, 250).unwrap());
        assert_eq!(s, LeaseStatus::HeldByOther { expires_at: 300 });
    }

    #[test]
    fn release_lets_the_next_engine_in_at_once() {
        let mut c = conn();
        with_tx(&mut c, |tx| acquire(tx, "a", 10_000, 0).unwrap());
        with_tx(&mut c, |tx| release(tx, "a", 1).unwrap());
        let s = with_tx(&mut c, |tx| acquire(tx, "b", 10_000, 1).unwrap());
        assert!(matches!(s, LeaseStatus::Held { generation: 2, .. }));
    }
}
