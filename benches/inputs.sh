#!/usr/bin/env bash
# Benchmark: large inputs, no network. `diff` and `merge` of reports with FLOWS flows each
# (default 100,000; 160,000 makes a 15.6 MB report, under the 16 MiB input cap), and suites
# at and past their size caps: the 10 hosts x 65,535 ports file of issue 23 (refused at load)
# and the largest suite a file may hold (64 flows x 1,024 host-port pairs), run against a
# resolver that is not there (127.0.0.1:1), so nothing is sent beyond loopback and every name
# fails fast. Each run is void unless its output is right. Prints wall time, CPU and peak RSS
# (/usr/bin/time -v), medians over RUNS runs, as Markdown rows. No root needed.
#   bash benches/inputs.sh     (AMLPROBE_BIN=path, RUNS=n, FLOWS=n,
#                               BASELINE_BIN=path: also time another binary, each run cut at 120 s)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh
RUNS=${RUNS:-5} FLOWS=${FLOWS:-100000}
command -v /usr/bin/time >/dev/null || need /usr/bin/time time
bin=${AMLPROBE_BIN:-$root/target/release/amlprobe}
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml" >&2
work=$(mktemp -d /tmp/amlbench-inputs.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Reports: node-a before and after (every 100th flow blocked after), node-b and node-c blocked on
# every 100th flow, one flow apart, so merge makes three groups.
python3 - "$FLOWS" "$work" <<'EOF'
import json, sys
flows, work = int(sys.argv[1]), sys.argv[2]
def report(name, host, blocked_from):
    out = []
    for i in range(flows):
        bad = blocked_from is not None and (i + blocked_from) % 100 == 0
        out.append({"id": f"s.{i:06d}", "title": f"t{i}", "required": True,
                    "status": "blocked" if bad else "works", "reason": "tcp_timeout" if bad else None,
                    "message": "no answer" if bad else "ok"})
    r = {"schema_version": 1, "started_at": "2026-12-01T00:00:00Z", "host": {"hostname": host},
         "flows": out, "root_causes": []}
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(r, f, separators=(",", ":"))
report("before", "node-a", None)
report("after", "node-a", 0)
report("node-b", "node-b", 0)
report("node-c", "node-c", 1)

def suite(name, flows, hosts, ports):
    ps = ", ".join(str(p) for p in range(1, ports + 1))
    with open(f"{work}/{name}.toml", "w") as f:
        f.write(f'[suite]\nname = "{name}"\ntitle = "{name}"\n')
        for i in range(flows):
            # Names of its own per flow: no check is shared between flows.
            hs = ", ".join(f'"h{i}-{h}.bench.test"' for h in range(hosts))
            f.write(f'\n[[flow]]\nid = "{name}.f{i}"\ntitle = "f{i}"\ndirection = "outbound"\n'
                    f'service_tag = "X"\nrequired = true\nscenario = "bench"\nsource = "bench"\n'
                    f'hosts = [{hs}]\nports = [{ps}]\ntls_ports = []\nhttp_ports = []\nsmb_ports = []\n')
suite("wide", 1, 10, 65535)
suite("largest", 64, 4, 256)
EOF
size() { python3 -c "import os, sys; print(round(os.path.getsize(sys.argv[1]) / 1e6, 1))" "$1"; }
median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
offline=(--no-imds --no-proxy --no-discovery --dns-server 127.0.0.1:1 --timeout 1)

# measure LABEL CHECK -- COMMAND...: RUNS runs of COMMAND (stdout to $work/out), each checked by
# `CHECK $work/out $status` (a void run ends the benchmark); prints one Markdown row.
measure() {
  local label=$1 check=$2 walls=() cpus=() rsss=() status
  shift 3
  for _ in $(seq 1 "$RUNS"); do
    status=0
    timeout 120 /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out" 2>"$work/err" || status=$?
    if [ "$status" = 124 ]; then echo "| $label | over 120 s (stopped) | | |"; return; fi
    "$check" "$work/out" "$status" || { echo "benchmark void: $label: $(head -c 300 "$work/err")" >&2; exit 1; }
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/time.txt")")
    cpus+=("$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {print u + s}' "$work/time.txt")")
    rsss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")")
  done
  echo "| $label | $(median "${walls[@]}") s | $(median "${cpus[@]}") s | $(python3 -c "print(round($(median "${rsss[@]}") / 1024, 1))") MiB |"
}

blocked=$((FLOWS / 100))
diff_right() { [ "$2" = 1 ] && tail -1 "$1" | grep -q "^$blocked regressed, 0 improved, 0 changed, 0 added, 0 removed"; }
merge1_right() { [ "$2" = 0 ] && tail -1 "$1" | grep -q "^1 nodes in 1 group; $FLOWS flows"; }
merge_right() { [ "$2" = 1 ] && tail -1 "$1" | grep -q "^4 nodes in 3 groups; $FLOWS flows"; }
merge_json_right() {
  [ "$2" = 1 ] && python3 -c "import json, sys; m = json.load(open(sys.argv[1])); assert len(m['flows']) == $FLOWS and len(m['groups']) == 3" "$1"
}
wide_refused() { [ "$2" = 2 ] && grep -q "flow 'wide.f0': lists 10 host(s) × 65535 port(s)" "$work/err"; }
# Every flow is judged, and judged blocked by DNS: the resolver is not there.
largest_right() {
  [ "$2" = 1 ] && python3 -c "import json, sys; r = json.load(open(sys.argv[1])); assert len(r['flows']) == 64 and all(f['status'] == 'blocked' and f['reason'].startswith('dns_') for f in r['flows'])" "$1"
}

a=$work/before.json
echo "Reports of $FLOWS flows, $(size "$a") MB each; suites of 10 x 65,535 ($(size "$work/wide.toml") MB) and 64 x 4 x 256 ($(size "$work/largest.toml") MB); medians of $RUNS runs."
echo
echo "| input | wall | CPU user+sys | peak RSS |"
echo "|---|---|---|---|"
for b in "$bin" ${BASELINE_BIN:+"$BASELINE_BIN"}; do
  tag=""
  [ "$b" = "$bin" ] || tag=" (baseline)"
  measure "diff, $FLOWS flows$tag" diff_right -- "$b" diff "$a" "$work/after.json"
  measure "merge, 1 report of $FLOWS flows$tag" merge1_right -- "$b" merge "$a"
  measure "merge, 4 reports of $FLOWS flows$tag" merge_right -- "$b" merge "$a" "$work/after.json" "$work/node-b.json" "$work/node-c.json"
  measure "merge --format json, 4 reports$tag" merge_json_right -- "$b" merge --format json "$a" "$work/after.json" "$work/node-b.json" "$work/node-c.json"
  # A binary from before the suite caps runs this file for minutes: timed for this one only.
  [ -n "$tag" ] || measure "suite of 10 hosts x 65,535 ports: refused at load" wide_refused -- "$b" suites --suite-file "$work/wide.toml" --suite wide
  measure "largest suite (65,536 host-port pairs), run offline$tag" largest_right -- "$b" run "${offline[@]}" --suite-file "$work/largest.toml" --suite largest --format json
done
