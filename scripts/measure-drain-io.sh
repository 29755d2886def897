#!/usr/bin/env bash
# Counts what the drain asks of the disk: runs `outbox-bench --bench BENCH --n N` under
# strace and counts, between the bench's drain-start and drain-end markers, on the
# client's database only (the reference server of drain-http runs in the same process):
#
# * fsync and fdatasync calls, per 1k commands;
# * WAL frames per command (`wal_frames_per_command`): SQLite appends each page a commit
#   changed as one frame, a 24-byte frame header write followed by the page write, so the
#   24-byte writes to `<db>-wal` count the pages written;
# * checkpoint page writes per command (writes of WAL pages back into `<db>`), counted from
#   drain-start until the process exits, so that the checkpoint after the drain (when idle,
#   and when the engine closes) counts too; `fsyncs_to_exit` likewise;
# * every pwrite64 on the client's files per command (the older figure).
#
#   ./scripts/measure-drain-io.sh [N] [path/to/outbox-bench] [drain-local|drain-http]
#
# Needs strace (apt-get install strace). Timing under strace is meaningless: this reports
# counts only; speed comes from outbox-bench itself.
set -euo pipefail
n=${1:-10000}
bin=${2:-target/release/outbox-bench}
bench=${3:-drain-local}
case "$bench" in drain-local) db=bench.db ;; drain-http) db=bench.db ;; *) echo "bench: drain-local or drain-http" >&2; exit 2 ;; esac
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 2; }
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p outbox-bench" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
OUTBOX_BENCH_IO_MARKS=1 strace -f -y -o "$log" -e trace=fsync,fdatasync,pwrite64,write \
  "$bin" --bench "$bench" --n "$n" --no-tanstack >/dev/null 2>&1
awk -v n="$n" -v bench="$bench" -v db="/$db" '
  /io-mark drain-start/ { on = 1; after = 1; next }
  /io-mark drain-end/ { on = 0 }
  !after { next }
  # The fd argument reads <path>; keep the client database, its WAL and its journal.
  { if (!match($0, /\(([0-9]+)<[^>]*>/)) next; fd = substr($0, RSTART, RLENGTH) }
  index(fd, db "-wal>") { wal = 1 } !index(fd, db "-wal>") { wal = 0 }
  index(fd, db ">") { main = 1 } !index(fd, db ">") { main = 0 }
  !wal && !main { next }
  /(fsync|fdatasync)\(/ { all_syncs++ }
  main && /pwrite64\(/ { ckpt++ }
  !on { next }
  /(fsync|fdatasync)\(/ { syncs++ }
  /pwrite64\(/ { writes++ }
  # (strace -f may split a call across two lines: match the arguments, not the result)
  wal && /pwrite64\(.*"(\.\.\.)?, 24, [0-9]+/ { frames++ }
  END {
    if (n == 0) exit 1
    printf "{\"bench\":\"%s-io\",\"n\":%d,\"fsyncs\":%d,\"fsyncs_per_1k\":%.1f,\"fsyncs_to_exit\":%d,\"wal_frames\":%d,\"wal_frames_per_command\":%.3f,\"checkpoint_pages_per_command\":%.3f,\"pwrites_per_command\":%.2f}\n",
      bench, n, syncs, syncs * 1000 / n, all_syncs, frames, frames / n, ckpt / n, writes / n
  }' "$log"
