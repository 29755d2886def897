//! `outbox-server`: the reference sync server binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use outbox_server::storage::PostgresConfig;
use outbox_server::{Server, ServerConfig};

/// Reference sync server for Outbox (docs/protocol.md).
#[derive(Debug, Parser)]
#[command(name = "outbox-server", version)]
struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// SQLite database file (when no PostgreSQL URL is given).
    #[arg(long, default_value = "outbox-server.db")]
    db: PathBuf,
    /// Store everything in PostgreSQL instead (`postgres://user@host:port/db`); several
    /// nodes may share one database. Defaults to the `DATABASE_URL` environment variable.
    #[arg(long)]
    database_url: Option<String>,
    /// PostgreSQL schema for the tables (created if missing; PostgreSQL only); default:
    /// the connection's `search_path`.
    #[arg(long)]
    pg_schema: Option<String>,
    /// Most pooled PostgreSQL connections.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Seed dev users (alice/dev-alice in ws-1, bob/dev-bob in ws-2) and a POS catalog.
    #[arg(long)]
    dev: bool,
    /// Fault spec, e.g. `500=0.2,429=0.1:2s,reset=0.05,drop_after_commit=0.05,latency=0-300ms`.
    #[arg(long)]
    faults: Option<String>,
    /// Seed for the fault RNG.
    #[arg(long)]
    seed: Option<u64>,
    /// Enable /v1/_faults, /v1/_stats and /v1/_log.
    #[arg(long)]
    admin: bool,
    /// Accept only these mutator versions, e.g. `createOrder=2` (others: every implemented
    /// version). Commands of another version are rejected with `unsupported_version`.
    #[arg(long)]
    mutator_versions: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = ServerConfig::new(args.db).with_addr(args.addr).with_dev(args.dev).with_admin(args.admin);
    let database_url = args.database_url.or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
    if let Some(url) = database_url {
        let mut pg = PostgresConfig::new(url).with_pool_size(args.pool_size);
        if let Some(schema) = args.pg_schema {
            pg = pg.with_schema(schema);
        }
        config = config.with_postgres(pg);
    }
    if let Some(seed) = args.seed {
        config = config.with_seed(seed);
    }
    if let Some(spec) = args.mutator_versions.as_deref() {
        match spec.parse() {
            Ok(v) => config = config.with_mutator_versions(v),
            Err(e) => {
                eprintln!("outbox-server: --mutator-versions: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(spec) = args.faults.as_deref() {
        config = match config.with_faults(spec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("outbox-server: {e}");
                return ExitCode::from(2);
            }
        };
    }
    let server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("outbox-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.base_url());
    let _ = std::io::stdout().flush();
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("outbox-server: cannot wait for ctrl-c: {e}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
