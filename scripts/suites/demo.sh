#!/usr/bin/env bash
# Suite `demo`: the README's main job as a smoke test — the default POS simulation
# (`cargo run -p outbox-demo`) and the kill -9 run of issue 9, checked from its JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
resolve_target_dir
log "demo: build"
cargo_locked build -p outbox-demo
passed=0
failed=0
log "demo: default run"
if "$OUTBOX_TARGET_DIR/debug/outbox-demo" --seed 1; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
log "demo: --crash --orders 300 --json"
out="$("$OUTBOX_TARGET_DIR/debug/outbox-demo" --crash --orders 300 --seed 2 --json)" || true
printf '%s\n' "$out" | tail -n 12
last="$(printf '%s\n' "$out" | tail -n 1)"
if [[ "$last" == *'"lost":0,'* && "$last" == *'"duplicates":0,'* && "$last" == *'"stock_mismatches":0,'* && "$last" == *'"ok":true'* ]]; then
  passed=$((passed + 1))
else
  echo "crash run did not verify: $last" >&2
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
