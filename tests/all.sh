#!/usr/bin/env bash
# The whole test suite: unit and loopback integration tests, the HTML pages in Chromium, the
# static build, the network namespace testbed (needs root; skips loudly without it), the
# Windows build under Wine, the packaging checks, and the aarch64 build run under qemu-user with
# the release artifacts.
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

echo "== aarch64 static release binary (cargo-zigbuild; several minutes cold)"
start=$SECONDS
got=0
arm=$(./.ci/build-static --target aarch64) || got=$?
if [ "$got" = 0 ]; then
  file "$arm"
  echo "size: $(stat -c %s "$arm") bytes; took $((SECONDS - start)) s"
  export AMLPROBE_BIN_AARCH64="$PWD/$arm"
elif [ "$got" != 3 ]; then
  exit "$got"
fi

echo "== VNet testbed (network namespaces, real daemons)"
AMLPROBE_BIN="$PWD/$bin" bash tests/vnet/run.sh

if [ -f packaging/check.sh ]; then
  echo "== packaging checks"
  AMLPROBE_BIN="$PWD/$bin" bash packaging/check.sh
fi

echo "== Windows: cross-build, unit tests and testbed scenarios under Wine"
start=$SECONDS
AMLPROBE_BIN="$PWD/$bin" bash tests/windows/check.sh
echo "Windows checks took $((SECONDS - start)) s"

echo "== aarch64 under qemu-user and the release artifacts"
AMLPROBE_BIN="$PWD/$bin" bash packaging/check-platforms.sh
