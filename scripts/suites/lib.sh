# shellcheck shell=bash
# Shared helpers for scripts/suites/*.sh (sourced, not run).

log() { printf '\n=== %s ===\n' "$*"; }

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "installing Rust with rustup" >&2
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
      export PATH="$HOME/.cargo/bin:$PATH"
    fi
  fi
}

# cargo under the machine-wide build lock (two cores: never two builds at once).
cargo_locked() {
  if command -v flock >/dev/null 2>&1; then
    flock /tmp/outbox-cargo.lock cargo "$@"
  else
    cargo "$@"
  fi
}

# apt packages by name, installed only when missing.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
