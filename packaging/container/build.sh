#!/usr/bin/env bash
# Builds the amlprobe container image FROM scratch: the static binary + a CA bundle, user 65532.
#
#   packaging/container/build.sh                         image amlprobe:<version>
#   IMAGE=myregistry.azurecr.io/amlprobe:0.1.0 packaging/container/build.sh
#   AMLPROBE_BIN=path/to/amlprobe packaging/container/build.sh   use this binary, don't build
#   packaging/container/build.sh --context-only DIR      stage the build context in DIR only
#
# Then push it where your nodes can pull from (a private ACR in a locked-down VNet), e.g.
#   az acr login -n myregistry && docker push myregistry.azurecr.io/amlprobe:0.1.0
# and set that name as `image:` in packaging/kubernetes/*.yaml.
# Uses docker, or podman when there is no docker (ENGINE=podman to choose).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/packaging/container"

context_only=
case "${1:-}" in
  --context-only) context_only=${2:?"--context-only needs a directory"} ;;
  "") ;;
  *) echo "build.sh: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
esac

bin=${AMLPROBE_BIN:-}
if [ -z "$bin" ]; then
  bin="$root/$("$root/.ci/build-static")"
fi
[ -x "$bin" ] || { echo "build.sh: $bin is not an executable" >&2; exit 1; }
if ! file "$bin" | grep -q 'statically linked\|static-pie linked'; then
  echo "build.sh: $bin is not statically linked; a FROM scratch image has no libc" >&2
  exit 1
fi
version=$("$bin" --version | awk '{print $2}')

ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates or set CA_BUNDLE)" >&2; exit 1; }

stage() {
  mkdir -p "$1"
  install -m 0755 "$bin" "$1/amlprobe"
  install -m 0644 "$ca" "$1/ca-certificates.crt"
  install -m 0644 "$here/Containerfile" "$1/Containerfile"
}

if [ -n "$context_only" ]; then
  stage "$context_only"
  echo "$context_only"
  exit 0
fi

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null; then engine=docker
  elif command -v podman >/dev/null; then engine=podman
  else echo "build.sh: neither docker nor podman is installed" >&2; exit 1
  fi
fi
image=${IMAGE:-amlprobe:$version}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
stage "$ctx"
"$engine" build --file "$ctx/Containerfile" --tag "$image" \
  --label org.opencontainers.image.title=amlprobe \
  --label org.opencontainers.image.version="$version" "$ctx" >&2
echo "$image"
