#!/usr/bin/env bash
# bench-smoke: builds outbox-bench (release), runs every bench at a tiny n (TanStack side
# by side included when node is on PATH), a short crash/fault torture, and the report
# generator into a temp dir, and a short power-cut torture (crash VFS, Durability::Full);
# validates every JSON line. Last line: "N passed, N failed".
#
#   ./scripts/bench-smoke.sh                 # n=200, 20 kills, 20 power cuts
#   BENCH_SMOKE_N=500 BENCH_SMOKE_KILLS=40 BENCH_SMOKE_CUTS=40 ./scripts/bench-smoke.sh
#
# cargo runs under `flock /tmp/outbox-cargo.lock` (shared build machine); set
# BENCH_SMOKE_NO_LOCK=1 when the caller already holds that lock.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

N="${BENCH_SMOKE_N:-200}"
KILLS="${BENCH_SMOKE_KILLS:-20}"
CUTS="${BENCH_SMOKE_CUTS:-20}"
HARNESS=rust/outbox-bench/tanstack
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

cargo_() {
  if [ -n "${BENCH_SMOKE_NO_LOCK:-}" ] || ! command -v flock >/dev/null 2>&1; then
    cargo "$@"
  else
    flock /tmp/outbox-cargo.lock cargo "$@"
  fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if cargo_ build --release -p outbox-bench >"$work/build.log" 2>&1; then
  pass "build outbox-bench (release)"
else
  tail -30 "$work/build.log"
  fail "build outbox-bench (release)"
  finish
fi
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${target_dir:-target}/release/outbox-bench"

# Node side: pinned deps, installed only when the lockfile changed since the last npm ci.
tanstack_flag=--no-tanstack
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if cmp -s "$HARNESS/package-lock.json" "$HARNESS/node_modules/.outbox-lock-stamp" 2>/dev/null; then
    pass "tanstack harness deps already installed"
    tanstack_flag=--with-tanstack
  elif (cd "$HARNESS" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1 \
    && cp "$HARNESS/package-lock.json" "$HARNESS/node_modules/.outbox-lock-stamp"; then
    pass "npm ci (tanstack harness)"
    tanstack_flag=--with-tanstack
  else
    tail -20 "$work/npm.log"
    fail "npm ci (tanstack harness)"
  fi
else
  echo "node not found: TanStack side by side not run"
fi

# Every bench at a tiny n.
if "$BIN" --n "$N" "$tanstack_flag" >"$work/results.jsonl" 2>"$work/bench.err"; then
  pass "outbox-bench --n $N $tanstack_flag"
else
  cat "$work/bench.err"
  fail "outbox-bench --n $N $tanstack_flag"
fi
expected="enqueue/outbox enqueue/sqlite-raw drain-local/outbox drain-http/outbox reconnect-visible/outbox crash-reopen/outbox-open crash-reopen/outbox-drain open/outbox read-get/outbox read-list50/outbox read-watch/outbox"
if [ "$tanstack_flag" = --with-tanstack ]; then
  expected="$expected enqueue/tanstack drain-local/tanstack open/tanstack"
fi

validate() { # file, expected "bench/system" pairs
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$@" <<'EOF'
import json, sys
path, expected = sys.argv[1], sys.argv[2].split()
fields = ["bench", "system", "n", "ops_per_s", "p50_ms", "p99_ms", "total_ms", "rss_mb"]
seen, bad = set(), 0
for i, line in enumerate(open(path), 1):
    try:
        v = json.loads(line)
    except ValueError as e:
        print(f"line {i} is not JSON: {e}: {line.strip()}"); bad += 1; continue
    missing = [f for f in fields if f not in v]
    if missing:
        print(f"line {i} lacks {missing}: {line.strip()}"); bad += 1; continue
    if "skipped" not in v and not (isinstance(v["total_ms"], (int, float)) and v["total_ms"] > 0):
        print(f"line {i} has no positive total_ms: {line.strip()}"); bad += 1
    seen.add(f"{v['bench']}/{v['system']}")
for e in expected:
    if e not in seen:
        print(f"no result for {e}"); bad += 1
sys.exit(1 if bad else 0)
EOF
  else
    # shellcheck disable=SC2016 # a JavaScript program, not shell
    node -e '
const fs = require("fs"); const [path, exp] = process.argv.slice(1);
const fields = ["bench","system","n","ops_per_s","p50_ms","p99_ms","total_ms","rss_mb"];
let bad = 0; const seen = new Set();
fs.readFileSync(path, "utf8").split("\n").filter(Boolean).forEach((l, i) => {
  let v; try { v = JSON.parse(l) } catch (e) { console.log(`line ${i+1} not JSON`); bad++; return }
  const m = fields.filter(f => !(f in v)); if (m.length) { console.log(`line ${i+1} lacks ${m}`); bad++; return }
  if (!("skipped" in v) && !(v.total_ms > 0)) { console.log(`line ${i+1} no total_ms`); bad++ }
  seen.add(`${v.bench}/${v.system}`);
});
exp.split(" ").forEach(e => { if (!seen.has(e)) { console.log(`no result for ${e}`); bad++ } });
process.exit(bad ? 1 : 0);' "$@"
  fi
}
if validate "$work/results.jsonl" "$expected"; then
  pass "result lines parse and cover: $expected"
else
  fail "result lines"
fi

# Report generator (into the temp dir; docs/ is only written by the full manual run).
if "$BIN" report --input "$work/results.jsonl" --out-dir "$work/docs" 2>"$work/report.err" \
  && [ -s "$work/docs/benchmarks.md" ] && [ -s "$work/docs/benchmarks.png" ]; then
  pass "report writes benchmarks.md and benchmarks.png"
else
  cat "$work/report.err"
  fail "report"
fi

# Crash/fault torture, bounded.
if timeout 300 "$BIN" torture --kills "$KILLS" --max-secs 240 >"$work/torture.out" 2>"$work/torture.err"; then
  pass "torture --kills $KILLS: $(tail -1 "$work/torture.out")"
else
  tail -20 "$work/torture.err"
  fail "torture --kills $KILLS: $(tail -1 "$work/torture.out" 2>/dev/null)"
fi

# Power-cut torture, bounded: exits non-zero unless lost, duplicates, integrity failures,
# op/queue mismatches, lease regressions and overlaps are all 0 under Durability::Full.
if timeout 300 "$BIN" torture --power-cut --cuts "$CUTS" --max-secs 240 >"$work/powercut.out" 2>"$work/powercut.err" \
  && grep -q '"lost":0,' "$work/powercut.out" && grep -q '"integrity_failures":0,' "$work/powercut.out"; then
  pass "torture --power-cut --cuts $CUTS: $(tail -1 "$work/powercut.out")"
else
  tail -20 "$work/powercut.err"
  fail "torture --power-cut --cuts $CUTS: $(tail -1 "$work/powercut.out" 2>/dev/null)"
fi

finish
