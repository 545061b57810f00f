#!/usr/bin/env bash
# Checks every file in packaging/ with pytest (packaging/tests/), one result per check, all of
# them run even when one fails:
#   test_static.py   YAML parses, the cloud-config matches cloud-init's schema and its installer
#                    refuses a wrong SHA-256, the Kubernetes manifests validate offline against
#                    the Kubernetes schemas and keep their pods locked down, the systemd units
#                    pass `systemd-analyze verify`, the alert rules pass `promtool check rules`,
#                    the container image index holds linux/amd64 and linux/arm64;
#   test_runtime.py  the amlprobe command in each file (cloud-init runcmd and its installer,
#                    systemd ExecStart, Job, CronJob, both DaemonSets' `serve`) runs for real in a
#                    network namespace this script creates, with no route out, and the image's
#                    commands run under runc.
# Each check prints `ok N - name` or `not ok N - name`; the last lines say
# `packaging: N ok, M failed: <names>`, and the exit status is 1 if any failed.
#
#   bash packaging/check.sh                         builds the static binaries first
#   AMLPROBE_BIN=path bash packaging/check.sh       uses that binary (x86_64)
#   AMLPROBE_BIN_AARCH64=path ...                    and this aarch64 one for the arm64 image
#   bash packaging/check.sh -k kubernetes           extra arguments go to pytest
#
# A check whose tool or privilege is missing (the runs need root and `ip netns`) is a pytest
# skip with the reason; with CI=true it fails instead. Python packages (pinned in
# packaging/tests/requirements.txt) go to target/packaging-py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkg="$root/packaging"
cd "$root"

W=$(mktemp -d /tmp/amlpkg.XXXXXX)
NS="amlpkg$$"
cleanup() {
  if command -v runc >/dev/null; then
    for c in $(runc list -q 2>/dev/null | grep "^$NS-" || true); do runc delete -f "$c" 2>/dev/null || true; done
  fi
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
  fi
  rm -rf "/etc/netns/$NS" "$W"
}
trap cleanup EXIT

die() {
  echo "packaging: FAILED: $*" >&2
  exit 1
}
apt_quiet() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# ---------------------------------------------------------------- binaries and tools
bin=${AMLPROBE_BIN:-}
if [ -z "$bin" ]; then bin="$root/$(./.ci/build-static)"; fi
[ -x "$bin" ] || die "AMLPROBE_BIN=$bin is not an executable"
# The arm64 image needs the aarch64 binary; build-static exits 3 where its toolchain can't be had
# (the image checks then skip, or fail with CI=true).
bin_arm64=${AMLPROBE_BIN_AARCH64:-}
if [ -z "$bin_arm64" ]; then
  got=0
  rel=$(./.ci/build-static --target aarch64) || got=$?
  [ "$got" = 0 ] || [ "$got" = 3 ] || die ".ci/build-static --target aarch64 exited $got"
  [ "$got" = 3 ] || bin_arm64="$root/$rel"
fi
is_root=0
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then is_root=1; fi
for tool in python3 curl; do
  if ! command -v "$tool" >/dev/null && [ "$is_root" = 1 ]; then apt_quiet "$tool"; fi
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [ "$is_root" = 1 ]; then
  for pair in systemd-analyze:systemd promtool:prometheus skopeo:skopeo runc:runc \
    qemu-aarch64-static:qemu-user-static file:file; do
    command -v "${pair%%:*}" >/dev/null || apt_quiet "${pair#*:}" || true
  done
fi
PYLIB="$root/target/packaging-py"
reqs="$pkg/tests/requirements.txt"
if ! cmp -s "$reqs" "$PYLIB/requirements.txt"; then
  echo "packaging: installing $(grep -v '^#' "$reqs" | tr '\n' ' ')into $PYLIB"
  if ! python3 -m pip --version >/dev/null 2>&1 && [ "$is_root" = 1 ]; then apt_quiet python3-pip; fi
  rm -rf "$PYLIB"
  pip_args=(install --quiet --disable-pip-version-check --target "$PYLIB" -r "$reqs")
  python3 -m pip "${pip_args[@]}" 2>/dev/null \
    || python3 -m pip "${pip_args[@]}" --break-system-packages \
    || die "could not pip-install the Python packages the checks need"
  cp "$reqs" "$PYLIB/requirements.txt"
fi
# cloud-init's own schema, from Debian's cloud-init package (unpacked, not installed).
schema=
if command -v apt-get >/dev/null && (cd "$W" && apt-get download -qq cloud-init >/dev/null 2>&1); then
  dpkg-deb -x "$W"/cloud-init_*.deb "$W/cloud-init-pkg"
  schema=$(find "$W/cloud-init-pkg" -name schema-cloud-config-v1.json | head -n1)
fi

# A namespace with only loopback up and a resolver that answers nothing: every packaged command
# runs as it would on a machine whose network is entirely blocked, and no packet leaves.
netns=
if [ "$is_root" = 1 ]; then
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  mkdir -p "/etc/netns/$NS"
  echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"
  [ -z "$(ip -n "$NS" route show)" ] || die "namespace $NS has a route"
  netns=$NS
fi

# ---------------------------------------------------------------- the checks
status=0
AMLPROBE_BIN="$bin" AMLPROBE_BIN_AARCH64="$bin_arm64" AMLPKG_NETNS="$netns" \
  AMLPKG_CLOUD_INIT_SCHEMA="$schema" PYTHONPATH="$PYLIB" PYTHONDONTWRITEBYTECODE=1 \
  python3 -m pytest -c "$pkg/tests/pytest.ini" --rootdir "$pkg/tests" --basetemp "$W/pytest" \
  "$pkg/tests/test_static.py" "$pkg/tests/test_runtime.py" "$@" || status=$?
exit "$status"
