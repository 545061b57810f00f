#!/usr/bin/env bash
# Soak: `amlprobe serve` re-running a 20-flow suite back to back (interval 1 ms) for 10,000 runs,
# resident memory and CPU per run sampled every 1,000 runs. Flat memory is the claim; this is the
# proof at scale (tests/it/operations.rs has a shorter version: cargo test -- --ignored). Needs root: everything runs in
# a network namespace of its own with only loopback (real dnsmasq, a TCP listener), torn down after.
#   sudo bash benches/soak.sh            (AMLPROBE_BIN=path, RUNS=n to change)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh
RUNS=${RUNS:-10000} EVERY=${EVERY:-1000}

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIPPED: soak not run: needs root and ip netns"; exit 0
fi
need dnsmasq dnsmasq-base
bin=${AMLPROBE_BIN:-$root/target/release/amlprobe}
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml" >&2

# Not amlp-*: the vnet testbed sweeps its own namespaces by that prefix.
ns=amlbench-soak
work=$(mktemp -d /tmp/amlbench-soak.XXXXXX)
clean_up_on_exit "$work" "$ns"
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

{
  printf '[suite]\nname = "soak"\ntitle = "soak"\n'
  for i in $(seq 1 20); do
    printf '\n[[flow]]\nid = "soak.f%s"\ntitle = "flow %s"\ndirection = "outbound"\nservice_tag = "Test"\n' "$i" "$i"
    printf 'required = true\nscenario = "soak"\nsource = "soak"\nhosts = ["h%s.soak.test"]\nports = [8443]\n' "$i"
  done
} >"$work/suite.toml"
ip netns exec "$ns" dnsmasq --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --port=53 \
  --bind-interfaces --address=/soak.test/127.0.0.1 --log-facility=/dev/null 2>/dev/null &
echo $! >"$work/dnsmasq.pid"
ip netns exec "$ns" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8443)); s.listen(512)
while True:
    c, _ = s.accept(); c.close()
' &
echo $! >"$work/listener.pid"
sleep 0.5

ip netns exec "$ns" "$bin" serve --listen 127.0.0.1:19477 --interval 1ms --no-interval-floor --jitter 1ms --no-imds --no-proxy \
  --dns-server 127.0.0.1 --private-cidr 127.0.0.0/8 --suite-file "$work/suite.toml" --suite soak --timeout 2 \
  >"$work/log" 2>"$work/err" &
pid=$!
echo $pid >"$work/serve.pid"

# serve's own CPU (user + sys), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
echo "| runs | RSS (KiB) | elapsed (s) | CPU per run over the last $EVERY (ms) |"
echo "|---|---|---|---|"
start=$(date +%s.%N)
next=$EVERY last_ticks=$(ticks) last_runs=0
while [ "$next" -le "$RUNS" ]; do
  while [ "$(grep -c '"event":"run"' "$work/log" || true)" -lt "$next" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "serve died:"; cat "$work/err"; exit 1; }
    sleep 0.2
  done
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  now_ticks=$(ticks) runs=$(grep -c '"event":"run"' "$work/log")
  cpu=$(awk -v t=$((now_ticks - last_ticks)) -v r=$((runs - last_runs)) -v hz="$hz" 'BEGIN { printf "%.2f", t * 1000 / hz / r }')
  printf "| %s | %s | %s | %s |\n" "$next" "$rss" "$(awk -v s="$start" -v e="$(date +%s.%N)" "BEGIN { printf \"%.1f\", e - s }")" "$cpu"
  last_ticks=$now_ticks last_runs=$runs
  next=$((next + EVERY))
done
last=$(grep '"event":"run"' "$work/log" | tail -1)
echo
echo "last run: $last"
grep -q '"exit_code":0' <<<"$last" || { echo "soak: the last run did not pass"; exit 1; }
