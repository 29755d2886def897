//! The "before and after" section of the benchmark page: two builds measured in one
//! session, rounds alternating, so a change is compared on the same machine load.
//!
//! Input lines are bench result lines with a `"label"` (`"before"` or `"after"`), and the
//! JSON line of `scripts/measure-drain-io.sh` (bench `drain-local-io`, `drain-http-io`)
//! with a label added. Times are the median over rounds, which keeps one noisy round of a
//! shared machine from deciding the ratio.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// Whether `line` belongs to this section rather than to the main tables.
pub fn is_compared(line: &Value) -> bool {
    line["label"].as_str().is_some_and(|l| l == "before" || l == "after")
        && line["bench"].as_str().is_some_and(|b| b != "load")
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[n / 2]),
        n => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

fn ms(t: f64) -> String {
    if t < 10.0 {
        format!("{t:.1} ms")
    } else {
        format!("{t:.0} ms")
    }
}

/// The section, or nothing when no line is labelled.
pub fn markdown(lines: &[Value], title: &str) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n## {title}\n");
    let _ = writeln!(
        out,
        "The build before the change and the build after it, run in the same session on this \
         machine, rounds alternating; each time is the median over the rounds (`rounds`).\n"
    );
    out.push_str(&builds(&lines.iter().collect::<Vec<_>>()));
    // (bench, n, system) -> label -> totals
    let mut times: BTreeMap<(String, u64, String), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut io: Vec<&Value> = Vec::new();
    for v in lines {
        let bench = v["bench"].as_str().unwrap_or("?");
        if bench.ends_with("-io") {
            io.push(v);
            continue;
        }
        let (Some(label), Some(n), Some(total)) = (v["label"].as_str(), v["n"].as_u64(), v["total_ms"].as_f64()) else {
            continue;
        };
        let system = v["system"].as_str().unwrap_or("outbox").to_string();
        times.entry((bench.to_string(), n, system)).or_default().entry(label.to_string()).or_default().push(total);
    }
    if !times.is_empty() {
        let _ = writeln!(
            out,
            "| bench | n | measured | before | after | before ÷ after | rounds |\n| --- | ---: | --- | ---: | ---: | ---: | ---: |"
        );
        for ((bench, n, system), by_label) in &times {
            let before = by_label.get("before").cloned().and_then(median);
            let after = by_label.get("after").cloned().and_then(median);
            let rounds = by_label.values().map(Vec::len).max().unwrap_or(0);
            let speedup = match (before, after) {
                (Some(b), Some(a)) if a > 0.0 => format!("{:.2}×", b / a),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {bench} | {n} | {system} | {} | {} | {speedup} | {rounds} |",
                before.map_or("–".into(), ms),
                after.map_or("–".into(), ms)
            );
        }
    }
    if !io.is_empty() {
        let _ = writeln!(
            out,
            "\nWhat the drain asks of the client's disk (`scripts/measure-drain-io.sh`, under strace: \
             counts, not times): fsyncs per 1k commands between the drain's start and end marks, WAL \
             frames (pages written) per command, and pages copied back by checkpoints per command until \
             the process exits.\n"
        );
        let _ = writeln!(
            out,
            "| bench | n | build | fsyncs per 1k | WAL frames per command | checkpoint pages per command |\n| --- | ---: | --- | ---: | ---: | ---: |"
        );
        let mut io = io;
        io.sort_by_key(|v| (v["bench"].as_str().unwrap_or("").to_string(), v["n"].as_u64(), v["label"] != "before"));
        for v in io {
            let f = |k: &str| v[k].as_f64().map_or("–".into(), |x| format!("{x:.3}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                v["bench"].as_str().unwrap_or("?").trim_end_matches("-io"),
                v["n"].as_u64().unwrap_or(0),
                v["label"].as_str().unwrap_or("?"),
                v["fsyncs_per_1k"].as_f64().map_or("–".into(), |x| format!("{x:.1}")),
                f("wal_frames_per_command"),
                f("checkpoint_pages_per_command"),
            );
        }
    }
    out
}

/// Which builds the labels `before` and `after` name, as a list, when the lines say
/// (`"build"`); empty when none does.
pub(crate) fn builds(lines: &[&Value]) -> String {
    let mut out = String::new();
    for label in ["before", "after"] {
        if let Some(build) = lines.iter().find(|v| v["label"] == label).and_then(|v| v["build"].as_str()) {
            let _ = writeln!(out, "- **{label}**: {build}");
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn medians_per_label_and_the_ratio() {
        let lines = vec![
            json!({"label":"before","bench":"drain-http","n":1000,"system":"outbox","total_ms":300.0}),
            json!({"label":"before","bench":"drain-http","n":1000,"system":"outbox","total_ms":200.0}),
            json!({"label":"before","bench":"drain-http","n":1000,"system":"outbox","total_ms":100.0}),
            json!({"label":"after","bench":"drain-http","n":1000,"system":"outbox","total_ms":100.0}),
            json!({"label":"after","bench":"drain-http","n":1000,"system":"outbox","total_ms":50.0}),
            json!({"label":"after","bench":"drain-http","n":1000,"system":"outbox","total_ms":90.0}),
            json!({"label":"after","bench":"drain-local-io","n":10000,"fsyncs_per_1k":0.6,"wal_frames_per_command":0.33}),
        ];
        let md = markdown(&lines, "Before and after");
        assert!(md.contains("| drain-http | 1000 | outbox | 200 ms | 90 ms | 2.22× | 3 |"), "{md}");
        assert!(md.contains("| drain-local | 10000 | after | 0.6 | 0.330 | – |"), "{md}");
        assert!(markdown(&[], "x").is_empty());
    }

    #[test]
    fn the_builds_the_labels_name_are_listed() {
        let before = json!({"label":"before","build":"abc (main before)"});
        let after = json!({"label":"after"});
        assert_eq!(builds(&[&before, &after]), "- **before**: abc (main before)\n\n");
        assert!(builds(&[&after]).is_empty());
        let load = crate::load::markdown(&[
            json!({"bench":"load","label":"before","build":"abc","system":"sqlite","ops_per_s":900.0}),
            json!({"bench":"load","label":"after","build":"def","system":"sqlite","ops_per_s":9000.0}),
        ]);
        assert!(load.contains("- **before**: abc\n- **after**: def\n"), "{load}");
    }
}
