#!/usr/bin/env bash
# Suite `server`: the reference server's protocol, fault and exactly-once tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
log "server: cargo test -p outbox-server"
cargo_locked test -p outbox-server
