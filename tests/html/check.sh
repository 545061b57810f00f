#!/usr/bin/env bash
# Browser check of the HTML pages: tests/it/html.rs renders them from real loopback runs of the
# binary (a run, a fleet heatmap, markup in a certificate and a Server header, every built-in
# flow against a dead resolver); check.mjs opens each in Debian's Chromium with networking
# disabled. Installs Chromium (apt, as root) and playwright-core (npm ci, no browser download)
# when missing. Screenshots: target/html-check/*.png; UPDATE_DOCS=1 also rewrites the README's
# docs/html-run.png and docs/html-heatmap.png.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "html check: /usr/bin/chromium is missing; install Debian's chromium package (needs root)" >&2
    exit 1
  fi
  echo "html check: installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "html check: installing nodejs and npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
command -v node >/dev/null || { echo "html check: node is not installed" >&2; exit 1; }
if [ ! -d tests/html/node_modules/playwright-core ]; then
  npm ci --prefix tests/html --no-audit --no-fund --loglevel=error
fi

target=${CARGO_TARGET_DIR:-target}
rm -rf "$target/tmp/html-pages"
cargo test --locked --test it html::
node tests/html/check.mjs "$target/tmp/html-pages" "$target/html-check" ${UPDATE_DOCS:+docs}
