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

# The cargo target directory (where `cargo build` puts debug/ and release/), honouring
# CARGO_TARGET_DIR and .cargo/config: read once from `cargo metadata` into the exported
# OUTBOX_TARGET_DIR, which nested scripts reuse. Call it in the script's own shell (not in
# `$(...)`), after ensure_rust, then use "$OUTBOX_TARGET_DIR/debug/...", never "target/debug".
resolve_target_dir() {
  if [ -z "${OUTBOX_TARGET_DIR:-}" ]; then
    # Not under the build lock: `metadata --no-deps` reads the manifests and builds nothing,
    # so a suite can resolve its paths (and install its tools) while another one builds.
    OUTBOX_TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
      | grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)
    [ -n "$OUTBOX_TARGET_DIR" ] || { echo "cargo metadata gave no target_directory" >&2; return 1; }
    export OUTBOX_TARGET_DIR
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

# The bin directory of the newest installed PostgreSQL (Debian keeps it off PATH).
pg_bindir() {
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then
    echo "$d"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  else
    return 1
  fi
}

# A free TCP port on 127.0.0.1 (nothing answers on it right now).
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Starts a private PostgreSQL cluster in a new temporary directory, listening on
# 127.0.0.1 only, on a free port, with trust authentication for user `outbox`. Runs as
# an unprivileged user when called as root (postgres refuses to run as root). Extra
# arguments are server settings (`-c name=value`). Sets PG_URL, PG_PID and PG_DIR; stop
# it with stop_private_postgres (by PID; call it from an EXIT trap).
start_private_postgres() {
  local bindir port runas=()
  bindir="$(pg_bindir)" || { echo "no PostgreSQL binaries found" >&2; return 1; }
  PG_DIR="$(mktemp -d /tmp/outbox-pg.XXXXXX)"
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id -u "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$PG_DIR"
    runas=(runuser -u "$user" --)
  fi
  port="$(free_port)" || { echo "no free port" >&2; return 1; }
  "${runas[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U outbox --auth=trust -E UTF8 --no-instructions >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${runas[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=300 $*" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_PID="$(head -n 1 "$PG_DIR/data/postmaster.pid")"
  PG_URL="postgres://outbox@127.0.0.1:$port/postgres"
  export PG_URL PG_PID PG_DIR
  echo "private PostgreSQL (pid $PG_PID) at $PG_URL"
}

# Stops the cluster start_private_postgres started (fast shutdown by PID) and removes
# its directory.
stop_private_postgres() {
  if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$PG_PID" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    rm -rf "$PG_DIR"
  fi
  PG_PID=""
}

# check <name> <command...>: runs one counted check of a suite, adding to the caller's
# `passed` or `failed` and printing `ok   <name>` or `FAIL <name>`.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}
