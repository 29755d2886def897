//! `outbox-bench`: measures the engine and prints one JSON line per result.
//!
//! ```text
//! outbox-bench [--quick] [--n N]... [--bench NAME]... [--with-tanstack|--no-tanstack]
//! outbox-bench report [--input results.jsonl] [--out-dir docs]
//! outbox-bench torture [--kills N] [--seed S]
//! outbox-bench load [--clients 200] [--nodes M] [--database-url postgres://127.0.0.1/…] [--secs 10]
//! ```
//! Each line: `{"bench", "system", "n", "ops_per_s", "p50_ms", "p99_ms", "total_ms", "rss_mb"}`
//! (plus `"skipped"` when a run was given up). Baselines run in the same process and the
//! same run, so ratios compare like with like; TanStack runs as a `node` child process.

mod before_after;
mod load;
mod measure;
mod powercut;
mod report;
mod suites;
mod tanstack;
mod torture;

use std::time::Duration;

use clap::{Parser, Subcommand};

const BENCHES: [&str; 7] =
    ["enqueue", "drain-local", "drain-http", "reconnect-visible", "crash-reopen", "open", "read"];

/// Command-line options.
#[derive(Parser, Debug)]
#[command(name = "outbox-bench", about = "Benchmarks for the Outbox engine", args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Only n = 1k and 10k (the default also runs 100k).
    #[arg(long)]
    quick: bool,
    /// Explicit sizes, overriding --quick (e.g. --n 500 --n 2000).
    #[arg(long = "n")]
    sizes: Vec<usize>,
    /// Which benches to run (all when omitted).
    #[arg(long = "bench", value_parser = BENCHES)]
    benches: Vec<String>,
    /// Run the TanStack side by side (fails when node or the harness is missing). By
    /// default it runs when `node` is on PATH.
    #[arg(long, conflicts_with = "no_tanstack")]
    with_tanstack: bool,
    /// Never run the TanStack side by side.
    #[arg(long)]
    no_tanstack: bool,
    /// Give up a TanStack run after this many seconds (killed by PID, reported as skipped).
    #[arg(long, default_value_t = 180)]
    tanstack_timeout: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Writes docs/benchmarks.md and docs/benchmarks.png from result lines.
    Report(report::ReportArgs),
    /// Crash/fault torture: SIGKILLs draining client processes (or, with --power-cut, cuts
    /// the power under them; with --sigstop, freezes the drainer), checks exactly-once.
    Torture(torture::TortureArgs),
    /// Load test: simulated clients pushing batches to server nodes on 127.0.0.1, then an
    /// exactly-once check.
    Load(load::LoadArgs),
    /// Internal: one client process of the torture harness.
    #[command(hide = true)]
    TortureChild(torture::ChildArgs),
}

fn main() {
    let args = Args::parse();
    let code = match args.cmd {
        Some(Cmd::Report(r)) => report::run(&r),
        Some(Cmd::Torture(t)) => torture::run(&t),
        Some(Cmd::Load(l)) => load::run(&l),
        Some(Cmd::TortureChild(c)) => torture::child(&c),
        None => run_benches(&args),
    };
    std::process::exit(code);
}

fn run_benches(args: &Args) -> i32 {
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.quick {
        vec![1_000, 10_000]
    } else {
        vec![1_000, 10_000, 100_000]
    };
    let benches: Vec<&str> =
        if args.benches.is_empty() { BENCHES.to_vec() } else { args.benches.iter().map(String::as_str).collect() };
    let node = if args.no_tanstack {
        None
    } else {
        match tanstack::Harness::locate() {
            Ok(h) => Some(h),
            Err(e) if args.with_tanstack => {
                eprintln!("--with-tanstack: {e}");
                return 1;
            }
            Err(e) => {
                eprintln!("tanstack side by side skipped: {e}");
                None
            }
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return 1;
        }
    };
    let mut failed = false;
    for bench in benches {
        for &n in &sizes {
            let result = match bench {
                "enqueue" => suites::enqueue(n),
                "drain-local" => rt.block_on(suites::drain_local(n)),
                "drain-http" => rt.block_on(suites::drain_http(n)),
                "reconnect-visible" => rt.block_on(suites::reconnect_visible(n)),
                "crash-reopen" => rt.block_on(suites::crash_reopen(n)),
                "open" => rt.block_on(suites::open(n)),
                "read" => rt.block_on(suites::read(n)),
                _ => unreachable!("clap restricts bench names"),
            };
            match result {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => {
                    eprintln!("{bench} n={n} failed: {e}");
                    failed = true;
                }
            }
            if let Some(h) = &node {
                if tanstack::BENCHES.contains(&bench) {
                    match h.run(bench, n, Duration::from_secs(args.tanstack_timeout)) {
                        Ok(line) => println!("{line}"),
                        Err(e) => {
                            eprintln!("tanstack {bench} n={n} failed: {e}");
                            failed = true;
                        }
                    }
                }
            }
        }
    }
    i32::from(failed)
}
