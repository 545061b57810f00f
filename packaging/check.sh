#!/usr/bin/env bash
# Checks every file in packaging/: YAML parses, the cloud-config matches cloud-init's schema,
# the Kubernetes manifests validate offline against the Kubernetes schemas and keep their pods
# locked down, the systemd units pass `systemd-analyze verify`, the Prometheus alert rules pass
# `promtool check rules`, and the amlprobe command in each
# file (cloud-init runcmd and its installer, systemd ExecStart, Job, CronJob, both DaemonSets'
# `serve`) runs for real in a network namespace this script creates, with no route out.
#
#   bash packaging/check.sh                         builds the static binary first
#   AMLPROBE_BIN=path bash packaging/check.sh       uses that binary (x86_64)
#   AMLPROBE_BIN_AARCH64=path ...                    and this aarch64 one for the arm64 image
#
# The runs need root and `ip netns`; without them those parts print SKIPPED and the rest runs.
# Python packages (PyYAML, jsonschema, kubernetes-validate) go to target/packaging-py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkg="$root/packaging"
cd "$root"

W=$(mktemp -d /tmp/amlpkg.XXXXXX)
NS="amlpkg$$"
LOG="$W/checks.log"
: >"$LOG"
SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; fi
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
  fi
  rm -rf "/etc/netns/$NS" "$W"
}
trap cleanup EXIT

section() { echo "== packaging: $*"; }
ok() { echo "ok - $*" | tee -a "$LOG"; }
die() {
  echo "packaging: FAILED: $*" >&2
  exit 1
}
skipped() {
  echo "################################################################################"
  echo "SKIPPED: $*"
  echo "################################################################################"
}
# pyck CMD ARGS...: a check.py subcommand; its ok lines go to the log, a failure stops here.
pyck() {
  local out
  if ! out=$(PYTHONPATH="$PYLIB" python3 "$pkg/check.py" "$@" 2>&1); then
    printf '%s\n' "$out" | grep -v '^ok - ' >&2
    die "check.py $1"
  fi
  printf '%s\n' "$out" | tee -a "$LOG"
}
apt_quiet() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# ---------------------------------------------------------------- tools
bin=${AMLPROBE_BIN:-}
if [ -z "$bin" ]; then bin="$root/$(./.ci/build-static)"; fi
[ -x "$bin" ] || die "AMLPROBE_BIN=$bin is not an executable"
is_root=0
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then is_root=1; fi
for tool in python3 curl; do
  if ! command -v "$tool" >/dev/null && [ "$is_root" = 1 ]; then apt_quiet "$tool"; fi
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
PYLIB="$root/target/packaging-py"
if ! PYTHONPATH="$PYLIB" python3 -c 'import yaml, jsonschema, kubernetes_validate' 2>/dev/null; then
  echo "packaging: installing PyYAML, jsonschema and kubernetes-validate into $PYLIB"
  if ! python3 -m pip --version >/dev/null 2>&1 && [ "$is_root" = 1 ]; then apt_quiet python3-pip; fi
  rm -rf "$PYLIB"
  pip_args=(install --quiet --disable-pip-version-check --target "$PYLIB" PyYAML jsonschema kubernetes-validate)
  python3 -m pip "${pip_args[@]}" 2>/dev/null \
    || python3 -m pip "${pip_args[@]}" --break-system-packages \
    || die "could not pip-install the Python packages the checks need"
fi
"$bin" run --help >"$W/run-help.txt"

# A namespace with only loopback up and a resolver that answers nothing: every packaged command
# runs as it would on a machine whose network is entirely blocked, and no packet leaves.
in_ns() { ip netns exec "$NS" "$@"; }
if [ "$is_root" = 1 ]; then
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  mkdir -p "/etc/netns/$NS"
  echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"
  [ -z "$(ip -n "$NS" route show)" ] || die "namespace $NS has a route"
