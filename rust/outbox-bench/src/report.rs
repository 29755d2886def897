//! `outbox-bench report`: turns result lines into docs/benchmarks.md and a log-log chart
//! docs/benchmarks.png (time against n).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

/// Options of `outbox-bench report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Result lines (JSON, one per line); `-` reads stdin.
    #[arg(long, default_value = "results.jsonl")]
    input: PathBuf,
    /// Where benchmarks.md and benchmarks.png go.
    #[arg(long, default_value = "docs")]
    out_dir: PathBuf,
    /// The command line that produced the input, quoted in the report.
    #[arg(long, default_value = "flock /tmp/outbox-cargo.lock target/release/outbox-bench")]
    command: String,
}

/// Where DejaVu Sans usually lives (Debian package fonts-dejavu-core).
const FONT_PATHS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];

#[derive(Clone, Debug)]
struct Row {
    bench: String,
    system: String,
    n: u64,
    ops_per_s: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    total: Option<f64>,
    rss: Option<f64>,
    skipped: Option<String>,
}

type Key = (String, u64, String);

/// `outbox-bench report`.
pub fn run(args: &ReportArgs) -> i32 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("report: {e}");
            1
        }
    }
}

fn run_inner(args: &ReportArgs) -> Result<(), String> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?
    } else {
        std::fs::read_to_string(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?
    };
    let mut rows: BTreeMap<Key, Row> = BTreeMap::new();
    let mut torture: Option<Value> = None;
    let mut load: Vec<Value> = Vec::new();
    let mut power: Vec<Value> = Vec::new();
    let mut compared: Vec<Value> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with('{')) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if crate::before_after::is_compared(&v) {
            compared.push(v);
            continue;
        }
        if v["bench"] == "torture" {
            torture = Some(v);
            continue;
        }
        if v["bench"] == "load" {
            load.push(v);
            continue;
        }
        if v["bench"].as_str().is_some_and(|b| b.starts_with("torture-")) {
            power.push(v);
            continue;
        }
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let f = |k: &str| v[k].as_f64();
        let row = Row {
            bench: s("bench").ok_or(format!("line {}: no bench", i + 1))?,
            system: s("system").ok_or(format!("line {}: no system", i + 1))?,
            n: v["n"].as_u64().ok_or(format!("line {}: no n", i + 1))?,
            ops_per_s: f("ops_per_s"),
            p50: f("p50_ms"),
            p99: f("p99_ms"),
            total: f("total_ms"),
            rss: f("rss_mb"),
            skipped: s("skipped"),
        };
        rows.insert((row.bench.clone(), row.n, row.system.clone()), row);
    }
    if rows.is_empty() {
        return Err("no result lines".into());
    }
    std::fs::create_dir_all(&args.out_dir).map_err(|e| e.to_string())?;
    let png = args.out_dir.join("benchmarks.png");
    chart(&rows, &png)?;
    let mut md = markdown(&rows, torture.as_ref(), &args.command, &crate::powercut::markdown(&power));
    md.push_str(&crate::before_after::markdown(&compared, "Before and after (issue 17)"));
    md.push_str(&crate::load::markdown(&load));
    let md_path = args.out_dir.join("benchmarks.md");
    std::fs::write(&md_path, md).map_err(|e| e.to_string())?;
    eprintln!("wrote {} and {}", md_path.display(), png.display());
    Ok(())
}

fn get<'a>(rows: &'a BTreeMap<Key, Row>, bench: &str, n: u64, system: &str) -> Option<&'a Row> {
    rows.get(&(bench.to_string(), n, system.to_string()))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 1.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.3}"),
    }
}

fn cell(r: Option<&Row>) -> String {
    match r {
        None => "–".into(),
        Some(r) if r.skipped.is_some() => format!("skipped ({})", r.skipped.as_deref().unwrap_or("")),
        Some(r) => format!("{} ms", ms(r.total)),
    }
}

fn ratio(a: Option<&Row>, b: Option<&Row>) -> Option<f64> {
    let (a, b) = (a?.total?, b?.total?);
    (b > 0.0).then(|| a / b)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1048576.0));
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "not installed".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "- CPU: {model}, {cpus} logical CPUs (`nproc`), RAM {mem}\n- Linux {}, Node {node}, release build\n- Generated: {}\n",
        kernel.trim(),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    )
}

