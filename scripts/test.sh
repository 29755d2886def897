#!/usr/bin/env bash
# Runs every test suite (default) or the named ones: ./scripts/test.sh [suite ...]
#
# Each suite is a script in scripts/suites/<name>.sh; the order below is the order they
# run in (cheap and fundamental first). A suite installs what it needs, idempotently, and
# exits non-zero on any failure. This script fails loudly if any suite fails.
#
# cargo runs under `flock /tmp/outbox-cargo.lock` so that two builds never share the two
# cores of the build machine; suites export OUTBOX_CARGO_LOCKED=1 to nested scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDER=(rust server kotlin swift rn demo bench-smoke)
ALL_SUITES=()
for s in "${ORDER[@]}"; do
  [ -f "scripts/suites/$s.sh" ] && ALL_SUITES+=("$s")
done

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=("${ALL_SUITES[@]}")

for s in "${suites[@]}"; do
  if [ ! -f "scripts/suites/$s.sh" ]; then
    echo "unknown suite '$s' (known: ${ALL_SUITES[*]})" >&2
    exit 2
  fi
done

failed=()
for s in "${suites[@]}"; do
  printf '\n===== suite: %s =====\n' "$s"
  start=$(date +%s)
  if bash "scripts/suites/$s.sh"; then
    printf '===== suite %s passed in %ss =====\n' "$s" "$(($(date +%s) - start))"
  else
    printf '===== suite %s FAILED after %ss =====\n' "$s" "$(($(date +%s) - start))" >&2
    failed+=("$s")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}" >&2
  exit 1
fi
echo "all suites passed: ${suites[*]}"
