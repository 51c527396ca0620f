#!/usr/bin/env bash
# Runs sessctl's whole test suite on a Debian 12 machine, installing what the tests need.
#
#   scripts/test.sh [extra args for cargo test]     e.g. scripts/test.sh -- --nocapture
#
# The integration tests start their own private D-Bus session bus, an unlocked gnome-keyring
# (the real Secret Service) and a real OAuth server (node-oidc-provider, tests/oauth-server/),
# so this script makes sure those programs exist first:
#   1. Debian packages for the bus, the keyring and its CLI (apt-get, only when one is missing);
#   2. the npm packages of the OAuth server, of the Claude Code lock peer (tests/claude-code/,
#      the real proper-lockfile) and the real Claude Code client, pinned (tests/claude-code-real/)
#      (npm ci, only when node_modules is missing or stale);
#   3. cargo test over every target, with Cargo.lock as committed (--locked);
#   4. `cargo check` of every target for macOS and Windows (rustup adds a target when missing),
#      so code for other platforms cannot silently stop compiling.
# Safe to run again: phases with nothing to do say so and move on. Works as root (CI) or with sudo.
set -euo pipefail

cd "$(dirname "$0")/.."

phase() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# What the integration tests run: dbus-daemon and dbus-send (the private bus), gnome-keyring-daemon
# (the Secret Service sessctl stores tokens in), secret-tool (to read what sessctl stored),
# python3-dbusmock and notify-send (a fake notification server and a client to check it with),
# systemd (systemd-analyze verifies the user unit), python3 (plistlib checks the launchd agent),
# libfaketime (steps the daemon's wall clock alone, tests/integration/clock.rs) and openssl (a
# throwaway CA for the real Claude Code's loopback proxy, tests/integration/claude_code_real.rs).
DEB_PACKAGES=(dbus dbus-bin dbus-daemon gnome-keyring libsecret-tools python3-dbusmock libnotify-bin systemd python3 libfaketime openssl)
# The OAuth server needs Node.js 20 or newer (oidc-provider 9 uses modern JS and node APIs).
NODE_MIN_MAJOR=20
OAUTH_SERVER_DIR=tests/oauth-server
# Claude Code's side of its credential-store locks (proper-lockfile), for claude_code_store.rs.
CLAUDE_CODE_PEER_DIR=tests/claude-code
# The real Claude Code (npm @anthropic-ai/claude-code, version pinned), for claude_code_real.rs.
CLAUDE_CODE_REAL_DIR=tests/claude-code-real
# Written into node_modules after `npm ci`: the lock file's hash it was installed from.
NPM_STAMP_NAME=.installed-from-lock.sha256

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (install sudo or run this script as root)"
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

install_debian_packages() {
  phase "Debian packages: ${DEB_PACKAGES[*]}"
  command -v dpkg-query >/dev/null 2>&1 || die "this script installs packages with apt; on a non-Debian system install the equivalents of: ${DEB_PACKAGES[*]}"
  local missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs)
  fi
  if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
  fi
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "all installed"
    return
  fi
  echo "installing: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

check_node() {
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt "$NODE_MIN_MAJOR" ]; then
    die "node $(node --version) is too old for the test OAuth server; install Node.js $NODE_MIN_MAJOR or newer"
  fi
}

# install_npm_packages DIR: `npm ci` in DIR unless its node_modules matches package-lock.json.
install_npm_packages() {
  local dir="$1" want have=""
  local stamp="$dir/node_modules/$NPM_STAMP_NAME"
  phase "npm packages ($dir)"
  check_node
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  if [ -d "$dir/node_modules" ] && [ "$have" = "$want" ]; then
    echo "up to date with package-lock.json"
    return
  fi
  npm ci --prefix "$dir" --no-audit --no-fund
  echo "$want" >"$stamp"
}

run_cargo_tests() {
  phase "cargo test --all-targets --locked $*"
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs)"
  cargo test --all-targets --locked "$@"
  # Tests that need root (connecting to the daemon as another user) are ignored by default,
  # so a non-root run lists them as ignored instead of passing them; run them here when root.
  if [ "$(id -u)" -eq 0 ]; then
    phase "tests that need root"
    cargo test --locked --test integration -- --ignored a_connection_from_another_user_is_refused sessctl_token_as_another_user_shows_the_refusal
  fi
}

# Other platforms sessctl is type-checked for. On Windows it does not run yet (the daemon and
# CLI talk over a Unix socket: both say so and exit), but everything else must keep compiling
# there; the integration tests are Unix-only (`#![cfg(unix)]`).
CHECK_TARGETS=(x86_64-apple-darwin x86_64-pc-windows-msvc)

check_other_platforms() {
  local target cc_var
  for target in "${CHECK_TARGETS[@]}"; do
    phase "cargo check --all-targets --locked --target $target"
    if ! rustup target list --installed | grep -qx "$target"; then
      rustup target add "$target"
    fi
    # Build scripts of a few -sys crates compile C for the target, which the host cc cannot;
    # `cargo check` never links, so a stub stands in (scripts/check-cc-stub says why).
    cc_var="CC_${target//-/_}"
    env "$cc_var=$PWD/scripts/check-cc-stub" cargo check --all-targets --locked --target "$target"
  done
}

install_debian_packages
install_npm_packages "$OAUTH_SERVER_DIR"
install_npm_packages "$CLAUDE_CODE_PEER_DIR"
install_npm_packages "$CLAUDE_CODE_REAL_DIR"
run_cargo_tests "$@"
check_other_platforms