fn markdown(rows: &BTreeMap<Key, Row>, torture: Option<&Value>, command: &str, power: &str) -> String {
    let mut ns: Vec<u64> = rows.keys().map(|k| k.1).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `outbox-bench report` from one run of `{command}` (all benches and all\n\
         systems in the same run on the same machine; the run held the workspace's cargo lock so\n\
         nothing compiled meanwhile). Times are wall-clock totals for n operations.\n"
    );
    let _ = writeln!(out, "## Machine\n\n{}", machine());

    let _ = writeln!(out, "## Side by side\n");
    let _ = writeln!(
        out,
        "| bench | n | outbox | sqlite-raw | tanstack | outbox ÷ raw | tanstack ÷ outbox |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for bench in ["enqueue", "drain-local", "drain-http", "reconnect-visible", "open"] {
        for &n in &ns {
            let o = get(rows, bench, n, "outbox");
            let r = get(rows, bench, n, "sqlite-raw");
            let t = get(rows, bench, n, "tanstack");
            if o.is_none() && t.is_none() {
                continue;
            }
            let vs_raw = ratio(o, r).map_or("–".into(), |x| format!("{x:.2}×"));
            let vs_ts = match (t, ratio(t, o)) {
                (Some(t), _) if t.skipped.is_some() => "did not finish¹".to_string(),
                (_, Some(x)) if x < 10.0 => format!("{x:.1}×"),
                (_, Some(x)) => format!("{x:.0}×"),
                _ => "–".into(),
            };
            let _ = writeln!(out, "| {bench} | {n} | {} | {} | {} | {vs_raw} | {vs_ts} |", cell(o), cell(r), cell(t));
        }
    }

    let _ = writeln!(
        out,
        "\n¹ The TanStack process gets the run's `--tanstack-timeout` (180 s by default; the skipped cells say which) for everything, filling the queue included; where it was \
         killed, even filling (or, for enqueue, the timed enqueues themselves) had not finished, so \
         there is no drain or open time to divide.\n"
    );
    out.push_str(&targets(rows));

    let _ = writeln!(out, "\n## Every result\n");
    let _ = writeln!(
        out,
        "| bench | system | n | ops/s | p50 ms | p99 ms | total ms | RSS MB |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows.values() {
        if let Some(why) = &r.skipped {
            let _ = writeln!(out, "| {} | {} | {} | skipped: {why} | | | | |", r.bench, r.system, r.n);
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.bench,
            r.system,
            r.n,
            num(r.ops_per_s, 0),
            ms(r.p50),
            ms(r.p99),
            ms(r.total),
            num(r.rss, 1)
        );
    }

    let _ = writeln!(out, "\n## Growth: t(100k) ÷ t(10k) (linear is 10; target ≤ 11)\n");
    let _ = writeln!(out, "| bench | system | t(10k) ms | t(100k) ms | ratio |\n| --- | --- | ---: | ---: | ---: |");
    let mut seen: Vec<(String, String)> = rows.keys().map(|k| (k.0.clone(), k.2.clone())).collect();
    seen.dedup();
    seen.sort();
    seen.dedup();
    for (bench, system) in &seen {
        let a = get(rows, bench, 10_000, system);
        let b = get(rows, bench, 100_000, system);
        if a.is_none() || b.is_none() {
            continue;
        }
        let g = match (a.and_then(|r| r.total), b.and_then(|r| r.total)) {
            (Some(x), Some(y)) if x > 0.0 => format!("{:.1}", y / x),
            _ => "–".into(),
        };
        let _ = writeln!(out, "| {bench} | {system} | {} | {} | {g} |", cell(a), cell(b));
    }
    let _ = writeln!(
        out,
        "\nThe read benches time a fixed 200 (get, list) or 50 (watch) operations, so their totals \
         measure per-operation cost at n documents rather than work proportional to n.\n"
    );

    if let Some(t) = torture {
        let _ = writeln!(out, "## Torture (crash/fault)\n\n### Kill -9\n");
        let _ = writeln!(
            out,
            "`outbox-bench torture --kills {kills}` (same machine, same session): client processes enqueue \
             and drain through the real HTTP transport into the in-process reference server with faults \
             on (default spec `500=0.1,429=0.05:1s,reset=0.05,drop_after_commit=0.1`) and are SIGKILLed at \
             random moments; every 10th life runs two clients on one database. `acked` = enqueues that \
             returned to the caller; `lost` = acked but never applied; `duplicates` = idempotency keys \
             applied more than once (server counters); `applied_without_ack` = committed, then killed before \
             the caller heard back (applied once, correctly); `lease_overlaps` = moments two live processes \
             both reported holding the drainer lease.\n\n```json\n{t}\n```\n",
            kills = t["kills"]
        );
    }
    out.push_str(power);

    let _ = writeln!(out, "![time against n, log-log](benchmarks.png)\n");
    out.push_str(FAIRNESS);
    out
}

