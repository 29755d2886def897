//! What happens after an attempt: backoff, attempt limits and the one function that turns
//! a transport [`Outcome`] into a [`Disposition`].
//!
//! Backoff is `min(cap, base·2^(n-1))` for the n-th failed attempt, with ±jitter, never
//! above the cap. A server's `Retry-After` wins over the computed delay (also capped, so a
//! persisted due time is never further ahead than the cap). `Offline`, `Unauthorized` and
//! `Forbidden` do not consume an attempt: the request never reached the server or was
//! refused before it could act. They are retried with a backoff spaced by how many sends
//! in a row reached nobody, and become due at once on any trigger (`sync_now`,
//! `set_online(true)`, foreground).

use std::time::Duration;

use serde_json::Value;

use crate::transport::{DocChange, Outcome};

/// Backoff and attempt limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt (1 s).
    pub base: Duration,
    /// Largest delay between attempts (60 s).
    pub cap: Duration,
    /// Random spread around the delay, as a fraction (0.3 = ±30%).
    pub jitter: f64,
    /// Attempts before a command is parked as `wedged` (10).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(1), cap: Duration::from_secs(60), jitter: 0.3, max_attempts: 10 }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `failures` consecutive failed attempts
    /// (`failures >= 1`), jittered and capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let spread = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + spread * (fastrand::f64() * 2.0 - 1.0);
        raw.mul_f64(factor.max(0.0)).min(self.cap)
    }

    /// The delay a server asked for, capped like any other delay.
    pub fn server_delay(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.cap)
    }
}

/// The stored due time of a retry `delay` from `now`, never before the delay has passed.
///
/// `now` is wall-clock milliseconds rounded down, so the real instant may be up to 1 ms
/// later; the delay is rounded up and that millisecond added, or a server's `Retry-After`
/// could be honoured a fraction of a millisecond early.
pub(crate) fn due_after(now: i64, delay: Duration) -> i64 {
    if delay.is_zero() {
        return now;
    }
    let whole_ms = delay.as_nanos().div_ceil(1_000_000);
    now.saturating_add(i64::try_from(whole_ms).unwrap_or(i64::MAX)).saturating_add(1)
}

/// What the engine does with a command after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Done: store the result and apply the changes.
    Succeed {
        /// The mutator's result.
        result: Value,
        /// New server versions of touched documents.
        changes: Vec<DocChange>,
        /// The server's receipt, stored on the command.
        receipt: Option<crate::command::Receipt>,
    },
    /// Back to `pending`, due again after `delay`.
    Retry {
        /// Time until the next attempt.
        delay: Duration,
        /// Whether this attempt counts toward `max_attempts`.
        consumes_attempt: bool,
        /// Stored as `last_error`.
        reason: String,
    },
    /// Attempts exhausted: park as `wedged` until the app retries or discards it.
    Wedge {
        /// The last failure.
        reason: String,
    },
    /// Permanently rejected: roll back and fail dependants.
    Fail {
        /// Machine-readable code.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// Pause the command's keys until the app resolves the conflict.
    Conflict {
        /// The server's state.
        server_snapshot: Value,
    },
}

