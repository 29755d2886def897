#!/usr/bin/env bash
# Kotlin per-call benchmark (bindings/kotlin/bench) against the release library, with the
# Rust-side enqueue bench at the same n in the same run for the ratio:
#   ./scripts/bench-kotlin.sh [n]     (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/suites/lib.sh
ensure_rust
ensure_apt libjna-java
n=${1:-10000}
cargo_locked build --release -p outbox-ffi -p outbox-bench --quiet
(cd bindings/kotlin/tools && npm ci --no-audit --no-fund --loglevel=error)
KC=bindings/kotlin/tools/node_modules/kotlin-compiler
OUT=build/kotlin-bench
rm -rf "$OUT" && mkdir -p "$OUT"
CP="/usr/share/java/jna.jar:$KC/lib/kotlinx-coroutines-core-jvm.jar"
"$KC/bin/kotlinc" -nowarn -jvm-target 17 bindings/kotlin/uniffi/outbox_ffi/outbox_ffi.kt bindings/kotlin/bench/*.kt -cp "$CP" -d "$OUT"
java -Djna.library.path=target/release -cp "$OUT:$CP:$KC/lib/kotlin-stdlib.jar" outbox.bench.EnqueueBenchKt "$n"
target/release/outbox-bench --bench enqueue --n "$n" --no-tanstack
