#!/usr/bin/env bash
# End-to-end tests in a "VNet in a box": network namespaces, real dnsmasq / nginx / squid /
# nftables, and the real amlprobe binary, whose JSON verdicts are compared with each scenario's
# expectations (tests/vnet/scenarios/*.toml). See tests/vnet/README.md.
#
#   bash tests/vnet/run.sh                 every scenario
#   bash tests/vnet/run.sh healthy nsg     only scenarios whose file name contains these words
#   bash tests/vnet/run.sh --self-test     only the deliberately wrong scenario, not inverted:
#                                          must FAIL (exit 1) and show what a mismatch looks like
#   bash tests/vnet/run.sh --keep NAME     leave the last scenario's world up to poke at by hand
#   bash tests/vnet/run.sh --down          tear down what --keep (or a crashed run) left
#   AMLPROBE_BIN=path bash tests/vnet/run.sh   use this binary instead of `cargo build --release`
#   AMLP_VNET_SMB=stub bash tests/vnet/run.sh  answer SMB with the Python stub, not smbd
#
# Needs root and `ip netns`; without them it prints a SKIPPED line and exits 0. All traffic
# stays inside namespaces this script creates (no default route, no link to the host).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${AMLP_VNET_WORK:-/tmp/amlp-vnet}
PY=${PYTHON:-python3}
# shellcheck source=lib/netns.sh
. "$HERE/lib/netns.sh"
# shellcheck source=lib/pki.sh
. "$HERE/lib/pki.sh"

self_test=0 keep=0 down=0
filters=()
for arg in "$@"; do
  case "$arg" in
    --self-test) self_test=1 ;;
    --keep) keep=1 ;;
    --down) down=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
    *) filters+=("$arg") ;;
  esac
done

skip() {
  echo "################################################################################"
  echo "SKIPPED: vnet testbed not run: $*"
  echo "################################################################################"
  exit 0
}

# ---------------------------------------------------------------- can we run at all?
[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, nftables, binding port 53/443/445)"
command -v ip >/dev/null || skip "iproute2 ('ip') is not installed"
ip netns add amlp-precheck 2>/dev/null || skip "cannot create network namespaces here (container without CAP_SYS_ADMIN?)"
ip netns del amlp-precheck
# One testbed at a time per machine: the namespaces and daemons have fixed names, so a second
# run (another checkout, a benchmark) waits here instead of tearing the first one's world down.
# A `flock -o` parent holds the lock and this script runs again under it without the lock's
# descriptor, so nothing it starts (the daemons --keep leaves up, Wine's wineserver) can keep
# holding the lock after the run has ended.
if [ -z "${AMLP_VNET_LOCKED:-}" ]; then
  AMLP_VNET_LOCKED=1 exec flock -o /run/amlp-vnet.lock bash "$0" "$@"
fi

if [ "$down" = 1 ]; then
  if [ -f "$WORK/daemons.pids" ]; then
    while read -r pid _; do kill "$pid" 2>/dev/null || true; done <"$WORK/daemons.pids"
  fi
  topology_down
  echo "vnet: testbed torn down"
  exit 0
fi

# ---------------------------------------------------------------- packages
# dnsmasq-base is the binary without the system service. The other packages ship services:
# a temporary policy-rc.d keeps apt from starting them on the host.
# apt_install PKG...: returns non-zero when apt could not install them.
apt_install() {
  local made_policy=0 apt_ok=1
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; } || apt_ok=0
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$apt_ok" = 1 ]
}

