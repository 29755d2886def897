//! Recording what the transport answered.
//!
//! Every finished send is written in a SQLite transaction that ends its attempts, applies
//! each command's disposition (succeeded, retry at a time, failed, conflict, wedged) and
//! hands optimistic state over to the server's (see `queue::settle`). Send tasks never
//! write: they queue their answers and wake the drain loop, which records every finished
//! send **and** starts the next attempts in one transaction — one `fsync` per pass however
//! many batches finished (group commit). Nothing is acknowledged to anyone (events,
//! `wait_for`) before that commit; answers whose transaction failed stay queued in memory
//! and are recorded by the next pass (their commands stay `in_flight` on disk meanwhile,
//! so a crash resends them with the same idempotency keys).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use rusqlite::Transaction;

use crate::command::CommandId;
use crate::db::Commit;
use crate::error::Result;
use crate::events::Event;
use crate::queue::{self, Change};
use crate::retry;
use crate::scheduler::{lock, Engine};
use crate::transport::{Outcome, OutgoingCommand};

/// One send's commands (with their `seq`) and the transport's answers.
pub(crate) struct Finished {
    batch: Vec<(i64, OutgoingCommand)>,
    outcomes: Vec<Outcome>,
    generation: i64,
    /// Consecutive sends, this one included, that reached nobody (offline, unauthorized,
    /// forbidden).
    streak: u32,
}

impl Finished {
    /// One `Finished` per command, in order (to record answers that do not fit together).
    pub(crate) fn split(self) -> Vec<Finished> {
        let Finished { batch, outcomes, generation, streak } = self;
        batch
            .into_iter()
            .zip(outcomes)
            .map(|(cmd, outcome)| Finished { batch: vec![cmd], outcomes: vec![outcome], generation, streak })
            .collect()
    }
}

/// How much of a success's answer is stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOff {
    /// Every document version the server sent.
    Full,
    /// Only versions that replace one of the command's optimistic ops (about as large as
    /// the op they retire). Documents new to the store are left for the next pull; the
    /// database is at its size cap and they did not fit.
    ReplacingOpsOnly,
}

/// Finished sends waiting for the drain loop to record them.
#[derive(Default)]
pub(crate) struct SettleQueue {
    waiting: Mutex<Vec<Finished>>,
}

impl SettleQueue {
    /// Everything waiting, oldest first.
    pub(crate) fn take(&self) -> Vec<Finished> {
        std::mem::take(&mut *lock(&self.waiting))
    }

    /// Puts sends back in front (their transaction failed; the next pass tries again).
    pub(crate) fn requeue(&self, mut sends: Vec<Finished>) {
        let mut waiting = lock(&self.waiting);
        sends.append(&mut waiting);
        *waiting = sends;
    }
}

/// How the transaction that records `sends` must commit. Losing a success or a retry to a
/// power cut only makes the command go out again under the same idempotency key, which
/// the server answers `duplicate` with the stored result: no fsync needed. A rejection or
/// a conflict is fsynced: a server that keeps no answer for it under the key (conflicts
/// never are; a custom server may not store rejections) could apply a resend where the
/// cashier saw "failed", e.g. once stock is replenished.
pub(crate) fn commit_for(sends: &[Finished]) -> Commit {
    let must_last = sends
        .iter()
        .flat_map(|s| s.outcomes.iter())
        .any(|o| matches!(o, Outcome::Rejected { .. } | Outcome::Conflict { .. }));
    if must_last {
        Commit::Durable
    } else {
        Commit::Relaxed
    }
}

/// What a committed recording tells the rest of the engine.
pub(crate) struct Recorded {
    pub(crate) changes: Vec<Change>,
    finished: Vec<(CommandId, u32, &'static str, Option<String>)>,
}

impl Engine {
    /// Queues a finished send for the drain loop and wakes it.
    pub(crate) fn finish_send(&self, batch: Vec<(i64, OutgoingCommand)>, mut outcomes: Vec<Outcome>, generation: i64) {
        outcomes.resize_with(batch.len(), || Outcome::retry("transport returned no outcome for this command"));
        let all_not_sent =
            outcomes.iter().all(|o| matches!(o, Outcome::Offline | Outcome::Unauthorized | Outcome::Forbidden { .. }));
        let streak = if all_not_sent {
            self.not_sent_streak.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.not_sent_streak.store(0, Ordering::SeqCst);
            0
        };
        if outcomes.iter().any(|o| matches!(o, Outcome::Unauthorized)) {
            self.emit(Event::AuthRequired);
        }
        if let Some(Outcome::Forbidden { message }) = outcomes.iter().find(|o| matches!(o, Outcome::Forbidden { .. })) {
            self.emit(Event::AccessDenied { message: message.clone() });
        }
        lock(&self.settle_queue.waiting).push(Finished { batch, outcomes, generation, streak });
    }