fi
# expect_exit WANT LABEL OUT ERR CMD...: runs CMD in the namespace, stdout to OUT and stderr to
# ERR (- for OUT), and checks its exit status.
expect_exit() {
  local want=$1 label=$2 out=$3 err=$4 got=0
  shift 4
  if [ "$err" = - ]; then
    in_ns timeout 120 "$@" >"$out" 2>&1 || got=$?
  else
    in_ns timeout 120 "$@" >"$out" 2>"$err" || got=$?
  fi
  [ "$got" = "$want" ] || die "$label exited $got, expected $want (see $W)"
  ok "$label exits $want"
}

# ---------------------------------------------------------------- YAML
section "YAML"
pyck yaml-all "$pkg"

# ---------------------------------------------------------------- cloud-init
section "cloud-init"
ci="$pkg/cloud-init/amlprobe.yaml"
pyck cloud-init "$ci" "$W/ci"
# cloud-init's own schema, from Debian's cloud-init package (unpacked, not installed).
schema=
if command -v apt-get >/dev/null && (cd "$W" && apt-get download -qq cloud-init >/dev/null 2>&1); then
  dpkg-deb -x "$W"/cloud-init_*.deb "$W/cloud-init-pkg"
  schema=$(find "$W/cloud-init-pkg" -name schema-cloud-config-v1.json | head -n1)
fi
if [ -n "$schema" ]; then
  pyck cloud-init-schema "$ci" "$schema"
else
  skipped "cloud-init schema: Debian's cloud-init package could not be downloaded"
fi
conf="$W/ci/files/etc/amlprobe/config.toml"
"$bin" suites --config "$conf" >/dev/null || die "amlprobe rejects the cloud-config's config.toml"
ok "amlprobe suites accepts the cloud-config's config.toml"
installer="$W/ci/files/usr/local/sbin/amlprobe-install"
sh -n "$installer" || die "amlprobe-install is not valid sh"
ok "amlprobe-install parses as sh"
sh -n "$W/ci/runcmd-0.sh" || die "runcmd[0] is not valid sh"
ok "runcmd[0] parses as sh"

# The installer for real: this machine's release archive (named as packaging/release.sh names
# it) from a file:// URL (curl), checked against the archive's SHA-256.
dest="$W/ci/root/usr/local/bin/amlprobe"
mkdir -p "$W/rel-bin" "$W/rel"
install -m 0755 "$bin" "$W/rel-bin/amlprobe"
archive="$W/rel/amlprobe-$("$bin" --version | awk '{print $2}')-$(uname -m)-unknown-linux-musl.tar.gz"
tar -C "$W/rel-bin" -czf "$archive" amlprobe
sha=$(sha256sum "$archive" | cut -d' ' -f1)
make_installer() { # SHA → an installer that fetches the archive from $W/rel into $dest
  sed -e "s|https://CHANGE-ME.blob.core.windows.net/tools/|file://$W/rel/|" \
    -e "s|?CHANGE-ME-SAS|?sv=2024\\&sig=SECRETSIG|" \
    -e "s|^  $(uname -m)) sha256=[^;]*|  $(uname -m)) sha256='$1' |" -e "s|^dest=.*|dest=$dest|" "$installer"
}
make_installer CHANGE-ME >"$W/install-placeholder"
if sh "$W/install-placeholder" 2>"$W/install.err"; then die "the installer accepted sha256=CHANGE-ME"; fi
grep -q "set sha256" "$W/install.err" && [ ! -e "$dest" ] || die "placeholder sha256: $(cat "$W/install.err")"
ok "amlprobe-install refuses the placeholder SHA-256"
make_installer "$(printf '%064d' 0)" >"$W/install-wrong"
if sh "$W/install-wrong" 2>"$W/install.err"; then die "the installer accepted a wrong SHA-256"; fi
grep -q "not installed" "$W/install.err" && [ ! -e "$dest" ] || die "wrong sha256: $(cat "$W/install.err")"
! grep -q SECRETSIG "$W/install.err" || die "the installer printed the SAS signature"
ok "amlprobe-install refuses a wrong SHA-256 and never prints the SAS"
make_installer "$sha" >"$W/install-good"
sh "$W/install-good" 2>"$W/install.err" || die "installer: $(cat "$W/install.err")"
cmp -s "$bin" "$dest" && [ -x "$dest" ] || die "the installer did not install the binary"
! grep -q SECRETSIG "$W/install.err" || die "the installer printed the SAS signature"
ok "amlprobe-install installs the binary from the release archive whose SHA-256 matches"

