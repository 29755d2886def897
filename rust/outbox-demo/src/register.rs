//! One register: a child process with its own Outbox database, selling orders.
//!
//! The coordinator talks to it in JSON lines: it writes `online`, `offline` (what a
//! platform's connectivity callback would report) and `finish` on stdin; the register
//! writes [`Report`]s on stdout. Everything the register knows survives a `kill -9`: on
//! restart it counts the sales already in its database and carries on from there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use outbox::command::{MutatorSpec, OpKind};
use outbox::http::{HttpConfig, HttpTransport, StaticToken};
use outbox::{Command, Config, EnqueueRequest, Event, Outbox, PeekFilter, Query, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::error::{DemoError, Result};

/// The mutator every sale goes through (a built-in of the reference server).
pub const CREATE_ORDER: &str = "createOrder";
/// Collection of the catalog (`{name, price, stock}`).
pub const PRODUCTS: &str = "products";
/// Collection of orders.
pub const ORDERS: &str = "orders";

/// Settings of one register process.
#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// The register's database file.
    #[arg(long)]
    pub db: PathBuf,
    /// Base URL of the server (through this register's network link).
    #[arg(long)]
    pub url: String,
    /// Bearer token (kept in memory only).
    #[arg(long)]
    pub token: String,
    /// User id.
    #[arg(long)]
    pub user: String,
    /// Workspace id.
    #[arg(long)]
    pub workspace: String,
    /// Register number, 1-based.
    #[arg(long)]
    pub index: usize,
    /// Orders to sell in total (across restarts).
    #[arg(long)]
    pub orders: u64,
    /// Prefix of order ids, unique per run.
    #[arg(long)]
    pub run: String,
    /// Random seed.
    #[arg(long)]
    pub seed: u64,
    /// Shortest pause between two sales, in milliseconds.
    #[arg(long, default_value_t = 30)]
    pub pace_min_ms: u64,
    /// Longest pause between two sales, in milliseconds.
    #[arg(long, default_value_t = 90)]
    pub pace_max_ms: u64,
}

/// What a register tells the coordinator, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Report {
    /// The queue right now.
    Status {
        /// Sales recorded in the database (across restarts).
        sold: u64,
        /// Commands waiting to be sent.
        pending: u64,
        /// Commands being sent.
        in_flight: u64,
        /// Commands refused by the server.
        failed: u64,
        /// Commands in conflict.
        conflict: u64,
        /// Commands the server acknowledged.
        succeeded: u64,
        /// Whether the engine believes it is online.
        online: bool,
        /// Age of the oldest unsynced command, ms.
        #[serde(default)]
        oldest_ms: Option<u64>,
        /// Attempts in a row that did not end applied.
        #[serde(default)]
        failures: u32,
        /// Whether the stall watchdog reports the queue stalled.
        #[serde(default)]
        stalled: bool,
    },
    /// Every order of this register is recorded.
    SoldAll,
    /// After `finish`: the local view of stock once the final pull completed.
    Final {
        /// Product id → stock as this register shows it.
        stock: BTreeMap<String, i64>,
    },
    /// The register cannot go on.
    Error {
        /// Why.
        message: String,
    },
}

/// Writes one report line; `false` when the coordinator is gone.
fn emit(report: &Report) -> bool {
    let Ok(line) = serde_json::to_string(report) else { return false };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}

/// Entry point of `outbox-demo register`.
pub async fn run(args: RegisterArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            emit(&Report::Error { message: e.to_string() });
            ExitCode::from(1)
        }
    }
}

/// Opens a register's database the way the register does (also used by tests).
pub fn open(args: &RegisterArgs) -> Result<Outbox> {
    let http = HttpConfig::new(args.url.clone(), args.workspace.clone())
        .with_request_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(1));
    let transport = HttpTransport::new(http, Arc::new(StaticToken::new(args.token.clone())))
        .map_err(|e| DemoError::Usage(format!("register transport: {e}")))?;
    let mut config =
        Config::new(&args.db, args.user.clone(), args.workspace.clone()).with_transport(Arc::new(transport));
    // A till retries for as long as it takes, quickly: a sale is never parked.
    config.retry = RetryPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
        jitter: 0.3,
        max_attempts: 10_000,
    };
    config.attempt_timeout = Duration::from_secs(5);
    config.lease_ttl = Duration::from_secs(1);
    let outbox = Outbox::open(config)?;
    outbox
        .register_mutator(CREATE_ORDER, MutatorSpec { key_pointers: vec!["/id".into()], ..MutatorSpec::default() })?;
    Ok(outbox)
}

/// Every sale recorded in a register's database, in enqueue order.
pub fn recorded_sales(outbox: &Outbox) -> Result<Vec<Command>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let filter =
            PeekFilter { mutator: Some(CREATE_ORDER.into()), limit: 500, after_seq: after, ..PeekFilter::default() };
        let page = outbox.peek(&filter)?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        all.extend(page);
    }
    Ok(all)
}

