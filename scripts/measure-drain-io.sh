#!/usr/bin/env bash
# Counts what the drain asks of the disk: runs `outbox-bench --bench drain-local --n N` under
# strace and counts, between the bench's drain-start and drain-end markers, the fsync and
# fdatasync calls (per 1k commands) and the pwrite64 calls (per command: SQLite writes a WAL
# frame as a header write and a page write, and a checkpoint one write per page).
#
#   ./scripts/measure-drain-io.sh [N] [path/to/outbox-bench]
#
# Needs strace (apt-get install strace). Timing under strace is meaningless: this reports
# counts only; speed comes from outbox-bench itself.
set -euo pipefail
n=${1:-10000}
bin=${2:-target/release/outbox-bench}
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 2; }
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p outbox-bench" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
OUTBOX_BENCH_IO_MARKS=1 strace -f -o "$log" -e trace=fsync,fdatasync,pwrite64,write \
  "$bin" --bench drain-local --n "$n" --no-tanstack >/dev/null 2>&1
awk -v n="$n" '
  /io-mark drain-start/ { on = 1; next }
  /io-mark drain-end/ { on = 0 }
  on && /(fsync|fdatasync)\(/ { syncs++ }
  on && /pwrite64\(/ { writes++ }
  END {
    if (n == 0) exit 1
    printf "{\"bench\":\"drain-io\",\"n\":%d,\"fsyncs\":%d,\"fsyncs_per_1k\":%.1f,\"pwrites\":%d,\"pwrites_per_command\":%.2f}\n",
      n, syncs, syncs * 1000 / n, writes, writes / n
  }' "$log"
