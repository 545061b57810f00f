#!/usr/bin/env bash
# Installs amlprobe to $PREFIX/bin (default /usr/local/bin).
#   ./install.sh                      build a static release binary from this checkout, then install
#   ./install.sh --binary PATH        install a binary built elsewhere (e.g. on a build box)
#   PREFIX=$HOME/.local ./install.sh  install without root
set -euo pipefail

prefix=${PREFIX:-/usr/local}
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "install.sh: $*" >&2; exit 1; }

if [ -z "$binary" ]; then
  cd "$(dirname "$0")"
  [ -f Cargo.toml ] || die "run me from an amlprobe checkout, or pass --binary PATH"
  command -v cargo >/dev/null || die "cargo is not installed: install Rust (https://rustup.rs) or pass --binary PATH"
  command -v cc >/dev/null || die "no C compiler (cc): install gcc (apt-get install gcc) — the ring crypto crate needs one"
  binary=$(./.ci/build-static)
fi

[ -x "$binary" ] || die "'$binary' is not an executable file"
"$binary" --version >/dev/null 2>&1 || die "'$binary' does not run on this machine"
mkdir -p "$prefix/bin" 2>/dev/null || die "cannot create $prefix/bin (try sudo, or PREFIX=\$HOME/.local)"
[ -w "$prefix/bin" ] || die "$prefix/bin is not writable (try sudo, or PREFIX=\$HOME/.local)"
install -m 0755 "$binary" "$prefix/bin/amlprobe"
echo "installed $("$prefix/bin/amlprobe" --version) to $prefix/bin/amlprobe"
