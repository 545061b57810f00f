#!/usr/bin/env bash
# Checks the aarch64 build and the release artifacts:
#   - .ci/build-static --target aarch64 gives a static aarch64 binary;
#   - under qemu-user it prints the same --version and `suites` as the x86_64 binary, and a run
#     against loopback peers (DNS, TLS with its own CA, a closed port; nothing leaves the
#     machine: --no-imds, --no-proxy, --dns-server on 127.0.0.1) gives the same verdicts;
#   - packaging/release.sh writes the three archives (two Linux, one Windows zip) and SHA256SUMS:
#     names, contents, checksums (`sha256sum -c`), reproducible bytes; the zip holds the .exe
#     alone, importing only system DLLs; the README and the cloud-config use those names.
#
#   bash packaging/check-platforms.sh               builds what it needs
#   AMLPROBE_BIN=x86_64-binary AMLPROBE_BIN_AARCH64=aarch64-binary bash packaging/check-platforms.sh
#
# Prints SKIPPED and exits 0 only where the aarch64 cross toolchain or qemu-user cannot be
# installed (build-static exits 3, or no qemu and no root to install it), and never with CI=true;
# any other failure fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
W=$(mktemp -d /tmp/amlplat.XXXXXX)
PEERS=
cleanup() {
  if [ -n "$PEERS" ]; then kill "$PEERS" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
n=0
ok() { echo "ok - $*"; n=$((n + 1)); }
die() {
  echo "platforms: FAILED: $*" >&2
  exit 1
}
skipped() {
  # CI installs as root from the package registries: a skip there would hide a broken install.
  [ "${CI:-}" != true ] || die "$* (CI=true: CI must build and run the aarch64 binary)"
  echo "################################################################################"
  echo "SKIPPED: $*"
  echo "################################################################################"
  exit 0
}

bin=${AMLPROBE_BIN:-}
[ -n "$bin" ] || bin="$root/$(./.ci/build-static)"
arm=${AMLPROBE_BIN_AARCH64:-}
if [ -z "$arm" ]; then
  start=$SECONDS
  got=0
  rel=$(./.ci/build-static --target aarch64) || got=$?
  [ "$got" != 3 ] || skipped "aarch64 build: the cross toolchain (rustup target, cargo-zigbuild, zig) cannot be installed here"
  [ "$got" = 0 ] || die ".ci/build-static --target aarch64 exited $got"
  arm="$root/$rel"
  echo "platforms: aarch64 build took $((SECONDS - start)) s"
fi
file "$arm" | grep -q 'ELF 64-bit LSB .*ARM aarch64.*static' || die "$arm is $(file "$arm")"
ok "aarch64 binary: static ELF for ARM aarch64 ($(stat -c %s "$arm") bytes; x86_64: $(stat -c %s "$bin") bytes)"

if ! command -v qemu-aarch64-static >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null; }
fi
if ! command -v qemu-aarch64-static >/dev/null; then
  [ "$(id -u)" != 0 ] || die "qemu-user-static did not install qemu-aarch64-static"
  skipped "aarch64 run: qemu-aarch64-static is not installed and installing it needs root"
fi
# Explicitly through qemu, so the check never depends on a binfmt_misc registration.
arm64() { qemu-aarch64-static "$arm" "$@"; }

# ---------------------------------------------------------------- aarch64 under qemu-user
[ "$(arm64 --version)" = "$("$bin" --version)" ] || die "aarch64 --version: $(arm64 --version 2>&1)"
ok "aarch64 under qemu: --version is $(arm64 --version)"
for fmt in table json; do
  arm64 suites --format "$fmt" >"$W/suites-arm.$fmt" || die "aarch64 suites --format $fmt failed"
  "$bin" suites --format "$fmt" >"$W/suites-x86.$fmt"
  cmp -s "$W/suites-arm.$fmt" "$W/suites-x86.$fmt" || die "aarch64 and x86_64 'suites --format $fmt' differ"
