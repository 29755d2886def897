//! The coordinator: starts (or reaches) the server, runs the registers as child processes
//! behind switchable network links, cuts links and kills processes on a seeded schedule,
//! drains, and verifies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use outbox::{CommandState, Outbox};
use outbox_server::faults::FaultSpec;
use outbox_server::{Server, ServerConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::error::{DemoError, Result};
use crate::network::Link;
use crate::progress::{Progress, RegisterView};
use crate::register::{recorded_sales, Report};
use crate::server_view::ServerView;
use crate::verify::{verify, RecordedSale, RegisterOutcome, ServerOutcome, Verification};

/// Default faults of the embedded server: errors, throttling, resets, answers lost after
/// the commit (the case idempotency exists for) and latency.
pub const DEFAULT_FAULTS: &str = "500=0.05,429=0.03:1s,reset=0.03,drop_after_commit=0.05,latency=0-40ms";

/// Settings of a run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Number of registers (each a child process with its own database).
    #[arg(long, default_value_t = 3)]
    pub registers: usize,
    /// Orders each register sells.
    #[arg(long, default_value_t = 150)]
    pub orders: u64,
    /// Share of the selling time each register's network is down (0 to 0.9).
    #[arg(long, default_value_t = 0.3)]
    pub offline_ratio: f64,
    /// Faults the embedded server injects (`none` for none); see docs/protocol.md.
    #[arg(long, default_value = DEFAULT_FAULTS)]
    pub faults: String,
    /// Kill -9 a random register every 1-3 s and restart it.
    #[arg(long)]
    pub crash: bool,
    /// Seed of every random choice (printed when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use a running outbox-server (started with --dev --admin) instead of the embedded one.
    #[arg(long)]
    pub server: Option<String>,
    /// Token of the user the registers sell as (with --server).
    #[arg(long, default_value = "dev-alice")]
    pub token: String,
    /// That user's id.
    #[arg(long, default_value = "alice")]
    pub user: String,
    /// The workspace to sell in.
    #[arg(long, default_value = "ws-1")]
    pub workspace: String,
    /// Print a machine-readable summary as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep the register databases (and the embedded server's) and print where they are.
    #[arg(long)]
    pub keep: bool,
    /// Give up when the registers have not drained this many seconds after the last sale.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout: u64,
}

/// Entry point of the coordinator: 0 when verified, 1 when the verification failed, 2
/// when the run could not be carried out.
pub async fn run(args: RunArgs) -> ExitCode {
    match run_checked(args).await {
        Ok(v) if v.ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("outbox-demo: {e}");
            ExitCode::from(2)
        }
    }
}

fn validate(args: &RunArgs) -> Result<()> {
    if !(1..=16).contains(&args.registers) {
        return Err(DemoError::Usage("--registers must be between 1 and 16".into()));
    }
    if args.orders == 0 || args.orders > 100_000 {
        return Err(DemoError::Usage("--orders must be between 1 and 100000".into()));
    }
    if !(0.0..=0.9).contains(&args.offline_ratio) {
        return Err(DemoError::Usage("--offline-ratio must be between 0 and 0.9".into()));
    }
    Ok(())
}

