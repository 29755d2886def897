//! Shared helpers for the engine's integration tests: real SQLite files in temp folders,
//! the scripted transport, and waiting on events instead of sleeping.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use outbox::testing::ScriptedTransport;
use outbox::{Command, CommandId, CommandState, Config, Event, EventStream, MutatorSpec, Outbox, RetryPolicy};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub transport: Arc<ScriptedTransport>,
    pub outbox: Outbox,
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy { base: Duration::from_millis(20), cap: Duration::from_millis(200), jitter: 0.0, max_attempts: 10 }
}

pub fn config(dir: &tempfile::TempDir, transport: &Arc<ScriptedTransport>) -> Config {
    let mut c = Config::new(dir.path().join("outbox.db"), "alice", "ws-1").with_transport(transport.clone());
    c.retry = fast_retry();
    c.lease_ttl = Duration::from_secs(2);
    c
}

pub fn register_all(ob: &Outbox) {
    for name in ["createOrder", "adjustStock", "put", "pay", "note"] {
        ob.register_mutator(name, MutatorSpec::default()).unwrap();
    }
}

impl Harness {
    pub fn new() -> Harness {
        Self::with(|_| {})
    }

    pub fn offline() -> Harness {
        Self::with(|c| c.start_online = false)
    }

    pub fn with(f: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let transport = Arc::new(ScriptedTransport::new());
        let mut c = config(&dir, &transport);
        f(&mut c);
        let outbox = Outbox::open(c).unwrap();
        register_all(&outbox);
        Harness { dir, transport, outbox }
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("outbox.db")
    }

    pub fn cmd(&self, id: &CommandId) -> Command {
        self.outbox.command(id).unwrap()
    }

    pub fn state(&self, id: &CommandId) -> CommandState {
        self.cmd(id).state
    }

    /// Waits until `id` reaches `state` (polling the database, so no event can be missed).
    pub async fn wait_state(&self, id: &CommandId, state: CommandState) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.state(id);
            if now == state {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "command {id} stuck in {now}, expected {state}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn wait_until(&self, what: &str, mut cond: impl FnMut(&Harness) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !cond(self) {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Waits for the first event matching `pred`, failing after `WAIT`.
pub async fn expect_event(stream: &mut EventStream, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let fut = async {
        while let Some(e) = stream.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream closed while waiting for {what}"),
        Err(_) => panic!("timed out waiting for event: {what}"),
    }
}

/// Asserts that no event matching `pred` arrives within `window`.
pub async fn expect_no_event(stream: &mut EventStream, window: Duration, mut pred: impl FnMut(&Event) -> bool) {
    let fut = async {
        while let Some(e) = stream.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    if let Ok(Some(e)) = tokio::time::timeout(window, fut).await {
        panic!("unexpected event {e:?}");
    }
}
