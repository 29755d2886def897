//! Timing and memory helpers shared by every bench.

use std::time::Duration;

use serde_json::json;

/// One result line.
pub struct Sample {
    pub bench: &'static str,
    pub system: &'static str,
    pub n: usize,
    /// Operations timed (commands for enqueue and drains, reads for read benches).
    pub ops: usize,
    pub total: Duration,
    /// Per-operation latencies, when the bench measures them.
    pub latencies: Vec<Duration>,
}

impl Sample {
    /// The JSON line for this result.
    pub fn line(mut self) -> String {
        self.latencies.sort();
        let pct = |p: f64| -> Option<f64> {
            if self.latencies.is_empty() {
                return None;
            }
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            Some(ms(self.latencies[i]))
        };
        let total_ms = ms(self.total);
        json!({
            "bench": self.bench,
            "system": self.system,
            "n": self.n,
            "ops_per_s": if total_ms > 0.0 { (self.ops as f64 / (total_ms / 1000.0)).round() } else { 0.0 },
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "total_ms": (total_ms * 1000.0).round() / 1000.0,
            "rss_mb": rss_mb(),
        })
        .to_string()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident set size of this process in MiB (Linux), if known.
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// Args of a typical POS order, about 200 bytes.
pub fn order_args(i: usize) -> String {
    json!({
        "id": format!("order-{i}"),
        "register": "r1",
        "lines": [{"product_id": format!("p{}", i % 50), "qty": 1 + i % 3, "price": 1250}],
        "total": 1250 * (1 + i % 3),
        "paid_with": "card",
    })
    .to_string()
}
