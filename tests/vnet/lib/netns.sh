# shellcheck shell=bash
# The "VNet in a box": three network namespaces joined by veth pairs, none of them connected to
# the host's namespace, and no default route anywhere, so nothing can leave the testbed.
#
#   amlp-client (the VM)            amlp-router (NSG / Azure Firewall)     amlp-svc (everything else)
#   amlp-c0 10.10.0.10/24  <----->  amlp-r0 10.10.0.1/24
#                                   amlp-r1 10.10.255.1/30  <---------->  amlp-s0 10.10.255.2/30
#                                                                          lo: DNS 10.10.2.53,
#                                                                          Azure DNS 10.10.2.168,
#                                                                          private endpoints 10.10.1.x,
#                                                                          public front ends 198.18.x.x,
#                                                                          proxy 10.10.3.10,
#                                                                          app firewall deny responder 10.10.3.20,
#                                                                          IMDS 169.254.169.254
#
# The client reaches only 10.10.0.0/16, 198.18.0.0/15 and 169.254.169.254, through the router; nftables rules
# in the router play the NSG/firewall. Service addresses live on amlp-svc's loopback.

NS_CLIENT=amlp-client
NS_ROUTER=amlp-router
NS_SVC=amlp-svc
NS_ALL=("$NS_CLIENT" "$NS_ROUTER" "$NS_SVC")
DNS_IP=10.10.2.53
DNS_DEAD_REFUSING=10.10.2.98   # exists, nothing listens: ICMP port unreachable to the forwarder
DNS_DEAD_SILENT=10.10.2.99     # exists, every packet dropped: the forwarder hears nothing
AZURE_DNS_IP=10.10.2.168       # plays 168.63.129.16 for --compare-resolvers ([azure_dns] scenarios)
PROXY_IP=10.10.3.10   # squid listens on $PROXY_IP:3128 (vnet.py renders its config)
APPFW_IP=10.10.3.20   # the app firewall's deny responder (lib/stubs.py appfw_*): the router DNATs to it
IMDS_IP=169.254.169.254   # nginx plays IMDS here in [azure_vm] scenarios (only they fake the DMI tag)
CLIENT_IP=10.10.0.10

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Kills every process still running inside our namespaces (only our daemons can be there), then
# deletes the namespaces and the client's resolv.conf. Safe to call when nothing exists.
topology_down() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^amlp-' || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$NS_CLIENT"
}

topology_up() {
  local ns
  for ns in "${NS_ALL[@]}"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
  done
  # veth pairs are created directly inside the namespaces: no interface ever sits in the host's.
  ip link add amlp-c0 netns "$NS_CLIENT" type veth peer name amlp-r0 netns "$NS_ROUTER"
  ip link add amlp-r1 netns "$NS_ROUTER" type veth peer name amlp-s0 netns "$NS_SVC"

  nsx "$NS_CLIENT" ip addr add "$CLIENT_IP/24" dev amlp-c0
  nsx "$NS_CLIENT" ip link set amlp-c0 up
  nsx "$NS_CLIENT" ip route add 10.10.0.0/16 via 10.10.0.1
  nsx "$NS_CLIENT" ip route add 198.18.0.0/15 via 10.10.0.1
  nsx "$NS_CLIENT" ip route add "$IMDS_IP/32" via 10.10.0.1

  nsx "$NS_ROUTER" ip addr add 10.10.0.1/24 dev amlp-r0
  nsx "$NS_ROUTER" ip addr add 10.10.255.1/30 dev amlp-r1
  nsx "$NS_ROUTER" ip link set amlp-r0 up
  nsx "$NS_ROUTER" ip link set amlp-r1 up
  for net in 10.10.1.0/24 10.10.2.0/24 10.10.3.0/24 198.18.0.0/15 "$IMDS_IP/32"; do
    nsx "$NS_ROUTER" ip route add "$net" via 10.10.255.2
  done
  nsx "$NS_ROUTER" sysctl -qw net.ipv4.ip_forward=1

  nsx "$NS_SVC" ip addr add 10.10.255.2/30 dev amlp-s0
  nsx "$NS_SVC" ip link set amlp-s0 up
  nsx "$NS_SVC" ip route add 10.10.0.0/24 via 10.10.255.1
  nsx "$NS_SVC" ip addr add "$DNS_IP/32" dev lo
  nsx "$NS_SVC" ip addr add "$DNS_DEAD_REFUSING/32" dev lo
  nsx "$NS_SVC" ip addr add "$DNS_DEAD_SILENT/32" dev lo
  nsx "$NS_SVC" ip addr add "$AZURE_DNS_IP/32" dev lo
  nsx "$NS_SVC" ip addr add "$PROXY_IP/32" dev lo
  nsx "$NS_SVC" ip addr add "$APPFW_IP/32" dev lo
  nsx "$NS_SVC" ip addr add "$IMDS_IP/32" dev lo
  # The silent upstream: whatever is sent to it disappears.
  nsx "$NS_SVC" nft -f - <<NFT
table inet amlp_svc {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr $DNS_DEAD_SILENT drop
  }
}
NFT

  # `ip netns exec` bind-mounts this over /etc/resolv.conf: the VM's resolver is the testbed DNS.
  mkdir -p "/etc/netns/$NS_CLIENT"
  printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$DNS_IP" >"/etc/netns/$NS_CLIENT/resolv.conf"
  # Likewise /etc/hosts: the host's own entries must not leak into the VM's name resolution.
  printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$NS_CLIENT/hosts"

  # Safety net: prove no namespace has a default route (nothing may leave the testbed).
  for ns in "${NS_ALL[@]}"; do
    if nsx "$ns" ip route show default | grep -q .; then
      echo "vnet: BUG: namespace $ns has a default route" >&2
      return 1
    fi
  done
}

# svc_set_addresses FILE: replaces the per-scenario service addresses on amlp-svc's loopback.
svc_set_addresses() {
  local file=$1 a
  nsx "$NS_SVC" ip -4 -o addr show dev lo | awk '{print $4}' | while read -r a; do
    case "$a" in 10.10.1.*|198.1[89].*) nsx "$NS_SVC" ip addr del "$a" dev lo ;; esac
  done
  while read -r a; do
    if [ -n "$a" ]; then nsx "$NS_SVC" ip addr add "$a/32" dev lo || return 1; fi
  done <"$file"
}
