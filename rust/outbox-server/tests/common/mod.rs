//! Shared helpers: a real server on 127.0.0.1:0 over a temporary SQLite file.
#![allow(dead_code)]

use outbox_server::{RunningServer, Server, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const ALICE: &str = "tok-alice";
pub const BOB: &str = "tok-bob";
pub const CAROL: &str = "tok-carol";

pub struct TestServer {
    pub server: RunningServer,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// A plain reqwest client. The core's `http` feature turns on reqwest's
/// `rustls-no-provider`, so a process default crypto provider must exist first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn start() -> TestServer {
    start_with(|c| c).await
}

pub async fn start_with(f: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, f).await
}

pub async fn start_in(dir: TempDir, f: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let config = f(ServerConfig::new(dir.path().join("server.db")).with_admin(true));
    let server = Server::start(config).await.unwrap();
    server.add_user("alice", ALICE, &["ws-1"]).unwrap();
    server.add_user("bob", BOB, &["ws-2"]).unwrap();
    server.add_user("carol", CAROL, &["ws-1"]).unwrap();
    if server.storage().get_doc("ws-1", "products", "widget").unwrap().is_none() {
        server.seed_doc("ws-1", "products", "widget", &json!({"name": "Widget", "price": 100, "stock": 10})).unwrap();
        server.seed_doc("ws-1", "products", "gadget", &json!({"name": "Gadget", "price": 250, "stock": 5})).unwrap();
    }
    TestServer { server, dir, http: client() }
}

/// A wire command with idempotency key `key-<id>`.
pub fn cmd(id: &str, mutator: &str, args: Value, keys: &[&str]) -> Value {
    json!({
        "id": id,
        "idempotency_key": format!("key-{id}"),
        "mutator": mutator,
        "mutator_version": 1,
        "args": args,
        "base_versions": {},
        "keys": keys,
        "metadata": {},
    })
}

pub fn put(id: &str, collection: &str, doc_id: &str, doc: Value) -> Value {
    cmd(id, "put", json!({"collection": collection, "id": doc_id, "doc": doc}), &[&format!("{collection}:{doc_id}")])
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url(), path)
    }

    pub async fn post_raw(&self, token: Option<&str>, ws: Option<&str>, body: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.post(self.url("/v1/commands")).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(w) = ws {
            req = req.header("x-workspace-id", w);
        }
        req.send().await.unwrap()
    }

    pub async fn post_as(&self, token: &str, ws: &str, commands: Vec<Value>) -> reqwest::Response {
        let body = serde_json::to_vec(&json!({ "commands": commands })).unwrap();
        self.post_raw(Some(token), Some(ws), body).await
    }

    /// Posts as alice in ws-1 and returns the results array (asserting 200).
    pub async fn commands(&self, commands: Vec<Value>) -> Vec<Value> {
        let resp = self.post_as(ALICE, "ws-1", commands).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["results"].as_array().unwrap().clone()
    }

    pub async fn changes(&self, token: &str, ws: &str, cursor: Option<&str>, limit: u32) -> reqwest::Response {
        let mut url = format!("{}?limit={limit}", self.url("/v1/changes"));
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        self.http.get(url).bearer_auth(token).header("x-workspace-id", ws).send().await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        self.http.get(self.url("/v1/_stats")).send().await.unwrap().json().await.unwrap()
    }

    pub async fn set_faults(&self, spec: &str) {
        let resp = self.http.post(self.url("/v1/_faults")).body(spec.to_string()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    pub async fn clear_faults(&self) {
        let resp = self.http.delete(self.url("/v1/_faults")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    pub fn doc(&self, ws: &str, collection: &str, id: &str) -> Option<Value> {
        self.server.storage().get_doc(ws, collection, id).unwrap().and_then(|d| d.doc)
    }

    pub fn stock(&self, product: &str) -> i64 {
        self.doc("ws-1", "products", product).unwrap()["stock"].as_i64().unwrap()
    }
}
