#!/usr/bin/env bash
# Suite `server`: the reference server's protocol, fault and exactly-once tests, run
# against both backends: SQLite, and PostgreSQL in a private throwaway cluster on
# 127.0.0.1 (installed from Debian's packages when missing). The `postgres::` test
# variants read OUTBOX_TEST_DATABASE_URL, which this script always sets; with
# OUTBOX_TEST_REQUIRE_POSTGRES=1 a PostgreSQL test that would skip fails instead, and the
# suite also fails if any test printed "SKIPPED" (a plain `cargo test` prints that line).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
ensure_apt postgresql
trap stop_private_postgres EXIT
log "server: private PostgreSQL cluster"
# Durability is not under test here: fsync off keeps the suite fast.
start_private_postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off
export OUTBOX_TEST_DATABASE_URL="$PG_URL"
export OUTBOX_TEST_REQUIRE_POSTGRES=1
log "server: cargo test -p outbox-server (SQLite and PostgreSQL)"
test_log="$(mktemp)"
trap 'rm -f "$test_log"; stop_private_postgres' EXIT
cargo_locked test -p outbox-server 2>&1 | tee "$test_log"
skipped="$(grep -c '^SKIPPED ' "$test_log" || true)"
if [ "$skipped" -ne 0 ]; then
  grep '^SKIPPED ' "$test_log"
  echo "server: $skipped PostgreSQL tests were skipped; this suite must run them all" >&2
  exit 1
fi
log "server: load smoke (2 nodes over PostgreSQL, 20 clients, 2 s, exactly-once check)"
cargo_locked run -q -p outbox-bench -- load --clients 20 --nodes 2 --secs 2 --database-url "$PG_URL"
