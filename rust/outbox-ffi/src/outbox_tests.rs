//! Unit tests of the boundary: panics become errors, async exports name the runtime, and
//! a round trip through the FFI types.

use super::*;
use crate::types::Settlement;

#[test]
fn a_panic_in_a_sync_call_becomes_internal() {
    let r: Result<(), OutboxError> = guard(|| panic!("boom in the core"));
    match r {
        Err(OutboxError::Internal { details, .. }) => assert_eq!(details, "boom in the core"),
        other => panic!("expected Internal, got {other:?}"),
    }
}

#[test]
fn a_panic_in_an_async_call_becomes_internal() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r: Result<(), OutboxError> = rt.block_on(run(async { panic!("async boom") }));
    let err = r.unwrap_err();
    assert_eq!(err.code(), "internal");
}

#[test]
fn every_exported_impl_with_async_methods_names_the_tokio_runtime() {
    for (file, text) in [
        ("outbox.rs", include_str!("outbox.rs")),
        ("subscription.rs", include_str!("subscription.rs")),
        ("logging.rs", include_str!("logging.rs")),
    ] {
        let mut attr = "";
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[uniffi::export") {
                attr = line;
            }
            if line.starts_with("pub async fn") {
                assert!(attr.contains("async_runtime = \"tokio\""), "{file}: {line} lacks async_runtime = \"tokio\"");
            }
        }
    }
}

#[test]
fn open_enqueue_and_wait_through_the_ffi_types() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        path: dir.path().join("ffi.db").display().to_string(),
        user_id: "alice".into(),
        workspace_id: "ws-1".into(),
        server_url: None,
        start_online: false,
        max_concurrency: None,
        max_batch_size: None,
        max_attempts: None,
        retry_base_ms: None,
        retry_cap_ms: None,
        retry_jitter: None,
        attempt_timeout_ms: None,
        lease_ttl_ms: None,
        durability: None,
        retention_ms: None,
        max_size_bytes: None,
        max_unsynced: None,
        max_unsynced_age_ms: None,
        max_unsynced_amount: None,
        limit_amount_field: None,
        limit_warn_at: None,
        mutator_limits: vec![],
        stall_window_ms: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ob = Outbox::open(config).await.unwrap();
        ob.register_mutator("note".into(), MutatorOptions { version: 1, key_pointers: vec![], max_args_bytes: None })
            .unwrap();
        let request = EnqueueRequest {
            mutator: "note".into(),
            args: r#"{"id":"n1"}"#.into(),
            keys: vec![],
            after: vec!["not-a-uuid".into()],
            ops: vec![],
            metadata: None,
        };
        assert_eq!(ob.enqueue(request.clone()).await.unwrap_err().code(), "unknown_command");
        let id = ob.enqueue(EnqueueRequest { after: vec![], ..request }).await.unwrap();
        assert_eq!(ob.status().await.unwrap().pending, 1);
        ob.discard(id.clone()).await.unwrap();
        assert_eq!(ob.wait_for(id).await.unwrap(), Settlement::Discarded);
        ob.shutdown().await;
        assert_eq!(ob.status().await.unwrap_err().code(), "closed");
    });
}

#[test]
fn blocking_work_runs_on_an_engine_thread_and_a_panic_there_becomes_internal() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let caller = std::thread::current().id();
    let (thread, name) = rt
        .block_on(blocking(|| Ok((std::thread::current().id(), std::thread::current().name().map(String::from)))))
        .unwrap();
    assert_ne!(thread, caller, "blocking work ran on the caller's thread");
    assert_eq!(name.as_deref(), Some("outbox"));
    let r: Result<(), OutboxError> = rt.block_on(blocking(|| panic!("blocking boom")));
    assert_eq!(r.unwrap_err().code(), "internal");
}

/// Methods of the exported `Outbox` that may stay synchronous: they touch neither the
/// disk nor the network (registering a mutator fills an in-memory map; `watch` and
/// `subscribe` spawn a task and return its handle; `path` is a field; the watchdog's test
/// hook sets a flag).
const SYNC_ALLOWED: &[&str] = &["register_mutator", "watch", "subscribe", "path", "wedge_drain_timer_for_test"];

#[test]
fn every_exported_outbox_method_that_may_touch_disk_is_async() {
    let text = include_str!("outbox.rs");
    let start = text.find("impl Outbox {").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap();
    let mut sync = Vec::new();
    for line in text[start..end].lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("pub fn ") {
            let name = rest.split(['(', '<']).next().unwrap_or("");
            if !SYNC_ALLOWED.contains(&name) {
                sync.push(name.to_string());
            }
        }
    }
    assert!(sync.is_empty(), "these exported methods block the caller's thread; make them async: {sync:?}");
}
