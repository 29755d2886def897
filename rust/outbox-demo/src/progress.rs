//! Live progress in the terminal: one line per register and a bar for the drain.
//!
//! On a terminal the lines redraw in place (indicatif); otherwise (CI logs, pipes) a
//! compact line is printed every two seconds. Everything goes to stderr, so stdout holds
//! only the verification and the `--json` summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the display shows for one register.
#[derive(Debug, Clone, Default)]
pub struct RegisterView {
    /// Register number, 1-based.
    pub index: usize,
    /// Whether its network link is up.
    pub link_up: bool,
    /// Whether its process is running.
    pub alive: bool,
    /// Sales recorded.
    pub sold: u64,
    /// Sales to make.
    pub orders: u64,
    /// Commands waiting.
    pub pending: u64,
    /// Commands being sent.
    pub in_flight: u64,
    /// Commands refused.
    pub failed: u64,
    /// Commands in conflict.
    pub conflict: u64,
    /// Commands acknowledged.
    pub succeeded: u64,
    /// Kills survived.
    pub restarts: u32,
    /// Age of the oldest unsynced command, ms (queue health).
    pub oldest_ms: Option<u64>,
    /// Attempts in a row that did not end applied (queue health).
    pub failures: u32,
    /// Whether the stall watchdog reports the queue stalled (queue health).
    pub stalled: bool,
}

/// The queue-health part of a register's line: oldest unsynced age, failures in a row,
/// and a stall flag.
fn health(v: &RegisterView) -> String {
    let oldest = v.oldest_ms.map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
    format!("oldest {oldest} fails {}{}", v.failures, if v.stalled { " STALLED" } else { "" })
}

/// The display.
pub struct Progress {
    multi: MultiProgress,
    rows: Vec<ProgressBar>,
    drain: ProgressBar,
    live: bool,
    started: Instant,
    last_plain: Instant,
}

impl Progress {
    /// A display for `registers` registers selling `total` orders in all.
    pub fn new(registers: usize, total: u64, quiet: bool) -> Progress {
        let live = !quiet && std::io::stderr().is_terminal();
        let target = if live { ProgressDrawTarget::stderr_with_hz(10) } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let row_style = ProgressStyle::with_template("{prefix} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
        let rows = (1..=registers)
            .map(|i| {
                let bar = multi.add(ProgressBar::new(0).with_style(row_style.clone()));
                bar.set_prefix(format!("register {i}"));
                bar
            })
            .collect();
        let drain_style = ProgressStyle::with_template("{prefix} [{bar:40.green/white}] {pos}/{len} acknowledged")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let drain = multi.add(ProgressBar::new(total).with_style(drain_style));
        drain.set_prefix("drain     ");
        let now = Instant::now();
        Progress { multi, rows, drain, live, started: now, last_plain: now }
    }

    /// Redraws with the latest views.
    pub fn update(&mut self, views: &[RegisterView]) {
        let acked: u64 = views.iter().map(|v| v.succeeded).sum();
        self.drain.set_position(acked);
        if self.live {
            for (bar, v) in self.rows.iter().zip(views) {
                bar.set_message(describe(v));
            }
        } else if self.last_plain.elapsed() >= Duration::from_secs(2) {
            self.last_plain = Instant::now();
            let parts: Vec<String> = views
                .iter()
                .map(|v| {
                    format!(
                        "r{} {}{} sold {}/{} pend {} fly {} {}",
                        v.index,
                        if v.link_up { "up" } else { "DOWN" },
                        if v.alive { "" } else { " (restarting)" },
                        v.sold,
                        v.orders,
                        v.pending,
                        v.in_flight,
                        health(v)
                    )
                })
                .collect();
            eprintln!(
                "[{:>5.1}s] {} | acked {}/{}",
                self.started.elapsed().as_secs_f64(),
                parts.join(" | "),
                acked,
                self.drain.length().unwrap_or(0)
            );
        }
    }

    /// Prints a line above the live display.
    pub fn note(&self, line: &str) {
        if self.live {
            let _ = self.multi.println(line);
        } else {
            eprintln!("[{:>5.1}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }

    /// Leaves the last state on screen.
    pub fn finish(&self) {
        for bar in &self.rows {
            bar.abandon();
        }
        self.drain.abandon();
    }
}

fn describe(v: &RegisterView) -> String {
    let link = if !v.alive {
        "✖ restarting".to_string()
    } else if v.link_up {
        "● online ".to_string()
    } else {
        "○ offline".to_string()
    };
    format!(
        "{link}  sold {:>4}/{:<4}  pending {:>4}  in flight {:>3}  failed {:>2}  conflicts {:>2}  restarts {}  {}",
        v.sold,
        v.orders,
        v.pending,
        v.in_flight,
        v.failed,
        v.conflict,
        v.restarts,
        health(v)
    )
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn the_progress_line_shows_queue_health() {
        let mut v = RegisterView { index: 1, alive: true, link_up: true, ..RegisterView::default() };
        assert!(describe(&v).ends_with("oldest - fails 0"), "{}", describe(&v));
        (v.oldest_ms, v.failures, v.stalled) = (Some(3200), 2, true);
        assert!(describe(&v).ends_with("oldest 3.2s fails 2 STALLED"), "{}", describe(&v));
    }
}