/// The issue's targets against the measured figures (a miss is a finding).
fn targets(rows: &BTreeMap<Key, Row>) -> String {
    let mut out = String::from("## Targets (issues 10 and 17)\n\n| target | measured | met |\n| --- | --- | --- |\n");
    let mut line = |what: &str, measured: String, met: Option<bool>| {
        let m = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(out, "| {what} | {measured} | {m} |");
    };
    let big = rows.keys().map(|k| k.1).max().unwrap_or(0);
    let o = |b: &str| get(rows, b, big, "outbox");
    if let Some(x) = ratio(o("enqueue"), get(rows, "enqueue", big, "sqlite-raw")) {
        line(&format!("enqueue ≤ 1.5× raw SQLite (n={big})"), format!("{x:.2}×"), Some(x <= 1.5));
    }
    if let Some(p99) = o("enqueue").and_then(|r| r.p99) {
        line(&format!("enqueue p99 < 5 ms (n={big})"), format!("{p99:.2} ms"), Some(p99 < 5.0));
    }
    // Issue 17: drain-local ≥ 60k/s at the largest n; drain-http ≥ 10k/s at 10k and at it.
    let floors = [("drain-local", 60_000.0, big), ("drain-http", 10_000.0, 10_000), ("drain-http", 10_000.0, big)];
    for (i, (bench, floor, n)) in floors.into_iter().enumerate() {
        if i == 2 && n == 10_000 {
            continue;
        }
        if let Some(ops) = get(rows, bench, n, "outbox").and_then(|r| r.ops_per_s) {
            line(&format!("{bench} ≥ {floor:.0} commands/s (n={n})"), format!("{ops:.0}/s"), Some(ops >= floor));
        }
    }
    let ns: std::collections::BTreeSet<u64> = rows.keys().map(|k| k.1).collect();
    for &n in &ns {
        let (d, t) = (get(rows, "drain-local", n, "outbox"), get(rows, "drain-local", n, "tanstack"));
        if let (Some(x), Some(_)) = (ratio(t, d), t) {
            line(&format!("drain-local ≥ 20× TanStack (n={n})"), format!("{x:.0}×"), Some(x >= 20.0));
        }
    }
    if let Some(t) = get(rows, "crash-reopen", 1_000, "outbox-open").and_then(|r| r.total) {
        line("SIGKILLed with 1k queued: reopened offline < 10 ms", format!("{t:.1} ms"), Some(t < 10.0));
    }
    if let Some(t) = get(rows, "crash-reopen", 1_000, "outbox-drain").and_then(|r| r.total) {
        line("SIGKILLed with 1k queued: all applied on the server < 100 ms", format!("{t:.0} ms"), Some(t < 100.0));
    }
    if let Some(t) = get(rows, "reconnect-visible", 1_000, "outbox").and_then(|r| r.total) {
        line("1k sales queued offline visible on a second register < 100 ms", format!("{t:.0} ms"), Some(t < 100.0));
    }
    if let Some(t) = o("open").and_then(|r| r.total) {
        line(&format!("open with {big} pending < 1 s"), format!("{t:.1} ms"), Some(t < 1000.0));
    }
    if let Some(rss) = o("open").and_then(|r| r.rss) {
        line(
            &format!("RSS after open with {big} pending < 64 MB"),
            format!("{rss:.1} MB (whole bench process, after the earlier benches)"),
            Some(rss < 64.0),
        );
    }
    for bench in ["enqueue", "drain-local", "drain-http", "reconnect-visible", "open"] {
        let (a, b) = (get(rows, bench, 10_000, "outbox"), get(rows, bench, 100_000, "outbox"));
        if let Some(g) = ratio(b, a) {
            line(&format!("{bench}: t(100k)/t(10k) ≤ 11"), format!("{g:.1}"), Some(g <= 11.0));
        }
    }
    out.push_str("\nEach **no** is explained from profiles in [drain-profile.md](drain-profile.md).\n\n");
    out
}

const FAIRNESS: &str = "## What is compared (read before quoting a ratio)

- **outbox**: the engine as shipped. `enqueue` commits each command in its own SQLite
  transaction with WAL and `synchronous=FULL` (an fsync per command) before returning.
  `drain-local` and `open` use commands that also carry one optimistic document op each;
  `enqueue` writes the command alone (no optimistic op), while a TanStack transaction *is*
  its collection mutations, so its enqueue always includes the optimistic insert.
