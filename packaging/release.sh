#!/usr/bin/env bash
# Builds the release artifacts into OUTDIR:
#   amlprobe-<version>-x86_64-unknown-linux-musl.tar.gz
#   amlprobe-<version>-aarch64-unknown-linux-musl.tar.gz
#   SHA256SUMS                                   (`sha256sum -c SHA256SUMS` checks both)
# Each archive holds one file at its top level, `amlprobe`, the static binary (mode 0755).
# Archives are reproducible: same binaries, same bytes (fixed owner, mtime and gzip header).
#
#   packaging/release.sh OUTDIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?"usage: packaging/release.sh OUTDIR"}
[ $# = 1 ] || { echo "release.sh: one argument, OUTDIR (got $#)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
names=()
for arch in x86_64 aarch64; do
  bin="$root/$("$root/.ci/build-static" --target "$arch")"
  # The archive's name promises musl; build-static falls back to glibc where musl is missing.
  case "$bin" in
    */"$arch-unknown-linux-musl"/release/amlprobe) ;;
    *) echo "release.sh: $bin is not a $arch-unknown-linux-musl build (install musl-tools)" >&2; exit 1 ;;
  esac
  # The version the x86_64 binary reports names both archives.
  if [ -z "$version" ]; then version=$("$bin" --version | awk '{print $2}'); fi
  name="amlprobe-$version-$arch-unknown-linux-musl.tar.gz"
  mkdir "$stage/$arch"
  install -m 0755 "$bin" "$stage/$arch/amlprobe"
  tar -C "$stage/$arch" --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -cf - amlprobe \
    | gzip -9 -n >"$out/$name.tmp"
  mv -f "$out/$name.tmp" "$out/$name"
  names+=("$name")
  echo "release.sh: $out/$name" >&2
done
(cd "$out" && sha256sum "${names[@]}" >SHA256SUMS.tmp && mv -f SHA256SUMS.tmp SHA256SUMS)
echo "release.sh: $out/SHA256SUMS" >&2
echo "$out"