/// Decides what follows an attempt.
///
/// `attempts` counts this attempt; `not_sent_streak` counts consecutive `Offline`,
/// `Unauthorized` or `Forbidden` outcomes (including this one) and spaces out those retries.
pub fn classify(outcome: Outcome, attempts: u32, not_sent_streak: u32, policy: &RetryPolicy) -> Disposition {
    match outcome {
        Outcome::Applied { result, changes, receipt } => Disposition::Succeed { result, changes, receipt },
        Outcome::Rejected { code, message } => Disposition::Fail { code, message },
        Outcome::Conflict { server_snapshot } => Disposition::Conflict { server_snapshot },
        Outcome::Retry { reason, retry_after, http_status } => {
            let reason = match http_status {
                Some(status) => format!("HTTP {status}: {reason}"),
                None => reason,
            };
            if attempts >= policy.max_attempts {
                Disposition::Wedge { reason: format!("{attempts} attempts failed; last: {reason}") }
            } else {
                let delay = match retry_after {
                    Some(after) => policy.server_delay(after),
                    None => policy.backoff(attempts),
                };
                Disposition::Retry { delay, consumes_attempt: true, reason }
            }
        }
        Outcome::Unauthorized => Disposition::Retry {
            delay: policy.backoff(not_sent_streak.max(1)),
            consumes_attempt: false,
            reason: "unauthorized: waiting for fresh credentials".into(),
        },
        Outcome::Forbidden { message } => Disposition::Retry {
            delay: policy.backoff(not_sent_streak.max(1)),
            consumes_attempt: false,
            reason: format!("forbidden: {message}"),
        },
        Outcome::Offline => Disposition::Retry {
            delay: policy.backoff(not_sent_streak.max(1)),
            consumes_attempt: false,
            reason: "server unreachable".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_jitter_bounds_and_cap() {
        let p = RetryPolicy::default();
        for failures in 1..=12u32 {
            let nominal = p.base.saturating_mul(1 << (failures - 1).min(30)).min(p.cap);
            for _ in 0..200 {
                let d = p.backoff(failures);
                assert!(d >= nominal.mul_f64(0.7) - Duration::from_millis(1), "{failures}: {d:?} < 70% of {nominal:?}");
                assert!(d <= nominal.mul_f64(1.3).min(p.cap), "{failures}: {d:?} > bound");
            }
        }
        // The first retry waits about the base; the tenth is at the cap.
        assert!(p.backoff(1) <= Duration::from_millis(1300));
        assert!(p.backoff(10) >= Duration::from_secs(42));
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let p = RetryPolicy::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            seen.insert(p.backoff(3).as_millis());
        }
        assert!(seen.len() > 10, "jitter produced only {} distinct delays", seen.len());
    }

    #[test]
    fn retry_after_wins_over_backoff_but_is_capped() {
        let p = RetryPolicy::default();
        let o =
            Outcome::Retry { reason: "busy".into(), retry_after: Some(Duration::from_secs(7)), http_status: Some(429) };
        match classify(o, 1, 0, &p) {
            Disposition::Retry { delay, consumes_attempt, reason } => {
                assert_eq!(delay, Duration::from_secs(7));
                assert!(consumes_attempt);
                assert!(reason.contains("429"));
            }
            d => panic!("unexpected {d:?}"),
        }
        let o = Outcome::Retry {
            reason: "busy".into(),
            retry_after: Some(Duration::from_secs(3600)),
            http_status: Some(503),
        };
        assert!(matches!(classify(o, 1, 0, &p), Disposition::Retry { delay, .. } if delay == p.cap));
    }

    #[test]
    fn offline_and_unauthorized_do_not_consume_attempts() {
        let p = RetryPolicy::default();
        for o in [Outcome::Offline, Outcome::Unauthorized, Outcome::Forbidden { message: "no role".into() }] {
            // Even at the attempt limit these never wedge.
            assert!(matches!(classify(o, p.max_attempts, 1, &p), Disposition::Retry { consumes_attempt: false, .. }));
        }
    }

    #[test]
    fn exhausted_attempts_wedge_with_reason() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        assert!(matches!(classify(Outcome::retry("boom"), 2, 0, &p), Disposition::Retry { .. }));
        match classify(Outcome::retry("boom"), 3, 0, &p) {
            Disposition::Wedge { reason } => assert!(reason.contains("boom") && reason.contains('3')),
            d => panic!("unexpected {d:?}"),
        }
    }

    #[test]
    fn a_retry_is_never_due_before_its_delay_has_passed() {
        // `now` is rounded down: the real instant is anywhere in [now, now + 1 ms).
        let now = 1_000_000;
        let worst_real_now_us = now * 1000 + 999;
        for (delay, min_due_ms) in
            [(Duration::from_secs(1), 1001), (Duration::from_micros(1_000_400), 1002), (Duration::from_nanos(1), 2)]
        {
            let due = due_after(now, delay);
            // Due means `now_ms() >= due`, i.e. the real time is at least `due` ms.
            assert!(due * 1000 >= worst_real_now_us + delay.as_micros() as i64, "{delay:?}: due {due}");
            assert_eq!(due - now, min_due_ms, "{delay:?}");
        }
        assert_eq!(due_after(now, Duration::ZERO), now, "an immediate retry stays immediate");
        assert_eq!(due_after(i64::MAX - 5, Duration::from_secs(3600)), i64::MAX);
    }
}