async fn run_checked(args: RunArgs) -> Result<Verification> {
    validate(&args)?;
    let faults: FaultSpec = match args.faults.trim() {
        "" | "none" => FaultSpec::default(),
        spec => spec.parse().map_err(|e| DemoError::Usage(format!("--faults: {e}")))?,
    };
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let run_id =
        format!("d{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let dir = tempfile::Builder::new().prefix("outbox-demo-").tempdir()?;
    eprintln!(
        "outbox-demo: {} registers × {} orders, offline {:.0}%, seed {seed}{}",
        args.registers,
        args.orders,
        args.offline_ratio * 100.0,
        if args.crash { ", kill -9 on" } else { "" }
    );

    let embedded = match &args.server {
        None => Some(
            Server::start(
                ServerConfig::new(dir.path().join("server.db")).with_dev(true).with_admin(true).with_seed(seed),
            )
            .await
            .map_err(|e| DemoError::Server(e.to_string()))?,
        ),
        Some(_) => None,
    };
    let base = match (&embedded, &args.server) {
        (Some(s), _) => s.base_url(),
        (None, Some(url)) => url.trim_end_matches('/').to_string(),
        (None, None) => return Err(DemoError::Usage("no server".into())),
    };
    let view = ServerView::new(&base, &args.token, &args.workspace)?;
    view.wait_healthy(Duration::from_secs(10)).await?;
    view.key_counts().await?; // fails early, and clearly, without admin endpoints
    let floor = i64::try_from(args.orders * args.registers as u64 * 3 + 10).unwrap_or(i64::MAX);
    view.restock(floor, &run_id).await?;
    let baseline = view.snapshot().await?.stock();
    if baseline.is_empty() {
        return Err(DemoError::Server(format!(
            "workspace {} has no products: start the server with --dev",
            args.workspace
        )));
    }
    match &embedded {
        Some(server) => {
            server.set_faults(faults.clone());
            eprintln!(
                "outbox-demo: embedded server at {base}, faults: {}",
                if args.faults.is_empty() { "none" } else { &args.faults }
            );
        }
        None => eprintln!("outbox-demo: using {base} (its own fault settings apply)"),
    }

    let target = resolve(&base).await?;
    let mut fleet = Fleet::start(&args, dir.path(), &base_register_args(&args, &run_id, seed), target).await?;
    let outcome = fleet.drive(&args, seed).await;
    fleet.stop_all().await;
    let stocks = outcome?;

    let mut registers = Vec::new();
    for (reg, stock) in fleet.regs.iter().zip(stocks) {
        registers.push(RegisterOutcome {
            index: reg.index,
            sales: read_sales(&reg.db)?,
            stock,
            restarts: reg.restarts,
        });
    }
    if let Some(server) = &embedded {
        server.set_faults(FaultSpec::default());
    }
    let server_outcome = ServerOutcome {
        baseline: baseline.clone(),
        snapshot: view.snapshot().await?,
        keys: view.key_counts().await?,
        run: run_id,
    };
    let verification = verify(&registers, &server_outcome);
    print!("{}", verification.table(baseline.len()));
    if args.keep {
        let kept = dir.keep();
        println!("kept: {} (inspect with `cargo run -p outbox-cli -- status <db>`)", kept.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&verification).map_err(|e| DemoError::Usage(e.to_string()))?);
    }
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    Ok(verification)
}

async fn resolve(base: &str) -> Result<SocketAddr> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| DemoError::Usage(format!("--server must be http://HOST:PORT, got {base}")))?;
    let host = host.split('/').next().unwrap_or(host);
    let mut addrs = tokio::net::lookup_host(host).await?;
    addrs.next().ok_or_else(|| DemoError::Usage(format!("cannot resolve {host}")))
}

/// Arguments every register shares (the per-register ones are added at spawn).
fn base_register_args(args: &RunArgs, run_id: &str, seed: u64) -> Vec<String> {
    vec![
        "register".into(),
        "--token".into(),
        args.token.clone(),
        "--user".into(),
        args.user.clone(),
        "--workspace".into(),
        args.workspace.clone(),
        "--orders".into(),
        args.orders.to_string(),
        "--run".into(),
        run_id.into(),
        "--seed".into(),
        seed.to_string(),
    ]
}

