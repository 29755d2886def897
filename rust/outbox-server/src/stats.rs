//! Counters for exactly-once checks (`GET /v1/_stats`), kept in memory since start.

use std::collections::BTreeMap;
use std::sync::Mutex;

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
}

/// Body of `GET /v1/_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Totals.
    pub totals: Totals,
    /// Per idempotency key (keys of every user and workspace together).
    pub keys: BTreeMap<String, KeyStats>,
}

/// The live counters.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<StatsSnapshot>,
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

    /// Counts an applied command.
    pub fn applied(&self, key: &str) {
        self.with(|s| {
            s.totals.applied += 1;
            s.keys.entry(key.to_string()).or_default().applied += 1;
        });
    }

    /// Counts a deduplicated command.
    pub fn duplicate(&self, key: &str) {
        self.with(|s| {
            s.totals.duplicates += 1;
            s.keys.entry(key.to_string()).or_default().duplicates += 1;
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

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
