//! PostgreSQL-only behaviour of the server: migrations (once, under concurrent starts;
//! a newer schema is refused and left alone) and the binary's `DATABASE_URL`. Each test
//! passes after printing `SKIPPED <test>` when OUTBOX_TEST_DATABASE_URL is unset
//! (and fails instead under OUTBOX_TEST_REQUIRE_POSTGRES=1).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use outbox_server::storage::postgres::migrations;
use outbox_server::storage::{PgStorage, Storage, StorageError};
use serde_json::{json, Value};

fn pg() -> Option<outbox_server::storage::PostgresConfig> {
    match Backend::postgres() {
        Some(Backend::Postgres(pg)) => Some(pg),
        _ => {
            skip_postgres();
            None
        }
    }
}

/// A plain connection to the test's schema, without the server's migrations.
async fn raw(pg: &outbox_server::storage::PostgresConfig) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = pg.url.parse().unwrap();
    config.options(format!("-c search_path={}", pg.schema.as_deref().unwrap()));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_nodes_starting_together_migrate_once() {
    let Some(pg) = pg() else { return };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let pg = pg.clone();
            tokio::spawn(async move { PgStorage::connect(&pg).await.map(|s| s.epoch().to_string()) })
        })
        .collect();
    let mut epochs = Vec::new();
    for s in starts {
        epochs.push(s.await.unwrap().unwrap());
    }
    let row = raw(&pg).await.query_one("SELECT count(*), max(version) FROM outbox_schema", &[]).await.unwrap();
    let steps = migrations::versions().len() as i64;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i32>(1)), (steps, migrations::CURRENT_VERSION));
    let storage = PgStorage::connect(&pg).await.unwrap();
    // One epoch for the database, whichever node wrote it, and the same after a restart.
    epochs.push(storage.epoch().to_string());
    assert!(epochs.iter().all(|e| e == &epochs[0]), "{epochs:?}");
    storage.add_user("u", "t").await.unwrap();
    assert_eq!(storage.user_for_token("t").await.unwrap().as_deref(), Some("u"));
}

#[tokio::test]
async fn test_a_newer_schema_is_refused_and_left_untouched() {
    let Some(pg) = pg() else { return };
    let storage = PgStorage::connect(&pg).await.unwrap();
    storage.add_user("u", "t").await.unwrap();
    drop(storage);
    let client = raw(&pg).await;
    client.execute("INSERT INTO outbox_schema (version) VALUES (99)", &[]).await.unwrap();
    match PgStorage::connect(&pg).await {
        Err(StorageError::NewerSchema { found: 99, supported }) => assert_eq!(supported, migrations::CURRENT_VERSION),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    let versions: Vec<i32> = client
        .query("SELECT version FROM outbox_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected = migrations::versions();
    expected.push(99);
    assert_eq!(versions, expected);
    let users = client.query_one("SELECT count(*) FROM tokens", &[]).await.unwrap().get::<_, i64>(0);
    assert_eq!(users, 1);
}

#[tokio::test]
async fn test_binary_serves_from_postgres_with_database_url() {
    use tokio::io::AsyncBufReadExt;
    let Some(pg) = pg() else { return };
    let schema = pg.schema.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The URL comes from DATABASE_URL, the way a deployment passes it.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_outbox-server"))
        .args(["--addr", "127.0.0.1:0", "--dev", "--pg-schema", &schema, "--db"])
        .arg(dir.path().join("must-not-be-created.db"))
        .env("DATABASE_URL", &pg.url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").expect(&first).to_string();
    let body = json!({"commands": [cmd("o1", "createOrder", json!({"id": "o1", "lines": [{"product_id": "latte", "qty": 2}]}), &[])]});
    let r: Value = client()
        .post(format!("{url}/v1/commands"))
        .bearer_auth("dev-alice")
        .header("x-workspace-id", "ws-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    assert!(!dir.path().join("must-not-be-created.db").exists());
    child.kill().await.unwrap();
    // The data is in PostgreSQL: a library server on the same schema sees the order.
    let s = Backend::Postgres(pg).start().await;
    assert_eq!(s.doc("ws-1", "orders", "o1").await.unwrap()["total"], 840);
}