- **sqlite-raw**: rusqlite inserting the same bytes into a plain table with the same
  pragmas, one transaction per row: the floor for a durable SQLite enqueue.
- **tanstack**: `@tanstack/offline-transactions` 1.0.53 (with `@tanstack/db` 0.8.7) under
  Node, from the pinned harness in `rust/outbox-bench/tanstack/` (run as a child process,
  one bench and n per process, killed by PID after `--tanstack-timeout` seconds and reported as skipped).
  - Storage is an **in-memory** `StorageAdapter` (a `Map` of strings, async like IndexedDB).
    **Nothing is durable**: a crash loses the whole queue, and no fsync is ever paid. This
    favours TanStack on `enqueue`; a real IndexedDB or AsyncStorage adapter is slower.
  - Leader election always grants leadership; the online detector ignores the environment
    and is switched by the harness: offline while filling, online to start a drain, the same
    way the Rust bench opens with `start_online = false` and calls `set_online(true)`.
  - The mutation function is a no-op, like the Rust `ApplyAll` in-memory transport.
  - Each command is one transaction inserting one ~200-byte order into a TanStack DB
    collection; pending transactions keep their optimistic state on the collection (the
    library recomputes it on each change, which is where its time goes as n grows:
    `recomputeOptimisticState` dominates a CPU profile at 3k pending).
  - TanStack drains one transaction at a time; Outbox sends batches (50 per call here) with
    up to 4 calls in flight.
  - `open` for TanStack: a new collection and executor over the same in-memory storage,
    timed until the first mutation function call (restoring optimistic state included).
  - RSS for TanStack is the Node process (about 130 MB before any work); for Outbox it is the
    whole bench process.
- **drain-http**: the reference server (`outbox-server`) runs in the same process on
  127.0.0.1 with its own SQLite file (one transaction per batch, with each command's
  idempotency record); the engine drains through the real `HttpTransport` with 100 commands
  per request. TanStack has no server side to compare with here.
- **reconnect-visible**: register A holds n sales queued offline; register B, a second
  engine on its own file in the same workspace, is online with the server's live channel
  open. Time from A's `set_online(true)` until B's store holds all n (B pulls pages of
  1,000 when the server nudges it).
- **crash-reopen**: a client process holding n sales queued offline is SIGKILLed; the next
  process's `Outbox::open` is timed (`outbox-open`), then from `set_online(true)` until the
  server has applied all n (`outbox-drain`).
";

/// Time against n on log-log axes, one line per (bench, system).
fn chart(rows: &BTreeMap<Key, Row>, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let font = FONT_PATHS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no TTF font found (install fonts-dejavu-core: apt-get install -y fonts-dejavu-core)")?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "cannot load the font".to_string())?;

    let mut series: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.values() {
        if !["enqueue", "drain-local", "drain-http", "open"].contains(&r.bench.as_str()) {
            continue;
        }
        if let Some(t) = r.total.filter(|t| *t > 0.0) {
            series.entry((r.bench.clone(), r.system.clone())).or_default().push((r.n as f64, t));
        }
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, 0.0f64, f64::MAX, 0.0f64);
    for pts in series.values() {
        for &(x, y) in pts {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
    }
    if series.is_empty() {
        return Err("nothing to plot".into());
    }
    let (xmin, xmax) = (xmin / 1.5, xmax * 1.5);
    let (ymin, ymax) = (ymin / 2.0, ymax * 2.0);
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Outbox benchmarks: total time against n (log-log)", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("n (commands)")
        .y_desc("total time (ms)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| if *y >= 1.0 { format!("{y:.0}") } else { format!("{y:.2}") })
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    let color = |bench: &str| match bench {
        "enqueue" => RGBColor(31, 119, 180),
        "drain-local" => RGBColor(44, 160, 44),
        "drain-http" => RGBColor(148, 103, 189),
        _ => RGBColor(214, 39, 40),
    };
    for ((bench, system), mut pts) in series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(&bench);
        let (width, c) = match system.as_str() {
            "outbox" => (3, c.to_rgba()),
            "sqlite-raw" => (1, c.mix(0.6)),
            _ => (2, c.mix(0.45)),
        };
        let label = format!("{bench} · {system}");
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(width)))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(width)));
        let filled = system == "outbox";
        match system.as_str() {
            "tanstack" => {
                chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 6, c.filled()))).map_err(e)?;
            }
            _ => {
                let style = if filled { c.filled() } else { c.stroke_width(1) };
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, style))).map_err(e)?;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