if [ "$is_root" = 1 ]; then
  # runcmd as cloud-init runs it (sh), with its paths moved under $W.
  sed -e "s|/usr/local/sbin/amlprobe-install|sh $W/install-good|" \
    -e "s|/usr/local/bin/amlprobe|$dest|g" -e "s|/etc/amlprobe/config.toml|$conf|g" \
    -e "s|/var/log/amlprobe|$W/ci/log|g" "$W/ci/runcmd-0.sh" >"$W/runcmd-test.sh"
  rm -f "$dest"
  expect_exit 0 "cloud-init runcmd" "$W/runcmd.out" - sh "$W/runcmd-test.sh"
  [ "$(cat "$W/ci/log/first-boot.exit")" = 1 ] || die "first-boot.exit is '$(cat "$W/ci/log/first-boot.exit")', expected 1"
  ok "runcmd records exit status 1 (blocked) in first-boot.exit"
  grep -q '^amlprobe: [0-9]* flows: 0 works, [1-9][0-9]* blocked' "$W/runcmd.out" \
    || die "runcmd printed no summary line: $(cat "$W/runcmd.out")"
  grep -q '^amlprobe first boot: exit status 1' "$W/runcmd.out" || die "runcmd printed no status line"
  ok "runcmd prints the one-line summary and the exit status to the console"
  pyck report "$W/ci/log/latest.json" - workspace,compute,images eastus 00000000-0000-0000-0000-000000000000
  ls "$W/ci/log"/amlprobe-*.json >/dev/null 2>&1 || die "no amlprobe-<time>.json in the report dir"
  ok "runcmd keeps a timestamped report beside latest.json"
else
  skipped "cloud-init runcmd: needs root for a network namespace"
fi

# ---------------------------------------------------------------- systemd
section "systemd"
if ! command -v systemd-analyze >/dev/null && [ "$is_root" = 1 ]; then apt_quiet systemd || true; fi
mapfile -t exec_start < <(PYTHONPATH="$PYLIB" python3 "$pkg/check.py" systemd-exec "$pkg/systemd/amlprobe.service")
[ "${exec_start[0]}" = /usr/local/bin/amlprobe ] || die "ExecStart runs ${exec_start[0]}"
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$W/units"
  sed "s|^ExecStart=/usr/local/bin/amlprobe|ExecStart=$bin|" "$pkg/systemd/amlprobe.service" >"$W/units/amlprobe.service"
  cp "$pkg/systemd/amlprobe.timer" "$W/units/"
  if ! systemd-analyze verify --man=no "$W/units/amlprobe.service" "$W/units/amlprobe.timer" >"$W/verify.out" 2>&1; then
    cat "$W/verify.out" >&2
    die "systemd-analyze verify"
  fi
  # verify exits 0 on some warnings; any line about our units is a finding.
  if grep -E 'amlprobe\.(service|timer)' "$W/verify.out" >&2; then die "systemd-analyze verify warned"; fi
  ok "systemd-analyze verify: amlprobe.service and amlprobe.timer"
else
  skipped "systemd-analyze is not installed: units not verified"
fi

section "prometheus alert rules"
if ! command -v promtool >/dev/null && [ "$is_root" = 1 ]; then apt_quiet prometheus || true; fi
if command -v promtool >/dev/null; then
  promtool check rules "$pkg/prometheus/amlprobe-alerts.yml" >"$W/promtool.out" 2>&1 \
    || { cat "$W/promtool.out" >&2; die "promtool check rules"; }
  ok "promtool check rules: amlprobe-alerts.yml (the testbed's scenarios 23 and 60 test them on real series)"
else
  skipped "promtool is not installed: alert rules not checked"
