#!/usr/bin/env bash
# Benchmark: a healthy world for every built-in suite. The world is the vnet testbed's healthy
# scenario (tests/vnet/scenarios/10-healthy.toml, rendered by tests/vnet/lib/vnet.py: dnsmasq with
# privatelink CNAMEs, nginx with TLS on every front end, the Python SMB2 stub on 445 and a UDP echo
# on 5831), brought up in namespaces of its own (amlbench-vm, amlbench-svc: never the testbed's),
# torn down on exit. Every run is void unless every flow is works or not_testable. Reports the
# run's own duration (duration_ms) and wall time (farm-bench if installed, else hyperfine), medians over RUNS runs. Then the
# same world with 5831 silent: the one wait a healthy run cannot avoid (--udp-timeout).
#   sudo bash benches/healthy.sh     (AMLPROBE_BIN=path, RUNS=n)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh
lib=$root/tests/vnet/lib

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIPPED: benchmark not run: needs root and ip netns"; exit 0
fi
RUNS=${RUNS:-20}
VM=amlbench-vm SVC=amlbench-svc
command -v farm-bench >/dev/null || need hyperfine hyperfine
bin=${AMLPROBE_BIN:-$root/target/release/amlprobe}
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml" >&2

work=$(mktemp -d /tmp/amlbench-healthy.XXXXXX)
out=$work/healthy
clean_up_on_exit "$work" $VM $SVC

# The addresses are the testbed's (the rendered configs use them), in namespaces of our own.
ip netns add $VM; ip netns add $SVC
for ns in $VM $SVC; do ip -n $ns link set lo up; done
ip link add amlbench-v0 netns $VM type veth peer name amlbench-s0 netns $SVC
ip -n $VM addr add 10.10.0.10/24 dev amlbench-v0; ip -n $VM link set amlbench-v0 up
ip -n $SVC addr add 10.10.0.1/24 dev amlbench-s0; ip -n $SVC link set amlbench-s0 up
for net in 10.10.0.0/16 198.18.0.0/15; do ip -n $VM route add $net via 10.10.0.1; done
for a in 10.10.2.53 10.10.2.98 10.10.2.99 10.10.3.10; do ip -n $SVC addr add $a/32 dev lo; done
mkdir -p /etc/netns/$VM
printf 'nameserver 10.10.2.53\noptions timeout:1 attempts:1\n' >/etc/netns/$VM/resolv.conf
printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/netns/$VM/hosts

# The world, exactly as the testbed derives it from `amlprobe suites` (which sends nothing).
mkdir -p "$out"
python3 "$lib/vnet.py" prepare "$root/tests/vnet/scenarios/10-healthy.toml" "$out"
mapfile -t select <"$out/select.args"
mapfile -t run_args <"$out/run.args"
"$bin" suites "${select[@]}" --format json >"$out/plan.json"
python3 "$lib/vnet.py" render "$root/tests/vnet/scenarios/10-healthy.toml" "$out"
# shellcheck source=../tests/vnet/lib/pki.sh
. "$lib/pki.sh"
pki_init "$work/pki"
while read -r name issuer validity sans; do
  # shellcheck disable=SC2086 # one SAN per word
  pki_leaf "$work/pki" "$name" "$issuer" "$validity" $sans
done <"$out/certs.txt"
while read -r a; do [ -n "$a" ] && ip -n $SVC addr add "$a/32" dev lo; done <"$out/addresses.txt"
mkdir -p "$out/nginx-tmp"
ip netns exec $SVC dnsmasq --keep-in-foreground --conf-file="$out/dnsmasq.conf" >"$work/dnsmasq.out" 2>&1 &
echo $! >"$work/dnsmasq.pid"
ip netns exec $SVC nginx -c "$out/nginx.conf" -e "$out/nginx-error.log" >"$work/nginx.out" 2>&1 &
echo $! >"$work/nginx.pid"
ip netns exec $SVC python3 "$lib/stubs.py" "$out/stubs.json" >"$work/stubs.out" 2>&1 &
echo $! >"$work/stubs.pid"
sleep 1
for d in dnsmasq nginx stubs; do kill -0 "$(cat "$work/$d.pid")" 2>/dev/null || { echo "$d did not start:"; tail -n 5 "$work/$d.out" "$out/nginx-error.log" || true; exit 1; }; done

cmd=(ip netns exec $VM env -i PATH=/usr/bin:/bin "$bin" run "${select[@]}" "${run_args[@]}" --no-imds --no-proxy)
check() {
  "${cmd[@]}" "$@" >"$work/report.json" || true
  python3 - "$work/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [(f["id"], f["status"], f["reason"]) for f in r["flows"] if f["status"] not in ("works", "not_testable")]
if bad:
    sys.exit(f"benchmark void: not healthy: {bad}")
print(len(r["flows"]), r["duration_ms"])
EOF
}
durations() {
  local ms=()
  for _ in $(seq 1 "$RUNS"); do read -r flows d < <(check "$@"); ms+=("$d"); done
  python3 -c 'import statistics, sys; v = sorted(int(x) for x in sys.argv[1:]); print(statistics.median(v), v[0], v[-1])' "${ms[@]}"
}
read -r flows _ < <(check)
read -r med lo hi < <(durations)
# Whole-process wall time: farm-bench where it is installed (the published figures), else hyperfine.
if command -v farm-bench >/dev/null; then
  timer=farm-bench
  farm-bench -n "$RUNS" --warmup 2 -- "${cmd[@]}" >"$work/fb.txt" 2>&1
  wall=$(awk '$1 == "A" && $2 == "wall" { printf "%.1f", $5 * 1000 }' "$work/fb.txt")
else
  timer=hyperfine
  hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$work/hf.json" "${cmd[*]}" >/dev/null 2>&1
  wall=$(python3 -c "import json; print(round(json.load(open('$work/hf.json'))['results'][0]['median']*1000, 1))")
fi

# 5831 silent: nftables drops what the UDP echo would answer.
echo 'table inet amlbench { chain in { type filter hook input priority 0; udp dport 5831 drop; }; }' |
  ip netns exec $SVC nft -f -
udp=()
for _ in $(seq 1 5); do
  "${cmd[@]}" --suite compute >"$work/udp.json" || true
  udp+=("$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = next(f for f in r["flows"] if f["id"] == "compute.tundra")
assert f["reason"] == "udp_no_reply", f
print(r["duration_ms"])' "$work/udp.json")")
done
udp_msg=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = next(f for f in r["flows"] if f["id"] == "compute.tundra")
print(next(p["message"] for p in f["probes"] if p["kind"] == "udp"))' "$work/udp.json")

echo "| healthy world, every built-in suite ($flows flows, --timeout 2) | median | min | max | goal |"
echo "|---|---|---|---|---|"
echo "| run duration (report duration_ms, $RUNS runs) | $med ms | $lo ms | $hi ms | well under 100 ms |"
echo "| wall time incl. process start ($timer, $RUNS runs) | $wall ms | | | |"
echo "| compute suite with 5831 silent (duration_ms, 5 runs) | $(python3 -c 'import statistics, sys; print(statistics.median(int(x) for x in sys.argv[1:]))' "${udp[@]}") ms | | | about the UDP wait (1 s) |"
echo
echo "UDP message: $udp_msg"
