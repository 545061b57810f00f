# Shared by the benchmarks (sourced, never run): installing tools without touching the host's
# services, cleaning up the namespaces a benchmark made, and the test CA every TLS world uses.

# need CMD PACKAGE: installs PACKAGE when CMD is missing. A temporary policy-rc.d keeps apt
# from starting the services some packages ship (nginx, dnsmasq, blackbox_exporter): the
# benchmarks run their own copies inside namespaces and must not change the host.
need() {
  command -v "$1" >/dev/null && return
  local made=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made=1
  fi
  { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  if [ "$made" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

# clean_up_on_exit WORK NS...: removes a crashed run's namespaces NS... now, and on exit kills
# the daemons whose pid files are in WORK, deletes NS... with their /etc/netns files, and WORK.
clean_up_on_exit() {
  BENCH_WORK=$1
  shift
  BENCH_NS=("$@")
  for ns in "${BENCH_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for f in "$BENCH_WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  for ns in "${BENCH_NS[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$BENCH_WORK"
}

# bench_cert DIR: a CA (DIR/ca.pem) and a certificate for *.bench.test it signed (DIR/leaf.pem,
# DIR/leaf.key), valid two days.
bench_cert() {
  local d=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=*.bench.test" -keyout "$d/leaf.key" -out "$d/leaf.csr" 2>/dev/null
  printf 'subjectAltName=DNS:*.bench.test\n' >"$d/san.ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/san.ext" -out "$d/leaf.pem" 2>/dev/null
}
