//! Mutator versions on the server: which versions it accepts (`GET /v1/mutators`), what
//! each version means, and a version it no longer accepts rejected as
//! `unsupported_version` with the accepted ones — never applied, never dropped silently.

#[macro_use]
mod common;

use common::*;
use outbox_server::mutators::MutatorVersions;
use serde_json::{json, Value};

fn order_v2(id: &str, qty: i64) -> Value {
    let mut c = cmd(id, "createOrder", json!({"id": id, "items": [{"sku": "widget", "quantity": qty}]}), &[]);
    c["mutator_version"] = json!(2);
    c
}

async fn test_get_mutators_lists_the_accepted_versions_and_needs_auth(b: Backend) {
    let versions: MutatorVersions = "createOrder=2".parse().unwrap();
    let s = b.start_with(|c| c.with_mutator_versions(versions)).await;
    let url = s.url("/v1/mutators");
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 401);
    let body: Value = s
        .http
        .get(&url)
        .bearer_auth(ALICE)
        .header("x-workspace-id", "ws-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["mutators"]["createOrder"], json!([2]));
    assert_eq!(body["mutators"]["put"], json!([1]));
}

async fn test_both_order_versions_apply_by_default_with_the_same_effect(b: Backend) {
    let s = b.start().await;
    let r = &s
        .commands(vec![cmd(
            "o1",
            "createOrder",
            json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 2}]}),
            &[],
        )])
        .await[0];
    assert_eq!(r["status"], "applied", "{r}");
    let r = &s.commands(vec![order_v2("o2", 3)]).await[0];
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["result"]["total"], 300);
    assert_eq!(s.stock("widget").await, 5, "10 - 2 (v1) - 3 (v2)");
}

async fn test_a_retired_version_is_rejected_unsupported_version_with_the_accepted_ones(b: Backend) {
    let versions: MutatorVersions = "createOrder=2".parse().unwrap();
    let s = b.start_with(|c| c.with_mutator_versions(versions)).await;
    let v1 =
        cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "widget", "qty": 2}]}), &["order:o1"]);
    let results = s.commands(vec![v1, order_v2("o2", 1)]).await;
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["error"]["code"], "unsupported_version");
    assert_eq!(results[0]["supported_versions"], json!([2]));
    assert_eq!(results[1]["status"], "applied", "another lane is not stopped");
    assert_eq!(s.stock("widget").await, 9, "only the v2 order took stock");
    assert!(s.doc("ws-1", "orders", "o1").await.is_none());
}

#[test]
fn a_version_spec_names_only_implemented_versions() {
    assert!("createOrder=1,2;put=1".parse::<MutatorVersions>().is_ok());
    for bad in ["createOrder=3", "launch=1", "createOrder", "createOrder=", "put=x"] {
        assert!(bad.parse::<MutatorVersions>().is_err(), "{bad}");
    }
}

backend_tests!(
    test_get_mutators_lists_the_accepted_versions_and_needs_auth,
    test_both_order_versions_apply_by_default_with_the_same_effect,
    test_a_retired_version_is_rejected_unsupported_version_with_the_accepted_ones,
);
