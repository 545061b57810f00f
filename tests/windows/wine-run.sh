#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER): runs the
# .exe under Wine 8. Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks
# (the .exe fails to load: c0000135), so a test-only shim DLL (prng-shim.c) is put beside the
# .exe first. It is never shipped: packaging/release.sh zips amlprobe.exe alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exe=$1
shift
dir=$(dirname "$exe")
if [ ! -f "$dir/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -o "$dir/bcryptprimitives.dll" \
    "$here/prng-shim.c" "$here/prng-shim.def" -ladvapi32
fi
export WINEPREFIX=${WINEPREFIX:-/tmp/amlprobe-wine}
export WINEDEBUG=${WINEDEBUG:--all}
wine=/usr/lib/wine/wine64
command -v wine64 >/dev/null && wine=$(command -v wine64)
exec "$wine" "$exe" "$@"
