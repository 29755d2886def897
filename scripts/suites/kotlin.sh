#!/usr/bin/env bash
# Suite `kotlin`: the generated Kotlin bindings on a real JVM against the real library and
# the real reference server on loopback, plus the Android adapters' logic (compiled against
# small stubs of the Android system classes, which cannot run here), and shellcheck over
# the scripts (scripts/build-android.sh and build-ios.sh cannot run here).
#
# 1. builds the workspace and checks that the checked-in Kotlin and Swift bindings are what
#    the library generates (scripts/generate-bindings.sh --check);
# 2. installs JNA and JUnit 5 (Debian) and the pinned kotlin-compiler (npm), idempotently;
# 3. compiles bindings + tests with kotlinc and runs them with a JUnit Platform runner that
#    ends with `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
resolve_target_dir
ensure_apt libjna-java junit5 default-jre-headless shellcheck

ROOT=$PWD
LIB_DIR=$OUTBOX_TARGET_DIR/debug
KT_TOOLS=$ROOT/bindings/kotlin/tools
OUT=$ROOT/build/kotlin

log "kotlin: shellcheck (build scripts for Android/iOS, suites)"
shellcheck -x scripts/*.sh scripts/suites/*.sh

log "kotlin: build + generated bindings up to date"
./scripts/generate-bindings.sh --check

log "kotlin: kotlin-compiler (npm)"
command -v npm >/dev/null || { echo "npm is required (Node.js >= 20)" >&2; exit 1; }
(cd "$KT_TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
KC=$KT_TOOLS/node_modules/kotlin-compiler
KL=$KC/lib
J=/usr/share/java
CP="$J/jna.jar:$KL/kotlinx-coroutines-core-jvm.jar:$KL/kotlin-test.jar:$KL/kotlin-test-junit5.jar"
CP="$CP:$J/junit-jupiter-api.jar:$J/junit-platform-launcher.jar:$J/junit-platform-engine.jar"
CP="$CP:$J/junit-platform-commons.jar:$J/opentest4j.jar:$J/apiguardian-api.jar"

sources=(bindings/kotlin/uniffi/outbox_ffi/outbox_ffi.kt bindings/kotlin/tests/*.kt)
packages=(outbox.tests)
# The Android adapters and their JVM tests, when present (OUTBOX_KOTLIN_ANDROID=0 skips them).
if [ "${OUTBOX_KOTLIN_ANDROID:-1}" = 1 ] && [ -d android/src/main/kotlin ] && [ -d android/src/jvmTest ]; then
  mapfile -t android_sources < <(find android/src/main/kotlin android/src/jvmTest -name '*.kt' | sort)
  sources+=("${android_sources[@]}")
  packages+=(dev.outbox.android.tests)
fi

log "kotlin: kotlinc (${#sources[@]} files)"
rm -rf "$OUT" && mkdir -p "$OUT"
"$KC/bin/kotlinc" -nowarn -jvm-target 17 "${sources[@]}" -cp "$CP" -d "$OUT/classes"

log "kotlin: JVM tests"
[ -x "$LIB_DIR/outbox-server" ] || { echo "missing $LIB_DIR/outbox-server" >&2; exit 1; }
# Expected panics (throwing test callbacks) print one line each, not a backtrace.
RUST_BACKTRACE=0 OUTBOX_SERVER_BIN=$LIB_DIR/outbox-server java -Djna.library.path="$LIB_DIR" \
  -cp "$OUT/classes:$CP:$KL/kotlin-stdlib.jar:$J/junit-jupiter-engine.jar" \
  outbox.testrunner.RunTestsKt "${packages[@]}"