need=()
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v nginx >/dev/null || need+=(nginx)
command -v squid >/dev/null || need+=(squid)
command -v nft >/dev/null || need+=(nftables)
command -v openssl >/dev/null || need+=(openssl)
command -v ss >/dev/null || need+=(iproute2)
command -v "$PY" >/dev/null || need+=(python3)
command -v promtool >/dev/null || need+=(prometheus)   # promtool tests the shipped alert rules
"$PY" -c 'import jsonschema' 2>/dev/null || need+=(python3-jsonschema)   # reports vs docs/report.schema.json
if [ ${#need[@]} -gt 0 ]; then
  echo "vnet: installing ${need[*]}"
  apt_install "${need[@]}" || { echo "vnet: FAILED: could not install ${need[*]}" >&2; exit 1; }
fi
# Healthy SMB on 445 comes from a real smbd (Debian's samba, no recommends). It is optional:
# without it the Python SMB2 stub answers, and the run says so loudly.
SMBD=
if [ "${AMLP_VNET_SMB:-samba}" != stub ]; then
  if ! command -v smbd >/dev/null; then
    echo "vnet: installing samba"
    apt_install samba || true
  fi
  SMBD=$(command -v smbd || true)
fi
if [ -z "$SMBD" ]; then
  echo "################################################################################"
  if [ "${AMLP_VNET_SMB:-samba}" = stub ]; then why="AMLP_VNET_SMB=stub"; else why="samba could not be installed"; fi
  echo "NOTE: no smbd ($why): port 445 is answered by the Python SMB2 stub"
  echo "      (lib/stubs.py), not by a real SMB server"
  echo "################################################################################"
fi

# ---------------------------------------------------------------- the binary
if [ -z "${AMLPROBE_BIN:-}" ]; then
  echo "vnet: building amlprobe (cargo build --release)"
  (cd "$REPO" && cargo build --release --quiet) || { echo "vnet: FAILED: cargo build --release failed" >&2; exit 1; }
  AMLPROBE_BIN="$REPO/target/release/amlprobe"
fi
[ -x "$AMLPROBE_BIN" ] || { echo "vnet: FAILED: $AMLPROBE_BIN is not an executable" >&2; exit 1; }
AMLPROBE_BIN=$(cd "$(dirname "$AMLPROBE_BIN")" && pwd)/$(basename "$AMLPROBE_BIN")
run_help=$("$AMLPROBE_BIN" run --help 2>&1 || true)

# ---------------------------------------------------------------- daemons
DAEMON_PIDS=()
DAEMON_NAMES=()

stop_daemons() {
  local pid i
  for i in "${!DAEMON_PIDS[@]}"; do
    # squid takes ~3 s to honour SIGTERM even with shutdown_lifetime 0, and keeps nothing worth
    # a clean shutdown here (no cache): SIGKILL; the sweep below takes its helpers and pinger.
    if [ "${DAEMON_NAMES[$i]}" = squid ]; then
      kill -KILL "${DAEMON_PIDS[$i]}" 2>/dev/null || true
    else
      kill "${DAEMON_PIDS[$i]}" 2>/dev/null || true
    fi
  done
  for pid in "${DAEMON_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  DAEMON_PIDS=()
  DAEMON_NAMES=()
  rm -f "$WORK/daemons.pids"
  # smbd and squid fork helpers (smbd-notifyd, per-connection children, basic_ncsa_auth, pinger)
  # that DAEMON_PIDS does not list; only this script starts processes in the service namespace,
  # so whatever is left there is one of those.
  local left
  for _ in $(seq 20); do
    left=$(ip netns pids "$NS_SVC" 2>/dev/null || true)
    [ -z "$left" ] && return 0
    for pid in $left; do kill "$pid" 2>/dev/null || true; done
    sleep 0.1
  done
  for pid in $(ip netns pids "$NS_SVC" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
}

# start NAME LOG CMD...: runs CMD in the service namespace in the foreground of a background job.
# `ip netns exec` execs CMD, so $! is the daemon's own pid (not through nsx: a backgrounded shell
# function would be a subshell, and $! its pid).
start() {
  local name=$1 log=$2
  shift 2
  ip netns exec "$NS_SVC" "$@" >"$log" 2>&1 &
  DAEMON_PIDS+=("$!")
  DAEMON_NAMES+=("$name")
  echo "$! $name" >>"$WORK/daemons.pids"
}

# wait_listen PROTO ADDR:PORT...: until the service namespace listens there (5 s at most).
wait_listen() {
  local proto=$1 want missing
  shift
  for _ in $(seq 50); do
    missing=()
    local have
    have=$(nsx "$NS_SVC" ss -Hln"${proto:0:1}" | awk '{print $4}')
    for want in "$@"; do
      grep -qxF "$want" <<<"$have" || missing+=("$want")
    done
    [ ${#missing[@]} = 0 ] && return 0
    sleep 0.1
  done
  echo "    daemon did not come up: nothing listens on $proto ${missing[*]} (see $WORK)" >&2
  return 1
}

# A previous run that crashed may have left daemons and namespaces: clean them first.
cleanup_previous() {
  local pid _name
  if [ -f "$WORK/daemons.pids" ]; then
    while read -r pid _name; do kill "$pid" 2>/dev/null || true; done <"$WORK/daemons.pids"
  fi
  topology_down
}

teardown() {
  if [ "$keep" = 1 ]; then
    echo "vnet: --keep: the testbed is still up (amlp-client/amlp-router/amlp-svc); rerun amlprobe with"
    echo "      $WORK/<scenario>/command.txt; tear it down with: bash $0 --down"
    return
  fi
  stop_daemons
  topology_down
}

cleanup_previous
rm -rf "$WORK"
mkdir -p "$WORK"
trap teardown EXIT
trap 'exit 130' INT TERM

topology_up
pki_init "$WORK/pki"

# ---------------------------------------------------------------- one scenario
# bring_up OUT: the world rendered in OUT, live in the namespaces.
bring_up() {
  local out=$1 name issuer validity sans
  while read -r name issuer validity sans; do
    # shellcheck disable=SC2086  # SAN list is one word per name
    pki_leaf "$WORK/pki" "$name" "$issuer" "$validity" $sans || { echo "    cannot make certificate $name" >&2; return 1; }
  done <"$out/certs.txt"
  # (set -e does not apply inside a function called with ||: check each step.)
  stop_daemons
  svc_set_addresses "$out/addresses.txt" || return 1
  nsx "$NS_ROUTER" nft flush ruleset || return 1
  nsx "$NS_ROUTER" nft -f "$out/router.nft" || { echo "    nft rejected $out/router.nft" >&2; return 1; }

  mkdir -p "$out/nginx-tmp"
  start dnsmasq "$out/dnsmasq.out" dnsmasq --conf-file="$out/dnsmasq.conf"
  start nginx "$out/nginx.out" nginx -c "$out/nginx.conf" -e "$out/nginx-error.log"
  start stubs "$out/stubs.out" "$PY" "$HERE/lib/stubs.py" "$out/stubs.json"
  if [ -f "$out/dnsmasq-azure.conf" ]; then
    start dnsmasq-azure "$out/dnsmasq-azure.out" dnsmasq --conf-file="$out/dnsmasq-azure.conf"
  fi
  if [ -f "$out/smb.conf" ]; then
    # Foreground, logging to smb.conf's log file. Never --no-process-group: smbd then stays in
    # this script's process group, and on SIGTERM the smbd parent signals its whole group.
    start smbd "$out/smbd.out" "$SMBD" --foreground --configfile="$out/smb.conf"
  fi
  local tcp_listen udp_listen
  mapfile -t tcp_listen < <("$PY" "$HERE/lib/vnet.py" listeners "$out" tcp)
  mapfile -t udp_listen < <("$PY" "$HERE/lib/vnet.py" listeners "$out" udp)
  if [ -f "$out/squid.conf" ]; then
    # squid drops privileges to 'proxy' and must still write its logs.
    chmod 0777 "$out"
    start squid "$out/squid.out" squid -N -f "$out/squid.conf"

  fi
  wait_listen udp "${udp_listen[@]}" || return 1
  wait_listen tcp "${tcp_listen[@]}" || return 1
}

# run_scenario FILE: prints the verdict; returns 0 passed, 1 failed, 3 skipped (pending).
run_scenario() {
  local file=$1 name out rc started
  name=$(basename "$file" .toml)
  out="$WORK/$name"
  mkdir -p "$out"
  started=$(date +%s%N)
  "$PY" "$HERE/lib/vnet.py" prepare "$file" "$out" || return 1
  local description pending requires amlprobe
  description=$("$PY" -c 'import json,sys,textwrap; print(textwrap.shorten(json.load(open(sys.argv[1]))["description"], 110))' "$out/meta.json")
  pending=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pending"])' "$out/meta.json")
  requires=$("$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["requires"]))' "$out/meta.json")
  amlprobe=$("$PY" -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["amlprobe"]).lower())' "$out/meta.json")
  echo "== $name: $description"
  local flag
  for flag in $requires; do
    grep -q -- "$flag" <<<"$run_help" || pending="amlprobe run has no $flag yet"
  done
  if [ -n "$pending" ]; then
    echo "    !!!!!!!! PENDING (skipped): $pending"
    return 3
  fi
  local select run_args env_args plan_args
  mapfile -t select <"$out/select.args"
  mapfile -t run_args <"$out/run.args"
  mapfile -t env_args <"$out/run.env"
  mapfile -t plan_args <"$out/plan.args"
  # `suites` only lists what would be probed; it sends nothing, so it runs in the host namespace.
  if ! "$AMLPROBE_BIN" suites "${select[@]}" "${plan_args[@]}" --format json >"$out/plan.json" 2>"$out/suites.err"; then
    echo "    FAILED: amlprobe suites: $(head -c 400 "$out/suites.err")"
    return 1
  fi
  "$PY" "$HERE/lib/vnet.py" render "$file" "$out" ${SMBD:+--samba} || return 1
  bring_up "$out" || return 1

  # [app_firewall] worlds: first prove on the wire, from the client, that every port of every
  # name answers as built (the deny responder's style, or the name's own server).
  if [ -f "$out/wire.json" ]; then
    if ! ip netns exec "$NS_CLIENT" "$PY" "$HERE/lib/vnet.py" wire "$out" | tee "$out/wire.txt"; then
      echo "    FAILED: the world does not answer as built (world: $out/world.txt, responder log: $out/stubs.out)"
      return 1
    fi
  fi
  if [ "$amlprobe" = false ]; then
    local ds=$((($(date +%s%N) - started) / 100000000))
    echo "    ok (world self-test, amlprobe not run; $((ds / 10)).$((ds % 10))s)"
    return 0
  fi

  # [azure_vm]: the client sees Azure's DMI chassis asset tag (a private mount namespace with a
  # tmpfs over /sys/class, /sys/class/net bound back in), so amlprobe asks the testbed IMDS.
  local vm=()
  if [ -f "$out/azure_vm.tag" ]; then
    vm=(unshare --mount --propagation private sh -c '
      keep=$(mktemp -d) && mount --bind /sys/class/net "$keep" &&
      mount -t tmpfs -o size=64k amlp-dmi /sys/class &&
      mkdir -p /sys/class/dmi/id /sys/class/net && cp "$0" /sys/class/dmi/id/chassis_asset_tag &&
      mount --move "$keep" /sys/class/net && exec "$@"' "$out/azure_vm.tag")
  fi
  # A clean environment: the developer's proxy variables or SSL_CERT_FILE must not leak in. It
  # runs in the scenario's folder, where [arm] worlds put the SDK's config.json (and where no
  # stray config.json of the developer's can start a discovery).
  rc=0
  (cd "$out" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "${env_args[@]}" \
    timeout 120 ip netns exec "$NS_CLIENT" "${vm[@]}" "$AMLPROBE_BIN" run "${select[@]}" "${run_args[@]}") \
    >"$out/$(cat "$out/stdout.file")" 2>"$out/amlprobe.err" || rc=$?
  printf '%q ' ip netns exec "$NS_CLIENT" "$AMLPROBE_BIN" run "${select[@]}" "${run_args[@]}" >"$out/command.txt"
  local verdict=0
  local invert=()
  [ "$self_test" = 1 ] && invert=(--no-invert)
  "$PY" "$HERE/lib/vnet.py" check "$file" "$out" "$rc" "${invert[@]}" || verdict=$?
  local ds=$((($(date +%s%N) - started) / 100000000))
  local took="$((ds / 10)).$((ds % 10))"
  if [ "$verdict" = 0 ]; then
    echo "    ok (${took}s)"
  else
    [ -s "$out/amlprobe.err" ] && sed 's/^/    amlprobe stderr: /' "$out/amlprobe.err" | head -5
    echo "    FAILED (${took}s; world: $out/world.txt, report: $out/report.json)"
  fi
  return "$verdict"
}

# ---------------------------------------------------------------- all of them
scenarios=()
for f in "$HERE"/scenarios/*.toml; do
  base=$(basename "$f" .toml)
  [[ "$base" == _* ]] && continue
  if [ "$self_test" = 1 ]; then
    grep -qE '^expect_failure *= *true' "$f" || continue
  fi
  if [ ${#filters[@]} -gt 0 ]; then
    match=0
    for w in "${filters[@]}"; do [[ "$base" == *"$w"* ]] && match=1; done
    [ "$match" = 1 ] || continue
  fi
  scenarios+=("$f")
done
[ ${#scenarios[@]} -gt 0 ] || { echo "vnet: no scenario matches ${filters[*]:-}" >&2; exit 2; }

passed=0 failed=0 skipped=0 failed_names=()
t0=$(date +%s)
for f in "${scenarios[@]}"; do
  r=0
  run_scenario "$f" || r=$?
  case "$r" in
    0) passed=$((passed + 1)) ;;
    3) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failed_names+=("$(basename "$f" .toml)") ;;
  esac
done
echo
echo "vnet testbed: ${#scenarios[@]} scenarios in $(($(date +%s) - t0))s; logs and reports in $WORK"
[ "$failed" -gt 0 ] && echo "vnet failed scenarios: ${failed_names[*]}"
echo "vnet: $passed passed, $failed failed, $skipped skipped"
if [ "$self_test" = 1 ]; then
  echo "vnet --self-test: failing (exit 1) is the expected outcome: those expectations are wrong on purpose"
fi
[ "$failed" -eq 0 ]
