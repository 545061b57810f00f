#!/usr/bin/env bash
# Benchmark: 200 TLS targets in network namespaces, a quarter silently dropped, 2 s timeout.
# Measures amlprobe (wall time, peak RSS, CPU) against the way the docs tell users to check
# (sequential dig + nc + openssl s_client) and against blackbox_exporter driven with the same
# concurrency, plus binary size and cold start. Needs root; traffic never leaves the namespaces.
#   sudo bash benches/run.sh            (AMLPROBE_BIN=path to use a given binary)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIPPED: benchmark not run: needs root and ip netns"; exit 0
fi

N=200 DROPPED=50 TIMEOUT=2 CONC=64
work=$(mktemp -d /tmp/amlpb.XXXXXX)
clean_up_on_exit "$work" amlpb-srv amlpb-cli
need dnsmasq dnsmasq-base; need nginx nginx; need nft nftables; need dig dnsutils; need nc netcat-openbsd
need /usr/bin/time time; need openssl openssl; need hyperfine hyperfine
need prometheus-blackbox-exporter prometheus-blackbox-exporter

bin=${AMLPROBE_BIN:-$root/target/release/amlprobe}
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml" >&2

# The world: two namespaces on one veth pair, no default route anywhere.
ip netns add amlpb-srv; ip netns add amlpb-cli
ip link add amlpb-c type veth peer name amlpb-s
ip link set amlpb-c netns amlpb-cli; ip link set amlpb-s netns amlpb-srv
ip -n amlpb-cli addr add 10.98.0.1/16 dev amlpb-c; ip -n amlpb-srv addr add 10.98.0.2/16 dev amlpb-s
for n in $(seq 1 $N); do ip -n amlpb-srv addr add "10.98.1.$n/16" dev amlpb-s; done
for ns in amlpb-cli amlpb-srv; do ip -n $ns link set lo up; done
ip -n amlpb-cli link set amlpb-c up; ip -n amlpb-srv link set amlpb-s up
mkdir -p /etc/netns/amlpb-cli; echo "nameserver 10.98.0.2" > /etc/netns/amlpb-cli/resolv.conf

# DNS, TLS and the firewall that silently drops the last quarter.
{ for n in $(seq 1 $N); do echo "address=/t$n.bench.test/10.98.1.$n"; done; } > "$work/dnsmasq.conf"
ip netns exec amlpb-srv dnsmasq --no-resolv --no-hosts --conf-file="$work/dnsmasq.conf" \
  --listen-address=10.98.0.2 --bind-interfaces --pid-file="$work/dnsmasq.pid"
bench_cert "$work"
cat > "$work/nginx.conf" <<EOF
worker_processes 2; pid $work/nginx.pid; error_log $work/nginx-error.log;
events { worker_connections 1024; }
http { access_log off;
  server { listen 443 ssl; ssl_certificate $work/leaf.pem; ssl_certificate_key $work/leaf.key;
           location / { add_header x-ms-request-id bench always; return 404; } } }
EOF
ip netns exec amlpb-srv nginx -c "$work/nginx.conf"
first_dropped=$((N - DROPPED + 1))
ip netns exec amlpb-srv nft -f - <<EOF
table inet bench {
  chain in {
    type filter hook input priority 0;
    ip daddr 10.98.1.$first_dropped-10.98.1.$N tcp dport 443 drop
  }
}
EOF

# One flow per target.
{ printf '[suite]\nname = "bench"\ntitle = "bench"\n'
  for n in $(seq 1 $N); do
    printf '\n[[flow]]\nid = "bench.t%s"\ntitle = "t%s"\ndirection = "outbound"\nservice_tag = "Internet"\nrequired = true\nscenario = "bench"\nsource = "bench"\nhosts = ["t%s.bench.test"]\nports = [443]\n' "$n" "$n" "$n"
  done; } > "$work/gen.toml"
cli() { ip netns exec amlpb-cli "$@"; }
now() { date +%s.%N; }

echo "== amlprobe" >&2
cli /usr/bin/time -v -o "$work/time.txt" "$bin" run --suite-file "$work/gen.toml" --suite bench --timeout $TIMEOUT \
  --concurrency $CONC --ca-file "$work/ca.pem" --no-proxy --no-imds --format json > "$work/out.json" || true
python3 - "$work/out.json" "$N" "$DROPPED" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); n, d = int(sys.argv[2]), int(sys.argv[3])
works = sum(f["status"] == "works" for f in r["flows"])
dropped = sum(f["status"] == "blocked" and f["reason"] == "tcp_timeout" for f in r["flows"])
if (works, dropped) != (n - d, d):
    sys.exit(f"benchmark void: expected {n-d} works and {d} tcp_timeout, got {works} and {dropped}")
