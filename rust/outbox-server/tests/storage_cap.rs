//! A queue filled to its size cap drains into the real server once the network returns,
//! and enqueue works again afterwards (issue 18 item 5).

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{CommandState, Config, EnqueueRequest, Error, MutatorSpec, OpKind, Outbox, RetryPolicy, Settlement};
use serde_json::json;

const CAP: u64 = 512 * 1024;
const WAIT: Duration = Duration::from_secs(30);

fn device(dir: &tempfile::TempDir, base_url: &str) -> Outbox {
    let transport = HttpTransport::new(
        HttpConfig::new(base_url, "ws-1").with_request_timeout(Duration::from_secs(5)),
        Arc::new(StaticToken::new(ALICE)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join("device.db"), "alice", "ws-1").with_transport(Arc::new(transport));
    config.retry =
        RetryPolicy { base: Duration::from_millis(10), cap: Duration::from_secs(1), jitter: 0.0, max_attempts: 100 };
    config.lease_ttl = Duration::from_secs(2);
    config.start_online = false;
    config.max_size_bytes = Some(CAP);
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("put", MutatorSpec::default()).unwrap();
    ob
}

/// A sale-sized command: a small note document (shown optimistically until the server's
/// version arrives) and a padded receipt text the server ignores.
fn note(i: usize) -> EnqueueRequest {
    let args = json!({"collection": "notes", "id": format!("n{i}"), "doc": {"i": i}, "receipt": "r".repeat(1500)});
    EnqueueRequest::new("put", args.to_string()).op("notes", format!("n{i}"), OpKind::Insert(json!({"i": i})))
}

/// A command whose answer is larger than what it queued: a 4 KB document new to the
/// device (no optimistic op), so every settlement stores 4 KB the queue never held.
fn large_document(i: usize) -> EnqueueRequest {
    let args = json!({"collection": "notes", "id": format!("n{i}"), "doc": {"i": i, "pad": "p".repeat(4000)}});
    EnqueueRequest::new("put", args.to_string())
}

async fn a_queue_filled_to_its_cap_drains_and_takes_sales_again(b: Backend) {
    fill_drain_and_enqueue_again(b, note, Documents::AllFit).await;
}

async fn a_queue_of_large_new_documents_filled_to_its_cap_drains_and_takes_sales_again(b: Backend) {
    fill_drain_and_enqueue_again(b, large_document, Documents::SomeFit).await;
}

/// Whether the server's documents for what was queued fit in the cap beside the queue.
#[derive(PartialEq)]
enum Documents {
    AllFit,
    /// 4 KB documents take two pages each: as many as the queue held do not fit in 90% of
    /// the app's share, which is all pulls may fill (the rest stays for sales).
    SomeFit,
}

async fn fill_drain_and_enqueue_again(b: Backend, note: fn(usize) -> EnqueueRequest, documents: Documents) {
    let s = b.start().await;
    let dir = tempfile::tempdir().unwrap();
    let ob = device(&dir, &s.server.base_url());
    let path = dir.path().join("device.db");

    let mut queued = Vec::new();
    let err = loop {
        match ob.enqueue(note(queued.len())) {
            Ok(id) => queued.push(id),
            Err(e) => break e,
        }
        assert!(queued.len() < 5000, "the size cap never hit");
    };
    assert!(matches!(err, Error::StorageFull), "{err:?}");
    assert!(queued.len() > 50, "only {} commands fit", queued.len());
    let full = ob.status().unwrap();
    assert_eq!(full.pending as usize, queued.len());
    assert!(full.storage_full, "{full:?}");
    assert_eq!(full.storage_cap_bytes, Some(CAP));
    assert!(matches!(ob.enqueue(note(99_999)), Err(Error::StorageFull)), "enqueue keeps failing while full");

    // The network returns: the full queue drains into the server, every sale once.
    ob.set_online(true).unwrap();
    for id in &queued {
        let settled = tokio::time::timeout(WAIT, ob.wait_for(id)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    }
    let stats = s.stats().await;
    assert_eq!(stats["totals"]["applied"], queued.len() as u64, "{stats}");
    assert_eq!(stats["totals"]["duplicates"], 0, "{stats}");

    // The pull brings the server's versions and settled commands are pruned to make room:
    // enqueue works again without a restart, and the new sale goes out too.
    let deadline = tokio::time::Instant::now() + WAIT;
    let again = loop {
        match ob.enqueue(note(100_000)) {
            Ok(id) => break id,
            Err(Error::StorageFull) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "enqueue never worked again after the drain: {:?}",
                    ob.status()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    let settled = tokio::time::timeout(WAIT, ob.wait_for(&again)).await.unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    assert_eq!(ob.command(&again).unwrap().state, CommandState::Succeeded);
    // Every document reads as the server has it (documents new to the device may come
    // with a later pull, once pruning made room), or as many as the cap lets pulls keep;
    // the file never passes the cap.
    let all = queued.len() as u64 + 1;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = ob.status().unwrap();
        let held = ob.count("notes", &Default::default()).unwrap();
        if held == all {
            break;
        }
        let pull_stopped = status.last_error.as_deref().is_some_and(|e| e.contains("pull failed: storage is full"));
        if documents == Documents::SomeFit && pull_stopped && held > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server's documents never arrived: {held} of {all}, {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in [0, queued.len() / 2, queued.len() - 1] {
        if let Some(doc) = ob.get("notes", &format!("n{i}")).unwrap() {
            assert_eq!(doc.value["i"], i, "{doc:?}");
        }
    }
    if documents == Documents::SomeFit {
        // Pulled documents cannot be pruned: after they filled what pulls may, sales still
        // have room (before the fix, the pull took it and enqueue was refused for good).
        let next = ob.enqueue(note(100_001)).expect("a sale was refused after the pull filled the store");
        let settled = tokio::time::timeout(WAIT, ob.wait_for(&next)).await.unwrap().unwrap();
        assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    }
    assert!(std::fs::metadata(&path).unwrap().len() <= CAP);
    assert!(ob.status().unwrap().storage_used_bytes <= CAP);
    ob.close();
}

backend_tests!(
    multi_thread;
    a_queue_filled_to_its_cap_drains_and_takes_sales_again,
    a_queue_of_large_new_documents_filled_to_its_cap_drains_and_takes_sales_again
);
