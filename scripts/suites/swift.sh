#!/usr/bin/env bash
# Suite `swift`: the generated Swift bindings and the iOS package (ios/) compiled with a real
# Swift toolchain and run with XCTest against the real library and the real reference server
# on 127.0.0.1 (TOOLCHAIN.md section 5).
#
# 1. installs Debian trixie's `swiftlang` (6.0.3: swiftc, SwiftPM, Foundation, XCTest) in a
#    chroot under $HOME/.cache, idempotently (debootstrap from Debian's default mirror, ~1 min;
#    apt-get install swiftlang, ~2 min, 2.5 GB); our machines run bookworm, which has no Swift;
# 2. builds the workspace and copies liboutbox_ffi.so, outbox-server, bindings/swift and ios/
#    into a scratch package inside the chroot, with scripts/swift/Package.swift as its manifest
#    (the root Package.swift wants the XCFramework, which cannot exist on Linux);
# 3. `swift build --build-tests` and `swift test --disable-swift-testing` inside
#    `unshare --mount --pid --fork --kill-child --mount-proc`, under `timeout`: /dev is bind-
#    mounted in that private mount namespace, so a hang or a kill tears down every process it
#    started (xctest, servers) and the mounts vanish with it; the EXIT trap also unmounts
#    anything a crashed older run left on the host.
# Ends with `N passed, N failed` (XCTest cases + the checks below) and exits 1 on any failure.
#
# Knobs: OUTBOX_SWIFT_CHROOT (default $HOME/.cache/swift-trixie-root), OUTBOX_SWIFT_TIMEOUT
# (seconds for build + tests, default 1500).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/suites/lib.sh
ensure_rust
resolve_target_dir

SWIFT_ROOT=${OUTBOX_SWIFT_CHROOT:-$HOME/.cache/swift-trixie-root}
WORK=/work-swift            # inside the chroot
PKG_IN=$WORK/pkg            # the scratch package, as the chroot sees it
PKG=$SWIFT_ROOT$PKG_IN      # and from here
TIMEOUT=${OUTBOX_SWIFT_TIMEOUT:-1500}

[ "$(id -u)" -eq 0 ] || { echo "the swift suite needs root (debootstrap, chroot, mount)" >&2; exit 1; }

# One swift suite at a time on this machine: they share the chroot and the scratch package.
exec 9>/tmp/outbox-swift.lock
flock 9

mounts_in_root() { findmnt -rn -o TARGET | grep -F "$SWIFT_ROOT/" || true; }

