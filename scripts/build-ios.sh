#!/usr/bin/env bash
# Builds OutboxFFI.xcframework for iOS: the Rust library as a static library for devices
# (aarch64-apple-ios) and simulators (aarch64-apple-ios-sim + x86_64-apple-ios, merged with
# lipo), stripped of debug info, with the generated C header and module map
# (bindings/swift/Sources/outbox_ffiFFI/include). Then zips it and prints the SwiftPM checksum
# for a release (see docs/ios.md).
#
#   ./scripts/build-ios.sh            -> build/ios/OutboxFFI.xcframework (+ .zip, checksum)
#
# Needs: macOS with Xcode (xcodebuild, lipo, strip, swift), rustup.
# Environment: IPHONEOS_DEPLOYMENT_TARGET (default 15.0, the Package.swift minimum).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  printf 'build-ios.sh: %s\n' "$*" >&2
  exit 1
}

CRATE=outbox-ffi
LIB=liboutbox_ffi.a
DEVICE=aarch64-apple-ios
SIMS=(aarch64-apple-ios-sim x86_64-apple-ios)
HEADERS_SRC=bindings/swift/Sources/outbox_ffiFFI/include
OUT=build/ios
XCF=$OUT/OutboxFFI.xcframework
ZIP=$OUT/OutboxFFI.xcframework.zip
export IPHONEOS_DEPLOYMENT_TARGET=${IPHONEOS_DEPLOYMENT_TARGET:-15.0}

# --- toolchain checks: fail before building anything ------------------------------------
[ "$(uname -s)" = Darwin ] || die "iOS libraries can only be built on macOS with Xcode (this is $(uname -s))"
command -v xcodebuild >/dev/null 2>&1 || die "xcodebuild not found: install Xcode from the App Store, then run 'sudo xcode-select -s /Applications/Xcode.app'"
xcodebuild -version >/dev/null 2>&1 || die "xcodebuild does not work (Command Line Tools alone are not enough): install Xcode, then 'sudo xcode-select -s /Applications/Xcode.app'"
for tool in lipo strip swift ditto; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: it ships with Xcode ('sudo xcode-select -s /Applications/Xcode.app')"
done
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
command -v rustup >/dev/null 2>&1 || die "rustup not found: install Rust from https://rustup.rs (the iOS targets are added with rustup)"
for f in outbox_ffiFFI.h module.modulemap; do
  [ -f "$HEADERS_SRC/$f" ] || die "generated $HEADERS_SRC/$f is missing: run ./scripts/generate-bindings.sh"
done

installed_targets=$(rustup target list --installed)
for triple in "$DEVICE" "${SIMS[@]}"; do
  if ! grep -qx "$triple" <<<"$installed_targets"; then
    echo "adding Rust target $triple"
    rustup target add "$triple"
  fi
done

# --- build: one static library per target -------------------------------------------------
# The shipped library: whole-program LTO and one codegen unit (smaller; see
# build-android.sh). Panics stay `unwind`: the FFI catches them at the boundary.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
for triple in "$DEVICE" "${SIMS[@]}"; do
  echo "building $CRATE (release, staticlib) for $triple"
  cargo rustc -p "$CRATE" --lib --release --locked --target "$triple" --crate-type staticlib
  [ -f "target/$triple/release/$LIB" ] || die "cargo did not produce target/$triple/release/$LIB"
done

rm -rf "$OUT" && mkdir -p "$OUT/device" "$OUT/simulator" "$OUT/headers"
cp "target/$DEVICE/release/$LIB" "$OUT/device/$LIB"
sim_libs=()
for triple in "${SIMS[@]}"; do sim_libs+=("target/$triple/release/$LIB"); done
lipo -create "${sim_libs[@]}" -output "$OUT/simulator/$LIB"

# Debug info only: global and local symbols stay (the Swift bindings link against them).
strip -S "$OUT/device/$LIB" "$OUT/simulator/$LIB"

# The C module `outbox_ffiFFI` the generated Swift imports.
cp "$HEADERS_SRC/outbox_ffiFFI.h" "$HEADERS_SRC/module.modulemap" "$OUT/headers/"

# --- XCFramework, zip, checksum -----------------------------------------------------------
xcodebuild -create-xcframework \
  -library "$OUT/device/$LIB" -headers "$OUT/headers" \
  -library "$OUT/simulator/$LIB" -headers "$OUT/headers" \
  -output "$XCF"

(cd "$OUT" && ditto -c -k --sequesterRsrc --keepParent "$(basename "$XCF")" "$(basename "$ZIP")")
checksum=$(swift package compute-checksum "$ZIP")

cat <<MSG

built $XCF
  device:    $(lipo -archs "$OUT/device/$LIB")
  simulator: $(lipo -archs "$OUT/simulator/$LIB")
zipped $ZIP
checksum $checksum

Local development: Package.swift uses $XCF while releaseChecksum is empty
(or when OUTBOX_LOCAL_XCFRAMEWORK=1).
Release: upload $ZIP as a release asset of tag <version>, then set in Package.swift
  let releaseTag = "<version>"
  let releaseChecksum = "$checksum"
and commit that before tagging (see docs/ios.md).
MSG
