#!/usr/bin/env bash
# Benchmark at scale: 1,000 TLS targets from a --suite-file in network namespaces, the last quarter
# silently dropped (nftables), --timeout 2 and otherwise default settings. Every run is void
# unless every verdict is right (750 works, 250 tcp_timeout). Side by side, in the same world:
# blackbox_exporter driven by a concurrent client (Python asyncio, one HTTP request per target,
# bounded to CONC in flight). Medians over RUNS runs. Needs root; traffic never leaves the
# namespaces (amlbench-srv, amlbench-cli), which are torn down on exit.
#   sudo bash benches/scale.sh     (AMLPROBE_BIN=path, RUNS=n, N=targets, CONC=client concurrency,
#                                   AMLPROBE_ARGS="extra flags", OUT=file for the Markdown rows,
#                                   KEEP_REPORT=file for the last run's JSON report)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIPPED: benchmark not run: needs root and ip netns"; exit 0
fi

N=${N:-1000} RUNS=${RUNS:-5} TIMEOUT=2
DROPPED=$((N / 4))
# blackbox_exporter's client gets as many probes in flight as amlprobe keeps waits in flight: one
# per target here (every target has an address of its own; see README "Performance").
CONC=${CONC:-$N}
SRV=amlbench-srv CLI=amlbench-cli
work=$(mktemp -d /tmp/amlbench-scale.XXXXXX)
clean_up_on_exit "$work" $SRV $CLI

need dnsmasq dnsmasq-base; need nginx nginx; need nft nftables; need /usr/bin/time time; need openssl openssl
need prometheus-blackbox-exporter prometheus-blackbox-exporter
bin=${AMLPROBE_BIN:-$root/target/release/amlprobe}
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml" >&2

addr() { echo "10.97.$((($1 - 1) / 250 + 1)).$((($1 - 1) % 250 + 1))"; }

# The world: two namespaces on one veth pair, no default route anywhere.
ip netns add $SRV; ip netns add $CLI
ip link add amlbench-c type veth peer name amlbench-s
ip link set amlbench-c netns $CLI; ip link set amlbench-s netns $SRV
ip -n $CLI addr add 10.97.0.1/16 dev amlbench-c; ip -n $SRV addr add 10.97.0.2/16 dev amlbench-s
for n in $(seq 1 "$N"); do echo "addr add $(addr "$n")/16 dev amlbench-s"; done | ip -n $SRV -batch -
for ns in $CLI $SRV; do ip -n $ns link set lo up; done
ip -n $CLI link set amlbench-c up; ip -n $SRV link set amlbench-s up
mkdir -p /etc/netns/$CLI; echo "nameserver 10.97.0.2" > /etc/netns/$CLI/resolv.conf

for n in $(seq 1 "$N"); do echo "address=/t$n.bench.test/$(addr "$n")"; done > "$work/dnsmasq.conf"
ip netns exec $SRV dnsmasq --no-resolv --no-hosts --conf-file="$work/dnsmasq.conf" --dns-forward-max=4096 \
  --listen-address=10.97.0.2 --bind-interfaces --pid-file="$work/dnsmasq.pid"
bench_cert "$work"
cat > "$work/nginx.conf" <<EOF
worker_processes 2; worker_rlimit_nofile 8192; pid $work/nginx.pid; error_log $work/nginx-error.log;
events { worker_connections 4096; }
http { access_log off;
  server { listen 443 ssl backlog=4096; ssl_certificate $work/leaf.pem; ssl_certificate_key $work/leaf.key;
           location / { add_header x-ms-request-id bench always; return 404; } } }
EOF
ip netns exec $SRV nginx -c "$work/nginx.conf"
ip netns exec $SRV sysctl -qw net.core.somaxconn=4096
dropped_set=$(for n in $(seq $((N - DROPPED + 1)) "$N"); do printf '%s, ' "$(addr "$n")"; done)
ip netns exec $SRV nft -f - <<EOF
table inet amlbench {
  chain in {
    type filter hook input priority 0;
    ip daddr { ${dropped_set%, } } tcp dport 443 drop
  }
}
EOF

{ printf '[suite]\nname = "bench"\ntitle = "bench"\n'
  for n in $(seq 1 "$N"); do
    printf '\n[[flow]]\nid = "bench.t%s"\ntitle = "t%s"\ndirection = "outbound"\nservice_tag = "Internet"\nrequired = true\nscenario = "bench"\nsource = "bench"\nhosts = ["t%s.bench.test"]\nports = [443]\n' "$n" "$n" "$n"
  done; } > "$work/gen.toml"
cli() { ip netns exec $CLI "$@"; }
field() { grep "$1" "$work/time.txt" | awk -F': ' '{print $2}'; }
median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "== amlprobe: $RUNS runs of $N targets ($DROPPED dropped), --timeout $TIMEOUT ${AMLPROBE_ARGS:-}" >&2
walls=() cpus=() rsss=()
for r in $(seq 1 "$RUNS"); do
  # shellcheck disable=SC2086 # AMLPROBE_ARGS is a list of flags
  cli /usr/bin/time -v -o "$work/time.txt" "$bin" run --suite-file "$work/gen.toml" --suite bench --timeout $TIMEOUT \
    --ca-file "$work/ca.pem" --no-proxy --no-imds --format json ${AMLPROBE_ARGS:-} > "$work/out.json" || true
  if [ -n "${KEEP_REPORT:-}" ]; then cp "$work/out.json" "$KEEP_REPORT"; fi
  python3 - "$work/out.json" "$N" "$DROPPED" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); n, d = int(sys.argv[2]), int(sys.argv[3])