out=$(mktemp)
cleanup() {
  rm -f "$out"
  # Mounts are made inside the private namespace and die with it; this only catches
  # leftovers on the host (deepest first), e.g. from an older version of this script.
  local m
  for m in $(mounts_in_root | sort -r); do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT

# shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not a shell expansion
swift_ready() {
  [ -x "$SWIFT_ROOT/usr/libexec/swift/bin/swift-driver" ] &&
    [ "$(chroot "$SWIFT_ROOT" dpkg-query -W -f='${Status}' swiftlang 2>/dev/null)" = "install ok installed" ]
}

if ! swift_ready; then
  log "swift: installing Debian trixie's swiftlang in a chroot at $SWIFT_ROOT (~3 min, 2.5 GB)"
  ensure_apt debootstrap
  # debootstrap removes $SWIFT_ROOT/debootstrap when it succeeds.
  if [ ! -x "$SWIFT_ROOT/usr/bin/apt-get" ] || [ -d "$SWIFT_ROOT/debootstrap" ]; then
    if [ -e "$SWIFT_ROOT" ]; then
      if [ -n "$(mounts_in_root)" ]; then
        echo "refusing to delete the half-made $SWIFT_ROOT: something is mounted in it" >&2
        exit 1
      fi
      rm -rf "${SWIFT_ROOT:?}"
    fi
    mkdir -p "$(dirname "$SWIFT_ROOT")"
    debootstrap --variant=minbase trixie "$SWIFT_ROOT"
  fi
  chroot "$SWIFT_ROOT" apt-get update -qq
  chroot "$SWIFT_ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swiftlang
  chroot "$SWIFT_ROOT" apt-get clean
  swift_ready || { echo "swiftlang did not install in $SWIFT_ROOT" >&2; exit 1; }
fi

log "swift: cargo build --workspace (FFI library, reference server)"
cargo_locked build --workspace
LIB=$OUTBOX_TARGET_DIR/debug/liboutbox_ffi.so
SERVER=$OUTBOX_TARGET_DIR/debug/outbox-server
for f in "$LIB" "$SERVER"; do [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }; done

log "swift: scratch package $PKG_IN (Linux manifest, bindings/swift, ios/)"
# Timestamps are kept (cp -p) so that SwiftPM's .build from the last run stays warm. But
# SwiftPM has been seen to keep a stale OutboxFFI module after the generated bindings
# changed (calls then lift garbage and crash), so .build is thrown away whenever the
# bindings, the C header, the manifest or the library differ from the last run's.
inputs=$(cat bindings/swift/Sources/OutboxFFI/*.swift bindings/swift/Sources/outbox_ffiFFI/include/* \
  scripts/swift/Package.swift "$LIB" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PKG/.inputs.sha256" 2>/dev/null || true)" != "$inputs" ]; then
  rm -rf "${PKG:?}/.build"
fi
rm -rf "${PKG:?}/lib" "${PKG:?}/bindings" "${PKG:?}/ios"
mkdir -p "$PKG/lib" "$PKG/bindings/swift"
cp -p "$LIB" "$SERVER" "$PKG/lib/"
cp -pR bindings/swift/Sources bindings/swift/Tests "$PKG/bindings/swift/"
cp -pR ios "$PKG/ios"
cp -p scripts/swift/Package.swift "$PKG/Package.swift"
echo "$inputs" >"$PKG/.inputs.sha256"
# Test folders are made under /tmp/outbox-swift-*; each test removes its own.
rm -rf "$SWIFT_ROOT"/tmp/outbox-swift-*

log "swift: swift build --build-tests && swift test --disable-swift-testing (timeout ${TIMEOUT}s)"
inner="cd $PKG_IN && swift build --build-tests && swift test --skip-build --disable-swift-testing"
set +e
# shellcheck disable=SC2016 # the inner script expands its own positional arguments
timeout -k 10 "$TIMEOUT" unshare --mount --pid --fork --kill-child --mount-proc="$SWIFT_ROOT/proc" \
  /bin/bash -c 'mount --rbind /dev "$1/dev" && exec chroot "$1" /usr/bin/env -i HOME=/root \
    PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TMPDIR=/tmp RUST_BACKTRACE=0 \
    OUTBOX_SERVER_BIN="$2/lib/outbox-server" /bin/bash -c "$3"' _ "$SWIFT_ROOT" "$PKG_IN" "$inner" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e

passed=$(grep -cE "^Test Case '.*' passed \(" "$out" || true)
failed=$(grep -cE "^Test Case '.*' failed \(" "$out" || true)
skipped=$(grep -cE "^Test Case '.*' skipped \(" "$out" || true)
cases=$((passed + failed + skipped))

log "swift: checks"
[ "$rc" -eq 124 ] && echo "build + tests timed out after ${TIMEOUT}s"
check "swift build + swift test exited 0 (got $rc)" test "$rc" -eq 0
check "no XCTest case was skipped ($skipped skipped)" test "$skipped" -eq 0
check "at least 30 XCTest cases ran ($cases)" test "$cases" -ge 30
leftovers() { # test folders left in the chroot's /tmp
  local left
  left=$(find "$SWIFT_ROOT/tmp" -maxdepth 1 -name 'outbox-swift-*' | head -n 5)
  [ -z "$left" ] || { echo "$left"; return 1; }
}
check "the tests removed their temporary folders" leftovers
check "nothing is left mounted in the chroot" test -z "$(mounts_in_root)"

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
