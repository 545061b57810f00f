#!/usr/bin/env bash
# Builds the amlprobe container image FROM scratch (the static binary + a CA bundle, user 65532)
# for linux/amd64 and linux/arm64, as one OCI image index in an OCI image layout directory.
# No container engine is needed: the recipe only copies files, so oci.py assembles the layers.
#
#   packaging/container/build.sh                 layout in target/oci/amlprobe, tag <version>
#   packaging/container/build.sh DIR             layout in DIR
#   AMLPROBE_BIN=x86_64-binary AMLPROBE_BIN_AARCH64=aarch64-binary packaging/container/build.sh
#                                                use these binaries, don't build
#   packaging/container/build.sh --context-only DIR   stage DIR/amd64 and DIR/arm64 only
#
# Then copy the index (both architectures) to a registry your nodes pull from (a private ACR in
# a locked-down VNet) with skopeo (Debian: apt-get install skopeo), e.g.
#   skopeo login myregistry.azurecr.io -u 00000000-0000-0000-0000-000000000000 \
#     -p "$(az acr login -n myregistry --expose-token --query accessToken -o tsv)"
#   skopeo copy --all oci:target/oci/amlprobe:0.1.0 docker://myregistry.azurecr.io/amlprobe:0.1.0
# and set that name as `image:` in packaging/kubernetes/*.yaml.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/packaging/container"

context_only=
out="$root/target/oci/amlprobe"
case "${1:-}" in
  --context-only) context_only=${2:?"--context-only needs a directory"} ;;
  -*) echo "build.sh: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
  "") ;;
  *) out=$1 ;;
esac

bin=${AMLPROBE_BIN:-}
[ -n "$bin" ] || bin="$root/$("$root/.ci/build-static")"
bin_arm64=${AMLPROBE_BIN_AARCH64:-}
[ -n "$bin_arm64" ] || bin_arm64="$root/$("$root/.ci/build-static" --target aarch64)"
# check_bin PATH FILE-WORD: an executable, static (a FROM scratch image has no libc), that arch.
check_bin() {
  [ -x "$1" ] || { echo "build.sh: $1 is not an executable" >&2; exit 1; }
  file "$1" | grep -q 'statically linked\|static-pie linked' \
    || { echo "build.sh: $1 is not statically linked; a FROM scratch image has no libc" >&2; exit 1; }
  file "$1" | grep -q "$2" || { echo "build.sh: $1 is not $2: $(file "$1")" >&2; exit 1; }
}
check_bin "$bin" x86-64
check_bin "$bin_arm64" 'ARM aarch64'
version=$("$bin" --version | awk '{print $2}')

ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates or set CA_BUNDLE)" >&2; exit 1; }

stage() { # DIR: DIR/amd64 and DIR/arm64, each a build context for the Containerfile
  local arch b
  for arch in amd64 arm64; do
    b=$bin
    [ "$arch" = amd64 ] || b=$bin_arm64
    mkdir -p "$1/$arch"
    install -m 0755 "$b" "$1/$arch/amlprobe"
    install -m 0644 "$ca" "$1/$arch/ca-certificates.crt"
    install -m 0644 "$here/Containerfile" "$1/$arch/Containerfile"
  done
}

if [ -n "$context_only" ]; then
  stage "$context_only"
  echo "$context_only"
  exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
stage "$ctx"
rm -rf "$out"
python3 "$here/oci.py" "$out" "$version" "$version" amd64="$ctx/amd64" arm64="$ctx/arm64"
echo "build.sh: OCI image index (linux/amd64, linux/arm64) in $out, tag $version" >&2
echo "$out"
