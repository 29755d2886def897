//! `outbox-bench`: measures the engine and prints one JSON line per result.
//!
//! ```text
//! cargo run --release -p outbox-bench -- [--quick] [--bench enqueue|drain-local|open|read]...
//! ```
//! Each line: `{"bench", "system", "n", "ops_per_s", "p50_ms", "p99_ms", "total_ms", "rss_mb"}`.
//! Baselines run in the same process and the same run, so ratios compare like with like.

mod measure;
mod suites;

use clap::Parser;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(name = "outbox-bench", about = "Benchmarks for the Outbox engine")]
struct Args {
    /// Only n = 1k and 10k (the default also runs 100k).
    #[arg(long)]
    quick: bool,
    /// Explicit sizes, overriding --quick (e.g. --n 500 --n 2000).
    #[arg(long = "n")]
    sizes: Vec<usize>,
    /// Which benches to run (all when omitted).
    #[arg(long = "bench", value_parser = ["enqueue", "drain-local", "open", "read"])]
    benches: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.quick {
        vec![1_000, 10_000]
    } else {
        vec![1_000, 10_000, 100_000]
    };
    let all = ["enqueue", "drain-local", "open", "read"];
    let benches: Vec<&str> =
        if args.benches.is_empty() { all.to_vec() } else { args.benches.iter().map(String::as_str).collect() };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let mut failed = false;
    for bench in benches {
        for &n in &sizes {
            let result = match bench {
                "enqueue" => suites::enqueue(n),
                "drain-local" => rt.block_on(suites::drain_local(n)),
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
        }
    }
    if failed {
        std::process::exit(1);
    }
}