bad = []
for f in r["flows"]:
    i = int(f["id"].rsplit("t", 1)[1])
    want = ("blocked", "tcp_timeout") if i > n - d else ("works", None)
    got = (f["status"], f["reason"] if f["status"] != "works" else None)
    if got != want:
        bad.append(f"{f['id']}: {got} (want {want})")
if len(r["flows"]) != n or bad:
    sys.exit(f"benchmark void: {len(bad)} wrong verdicts of {len(r['flows'])}: " + "; ".join(bad[:5]))
EOF
  walls+=("$(field "Elapsed (wall clock)" | awk -F: '{print $(NF-1)*60 + $NF}')")
  cpus+=("$(python3 -c "print(round($(field 'User time') + $(field 'System time'), 2))")")
  rsss+=("$(field "Maximum resident set size")")
  echo "  run $r: ${walls[-1]} s wall, ${cpus[-1]} s CPU, ${rsss[-1]} KiB peak RSS" >&2
done

echo "== blackbox_exporter, $CONC probes in flight" >&2
cat > "$work/blackbox.yml" <<EOF
modules:
  tls:
    prober: tcp
    timeout: ${TIMEOUT}s
    tcp: { tls: true, preferred_ip_protocol: ip4, tls_config: { ca_file: $work/ca.pem } }
EOF
# Not through the cli function: $! must be the exporter itself (ip netns exec execs it).
ip netns exec $CLI prometheus-blackbox-exporter --config.file="$work/blackbox.yml" --web.listen-address=127.0.0.1:9115 \
  >"$work/blackbox.log" 2>&1 & echo $! > "$work/blackbox.pid"
bbpid=$(cat "$work/blackbox.pid")
for _ in $(seq 1 50); do cli bash -c 'exec 3<>/dev/tcp/127.0.0.1/9115' 2>/dev/null && break; sleep 0.1; done
cat > "$work/client.py" <<'EOF'
import asyncio, sys, time
n, dropped, conc = (int(a) for a in sys.argv[1:4])
async def probe(i, sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", 9115)
        w.write(f"GET /probe?module=tls&target=t{i}.bench.test:443 HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        body = await r.read()
        w.close()
        return b"\nprobe_success 1" in body
async def main():
    sem = asyncio.Semaphore(conc)
    t0 = time.monotonic()
    ok = await asyncio.gather(*(probe(i, sem) for i in range(1, n + 1)))
    wall = time.monotonic() - t0
    wrong = [i for i, s in enumerate(ok, 1) if s != (i <= n - dropped)]
    print(f"{wall:.3f} {sum(ok)} {len(wrong)}")
asyncio.run(main())
EOF
cpu_ticks() { awk '{print $14 + $15}' "/proc/$bbpid/stat"; }
bb_walls=() bb_cpus=() bb_ok=() bb_wrong=0
for r in $(seq 1 "$RUNS"); do
  t0=$(cpu_ticks)
  read -r w ok wrong < <(cli python3 "$work/client.py" "$N" "$DROPPED" "$CONC")
  bb_walls+=("$w"); bb_ok+=("$ok"); bb_wrong=$((bb_wrong + wrong))
  bb_cpus+=("$(python3 -c "print(round(($(cpu_ticks) - $t0) / $(getconf CLK_TCK), 2))")")
  echo "  run $r: $w s wall, ${bb_cpus[-1]} s CPU, $ok probe_success" >&2
done
bb_rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$bbpid/status")

amlp_wall=$(median "${walls[@]}") amlp_cpu=$(median "${cpus[@]}") amlp_rss=$(median "${rsss[@]}")
bb_wall=$(median "${bb_walls[@]}") bb_cpu=$(median "${bb_cpus[@]}")
{
  echo "| $N targets, $DROPPED dropped, timeout $TIMEOUT s | wall (median of $RUNS) | CPU user+sys (median) | peak RSS (median) | verdicts |"
  echo "|---|---|---|---|---|"
  echo "| amlprobe ${AMLPROBE_ARGS:-(defaults)} | $amlp_wall s | $amlp_cpu s | $(python3 -c "print(round($amlp_rss / 1024, 1))") MiB | all $N right ($((N - DROPPED)) works, $DROPPED \`tcp_timeout\`) |"
  echo "| blackbox_exporter, asyncio client, $CONC in flight | $bb_wall s | $bb_cpu s | $(python3 -c "print(round($bb_rss / 1024, 1))") MiB (exporter, peak over all runs) | ${bb_ok[*]} \`probe_success 1\`; $bb_wrong wrong over $RUNS runs |"
  echo
  echo "runs: amlprobe wall ${walls[*]} s; CPU ${cpus[*]} s; RSS ${rsss[*]} KiB; blackbox wall ${bb_walls[*]} s; CPU ${bb_cpus[*]} s"
} | tee ${OUT:+"$OUT"}