fi
grep -qx 'WantedBy=timers.target' "$pkg/systemd/amlprobe.timer" || die "the timer is not WantedBy=timers.target"
# Without Unit=, a timer starts the service of its own name.
! grep -q '^Unit=' "$pkg/systemd/amlprobe.timer" || die "the timer starts another unit than amlprobe.service"
ok "amlprobe.timer is enabled by timers.target and starts amlprobe.service"
if [ "$is_root" = 1 ]; then
  args=("${exec_start[@]:1}")
  for i in "${!args[@]}"; do
    case "${args[$i]}" in
      /etc/amlprobe/config.toml) args[i]=$conf ;;
      /var/log/amlprobe) args[i]="$W/sd/log" ;;
    esac
  done
  mkdir -p "$W/sd/log"
  expect_exit 1 "systemd ExecStart (blocked network)" "$W/sd.out" - \
    env -i NO_COLOR=1 "$bin" "${args[@]}"
  # --quiet: the root causes (numbered, with their fix) and then the one summary line.
  tail -n 1 "$W/sd.out" | grep -q '^amlprobe: ' && { [ "$(wc -l <"$W/sd.out")" = 1 ] || head -n 1 "$W/sd.out" | grep -qx 'root causes'; } \
    || die "ExecStart should print the root causes and one summary line for the journal: $(cat "$W/sd.out")"
  ok "systemd ExecStart prints the root causes and one summary line for the journal"
  pyck report "$W/sd/log/latest.json" - workspace,compute,images eastus 00000000-0000-0000-0000-000000000000
else
  skipped "systemd ExecStart run: needs root for a network namespace"
fi

# ---------------------------------------------------------------- Kubernetes
section "Kubernetes"
# field NAME: a value check.py extracted for the workload in $meta (lists comma-joined).
field() {
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(",".join(v) if isinstance(v,list) else v)' "$meta" "$1"
}
for version in 1.31.0 1.37.0; do
  if ! PYTHONPATH="$PYLIB" python3 -m kubernetes_validate --strict --quiet -k "$version" \
    "$pkg"/kubernetes/*.yaml >"$W/kv.out" 2>&1; then
    cat "$W/kv.out" >&2
    die "kubernetes-validate --strict -k $version"
  fi
  ok "kubernetes-validate --strict against Kubernetes $version: every manifest"
done
pyck k8s "$pkg/kubernetes" "$W/k8s" "$W/run-help.txt"
if [ "$is_root" = 1 ]; then
  for argsfile in "$W"/k8s/*.args; do
    key=$(basename "$argsfile" .args)
    mapfile -t kargs <"$argsfile"
    mapfile -t kenv <"$W/k8s/$key.env"
    meta="$W/k8s/$key.meta"
    if [ "${kargs[0]}" = run ]; then
      expect_exit 1 "$key: amlprobe ${kargs[*]}" "$W/$key.json" "$W/$key.err" \
        env -i "${kenv[@]}" "$bin" "${kargs[@]}"
      pyck report "$W/$key.json" "$(field host)" "$(field suites)" "$(field region)" "$(field workspace_id)"
    else
      port=$(field port)
      # The first run starts after the jitter (up to 30 s for --interval 5m): none here.
      in_ns env -i "${kenv[@]}" AMLPROBE_JITTER=0 "$bin" "${kargs[@]}" >"$W/$key.out" 2>"$W/$key.err" &
      SERVE_PID=$!
      if [ "$(field report)" = on ]; then
        got=
        for _ in $(seq 120); do
          got=$(in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/report" status)
          [ "$got" = 200 ] && break
          kill -0 "$SERVE_PID" 2>/dev/null || die "$key: serve exited: $(cat "$W/$key.err")"
          sleep 0.5
        done
        [ "$got" = 200 ] || die "$key: /report never answered 200 (last: $got)"
        in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/report" body >"$W/$key.json"
        pyck report "$W/$key.json" "$(field host)" "$(field suites)" "$(field region)" "$(field workspace_id)"
      else
        # --metrics-only: wait for the first run's metrics; /report must stay closed.
        for _ in $(seq 120); do
          in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/metrics" body >"$W/$key.metrics"
          grep -q '^amlprobe_exit_code ' "$W/$key.metrics" && break
          kill -0 "$SERVE_PID" 2>/dev/null || die "$key: serve exited: $(cat "$W/$key.err")"
          sleep 0.5
        done
        got=$(in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/report" status)
        [ "$got" = 404 ] || die "$key: --metrics-only, yet /report answered $got"
        ok "$key: /report answers 404 (--metrics-only)"
      fi
      [ "$(in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/healthz" status)" = 200 ] \
        || die "$key: /healthz is not 200"
      ok "$key: /healthz answers 200 (the kubelet probes' path and port)"
      in_ns python3 "$pkg/check.py" fetch "http://127.0.0.1:$port/metrics" body >"$W/$key.metrics"
      grep -q '^amlprobe_flow_up{' "$W/$key.metrics" && grep -qx 'amlprobe_exit_code 1' "$W/$key.metrics" \
        || die "$key: /metrics lacks amlprobe_flow_up or amlprobe_exit_code 1"
      ok "$key: /metrics has per-flow series and exit code 1"
      head -n1 "$W/$key.out" | grep -q '"event":"listening"' || die "$key: no listening log line"
      grep -q '"event":"run"' "$W/$key.out" || die "$key: no JSON run log line"
      ok "$key: logs a listening line and one JSON line per run"
      kill "$SERVE_PID"
      wait "$SERVE_PID" 2>/dev/null || true
      SERVE_PID=
    fi
  done
else
  skipped "Kubernetes commands: need root for a network namespace"
fi

# ---------------------------------------------------------------- container
section "container"
cf="$pkg/container/Containerfile"
grep -qx 'FROM scratch' "$cf" || die "the Containerfile is not FROM scratch"
user=$(sed -n 's/^USER \([0-9]*\):\([0-9]*\)$/\1/p' "$cf")
[ -n "$user" ] && [ "$user" != 0 ] || die "the Containerfile has no numeric non-root USER"
entry=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)"\]$/\1/p' "$cf")
grep -qx "COPY amlprobe $entry" "$cf" || die "ENTRYPOINT $entry is not where the binary is copied"
grep -q "^EXPOSE $(sed -n 's/.*--listen", "[^"]*:\([0-9]*\)".*/\1/p' "$pkg/kubernetes/daemonset.yaml")\$" "$cf" \
  || die "the Containerfile does not EXPOSE the DaemonSet's port"
