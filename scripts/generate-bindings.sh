#!/usr/bin/env bash
# Builds the FFI library and writes the generated Kotlin (bindings/kotlin/) and Swift
# (bindings/swift/) bindings, which are checked in.
#
#   ./scripts/generate-bindings.sh           regenerate
#   ./scripts/generate-bindings.sh --check   regenerate and fail if the checked-in files differ
#
# The workspace is built with --workspace and the bindgen called by path: building
# `-p uniffi-bindgen` alone would rebuild uniffi without the tokio feature (TOOLCHAIN.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/suites/lib.sh
ensure_rust
resolve_target_dir

check=0
[ "${1:-}" = "--check" ] && check=1

cargo_locked build --workspace --quiet
LIB=$OUTBOX_TARGET_DIR/debug/liboutbox_ffi.so
BINDGEN=$OUTBOX_TARGET_DIR/debug/uniffi-bindgen
KT_OUT=bindings/kotlin
SWIFT_OUT=bindings/swift/Sources/OutboxFFI

"$BINDGEN" generate --library "$LIB" --language kotlin --out-dir "$KT_OUT" --no-format >/dev/null
"$BINDGEN" generate --library "$LIB" --language swift --out-dir "$SWIFT_OUT" --no-format >/dev/null
# The C header and module map form the `outbox_ffiFFI` C module: a SwiftPM C target here
# (bindings/swift/Package.swift, for `swift test` on a Mac) and the XCFramework's Headers
# (scripts/build-ios.sh).
FFI_INCLUDE=bindings/swift/Sources/outbox_ffiFFI/include
mkdir -p "$FFI_INCLUDE"
mv "$SWIFT_OUT/outbox_ffiFFI.h" "$FFI_INCLUDE/"
mv "$SWIFT_OUT/outbox_ffiFFI.modulemap" "$FFI_INCLUDE/module.modulemap"

if [ "$check" -eq 1 ]; then
  paths=(bindings/kotlin/uniffi bindings/swift/Sources)
  # Differences from the index, and generated files git does not know: both mean stale.
  changes=$(git diff --name-only -- "${paths[@]}"; git ls-files --others --exclude-standard -- "${paths[@]}")
  if [ -n "$changes" ]; then
    echo "generated bindings differ from the checked-in files; run ./scripts/generate-bindings.sh and commit:" >&2
    echo "$changes" >&2
    git --no-pager diff --stat -- "${paths[@]}" >&2 || true
    exit 1
  fi
  echo "generated bindings are up to date"
fi
