#!/usr/bin/env bash
# Builds liboutbox_ffi.so for Android (arm64-v8a, armeabi-v7a, x86_64; release) with
# cargo-ndk, 16 KB page-aligned (required for Android 15+ devices with 16 KB pages),
# stripped, into android/src/main/jniLibs/<abi>/ where the Gradle module packages them.
#
#   ./scripts/build-android.sh                  all three ABIs
#   ./scripts/build-android.sh arm64-v8a        only the ABIs named (e.g. for a device build)
#
# Needs: rustup, cargo-ndk (cargo install cargo-ndk), and the Android NDK r26 or newer in
# ANDROID_NDK_HOME (Android Studio > SDK Manager > SDK Tools > NDK (Side by side)).
# Environment: OUTBOX_ANDROID_API (minSdk the library is linked for, default 24).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  printf 'build-android.sh: %s\n' "$*" >&2
  exit 1
}

ALL_ABIS=(arm64-v8a armeabi-v7a x86_64)
API=${OUTBOX_ANDROID_API:-24}
OUT=android/src/main/jniLibs
CRATE=outbox-ffi
LIB=liboutbox_ffi.so

if [ "$#" -gt 0 ]; then
  ABIS=("$@")
else
  ABIS=("${ALL_ABIS[@]}")
fi

triple_of() {
  case "$1" in
    arm64-v8a) echo aarch64-linux-android ;;
    armeabi-v7a) echo armv7-linux-androideabi ;;
    x86_64) echo x86_64-linux-android ;;
    *) die "unknown ABI '$1' (expected one of: ${ALL_ABIS[*]})" ;;
  esac
}

# --- toolchain checks: fail before building anything ------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
command -v rustup >/dev/null 2>&1 || die "rustup not found: install Rust from https://rustup.rs (the Android targets are added with rustup)"
cargo ndk --version >/dev/null 2>&1 || die "cargo-ndk not found: install it with 'cargo install cargo-ndk'"
[ -n "${ANDROID_NDK_HOME:-}" ] || die "ANDROID_NDK_HOME is not set: install the NDK (Android Studio > SDK Manager > SDK Tools > NDK (Side by side), or 'sdkmanager \"ndk;27.2.12479018\"') and export ANDROID_NDK_HOME=\$ANDROID_HOME/ndk/<version>"
[ -d "$ANDROID_NDK_HOME/toolchains/llvm/prebuilt" ] || die "ANDROID_NDK_HOME=$ANDROID_NDK_HOME does not look like an NDK (no toolchains/llvm/prebuilt)"

host_dir=$(find "$ANDROID_NDK_HOME/toolchains/llvm/prebuilt" -mindepth 1 -maxdepth 1 -type d | head -n 1)
STRIP=$host_dir/bin/llvm-strip
READELF=$host_dir/bin/llvm-readelf
[ -x "$STRIP" ] || die "llvm-strip not found in $host_dir/bin (NDK r23 or newer is required)"

# RUSTFLAGS would replace the per-target flags below (cargo uses only one source of flags).
[ -z "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ] ||
  die "unset RUSTFLAGS / CARGO_ENCODED_RUSTFLAGS: they would override the 16 KB page-size linker flag"

installed_targets=$(rustup target list --installed)
cargo_ndk_targets=()
for abi in "${ABIS[@]}"; do
  triple=$(triple_of "$abi")
  if ! grep -qx "$triple" <<<"$installed_targets"; then
    echo "adding Rust target $triple"
    rustup target add "$triple"
  fi
  # 16 KB page alignment for this target only (not for build scripts run on the host).
  var="CARGO_TARGET_$(tr '[:lower:]-' '[:upper:]_' <<<"$triple")_RUSTFLAGS"
  export "$var=${!var:-} -C link-arg=-Wl,-z,max-page-size=16384"
  cargo_ndk_targets+=(-t "$abi")
done

# --- build ------------------------------------------------------------------------------
# The shipped library: whole-program LTO and one codegen unit (x86_64 Linux measurement:
# 7.30 MB stripped with the plain release profile, 6.52 MB with these). Panics stay
# `unwind`: the FFI catches them at the boundary.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
mkdir -p "$OUT"
echo "building $CRATE (release) for ${ABIS[*]}, API $API"
cargo ndk "${cargo_ndk_targets[@]}" --platform "$API" -o "$OUT" build -p "$CRATE" --lib --release --locked

# --- strip and check ----------------------------------------------------------------------
for abi in "${ABIS[@]}"; do
  so=$OUT/$abi/$LIB
  [ -f "$so" ] || die "cargo-ndk did not produce $so"
  # Drops debug info and local symbols; the dynamic symbols JNA looks up stay.
  "$STRIP" --strip-unneeded "$so"
  if [ -x "$READELF" ]; then
    # Every LOAD segment must be aligned to at least 16 KB (0x4000); Align is the last column.
    while read -r align; do
      [ "$((align))" -ge 16384 ] || die "$so has a LOAD segment aligned to $align, below 16 KB"
    done < <("$READELF" -lW "$so" | awk '$1 == "LOAD" { print $NF }')
  fi
  printf '%-12s %s (%s bytes)\n' "$abi" "$so" "$(wc -c <"$so" | tr -d ' ')"
done
echo "done: now build the AAR with 'cd android && ./gradlew publishToMavenLocal'"
