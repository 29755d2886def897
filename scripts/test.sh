#!/usr/bin/env bash
# Runs every test suite (default) or the named ones: ./scripts/test.sh [rust ...]
# Installs what it needs, idempotently. Fails loudly if any suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_SUITES=(rust)
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=("${ALL_SUITES[@]}")

log() { printf '\n=== %s ===\n' "$*"; }

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is required (install Rust with rustup)" >&2
    exit 1
  fi
}

suite_rust() {
  ensure_rust
  log "rust: build"
  cargo build --workspace --all-targets
  log "rust: cargo test"
  cargo test --workspace
}

failed=()
for s in "${suites[@]}"; do
  if ! declare -F "suite_$s" >/dev/null; then
    echo "unknown suite '$s' (known: ${ALL_SUITES[*]})" >&2
    exit 2
  fi
  if ! "suite_$s"; then
    failed+=("$s")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}" >&2
  exit 1
fi
echo "all suites passed: ${suites[*]}"
