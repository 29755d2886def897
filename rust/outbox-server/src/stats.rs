//! Counters for exactly-once checks (`GET /v1/_stats`), kept in memory since start.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How often one idempotency key was applied and deduplicated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStats {
    /// Times a command with this key was applied (exactly-once means at most 1).
    pub applied: u64,
    /// Times a repeat was answered from the idempotency record.
    pub duplicates: u64,
}

/// Totals over all requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// `POST /v1/commands` requests received.
    pub requests: u64,
    /// Commands applied.
    pub applied: u64,
    /// Commands answered as duplicates.
    pub duplicates: u64,
    /// Commands rejected.
    pub rejected: u64,
    /// Commands answered with a conflict.
    pub conflicts: u64,
    /// Commands skipped behind a non-applied command sharing a key.
    pub skipped: u64,
    /// Injected faults by label (`"500"`, `"reset"`, `"drop_after_commit"`, …).
    pub faults: BTreeMap<String, u64>,
    /// How clients honoured the `Retry-After` of injected 429/503 answers.
    pub retry_after: RetryAfterStats,
}

/// `Retry-After` accounting: after an injected answer with `Retry-After`, the next request
/// carrying any of that batch's idempotency keys is checked against the time allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryAfterStats {
    /// Answers sent with `Retry-After`.
    pub sent: u64,
    /// Later attempts checked against it.
    pub checked: u64,
    /// Attempts that came earlier than allowed.
    pub early: u64,
    /// Largest earliness seen, in milliseconds.
    pub max_early_ms: u64,
    /// Largest lateness seen, in milliseconds (backoff and scheduling included).
    pub max_late_ms: u64,
}

/// Body of `GET /v1/_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Totals.
    pub totals: Totals,
    /// Per (workspace, user, idempotency key), under [`scoped_key`]: the scope of
    /// idempotency (docs/protocol.md §2.1), so `applied` is at most 1 for every entry.
    pub keys: BTreeMap<String, KeyStats>,
}

/// The `keys` entry of an idempotency key of `user` in `workspace`: `workspace/user/key`.
pub fn scoped_key(workspace: &str, user: &str, key: &str) -> String {
    format!("{workspace}/{user}/{key}")
}

impl StatsSnapshot {
    /// The counters of `key` of `user` in `workspace` (zero when never seen).
    pub fn key(&self, workspace: &str, user: &str, key: &str) -> KeyStats {
        self.keys.get(&scoped_key(workspace, user, key)).copied().unwrap_or_default()
    }
}

/// The live counters.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
    not_before: Mutex<HashMap<String, SystemTime>>,
}

impl Stats {
    fn with(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    /// Counts a request.
    pub fn request(&self) {
        self.with(|s| s.totals.requests += 1);
    }

    /// Counts an injected fault.
    pub fn fault(&self, label: &str) {
        self.with(|s| *s.totals.faults.entry(label.to_string()).or_default() += 1);
    }

    /// Counts an applied command of `user` in `workspace`.
    pub fn applied(&self, workspace: &str, user: &str, key: &str) {
        self.with(|s| {
            s.totals.applied += 1;
            s.keys.entry(scoped_key(workspace, user, key)).or_default().applied += 1;
        });
    }

    /// Counts a deduplicated command of `user` in `workspace`.
    pub fn duplicate(&self, workspace: &str, user: &str, key: &str) {
        self.with(|s| {
            s.totals.duplicates += 1;
            s.keys.entry(scoped_key(workspace, user, key)).or_default().duplicates += 1;
        });
    }

    /// Counts a rejected command.
    pub fn rejected(&self) {
        self.with(|s| s.totals.rejected += 1);
    }

    /// Counts a conflict.
    pub fn conflict(&self) {
        self.with(|s| s.totals.conflicts += 1);
    }

    /// Counts a skipped command.
    pub fn skipped(&self) {
        self.with(|s| s.totals.skipped += 1);
    }

    /// Records that the commands with `keys` were told to wait until `not_before`.
    pub fn retry_after_sent(&self, keys: &[String], not_before: SystemTime) {
        self.with(|s| s.totals.retry_after.sent += 1);
        let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            nb.insert(k.clone(), not_before);
        }
    }

    /// Checks an incoming attempt of `keys` against earlier `Retry-After` answers.
    pub fn check_retry_after(&self, keys: &[String], now: SystemTime) {
        let due: Vec<SystemTime> = {
            let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
            if nb.is_empty() {
                return;
            }
            keys.iter().filter_map(|k| nb.remove(k)).collect()
        };
        if due.is_empty() {
            return;
        }
        self.with(|s| {
            let r = &mut s.totals.retry_after;
            for at in due {
                r.checked += 1;
                match at.duration_since(now) {
                    Ok(early) if early > Duration::ZERO => {
                        r.early += 1;
                        r.max_early_ms = r.max_early_ms.max(early.as_millis() as u64);
                    }
                    _ => {
                        let late = now.duration_since(at).unwrap_or_default();
                        r.max_late_ms = r.max_late_ms.max(late.as_millis() as u64);
                    }
                }
            }
        });
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