ok "Containerfile: FROM scratch, USER $user, ENTRYPOINT $entry, EXPOSE matches the DaemonSet"
bash -n "$pkg/container/build.sh" || die "build.sh is not valid bash"
# The arm64 image needs the aarch64 binary; build-static exits 3 where its toolchain can't be had.
bin_arm64=${AMLPROBE_BIN_AARCH64:-}
if [ -z "$bin_arm64" ]; then
  got=0
  rel=$(./.ci/build-static --target aarch64) || got=$?
  [ "$got" = 0 ] || [ "$got" = 3 ] || die ".ci/build-static --target aarch64 exited $got"
  [ "$got" = 3 ] || bin_arm64="$root/$rel"
fi
if [ -z "$bin_arm64" ]; then
  [ "${CI:-}" != true ] || die "the aarch64 cross toolchain did not install: CI must build the arm64 image"
  skipped "container image: the aarch64 cross toolchain cannot be installed here, so no arm64 image"
else
  export AMLPROBE_BIN="$bin" AMLPROBE_BIN_AARCH64="$bin_arm64"
  bash "$pkg/container/build.sh" --context-only "$W/ctx" >/dev/null
  for arch in amd64 arm64; do
    [ -x "$W/ctx/$arch/amlprobe" ] && [ -s "$W/ctx/$arch/ca-certificates.crt" ] && [ -f "$W/ctx/$arch/Containerfile" ] \
      || die "build.sh --context-only staged $(ls -R "$W/ctx")"
  done
  ok "build.sh stages the binary, the CA bundle and the Containerfile for amd64 and arm64"
  bash "$pkg/container/build.sh" "$W/oci" >/dev/null 2>"$W/oci-build.err" || die "build.sh: $(cat "$W/oci-build.err")"
  tag=$("$bin" --version | awk '{print $2}')
  pyck oci-index "$W/oci" "$tag" "$user"
  # A second implementation reads the layout too: skopeo resolves each platform and checks digests.
  if ! command -v skopeo >/dev/null && [ "$is_root" = 1 ]; then apt_quiet skopeo || true; fi
  if command -v skopeo >/dev/null; then
    for arch in amd64 arm64; do
      got=$(skopeo --override-os linux --override-arch "$arch" inspect --config "oci:$W/oci:$tag" \
        | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["os"], c["architecture"])')
      [ "$got" = "linux $arch" ] || die "skopeo resolves $arch in the index to $got"
    done
    skopeo copy --quiet --all "oci:$W/oci:$tag" "oci:$W/oci-copy:$tag" >/dev/null 2>"$W/skopeo.err" \
      || die "skopeo copy --all: $(cat "$W/skopeo.err")"
    ok "skopeo resolves linux/amd64 and linux/arm64 from the index and copies it whole"
  else
    skipped "skopeo is not installed: the OCI layout was only checked by check.py"
  fi
  if [ "$is_root" = 1 ]; then
    # No docker daemon (CI): unpack each image into an OCI bundle and run it with runc, the way
    # kubelet would start the Job's pod from the image. The arm64 image runs under qemu-user.
    command -v runc >/dev/null || apt_quiet runc || true
    command -v qemu-aarch64-static >/dev/null || apt_quiet qemu-user-static || true
    ran=0
    if command -v runc >/dev/null; then
      mkdir -p "$W/spec"
      (cd "$W/spec" && runc spec)
      echo "nameserver 127.0.0.1" >"$W/ctr-resolv.conf"
      : >"$W/empty.env"
      pyck oci-bundle "$W/oci" "$tag" amd64 "$W/b-version" "$W/spec/config.json" "$W/empty.env" "$W/ctr-resolv.conf" --version
      if out=$(cd "$W/b-version" && timeout 60 runc run "amlpkg-v$$" 2>&1); then
        ran=1
      fi
    fi
    if [ "$ran" = 1 ]; then
      grep -q '^amlprobe [0-9]' <<<"$out" || die "the image's amlprobe --version printed: $out"
      ok "the amd64 image runs as uid $user with a read-only root and no capabilities (runc)"
      meta="$W/k8s/job-amlprobe.meta"
      mapfile -t kargs <"$W/k8s/job-amlprobe.args"
      pyck oci-bundle "$W/oci" "$tag" amd64 "$W/b-job" "$W/spec/config.json" "$W/k8s/job-amlprobe.env" "$W/ctr-resolv.conf" "${kargs[@]}"
      got=0
      (cd "$W/b-job" && timeout 120 runc run "amlpkg-j$$" >"$W/ctr-job.json" 2>"$W/ctr-job.err") || got=$?
      [ "$got" = 1 ] || die "the Job's command in the image exited $got, expected 1: $(head -c 400 "$W/ctr-job.err")"
      ok "the Job's command in the amd64 image exits 1 (nothing reachable)"
      pyck report "$W/ctr-job.json" "$(field host)" "$(field suites)" "$(field region)" "$(field workspace_id)"
      qemu=$(command -v qemu-aarch64-static) || die "qemu-aarch64-static is not installed (Debian: qemu-user-static)"
      pyck oci-bundle "$W/oci" "$tag" arm64 "$W/b-arm64" "$W/spec/config.json" "$W/empty.env" "$W/ctr-resolv.conf" --qemu "$qemu" --version
      file "$W/b-arm64/rootfs/usr/local/bin/amlprobe" | grep -q 'ARM aarch64.*static' \
        || die "the arm64 image holds $(file "$W/b-arm64/rootfs/usr/local/bin/amlprobe")"
      out=$(cd "$W/b-arm64" && timeout 60 runc run "amlpkg-a$$" 2>&1) || die "the arm64 image under qemu: $out"
      [ "$out" = "$("$bin" --version)" ] || die "the arm64 image's amlprobe --version printed: $out"
      ok "the arm64 image holds a static aarch64 binary and runs --version under qemu-user (runc)"
    else
      skipped "container run: no docker daemon, and runc cannot start containers here: ${out:-runc not installed}"
    fi
  else
    skipped "container run: needs root for runc (the index was checked statically)"
  fi
fi

n=$(grep -c '^ok - ' "$LOG")
echo "packaging: $n checks passed"
