#!/usr/bin/env bash
# The JavaScript thread while enqueueing through the React Native API (N-API flavour),
# side by side in one run with the Rust enqueue bench:
#
#   ./scripts/bench-rn.sh [N]                 this checkout (default N = 10000)
#   BEFORE_REV=<rev> ./scripts/bench-rn.sh    also the same bench on <rev> (e.g. the commit
#                                             before the async FFI), built in a worktree
#
# Prints JSON lines (`outbox-bench` format plus stall_p99_ms / stall_max_ms) and a summary
# of the TypeScript throughput against Rust. Release builds; nothing is installed beyond
# what the rn suite installs (run `./scripts/test.sh rn` once first).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/suites/lib.sh
ensure_rust
resolve_target_dir

N=${1:-10000}
ROOT=$PWD
RN=$ROOT/react-native
OUT=$RN/bench-gen # gitignored; under react-native/ so node resolves its node_modules
UBRN_TARGET=${UBRN_TARGET_DIR:-$HOME/.cache/ubrn-target}
ubrn() { flock /tmp/outbox-cargo.lock env CARGO_TARGET_DIR="$UBRN_TARGET" node "$RN/node_modules/uniffi-bindgen-react-native/bin/cli.cjs" "$@"; }
[ -d "$RN/node_modules/uniffi-bindgen-react-native" ] || { echo "run ./scripts/test.sh rn once first (npm ci, ubrn CLI)" >&2; exit 1; }

# napi_for <library> <out dir>: the generated N-API bindings with the library beside them.
napi_for() {
  rm -rf "$2"
  ubrn generate napi bindings --library --no-format --ts-dir "$2" --lib-colocated "$1" >/dev/null
  cp "$1" "$2/"
}

rm -rf "$OUT" && mkdir -p "$OUT"
results=$OUT/results.jsonl
: >"$results"

log "bench-rn: release build (this checkout)"
cargo_locked build --release --quiet -p outbox-ffi -p outbox-bench
napi_for "$OUTBOX_TARGET_DIR/release/liboutbox_ffi.so" "$OUT/after"

if [ -n "${BEFORE_REV:-}" ]; then
  log "bench-rn: release build of $BEFORE_REV (worktree)"
  git worktree remove --force "$OUT/before-src" 2>/dev/null || true
  git worktree add --detach "$OUT/before-src" "$BEFORE_REV" >/dev/null
  trap 'git -C "$ROOT" worktree remove --force "$OUT/before-src" 2>/dev/null || true' EXIT
  (cd "$OUT/before-src" && CARGO_TARGET_DIR="$ROOT/target/bench-before" cargo_locked build --release --quiet -p outbox-ffi)
  napi_for "$ROOT/target/bench-before/release/liboutbox_ffi.so" "$OUT/before"
  log "bench-rn: TypeScript enqueue at $BEFORE_REV"
  (cd "$RN" && BENCH_N=$N BENCH_LABEL="outbox-ts@$BEFORE_REV" OUTBOX_NAPI_DIR="$OUT/before" \
    OUTBOX_API_DIR="$OUT/before-src/react-native/src/api" node --import tsx bench/enqueue-stall.ts) | tee -a "$results"
fi

log "bench-rn: TypeScript enqueue (this checkout)"
(cd "$RN" && BENCH_N=$N OUTBOX_NAPI_DIR="$OUT/after" node --import tsx bench/enqueue-stall.ts) | tee -a "$results"

log "bench-rn: Rust enqueue (same run)"
"$OUTBOX_TARGET_DIR/release/outbox-bench" --bench enqueue --n "$N" --no-tanstack | grep '"system":"outbox"' | tee -a "$results"

# The summary is JavaScript in single quotes: its ${...} are JS template fields, not shell.
# shellcheck disable=SC2016
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const rust = lines.find((l) => l.bench === "enqueue" && l.system === "outbox");
for (const l of lines.filter((l) => l.bench === "rn-enqueue")) {
  const ratio = rust ? (rust.ops_per_s / l.ops_per_s).toFixed(2) : "?";
  console.log(`${l.system.padEnd(28)} ${l.mode.padEnd(10)} ${String(l.ops_per_s).padStart(6)}/s  stall p99 ${l.stall_p99_ms} ms  max ${l.stall_max_ms} ms  timer ticks ${l.timer_ticks}  Rust/TS ${ratio}x`);
}
if (rust) console.log(`rust enqueue: ${rust.ops_per_s}/s, p99 ${rust.p99_ms} ms`);
' "$results"
