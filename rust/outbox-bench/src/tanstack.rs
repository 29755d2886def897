//! The TanStack side by side: runs `tanstack/bench.mjs` under `node` as a child process,
//! one (bench, n) per process, and relays its JSON line. A run that does not finish in
//! time is killed by its PID and reported with `"skipped"`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// Benches the harness implements.
pub const BENCHES: [&str; 3] = ["enqueue", "drain-local", "open"];

/// A located harness: `node` on PATH and the pinned package installed.
pub struct Harness {
    dir: PathBuf,
}

impl Harness {
    /// Finds `node` and the harness directory (`$OUTBOX_TANSTACK_DIR` or the crate's
    /// `tanstack/`). Installs the pinned dependencies with `npm ci` when they are missing
    /// (never inside a timed section).
    pub fn locate() -> Result<Harness, String> {
        let version =
            Command::new("node").arg("--version").output().map_err(|e| format!("node not found on PATH ({e})"))?;
        if !version.status.success() {
            return Err("`node --version` failed".into());
        }
        let dir = std::env::var_os("OUTBOX_TANSTACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tanstack")));
        if !dir.join("bench.mjs").exists() {
            return Err(format!("no harness at {}", dir.display()));
        }
        if !dir.join("node_modules/@tanstack/offline-transactions/package.json").exists() {
            eprintln!("installing the TanStack harness dependencies (npm ci) in {}", dir.display());
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("npm not runnable ({e})"))?;
            if !status.success() {
                return Err("npm ci failed".into());
            }
        }
        Ok(Harness { dir })
    }

    /// Runs one bench at one n; `Ok` holds the JSON line (a measured or a skipped one).
    pub fn run(&self, bench: &str, n: usize, timeout: Duration) -> Result<String, String> {
        let mut child = Command::new("node")
            .arg("bench.mjs")
            .args(["--bench", bench, "--n", &n.to_string()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    // SIGKILL to this child's PID only.
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(format!("waiting for node: {e}")),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let Some(status) = status else {
            return Ok(skipped(bench, n, &format!("timeout >{}s", timeout.as_secs())));
        };
        if !status.success() {
            return Err(format!("node exited with {status}: {}", stderr.trim()));
        }
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or("no JSON line from node")?;
        serde_json::from_str::<serde_json::Value>(line).map_err(|e| format!("bad JSON from node: {e}"))?;
        Ok(line.to_string())
    }
}

/// A result line for a run that was given up.
pub fn skipped(bench: &str, n: usize, why: &str) -> String {
    json!({
        "bench": bench, "system": "tanstack", "n": n,
        "ops_per_s": null, "p50_ms": null, "p99_ms": null, "total_ms": null, "rss_mb": null,
        "skipped": why,
    })
    .to_string()
}
