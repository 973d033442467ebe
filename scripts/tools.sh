#!/usr/bin/env bash
# Installs what building (and, with `test`, testing) Mudmap needs, skipping whatever is already
# present, so it is quick on a machine that has everything. Nothing here downloads a prebuilt
# binary: tools come from crates.io, npm and Debian's packages (see docs/decisions/0001).
#
#   scripts/tools.sh build   rustup wasm32 target, wasm-bindgen CLI (= the crate's version), npm tools
#   scripts/tools.sh test    the above, plus rustfmt/clippy, cargo-nextest, Chromium, OpenSSH server, PHP
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "error: '$*' needs root; run it as root, then re-run this command" >&2; exit 1
  fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The wasm32 target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen CLI: must equal the wasm-bindgen crate in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (found: ${have:-none}; takes about 2 minutes)"
  # Not --locked: its lock file names a crate version the registry mirror does not serve.
  cargo install wasm-bindgen-cli --version "$want" --quiet
fi

# npm tools: binaryen's wasm-opt (shrinks the wasm) and Playwright (browser tests).
if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  if ! command -v npm >/dev/null; then
    say "installing Node.js and npm"
    apt_install nodejs npm
  fi
  say "installing npm packages in end2end/"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

[ "$mode" = test ] || exit 0

for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest (takes a few minutes)"
  cargo install cargo-nextest --locked --quiet
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium from Debian's packages"
  apt_install chromium
fi

# The SSH engine is also tested against a real OpenSSH server on loopback.
if [ ! -x /usr/sbin/sshd ]; then
  say "installing openssh-server from Debian's packages"
  apt_install openssh-server
fi

# The PHP agent for pfSense is tested under that OpenSSH server with Debian's PHP: on a stub pfSense
# root (server/tests/fixtures/pfsense-root) and on pfSense's own include files
# (server/tests/fixtures/pfsense-host, which also needs mbstring, PEAR and util-linux's unshare).
if ! command -v php >/dev/null 2>&1 || ! php -m 2>/dev/null | grep -qi '^xml$' \
   || ! php -m 2>/dev/null | grep -qi '^mbstring$' || [ ! -d /usr/share/php/PEAR ] \
   || ! command -v unshare >/dev/null || ! command -v openssl >/dev/null; then
  say "installing php-cli, php-xml, php-mbstring, php-pear, util-linux and openssl from Debian's packages"
  apt_install php-cli php-xml php-mbstring php-pear util-linux openssl
fi