fn read_sales(db: &Path) -> Result<Vec<RecordedSale>> {
    let outbox = Outbox::inspect(db)?;
    let sales = recorded_sales(&outbox)?
        .into_iter()
        .map(|c| RecordedSale {
            order_id: serde_json::from_str::<Value>(&c.args)
                .ok()
                .and_then(|a| a.get("id").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default(),
            idempotency_key: c.idempotency_key,
            acknowledged: c.state == CommandState::Succeeded,
        })
        .collect();
    outbox.close();
    Ok(sales)
}

/// Messages into the coordinator's loop.
enum Msg {
    /// A register's line (from process generation `gen`).
    Report { index: usize, gen: u32, report: Report },
    /// A register's stdout closed.
    Exited { index: usize, gen: u32 },
    /// The network schedule flips a link.
    Link { index: usize, up: bool },
    /// The register's connectivity callback fires (a little after the link changed).
    Tell { index: usize, up: bool },
    /// The crash schedule kills a register.
    Crash { index: usize },
}

/// One register: its link, process and latest report.
struct Reg {
    index: usize,
    db: PathBuf,
    log: PathBuf,
    link: Link,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    gen: u32,
    restarts: u32,
    view: RegisterView,
    sold_all: bool,
    stock: Option<std::collections::BTreeMap<String, i64>>,
}

/// All registers plus the channel their reports arrive on.
struct Fleet {
    regs: Vec<Reg>,
    common: Vec<String>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
}

impl Fleet {
    async fn start(args: &RunArgs, dir: &Path, common: &[String], target: SocketAddr) -> Result<Fleet> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut fleet = Fleet { regs: Vec::new(), common: common.to_vec(), tx, rx };
        for index in 1..=args.registers {
            let link = Link::start(target).await?;
            fleet.regs.push(Reg {
                index,
                db: dir.join(format!("register-{index}.db")),
                log: dir.join(format!("register-{index}.log")),
                link,
                child: None,
                stdin: None,
                gen: 0,
                restarts: 0,
                view: RegisterView { index, link_up: true, orders: args.orders, ..RegisterView::default() },
                sold_all: false,
                stock: None,
            });
            fleet.spawn(index - 1)?;
        }
        Ok(fleet)
    }

    /// Starts (or restarts) register `i`'s process.
    fn spawn(&mut self, i: usize) -> Result<()> {
        let exe = std::env::current_exe()?;
        let tx = self.tx.clone();
        let reg = &mut self.regs[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&reg.log)?;
        let mut child = tokio::process::Command::new(exe)
            .args(&self.common)
            .arg("--db")
            .arg(&reg.db)
            .arg("--url")
            .arg(format!("http://{}", reg.link.addr()))
            .arg("--index")
            .arg(reg.index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        reg.gen += 1;
        let (index, gen) = (reg.index, reg.gen);
        let stdout = child.stdout.take().ok_or_else(|| DemoError::Register { index, message: "no stdout".into() })?;
        reg.stdin = child.stdin.take();
        reg.child = Some(child);
        reg.view.alive = true;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(report) = serde_json::from_str::<Report>(&line) {
                    let _ = tx.send(Msg::Report { index, gen, report });
                }
            }
            let _ = tx.send(Msg::Exited { index, gen });
        });
        Ok(())
    }

    async fn tell(&mut self, i: usize, line: &str) {
        if let Some(stdin) = self.regs[i].stdin.as_mut() {
            let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
    }

    /// Sells, cuts, kills, drains and finishes; returns each register's final stock.
    async fn drive(&mut self, args: &RunArgs, seed: u64) -> Result<Vec<std::collections::BTreeMap<String, i64>>> {
        let total = args.orders * self.regs.len() as u64;
        let mut progress = Progress::new(self.regs.len(), total, false);
        let (chaos_on, chaos) = watch::channel(true);
        for i in 0..self.regs.len() {
            tokio::spawn(network_schedule(i + 1, args.offline_ratio, seed, chaos.clone(), self.tx.clone()));
        }
        if args.crash {
            tokio::spawn(crash_schedule(self.regs.len(), seed, chaos.clone(), self.tx.clone()));
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut phase = Phase::Selling;
        let mut deadline = None;
        loop {
            tokio::select! {
                msg = self.rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg, &phase, &progress).await?;
                }
                _ = tick.tick() => {
                    progress.update(&self.regs.iter().map(|r| r.view.clone()).collect::<Vec<_>>());
                }
            }
            match phase {
                Phase::Selling if self.regs.iter().all(|r| r.sold_all) => {
                    chaos_on.send_replace(false);
                    progress.note("every sale recorded: network restored everywhere, draining");
                    for i in 0..self.regs.len() {
                        self.regs[i].link.set_up(true);
                        self.regs[i].view.link_up = true;
                        self.tell(i, "online").await;
                    }
                    deadline = Some(Instant::now() + Duration::from_secs(args.drain_timeout));
                    phase = Phase::Draining;
                }
                Phase::Draining
                    if self.regs.iter().all(|r| {
                        r.view.alive && r.view.pending + r.view.in_flight == 0 && r.view.sold == r.view.orders
                    }) =>
                {
                    progress.note("drained: final pull on every register");
                    for i in 0..self.regs.len() {
                        self.tell(i, "finish").await;
                    }
                    deadline = Some(Instant::now() + Duration::from_secs(40));
                    phase = Phase::Finishing;
                }
                Phase::Finishing if self.regs.iter().all(|r| r.stock.is_some()) => break,
                _ => {}
            }
            if let Some(d) = deadline {
                if Instant::now() > d {
                    progress.finish();
                    return Err(DemoError::Register { index: 0, message: format!("timed out while {phase:?}") });
                }
            }
        }
        progress.update(&self.regs.iter().map(|r| r.view.clone()).collect::<Vec<_>>());
        progress.finish();
        Ok(self.regs.iter_mut().map(|r| r.stock.take().unwrap_or_default()).collect())
    }

    async fn handle(&mut self, msg: Msg, phase: &Phase, progress: &Progress) -> Result<()> {
        match msg {
            Msg::Report { index, gen, report } => {
                let reg = &mut self.regs[index - 1];
                if gen != reg.gen {
                    return Ok(());
                }
                match report {
                    Report::Status {
                        sold,
                        pending,
                        in_flight,
                        failed,
                        conflict,
                        succeeded,
                        oldest_ms,
                        failures,
                        stalled,
                        ..
                    } => {
                        let v = &mut reg.view;
                        (v.sold, v.pending, v.in_flight, v.failed, v.conflict, v.succeeded) =
                            (sold, pending, in_flight, failed, conflict, succeeded);
                        (v.oldest_ms, v.failures, v.stalled) = (oldest_ms, failures, stalled);
                    }
                    Report::SoldAll => reg.sold_all = true,
                    Report::Final { stock } => reg.stock = Some(stock),
                    Report::Error { message } => return Err(DemoError::Register { index, message }),
                }
            }
            Msg::Exited { index, gen } => {
                let reg = &self.regs[index - 1];
                if gen == reg.gen && !matches!(phase, Phase::Finishing) {
                    return Err(DemoError::Register {
                        index,
                        message: format!("exited unexpectedly (log: {})", reg.log.display()),
                    });
                }
            }
            Msg::Link { index, up } => {
                let reg = &mut self.regs[index - 1];
                if matches!(phase, Phase::Selling) {
                    reg.link.set_up(up);
                    reg.view.link_up = up;
                    let tx = self.tx.clone();
                    let lag = Duration::from_millis(fastrand::u64(0..250));
                    tokio::spawn(async move {
                        tokio::time::sleep(lag).await;
                        let _ = tx.send(Msg::Tell { index, up });
                    });
                }
            }
            Msg::Tell { index, up } => {
                if self.regs[index - 1].link.is_up() == up {
                    self.tell(index - 1, if up { "online" } else { "offline" }).await;
                }
            }
            Msg::Crash { index } => {
                if !matches!(phase, Phase::Selling) {
                    return Ok(());
                }
                let reg = &mut self.regs[index - 1];
                if let Some(mut child) = reg.child.take() {
                    let _ = child.start_kill(); // SIGKILL to the PID we started
                    let _ = child.wait().await;
                }
                reg.restarts += 1;
                reg.view.restarts = reg.restarts;
                reg.view.alive = false;
                progress.note(&format!("kill -9 register {index} (restart #{})", reg.restarts));
                self.spawn(index - 1)?;
                if !self.regs[index - 1].link.is_up() {
                    self.tell(index - 1, "offline").await;
                }
            }
        }
        Ok(())
    }

    /// Waits for every process to exit (killing any that does not within 10 s).
    async fn stop_all(&mut self) {
        for reg in &mut self.regs {
            reg.stdin = None; // EOF: a register still running finishes like a closed app
            if let Some(mut child) = reg.child.take() {
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
        }
    }
}

#[derive(Debug)]
enum Phase {
    Selling,
    Draining,
    Finishing,
}

/// Flips register `index`'s link so it is down `ratio` of the time, in spells of 0.4-1.5 s.
async fn network_schedule(
    index: usize,
    ratio: f64,
    seed: u64,
    mut chaos: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    if ratio <= 0.0 {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(index as u64 * 7919));
    loop {
        let down = Duration::from_millis(rng.u64(400..=1500));
        let up = down.mul_f64((1.0 - ratio) / ratio);
        for (wait, state) in [(up, false), (down, true)] {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = chaos.changed() => return,
            }
            if !*chaos.borrow() || tx.send(Msg::Link { index, up: state }).is_err() {
                return;
            }
        }
    }
}

/// Kills a random register every 1-3 s while sales go on.
async fn crash_schedule(registers: usize, seed: u64, mut chaos: watch::Receiver<bool>, tx: mpsc::UnboundedSender<Msg>) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xC4A5);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(rng.u64(1000..=3000))) => {}
            _ = chaos.changed() => return,
        }
        if !*chaos.borrow() || tx.send(Msg::Crash { index: rng.usize(1..=registers) }).is_err() {
            return;
        }
    }
}