async fn serve(args: RegisterArgs) -> Result<()> {
    if args.pace_min_ms > args.pace_max_ms {
        return Err(DemoError::Usage("--pace-min-ms must not exceed --pace-max-ms".into()));
    }
    let outbox = open(&args)?;
    let sold = Arc::new(std::sync::atomic::AtomicU64::new(recorded_sales(&outbox)?.len() as u64));
    let (finish_tx, mut finish_rx) = watch::channel(false);
    tokio::spawn(read_instructions(outbox.clone(), finish_tx));
    tokio::spawn(report_status(outbox.clone(), Arc::clone(&sold)));

    let rng = fastrand::Rng::with_seed(args.seed ^ (args.index as u64) << 32 ^ sold.load(ORDER));
    let mut till = Till { outbox: outbox.clone(), rng, args: args.clone() };
    while sold.load(ORDER) < args.orders {
        let pause = till.rng.u64(args.pace_min_ms..=args.pace_max_ms);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
            _ = finish_rx.changed() => break,
        }
        let seq = sold.load(ORDER) + 1;
        if till.sell(seq)? {
            sold.store(seq, ORDER);
        }
    }
    emit(&Report::SoldAll);
    while !*finish_rx.borrow() {
        if finish_rx.changed().await.is_err() {
            return Ok(()); // coordinator gone
        }
    }
    let stock = final_pull(&outbox).await?;
    emit(&Report::Final { stock });
    outbox.close();
    Ok(())
}

const ORDER: std::sync::atomic::Ordering = std::sync::atomic::Ordering::SeqCst;

/// Sells orders from the local catalog.
struct Till {
    outbox: Outbox,
    rng: fastrand::Rng,
    args: RegisterArgs,
}

impl Till {
    /// Records sale number `seq`; `false` while the catalog has not arrived yet.
    fn sell(&mut self, seq: u64) -> Result<bool> {
        let catalog = self.outbox.list(PRODUCTS, &Query::all())?;
        if catalog.is_empty() {
            return Ok(false);
        }
        let order_id = format!("{}-r{}-{seq:05}", self.args.run, self.args.index);
        let line_count = self.rng.usize(1..=catalog.len().min(3));
        let mut picked = catalog.clone();
        self.rng.shuffle(&mut picked);
        picked.truncate(line_count);

        let mut lines = Vec::new();
        let mut total = 0i64;
        let mut req = EnqueueRequest::new(CREATE_ORDER, String::new());
        for product in &picked {
            let qty = self.rng.i64(1..=3);
            let price = product.value.get("price").and_then(Value::as_i64).unwrap_or(0);
            let stock = product.value.get("stock").and_then(Value::as_i64).unwrap_or(0);
            total += price * qty;
            lines.push(json!({"product_id": product.id, "qty": qty}));
            // The register shows the stock it expects; the server's answer replaces it.
            req = req.op(PRODUCTS, product.id.clone(), OpKind::Patch(json!({"stock": stock - qty})));
        }
        let args = json!({"id": order_id, "lines": lines, "register": self.args.index});
        req.args = args.to_string();
        req = req.op(
            ORDERS,
            order_id.clone(),
            OpKind::Insert(json!({"lines": lines, "total": total, "status": "open", "register": self.args.index})),
        );
        self.outbox.enqueue(req)?;
        Ok(true)
    }
}

/// Applies the coordinator's instructions until stdin closes.
async fn read_instructions(outbox: Outbox, finish: watch::Sender<bool>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let result = match line.trim() {
            "online" => outbox.set_online(true),
            "offline" => outbox.set_online(false),
            "finish" => {
                finish.send_replace(true);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            emit(&Report::Error { message: e.to_string() });
        }
    }
    // The coordinator is gone: stop like a closed app would.
    finish.send_replace(true);
}

/// Reports the queue every 150 ms.
async fn report_status(outbox: Outbox, sold: Arc<std::sync::atomic::AtomicU64>) {
    loop {
        let Ok(s) = outbox.status() else { return };
        let report = Report::Status {
            sold: sold.load(ORDER),
            pending: s.pending,
            in_flight: s.in_flight,
            failed: s.failed,
            conflict: s.conflict,
            succeeded: s.succeeded,
            online: s.online,
            oldest_ms: s.oldest_pending_age.map(|d| d.as_millis() as u64),
            failures: s.consecutive_failures,
            stalled: s.stalled,
        };
        if !emit(&report) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Pulls until the engine reports `Synced`, then reads the local stock.
async fn final_pull(outbox: &Outbox) -> Result<BTreeMap<String, i64>> {
    let mut events = outbox.subscribe()?;
    outbox.set_online(true)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    'pull: loop {
        outbox.sync_now()?;
        let retry_at = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match tokio::time::timeout_at(retry_at.min(deadline), events.next()).await {
                Ok(Some(Event::Synced)) => break 'pull,
                Ok(Some(_)) => {}
                Ok(None) => return Err(DemoError::Usage("engine closed during the final pull".into())),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(DemoError::Http("the final pull did not complete in 30 s".into()))
                }
                Err(_) => continue 'pull,
            }
        }
    }
    let mut stock = BTreeMap::new();
    for doc in outbox.list(PRODUCTS, &Query::all())? {
        stock.insert(doc.id.clone(), doc.value.get("stock").and_then(Value::as_i64).unwrap_or(0));
    }
    Ok(stock)
}
