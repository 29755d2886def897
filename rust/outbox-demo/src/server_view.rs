//! The coordinator's own view of the server, over the public protocol and the admin
//! endpoints: restocking before the run, and the state the verification compares with.
//!
//! It talks to the server directly (not through a register's link), so it sees the truth
//! even while registers are cut off. Requests that meet an injected fault are retried
//! with the same idempotency key, so the coordinator itself never applies anything twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{DemoError, Result};
use crate::register::{ORDERS, PRODUCTS};

/// A client for one (server, user, workspace).
pub struct ServerView {
    client: reqwest::Client,
    base: String,
    token: String,
    workspace: String,
}

/// Documents of the workspace at the newest version the change feed shows.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Product id → document.
    pub products: BTreeMap<String, Value>,
    /// Order id → document.
    pub orders: BTreeMap<String, Value>,
}

impl Snapshot {
    /// Stock of every product.
    pub fn stock(&self) -> BTreeMap<String, i64> {
        self.products
            .iter()
            .map(|(id, doc)| (id.clone(), doc.get("stock").and_then(Value::as_i64).unwrap_or(0)))
            .collect()
    }
}

/// Per idempotency key: how often the server applied it and deduplicated it.
#[derive(Debug, Default, Clone)]
pub struct KeyCounts {
    /// Applications (exactly-once means at most 1).
    pub applied: u64,
    /// Duplicates answered from the idempotency record.
    pub duplicates: u64,
}

impl ServerView {
    /// A view of `base` (e.g. `http://127.0.0.1:8787`) as the token's user in `workspace`.
    pub fn new(base: &str, token: &str, workspace: &str) -> Result<ServerView> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DemoError::Http(format!("cannot build an HTTP client: {e}")))?;
        Ok(ServerView {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            workspace: workspace.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `/healthz` answers (a server started by hand may still be coming up).
    pub async fn wait_healthy(&self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.client.get(self.url("/healthz")).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if tokio::time::Instant::now() >= deadline => {
                    return Err(DemoError::Http(format!("{} answered /healthz with {}", self.base, r.status())))
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(DemoError::Http(format!("{} is not reachable: {e}", self.base)))
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Reads the whole change feed of the workspace into a snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        let mut cursor = String::new();
        loop {
            let url = reqwest::Url::parse_with_params(
                &self.url("/v1/changes"),
                &[("cursor", cursor.as_str()), ("limit", "1000")],
            )
            .map_err(|e| DemoError::Usage(format!("bad server URL {}: {e}", self.base)))?;
            let body = self
                .retrying(|| {
                    self.client.get(url.clone()).bearer_auth(&self.token).header("X-Workspace-Id", &self.workspace)
                })
                .await?;
            let changes = body.get("changes").and_then(Value::as_array).ok_or_else(|| garbage("changes", &body))?;
            for change in changes {
                let (Some(collection), Some(id)) =
                    (change.get("collection").and_then(Value::as_str), change.get("id").and_then(Value::as_str))
                else {
                    return Err(garbage("change", change));
                };
                let target = match collection {
                    PRODUCTS => &mut snap.products,
                    ORDERS => &mut snap.orders,
                    _ => continue,
                };
                match change.get("doc") {
                    Some(doc) if !doc.is_null() => {
                        target.insert(id.to_string(), doc.clone());
                    }
                    _ => {
                        target.remove(id);
                    }
                }
            }
            cursor = body.get("cursor").and_then(Value::as_str).ok_or_else(|| garbage("cursor", &body))?.to_string();
            if body.get("has_more").and_then(Value::as_bool) != Some(true) {
                return Ok(snap);
            }
        }
    }

    /// Per idempotency key counters from `GET /v1/_stats` (needs a server with admin on).
    /// The server counts per `workspace/user/key`; the demo's keys are UUIDs, so they are
    /// keyed by the key alone here, adding up should two scopes ever share one.
    pub async fn key_counts(&self) -> Result<HashMap<String, KeyCounts>> {
        let response = self.client.get(self.url("/v1/_stats")).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(DemoError::Http(format!(
                "{} has no admin endpoints: start it with `outbox-server --dev --admin` so the demo can verify",
                self.base
            )));
        }
        let body: Value = response.error_for_status()?.json().await?;
        let keys = body.get("keys").and_then(Value::as_object).ok_or_else(|| garbage("stats", &body))?;
        let mut out: HashMap<String, KeyCounts> = HashMap::new();
        for (scoped, v) in keys {
            let n = |f: &str| v.get(f).and_then(Value::as_u64).unwrap_or(0);
            let key = scoped.rsplit_once('/').map_or(scoped.as_str(), |(_, k)| k);
            let c = out.entry(key.to_string()).or_default();
            c.applied += n("applied");
            c.duplicates += n("duplicates");
        }
        Ok(out)
    }

    /// Raises every product's stock to at least `floor` with `adjustStock` commands, so
    /// the run's sales are never refused for stock. Returns the number of adjustments.
    pub async fn restock(&self, floor: i64, run: &str) -> Result<usize> {
        let snap = self.snapshot().await?;
        let commands: Vec<Value> = snap
            .stock()
            .into_iter()
            .filter(|(_, stock)| *stock < floor)
            .map(|(id, stock)| {
                let key = format!("{run}-restock-{id}");
                json!({"id": key, "idempotency_key": key, "mutator": "adjustStock",
                       "args": {"product_id": id, "delta": floor - stock}, "keys": [format!("product:{id}")]})
            })
            .collect();
        if commands.is_empty() {
            return Ok(0);
        }
        let body = json!({ "commands": commands });
        let answer = self
            .retrying(|| {
                self.client
                    .post(self.url("/v1/commands"))
                    .bearer_auth(&self.token)
                    .header("X-Workspace-Id", &self.workspace)
                    .json(&body)
            })
            .await?;
        let results = answer.get("results").and_then(Value::as_array).ok_or_else(|| garbage("results", &answer))?;
        for r in results {
            let status = r.get("status").and_then(Value::as_str).unwrap_or("");
            if status != "applied" && status != "duplicate" {
                return Err(DemoError::Http(format!("restock refused: {r}")));
            }
        }
        Ok(results.len())
    }

    /// Sends a request until it gets a readable 2xx JSON answer (faults are injected on
    /// purpose); gives up after 40 tries.
    async fn retrying(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Value> {
        let mut last = String::new();
        for _ in 0..40 {
            match build().send().await {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = format!("unreadable answer: {e}"),
                },
                Ok(r)
                    if r.status() == reqwest::StatusCode::UNAUTHORIZED
                        || r.status() == reqwest::StatusCode::FORBIDDEN =>
                {
                    return Err(DemoError::Http(format!(
                        "{} refused the demo's credentials ({})",
                        self.base,
                        r.status()
                    )))
                }
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Err(DemoError::Http(format!("{} kept failing: {last}", self.base)))
    }
}

fn garbage(what: &str, body: &Value) -> DemoError {
    let mut text = body.to_string();
    text.truncate(200);
    DemoError::Http(format!("unexpected {what} in the server's answer: {text}"))
}