EOF
field() { grep "$1" "$work/time.txt" | awk -F': ' '{print $2}'; }
wall=$(field "Elapsed (wall clock)" | awk -F: '{print $(NF-1)*60 + $NF}')
rss_kb=$(field "Maximum resident set size")
cpu=$(python3 -c "print(round($(field 'User time') + $(field 'System time'), 2))")

echo "== docs way: sequential dig + nc + openssl s_client" >&2
t0=$(now); docs_ok=0
for n in $(seq 1 $N); do
  addr=$(cli dig +short +time=$TIMEOUT +tries=1 "t$n.bench.test" | head -n1)
  if [ -n "$addr" ] && cli nc -z -w $TIMEOUT "$addr" 443 2>/dev/null &&
     cli timeout $TIMEOUT openssl s_client -connect "$addr:443" -servername "t$n.bench.test" -CAfile "$work/ca.pem" \
       -verify_return_error </dev/null >/dev/null 2>&1; then
    docs_ok=$((docs_ok + 1))
  fi
done
docs_wall=$(python3 -c "print(round($(now) - $t0, 2))")

echo "== blackbox_exporter, $CONC probes at a time" >&2
cat > "$work/blackbox.yml" <<EOF
modules:
  tls:
    prober: tcp
    timeout: ${TIMEOUT}s
    tcp: { tls: true, preferred_ip_protocol: ip4, tls_config: { ca_file: $work/ca.pem } }
EOF
cli prometheus-blackbox-exporter --config.file="$work/blackbox.yml" --web.listen-address=127.0.0.1:9115 \
  >"$work/blackbox.log" 2>&1 & echo $! > "$work/blackbox.pid"
for _ in $(seq 1 50); do cli nc -z 127.0.0.1 9115 2>/dev/null && break; sleep 0.1; done
t0=$(now)
bb_ok=$(seq 1 $N | cli xargs -P $CONC -I{} curl -s "http://127.0.0.1:9115/probe?module=tls&target=t{}.bench.test:443" \
  | grep -c '^probe_success 1' || true)
bb_wall=$(python3 -c "print(round($(now) - $t0, 2))")

echo "== binary" >&2
size=$(stat -c %s "$bin")
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs 100 --export-json "$work/hf.json" "$bin --version" >/dev/null 2>&1
  cold=$(python3 -c "import json; print(round(json.load(open('$work/hf.json'))['results'][0]['mean']*1000, 2))")
else
  cold=n/a
fi

ratio() { python3 -c "print(f'{$1 / $wall:.1f}x')"; }
# Sections below the table (the soak figures from soak.sh) are kept as they are.
kept=$(sed -n '/^## /,$p' "$root/benches/RESULTS.md" 2>/dev/null || true)
cat > "$root/benches/RESULTS.md" <<EOF
# Benchmark results

\`sudo bash benches/run.sh\` on $(nproc) cores, Linux $(uname -r), $(date -u +%Y-%m-%d).
$N TLS targets (one name each, dnsmasq + nginx in a network namespace), the last $DROPPED silently
dropped by nftables, timeout $TIMEOUT s per step, concurrency $CONC.

| metric | amlprobe | docs way (sequential dig + nc + openssl) | blackbox_exporter (xargs -P $CONC) | goal |
|---|---|---|---|---|
| wall time | ${wall} s | ${docs_wall} s ($(ratio "$docs_wall")) | ${bb_wall} s ($(ratio "$bb_wall")) | < $(python3 -c "print($TIMEOUT*1.25)") s (1.25 x timeout) |
| targets found working | $((N - DROPPED)) of $N, $DROPPED \`tcp_timeout\` | $docs_ok of $N | $bb_ok of $N (\`probe_success 1\`, no reason) | $((N - DROPPED)) |
| peak RSS | $((rss_kb / 1024)) MiB | | | < 32 MiB |
| CPU (user + sys) | ${cpu} s | | | |
| binary size | $size bytes ($(file -b "$bin" | grep -o 'static-pie linked\|statically linked\|dynamically linked' | head -n1)) | | | |
| \`amlprobe --version\` cold start | ${cold} ms | | | |

The docs way and blackbox_exporter check the same targets with the same per-step timeout;
blackbox gets the same concurrency as amlprobe, but reports only \`probe_success\` (no reason) and
probes one address per name. amlprobe additionally makes an HTTP request after each handshake.
EOF
if [ -n "$kept" ]; then printf '\n%s\n' "$kept" >>"$root/benches/RESULTS.md"; fi
cat "$root/benches/RESULTS.md"
