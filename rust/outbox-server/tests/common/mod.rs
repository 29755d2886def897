//! Shared helpers: a real server on 127.0.0.1:0 over a temporary SQLite file or, when
//! `OUTBOX_TEST_DATABASE_URL` is set, over a fresh schema of that PostgreSQL database.
//!
//! Scenarios are `async fn test_x(b: Backend)`; [`backend_tests!`] turns each into one
//! `#[tokio::test]` per backend (`sqlite::test_x`, `postgres::test_x`), in the style of
//! matrix-rust-sdk's `statestore_integration_tests!`. Without the variable the PostgreSQL
//! variants pass after printing `SKIPPED <test>` to the real stderr (not captured by the
//! test harness, so a plain `cargo test` shows every skip); with
//! `OUTBOX_TEST_REQUIRE_POSTGRES=1` (scripts/suites/server.sh) a skip is a failure.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use outbox_server::storage::PostgresConfig;
use outbox_server::{RunningServer, Server, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The variable naming the PostgreSQL database the `postgres::` variants run against.
pub const DATABASE_URL_VAR: &str = "OUTBOX_TEST_DATABASE_URL";

/// When set to `1`, a PostgreSQL test without a database fails instead of skipping.
pub const REQUIRE_VAR: &str = "OUTBOX_TEST_REQUIRE_POSTGRES";

/// Reports that the current PostgreSQL test did not run: `SKIPPED <test>` on the process's
/// stderr, written past libtest's output capture (which swallows `eprintln!` of passing
/// tests), or a panic when [`REQUIRE_VAR`] is `1`.
pub fn skip_postgres() {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a postgres test").to_string();
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{test} would be skipped: {DATABASE_URL_VAR} is not set and {REQUIRE_VAR}=1");
    }
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {DATABASE_URL_VAR} is not set");
}

/// Which storage a scenario runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A schema of its own in the database at the URL.
    Postgres(PostgresConfig),
}

impl Backend {
    /// PostgreSQL with a fresh, unique schema, or `None` when the variable is unset.
    pub fn postgres() -> Option<Backend> {
        let url = std::env::var(DATABASE_URL_VAR).ok().filter(|u| !u.is_empty())?;
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!("t{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), fastrand::u32(..));
        Some(Backend::Postgres(PostgresConfig::new(url).with_schema(schema).with_pool_size(8)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// The config for a server on this backend (the SQLite file lives in `dir`).
    pub fn config(&self, dir: &TempDir) -> ServerConfig {
        let config = ServerConfig::new(dir.path().join("server.db")).with_admin(true);
        match self {
            Backend::Sqlite => config,
            Backend::Postgres(pg) => config.with_postgres(pg.clone()),
        }
    }

    pub async fn start(&self) -> TestServer {
        self.start_with(|c| c).await
    }

    pub async fn start_with(&self, f: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        start_in(self, dir, f).await
    }
}

/// One `#[tokio::test]` per backend for each listed `async fn name(b: Backend)`.
/// `multi_thread` before the names picks a two-worker runtime.
#[allow(unused_macros)]
macro_rules! backend_tests {
    (@attr [$attr:meta] $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[$attr]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[$attr]
                async fn $name() {
                    match $crate::common::Backend::postgres() {
                        Some(b) => super::$name(b).await,
                        None => $crate::common::skip_postgres(),
                    }
                }
            )+
        }
    };
    (multi_thread; $($name:ident),+ $(,)?) => {
        backend_tests!(@attr [tokio::test(flavor = "multi_thread", worker_threads = 2)] $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        backend_tests!(@attr [tokio::test] $($name),+);
    };
}

pub const ALICE: &str = "tok-alice";
pub const BOB: &str = "tok-bob";
pub const CAROL: &str = "tok-carol";

pub struct TestServer {
    pub server: RunningServer,
    pub dir: TempDir,
    pub backend: Backend,
    pub http: reqwest::Client,
}

/// A plain reqwest client. The core's `http` feature turns on reqwest's
/// `rustls-no-provider`, so a process default crypto provider must exist first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Starts a server on `backend` (reusing `dir`'s SQLite file, or the backend's schema,
/// when they already hold data) with the test users and two products.
pub async fn start_in(backend: &Backend, dir: TempDir, f: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
    let config = f(backend.config(&dir));
    let server = Server::start(config).await.unwrap();
    seed(&server).await;
    TestServer { server, dir, backend: backend.clone(), http: client() }
}

/// Users alice and carol in ws-1, bob in ws-2; products widget (10) and gadget (5).
pub async fn seed(server: &RunningServer) {
    server.add_user("alice", ALICE, &["ws-1"]).await.unwrap();
    server.add_user("bob", BOB, &["ws-2"]).await.unwrap();
    server.add_user("carol", CAROL, &["ws-1"]).await.unwrap();
    if server.storage().get_doc("ws-1", "products", "widget").await.unwrap().is_none() {
        let widget = json!({"name": "Widget", "price": 100, "stock": 10});
        server.seed_doc("ws-1", "products", "widget", &widget).await.unwrap();
        let gadget = json!({"name": "Gadget", "price": 250, "stock": 5});
        server.seed_doc("ws-1", "products", "gadget", &gadget).await.unwrap();
    }
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

/// The position in a cursor `<epoch>.<seq>`.
pub fn seq_of(cursor: &str) -> i64 {
    cursor.rsplit_once('.').map_or(cursor, |(_, s)| s).parse().unwrap()
}

impl TestServer {
    /// This server's cursor for position `seq` (`<epoch>.<seq>`).
    pub fn cursor(&self, seq: i64) -> String {
        format!("{}.{seq}", self.server.storage().epoch())
    }

    /// What `GET /v1/stream` sends for head `seq`.
    pub fn nudge_data(&self, seq: i64) -> String {
        format!(r#"{{"cursor":"{}"}}"#, self.cursor(seq))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url(), path)
    }

    /// A `POST /v1/commands` with `body`, and a token and workspace when given.
    fn commands_request(&self, token: Option<&str>, ws: Option<&str>, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut req = self.http.post(self.url("/v1/commands")).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(w) = ws {
            req = req.header("x-workspace-id", w);
        }
        req
    }

    pub async fn post_raw(&self, token: Option<&str>, ws: Option<&str>, body: Vec<u8>) -> reqwest::Response {
        self.commands_request(token, ws, body).send().await.unwrap()
    }

    pub async fn post_as(&self, token: &str, ws: &str, commands: Vec<Value>) -> reqwest::Response {
        self.try_post_as(token, ws, commands).await.unwrap()
    }

    /// [`post_as`](Self::post_as) for a request whose answer may never come (a fault
    /// that resets or drops the connection).
    pub async fn try_post_as(&self, token: &str, ws: &str, commands: Vec<Value>) -> reqwest::Result<reqwest::Response> {
        let body = serde_json::to_vec(&json!({ "commands": commands })).unwrap();
        self.commands_request(Some(token), Some(ws), body).send().await
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

    pub async fn doc(&self, ws: &str, collection: &str, id: &str) -> Option<Value> {
        self.server.storage().get_doc(ws, collection, id).await.unwrap().and_then(|d| d.doc)
    }

    pub async fn stock(&self, product: &str) -> i64 {
        self.doc("ws-1", "products", product).await.unwrap()["stock"].as_i64().unwrap()
    }
}

/// The machine code of a JSON error answer (`{"error": {"code": ...}}`).
pub async fn error_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}
