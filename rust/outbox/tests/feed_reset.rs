//! Feed resets: when the server cannot continue from the device's cursor (another epoch,
//! or past its head), the engine rebuilds its synced state from the start of the feed,
//! in pages, and swaps it in at the end. Reads never see an empty or half-built store,
//! and pending changes stay on top throughout.
mod common;

use std::sync::{Arc, Mutex};

use common::*;
use outbox::{DocChange, EnqueueRequest, OpKind, PullOutcome, Query};
use serde_json::{json, Value};

fn product(i: usize, version: i64, doc: Value) -> DocChange {
    DocChange { collection: "products".into(), id: format!("p{i:04}"), version, doc: Some(doc) }
}

async fn wait_synced(h: &Harness, n: u64) {
    h.transport.nudge();
    h.wait_until("the feed to be applied", |h| h.outbox.count("products", &Query::all()).unwrap() == n).await;
}

#[tokio::test]
async fn a_feed_reset_rebuilds_in_pages_and_swaps_at_once_with_pending_changes_on_top() {
    let h = Harness::new();
    // 3,000 products (three pages of 1,000), seen at version 3 before the server went back.
    h.transport.push_changes((0..3000).map(|i| product(i, 3, json!({"stock": 3, "era": "lost"}))));
    wait_synced(&h, 3000).await;

    // Two changes that cannot reach the server yet: a new product and a patch.
    h.transport.hold();
    h.outbox
        .enqueue(EnqueueRequest::new("put", r#"{"id":"new"}"#).op(
            "products",
            "new",
            OpKind::Insert(json!({"stock": 1})),
        ))
        .unwrap();
    h.outbox
        .enqueue(EnqueueRequest::new("adjustStock", r#"{"id":"p0007"}"#).op(
            "products",
            "p0007",
            OpKind::Patch(json!({"stock": 99})),
        ))
        .unwrap();

    let deliveries = Arc::new(Mutex::new(Vec::<Vec<(String, Value)>>::new()));
    let mut watch = h.outbox.watch("products", Query::all()).unwrap();
    let seen = deliveries.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(docs)) = watch.next().await {
            let rebuilt = docs.iter().filter(|d| d.value["era"] == "restored").count();
            seen.lock().unwrap().push(docs.into_iter().map(|d| (d.id, d.value)).collect());
            if rebuilt == 2500 {
                return;
            }
        }
    });

    // A reader polling on its own while the rebuild runs: the smallest count it saw.
    let ob = h.outbox.clone();
    let smallest = Arc::new(Mutex::new(u64::MAX));
    let low = smallest.clone();
    let poller = tokio::spawn(async move {
        loop {
            let n = ob.count("products", &Query::all()).unwrap();
            {
                let mut low = low.lock().unwrap();
                *low = (*low).min(n);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });

    // The server is restored from a backup: its feed now has 2,500 products at version
    // 1, with other contents; the device's cursor (3,000) is past its head. Pages take a
    // while to come, so a read between two of them would show a half-built store.
    h.transport.set_pull_delay(std::time::Duration::from_millis(40));
    let pulls_before = h.transport.pull_count();
    h.transport.replace_feed((0..2500).map(|i| product(i, 1, json!({"stock": 1, "era": "restored"}))));
    h.transport.nudge();
    tokio::time::timeout(WAIT, watcher).await.expect("the rebuilt state never arrived").unwrap();
    poller.abort();
    // 2,501 or 3,001 (the new product is pending on top), never fewer.
    let smallest = *smallest.lock().unwrap();
    assert!(smallest >= 2501, "a read saw a shrunken store: {smallest} products");
    // The reset answer, then three pages from position zero.
    assert!(h.transport.pull_count() - pulls_before >= 3, "rebuilt in pages");

    let deliveries = deliveries.lock().unwrap().clone();
    assert!(deliveries.len() >= 2, "the watch saw the state before and after");
    for docs in deliveries.iter() {
        // Every read is the whole old state or the whole new one, never empty or half-built.
        let restored = docs.iter().filter(|(_, v)| v["era"] == "restored").count();
        let lost = docs.iter().filter(|(_, v)| v["era"] == "lost").count();
        assert!((restored, lost) == (0, 3000) || (restored, lost) == (2500, 0), "a half-built read: {restored}/{lost}");
        // The pending changes are on top in every one.
        let get = |id: &str| docs.iter().find(|(d, _)| d == id).map(|(_, v)| v.clone());
        assert_eq!(get("new"), Some(json!({"stock": 1})));
        assert_eq!(get("p0007").unwrap()["stock"], 99);
    }

    // Synced state equals the new feed: products it no longer has are gone.
    assert_eq!(h.outbox.get("products", "p2600").unwrap(), None);
    let p = h.outbox.get("products", "p0001").unwrap().unwrap();
    assert_eq!((p.version, p.value["era"].as_str()), (Some(1), Some("restored")));
    // The next pull continues in the new feed, no second rebuild.
    h.transport.push_changes([product(1, 2, json!({"stock": 0, "era": "restored"}))]);
    h.transport.nudge();
    h.wait_until("the next change", |h| h.outbox.get("products", "p0001").unwrap().unwrap().version == Some(2)).await;
    assert_eq!(h.outbox.count("products", &Query::all()).unwrap(), 2501);
    h.transport.release();
}

#[tokio::test]
async fn a_transport_that_always_resets_leaves_the_local_state_alone() {
    let h = Harness::new();
    h.transport.push_changes((0..10).map(|i| product(i, 1, json!({"stock": 1}))));
    wait_synced(&h, 10).await;
    let before = h.outbox.list("products", &Query::all()).unwrap();
    h.transport.fail_pulls(Some(PullOutcome::CursorReset { reason: "always".into() }));
    let pulls = h.transport.pull_count();
    h.transport.nudge();
    h.wait_until("the resets to be tried", |h| h.transport.pull_count() >= pulls + 4).await;
    assert_eq!(h.outbox.list("products", &Query::all()).unwrap(), before);
    h.transport.fail_pulls(None);
}
