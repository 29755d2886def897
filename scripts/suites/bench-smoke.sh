#!/usr/bin/env bash
# Suite `bench-smoke`: every benchmark at a tiny n, a short torture run and the report
# generator (see scripts/bench-smoke.sh). Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
exec ./scripts/bench-smoke.sh