done
ok "aarch64 under qemu: suites (table and JSON) prints what x86_64 prints ($(grep -c '"id"' "$W/suites-x86.json") flows)"

mkdir "$W/peers"
python3 packaging/loopback.py "$W/peers" 2>"$W/peers.err" &
PEERS=$!
for _ in $(seq 100); do [ -e "$W/peers/ready" ] && break; sleep 0.1; done
[ -e "$W/peers/ready" ] || die "loopback peers did not start: $(cat "$W/peers.err")"
dns=$(cat "$W/peers/dns")
case "$dns" in 127.0.0.1:*) ;; *) die "the test resolver is not on loopback: $dns" ;; esac
run_args=(run --no-imds --no-proxy --dns-server "$dns" --private-cidr 127.0.0.0/8 --ca-file "$W/peers/ca.pem"
  --suite-file "$W/peers/suite.toml" --suite t --timeout 5 --format json)
verdicts() { # REPORT: one "id status reason issuer" line per flow
  python3 -c '
import json, sys
for f in json.load(open(sys.argv[1]))["flows"]:
    issuers = [p["tls"]["issuer"] for p in f.get("probes", []) if p.get("tls")]
    print(f["id"], f["status"], f.get("reason"), issuers)' "$1"
}
for who in arm x86; do
  got=0
  if [ "$who" = arm ]; then arm64 "${run_args[@]}" >"$W/run-$who.json" 2>"$W/run-$who.err" || got=$?
  else "$bin" "${run_args[@]}" >"$W/run-$who.json" 2>"$W/run-$who.err" || got=$?
  fi
  [ "$got" = 1 ] || die "$who loopback run exited $got, expected 1: $(head -c 400 "$W/run-$who.err")"
  verdicts "$W/run-$who.json" >"$W/verdicts-$who"
done
grep -q "^t.tls works None \['CN=amlprobe platform check CA'\]$" "$W/verdicts-arm" \
  || die "aarch64: the TLS flow did not work through the test CA: $(cat "$W/verdicts-arm")"
grep -qx 't.refused blocked tcp_refused \[\]' "$W/verdicts-arm" && grep -qx 't.nxdomain blocked dns_nxdomain \[\]' "$W/verdicts-arm" \
  || die "aarch64: unexpected verdicts: $(cat "$W/verdicts-arm")"
cmp -s "$W/verdicts-arm" "$W/verdicts-x86" || die "aarch64 and x86_64 verdicts differ: $(diff "$W/verdicts-x86" "$W/verdicts-arm")"
ok "aarch64 under qemu: loopback run (TLS handshake verified by ring, TCP refused, NXDOMAIN) gives x86_64's verdicts"

# ---------------------------------------------------------------- release artifacts
version=$("$bin" --version | awk '{print $2}')
start=$SECONDS
bash packaging/release.sh "$W/rel" >/dev/null 2>"$W/release.err" || die "release.sh: $(cat "$W/release.err")"
echo "platforms: release.sh took $((SECONDS - start)) s"
want=("amlprobe-$version-aarch64-unknown-linux-musl.tar.gz" "amlprobe-$version-x86_64-unknown-linux-musl.tar.gz"
  "amlprobe-$version-x86_64-pc-windows-gnu.zip" SHA256SUMS)
[ "$(cd "$W/rel" && LC_ALL=C ls)" = "$(printf '%s\n' "${want[@]}" | LC_ALL=C sort)" ] \
  || die "release.sh wrote $(ls "$W/rel" | tr '\n' ' '), expected ${want[*]}"