    /// Ends the attempts of `sends` and applies each command's disposition inside `tx`.
    /// Sends of another lease generation are skipped: taking the lease again already
    /// returned their commands to `pending`, and they will be resent.
    pub(crate) fn record_in(
        &self,
        tx: &Transaction<'_>,
        sends: &[Finished],
        generation: i64,
        now: i64,
        hand_off: HandOff,
    ) -> Result<Recorded> {
        let policy = &self.config.retry;
        let mut recorded = Recorded { changes: Vec::new(), finished: Vec::new() };
        let mut successes = queue::Successes::default();
        for send in sends {
            if send.generation != generation {
                tracing::warn!("dropping the answers of a send from lease generation {}", send.generation);
                continue;
            }
            for ((seq, cmd), mut outcome) in send.batch.iter().zip(send.outcomes.iter().cloned()) {
                if let (HandOff::ReplacingOpsOnly, Outcome::Applied { changes, .. }) = (hand_off, &mut outcome) {
                    *changes = crate::store::changes_replacing_ops(tx, *seq, std::mem::take(changes))?;
                }
                let label = outcome.label();
                let (status, error) = describe(&outcome);
                queue::end_attempt(tx, *seq, cmd.attempt, now, label, status, error.as_deref())?;
                let disposition = retry::classify(outcome, cmd.attempt, send.streak, policy);
                recorded.finished.push((parse_id(&cmd.id), cmd.attempt, label, error));
                recorded.changes.extend(queue::settle(tx, *seq, disposition, now, &mut successes)?);
            }
        }
        // Successes last, in one statement: nothing else in a pass depends on them (a
        // command's dependants and lane successors are never in flight beside it).
        recorded.changes.extend(successes.record(tx, now)?);
        Ok(recorded)
    }

    /// After the commit: events, `wait_for` wake-ups and watches.
    pub(crate) fn announce_recorded(&self, sends: &[Finished], recorded: Recorded) {
        if !recorded.finished.is_empty() {
            self.watchdog.progress();
        }
        let server_collections: BTreeSet<String> = sends
            .iter()
            .flat_map(|s| s.outcomes.iter())
            .flat_map(|o| match o {
                Outcome::Applied { changes, .. } => changes.iter().map(|c| c.collection.clone()).collect(),
                _ => Vec::new(),
            })
            .collect();
        for (id, attempt, outcome, error) in recorded.finished {
            if let Some(e) = &error {
                *lock(&self.last_error) = Some(e.clone());
            }
            if outcome == "applied" {
                self.consecutive_failures.store(0, Ordering::SeqCst);
                *lock(&self.last_success) = Some(Some(crate::db::now_ms()));
            } else {
                self.consecutive_failures.fetch_add(1, Ordering::SeqCst);
            }
            self.emit(Event::AttemptFinished { id, attempt, outcome: outcome.to_string(), error });
        }
        self.announce(&recorded.changes, server_collections);
    }
}

/// The HTTP status and error text an attempt's history records for an outcome.
fn describe(outcome: &Outcome) -> (Option<u16>, Option<String>) {
    match outcome {
        Outcome::Applied { .. } => (None, None),
        Outcome::Retry { reason, http_status, .. } => (*http_status, Some(reason.clone())),
        Outcome::Rejected { code, message } => (None, Some(format!("{code}: {message}"))),
        Outcome::Conflict { .. } => (Some(409), Some("conflict".into())),
        Outcome::Unauthorized => (Some(401), Some("unauthorized".into())),
        Outcome::Forbidden { message } => (Some(403), Some(format!("forbidden: {message}"))),
        Outcome::Offline => (None, Some("server unreachable".into())),
    }
}

/// A command id as sent (always a UUID we generated).
pub(crate) fn parse_id(id: &str) -> CommandId {
    CommandId(uuid::Uuid::parse_str(id).unwrap_or_default())
}
