#!/usr/bin/env bash
# Suite `rust`: builds the whole workspace (all targets) and runs every crate's tests
# except the reference server's, which the `server` suite runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
log "rust: build (workspace, all targets)"
cargo_locked build --workspace --all-targets
log "rust: cargo doc (public docs of the core and the FFI crate, links checked)"
RUSTDOCFLAGS="-D warnings" cargo_locked doc --no-deps -p outbox -p outbox-ffi
log "rust: cargo test"
cargo_locked test --workspace --exclude outbox-server
