#!/usr/bin/env bash
# The whole test suite: unit and loopback integration tests, the HTML pages in Chromium, the
# static build, the network namespace testbed (needs root; skips loudly without it) and the
# packaging checks.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test"
cargo test --locked

echo "== HTML pages in Chromium"
bash tests/html/check.sh

echo "== static release binary"
bin=$(./.ci/build-static)
file "$bin"
echo "size: $(stat -c %s "$bin") bytes"

echo "== VNet testbed (network namespaces, real daemons)"
AMLPROBE_BIN="$PWD/$bin" bash tests/vnet/run.sh

if [ -f packaging/check.sh ]; then
  echo "== packaging checks"
  AMLPROBE_BIN="$PWD/$bin" bash packaging/check.sh
fi