ok "release.sh writes ${want[*]}"
(cd "$W/rel" && sha256sum -c --strict SHA256SUMS >"$W/sums.out") || die "sha256sum -c: $(cat "$W/sums.out")"
[ "$(wc -l <"$W/rel/SHA256SUMS")" = 3 ] || die "SHA256SUMS has $(wc -l <"$W/rel/SHA256SUMS") lines, expected 3"
ok "sha256sum -c SHA256SUMS: the three archives match"
for arch in x86_64 aarch64; do
  a="$W/rel/amlprobe-$version-$arch-unknown-linux-musl.tar.gz"
  [ "$(tar -tvzf "$a" | awk '{print $1, $2, $6}')" = "-rwxr-xr-x 0/0 amlprobe" ] \
    || die "$a lists $(tar -tvzf "$a")"
  mkdir -p "$W/x/$arch"
  tar -C "$W/x/$arch" -xzf "$a"
  b=$bin
  [ "$arch" = x86_64 ] || b=$arm
  # The binary release.sh packed is the one build-static gives (cargo's, rebuilt if stale).
  cmp -s "$W/x/$arch/amlprobe" "$root/target/$arch-unknown-linux-musl/release/amlprobe" \
    || die "$a does not hold target/$arch-unknown-linux-musl/release/amlprobe"
  file "$W/x/$arch/amlprobe" | grep -q 'static' || die "$a: $(file "$W/x/$arch/amlprobe")"
done
[ "$("$W/x/x86_64/amlprobe" --version | awk '{print $2}')" = "$version" ] \
  || die "the x86_64 archive's binary is not version $version"
[ "$(qemu-aarch64-static "$W/x/aarch64/amlprobe" --version | awk '{print $2}')" = "$version" ] \
  || die "the aarch64 archive's binary is not version $version"
ok "each archive holds only amlprobe (0755, root-owned) at its top level, static, version $version"
zip="$W/rel/amlprobe-$version-x86_64-pc-windows-gnu.zip"
[ "$(python3 -c 'import sys, zipfile; print(" ".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$zip")" = amlprobe.exe ] \
  || die "$zip does not hold amlprobe.exe alone"
python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("amlprobe.exe"))' "$zip" >"$W/amlprobe.exe"
cmp -s "$W/amlprobe.exe" "$root/target/x86_64-pc-windows-gnu/release/amlprobe.exe" \
  || die "$zip does not hold target/x86_64-pc-windows-gnu/release/amlprobe.exe"
file "$W/amlprobe.exe" | grep -q 'PE32+ executable (console) x86-64.*MS Windows' || die "$zip: $(file "$W/amlprobe.exe")"
imports=$(x86_64-w64-mingw32-objdump -p "$W/amlprobe.exe" | awk '/DLL Name:/ {print tolower($3)}' | sort -u | tr '\n' ' ')
grep -qiE 'libgcc|libwinpthread|libstdc|vcruntime|msvcp' <<<"$imports" && die "$zip's .exe needs runtime DLLs: $imports"
ok "the Windows zip holds only amlprobe.exe, a console PE32+ for x86-64 importing system DLLs only ($imports)"
bash packaging/release.sh "$W/rel2" >/dev/null 2>&1 || die "release.sh (second run) failed"
cmp -s "$W/rel/SHA256SUMS" "$W/rel2/SHA256SUMS" || die "release.sh is not reproducible: $(diff "$W/rel/SHA256SUMS" "$W/rel2/SHA256SUMS")"
ok "release.sh is reproducible: a second run writes the same bytes"

# Every archive name the docs and the cloud-config mention is one release.sh writes.
pattern='amlprobe-(\$version|<version>|[0-9])[^ /"'"'"'?]*\.(tar\.gz|zip)'
mapfile -t mentioned < <(grep -ohE "$pattern" README.md packaging/cloud-init/amlprobe.yaml | sort -u)
[ "${#mentioned[@]}" -gt 0 ] || die "neither README.md nor the cloud-config names a release archive"
for m in "${mentioned[@]}"; do
  m=${m//\$version/$version}
  m=${m//<version>/$version}
  m=${m//\$arch/x86_64}
  m=${m//\$(uname -m)/x86_64}
  [ -e "$W/rel/$m" ] || die "README.md or the cloud-config names $m, which release.sh does not write"
done
ok "README.md and the cloud-config name only archives release.sh writes (${#mentioned[@]} forms)"

echo "platforms: $n checks passed"
