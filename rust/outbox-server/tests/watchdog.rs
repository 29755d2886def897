//! The stall watchdog against the real server: a connection that never answers (the
//! server's latency fault set to an hour) is reported as `send_hung` with the server still
//! reachable, abandoned, and the queue recovers once the server answers again.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{Config, EnqueueRequest, Event, MutatorSpec, Outbox, RetryPolicy, Settlement, StallCause};
use outbox_server::faults::FaultSpec;
use serde_json::json;

const WINDOW: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_secs(30);

async fn next_matching(events: &mut outbox::EventStream, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.next().await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("engine closed while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn a_connection_that_never_answers_is_reported_and_recovered(b: Backend) {
    let s = b.start_with(|c| c.with_faults("latency=3600000ms").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let transport = HttpTransport::new(
        HttpConfig::new(s.server.base_url(), "ws-1").with_request_timeout(Duration::from_secs(120)),
        Arc::new(StaticToken::new(ALICE)),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join("device.db"), "alice", "ws-1").with_transport(Arc::new(transport));
    config.retry = RetryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(200),
        jitter: 0.0,
        max_attempts: 100,
    };
    config.attempt_timeout = Duration::from_secs(120);
    config.stall_window = Some(WINDOW);
    let ob = Outbox::open(config).unwrap();
    ob.register_mutator("put", MutatorSpec::default()).unwrap();
    let mut events = ob.subscribe().unwrap();

    let wedged = Instant::now();
    let args = json!({"collection": "notes", "id": "n1", "doc": {"total_cents": 1250}});
    let id = ob.enqueue(EnqueueRequest::new("put", args.to_string())).unwrap();
    let Event::QueueStalled { report } =
        next_matching(&mut events, "QueueStalled", |e| matches!(e, Event::QueueStalled { .. })).await
    else {
        unreachable!()
    };
    eprintln!("hung connection (real server) reported after {} ms: {report:?}", wedged.elapsed().as_millis());
    assert_eq!(report.cause, StallCause::SendHung, "{report:?}");
    assert_eq!(report.network, "reachable", "the feed still answers: {report:?}");
    assert!(ob.status().unwrap().stalled);

    // The server answers again: the abandoned send is retried under the same key.
    s.server.set_faults(FaultSpec::default());
    let Event::QueueRecovered { cause, how, .. } =
        next_matching(&mut events, "QueueRecovered", |e| matches!(e, Event::QueueRecovered { .. })).await
    else {
        unreachable!()
    };
    assert_eq!((cause, how.as_str()), (StallCause::SendHung, "progress"));
    let settled = tokio::time::timeout(WAIT, ob.wait_for(&id)).await.unwrap().unwrap();
    assert!(matches!(settled, Settlement::Succeeded { .. }), "{settled:?}");
    let stats = s.stats().await;
    assert_eq!(stats["totals"]["applied"], 1, "{stats}");
    assert!(!ob.status().unwrap().stalled);
    ob.close();
}

backend_tests!(multi_thread; a_connection_that_never_answers_is_reported_and_recovered);
