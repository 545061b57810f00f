#!/usr/bin/env bash
# Builds the release artifacts into OUTDIR:
#   amlprobe-<version>-x86_64-unknown-linux-musl.tar.gz
#   amlprobe-<version>-aarch64-unknown-linux-musl.tar.gz
#   amlprobe-<version>-x86_64-pc-windows-gnu.zip
#   SHA256SUMS                                   (`sha256sum -c SHA256SUMS` checks all three)
# Each Linux archive holds one file at its top level, `amlprobe`, the static binary (mode 0755);
# the zip holds `amlprobe.exe` alone (the C runtime linked in, system DLLs only: .ci/build-windows).
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
exe="$root/$("$root/.ci/build-windows")"
name="amlprobe-$version-x86_64-pc-windows-gnu.zip"
# One stored name, a fixed timestamp (the zip format's earliest) and fixed attributes: same bytes
# for the same .exe.
python3 - "$exe" "$out/$name.tmp" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("amlprobe.exe", date_time=(1980, 1, 1, 0, 0, 0))
info.compress_type = zipfile.ZIP_DEFLATED
info.external_attr = 0o100755 << 16
with open(sys.argv[1], "rb") as exe, zipfile.ZipFile(sys.argv[2], "w") as z:
    z.writestr(info, exe.read(), compresslevel=9)
PY
mv -f "$out/$name.tmp" "$out/$name"
names+=("$name")
echo "release.sh: $out/$name" >&2
(cd "$out" && sha256sum "${names[@]}" >SHA256SUMS.tmp && mv -f SHA256SUMS.tmp SHA256SUMS)
echo "release.sh: $out/SHA256SUMS" >&2
echo "$out"
