"""The fake Azure Resource Manager of [arm] worlds (stdlib only), built when a world is rendered.

`config()` returns what `arm.json` holds and lib/stubs.py's `arm` listener serves: nginx proxies
every `/subscriptions...` request of management.azure.com's TLS server to that listener on
127.0.0.1 in the service namespace, so ARM has one token check and one request log. It answers:

- GET of a document (the workspace, its private endpoint, and with [arm.network] the VM, its
  NICs, subnet, VNet, NSGs, route table, firewall policy, DNS records) and of a list (the
  subscriptions, in two pages; firewalls and private DNS zones per subscription; a policy's rule
  collection groups; a zone's virtual network links);
- POST of the effective-rules actions: 202 + `Location` + `Retry-After: 1`, then 200 on the
  `Location` (the routes' answer 202 once more first), shaped like the REST spec examples
  `NetworkInterfaceEffectiveNSGList.json` / `NetworkInterfaceEffectiveRouteTableList.json`
  (src/attribution/testdata/, which also holds their `Location` forms);
- 401 without the token, 400 for a missing or unknown api-version, 411 for a POST without a
  Content-Length, 403 AuthorizationFailed for a `forbidden` permission and for subscriptions
  the world does not hold, 404 for anything else. Every request is one `arm:` line in stubs.out
  (method, path, status, what it was); `vnet.py check` fails a world on any request the fake did
  not expect (see `log_problems`).

Shapes: azure-rest-api-specs (networkInterface.json, virtualNetwork.json, networkSecurityGroup.json,
routeTable.json, azureFirewall.json, firewallPolicy.json, privatedns.json, workspaceRP.json,
subscriptions.json) and the examples cited in docs/attribution.md; api-versions: the ones
docs/attribution.md and docs/discovery.md cite.
"""
import copy
import ipaddress
import json
import re

# The workspace's ARM coordinates in [arm] worlds, and the token the testbed IMDS hands out (the
# fake ARM accepts only it; it must never show up in amlprobe's output).
ARM_SUBSCRIPTION = "6f0c2a4e-5d1b-4c3a-9e8f-7a6b5c4d3e2f"
ARM_GROUP = "rg-vnet-test"
ARM_TOKEN = "amlp-testbed-arm-token-4b8f2e"
# [arm.network]: the spoke's network in the workspace's subscription, the hub (peered VNet, Azure
# Firewall and its policy, private DNS zones) in a connectivity subscription of its own.
NET_GROUP = "rg-net"
HUB_SUBSCRIPTION = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
HUB_GROUP = "rg-hub"
DNS_GROUP = "rg-dns"
ARM_ORIGIN = "https://management.azure.com"
RESPONDER = ("127.0.0.1", 8470)   # lib/stubs.py kind "arm", in the service namespace only
CLIENT_IP = "10.10.0.10"          # keep in sync with lib/netns.sh
CLIENT_MAC_IMDS = "000D3A5B7C9E"  # IMDS writes MACs as 12 hex digits, ARM as 00-0D-3A-...
PUBLIC_POOL = "198.18.0.0/15"    # keep in sync with vnet.py
PRIVATE_POOL = "10.10.1.0/24"

# api-version per resource provider (longest prefix of the lower-cased type wins).
API_VERSIONS = {
    "microsoft.resources/subscriptions": "2022-12-01",
    "microsoft.machinelearningservices": "2024-04-01",
    "microsoft.network": "2024-05-01",
    "microsoft.network/privatednszones": "2024-06-01",
    "microsoft.compute": "2024-07-01",
    "microsoft.storage": "2023-05-01",
    "microsoft.keyvault": "2023-07-01",
    "microsoft.containerregistry": "2023-07-01",
}
# Discovery reads the storage account and key vault themselves; the identity of these worlds may
# not (as before this fake existed: their facts stay unknown, the names stay private).
ALWAYS_FORBIDDEN = ["Microsoft.Storage/storageAccounts/read", "Microsoft.KeyVault/vaults/read"]


class ArmError(Exception):
    pass


# ---------------------------------------------------------------- the scenario section

NETWORK_KEYS = {"address_prefixes", "subnet_prefix", "dns_servers", "forbidden", "service_tags", "nsg", "route",
                "route_table", "hub", "firewall", "dns_zone", "managed_network", "second_nic"}
NSG_KEYS = {"name", "applied_to", "rule"}
SECURITY_RULE_KEYS = {"name", "description", "priority", "access", "direction", "protocol",
                      "sourceAddressPrefix", "sourceAddressPrefixes", "sourcePortRange", "sourcePortRanges",
                      "destinationAddressPrefix", "destinationAddressPrefixes", "destinationPortRange",
                      "destinationPortRanges"}
ROUTE_KEYS = {"name", "addressPrefix", "nextHopType", "nextHopIpAddress"}
FIREWALL_KEYS = {"name", "private_ip", "policy", "collection"}
COLLECTION_KEYS = {"group", "group_priority", "name", "priority", "action", "rule"}
FIREWALL_RULE_KEYS = {"ruleType", "name", "description", "sourceAddresses", "sourceIpGroups", "destinationAddresses",
                      "destinationIpGroups", "destinationFqdns", "destinationPorts", "ipProtocols", "protocols",
                      "targetFqdns", "targetUrls", "fqdnTags", "webCategories", "terminateTLS"}
ZONE_KEYS = {"name", "links", "records"}


def render_deep(value, render):
    """Every string of a nested value through `render` (the scenario's templates)."""
    if isinstance(value, str):
        return render(value)
    if isinstance(value, list):
        return [render_deep(v, render) for v in value]
    if isinstance(value, dict):
        return {render(k): render_deep(v, render) for k, v in value.items()}
    return value


def network(arm):
    """[arm.network] checked and completed with its defaults (templates not yet rendered: see
    `config`); None without it."""
    raw = (arm or {}).get("network")
    if raw is None:
        return None

    def keys(where, table, allowed):
        if not isinstance(table, dict):
            raise ArmError(f"[{where}] must be a table")
        extra = set(table) - allowed
        if extra:
            raise ArmError(f"[{where}]: unknown keys {sorted(extra)} (known: {sorted(allowed)})")

    keys("arm.network", raw, NETWORK_KEYS)
    net = copy.deepcopy(raw)
    for n in net.get("nsg", []):
        keys("arm.network.nsg", n, NSG_KEYS)
        if n.get("applied_to", "subnet") not in ("subnet", "nic"):
            raise ArmError(f"[arm.network.nsg] {n.get('name')}: applied_to must be \"subnet\" or \"nic\"")
        if not n.get("name"):
            raise ArmError("[arm.network.nsg] needs a name")
        for r in n.get("rule", []):
            keys("arm.network.nsg.rule", r, SECURITY_RULE_KEYS)
            for k in ("name", "priority", "access"):
                if k not in r:
                    raise ArmError(f"[arm.network.nsg.rule] in {n['name']}: needs {k}")
    if sum(1 for n in net.get("nsg", []) if n.get("applied_to", "subnet") == "subnet") > 1 or \
            sum(1 for n in net.get("nsg", []) if n.get("applied_to") == "nic") > 1:
        raise ArmError("[arm.network.nsg]: at most one NSG on the subnet and one on the NIC")
    for r in net.get("route", []):
        keys("arm.network.route", r, ROUTE_KEYS)
        for k in ("name", "addressPrefix", "nextHopType"):
            if k not in r:
                raise ArmError(f"[arm.network.route] needs {k}")
    if "hub" in net:
        keys("arm.network.hub", net["hub"], {"address_prefixes"})
    fw = net.get("firewall")
    if fw is not None:
        keys("arm.network.firewall", fw, FIREWALL_KEYS)
        if "private_ip" not in fw or "hub" not in net:
            raise ArmError("[arm.network.firewall] needs a private_ip, in [arm.network.hub]'s address space")
        for c in fw.get("collection", []):
            keys("arm.network.firewall.collection", c, COLLECTION_KEYS)
            for k in ("group", "name", "priority", "action"):
                if k not in c:
                    raise ArmError(f"[arm.network.firewall.collection] needs {k}")
            for r in c.get("rule", []):
                keys("arm.network.firewall.collection.rule", r, FIREWALL_RULE_KEYS)
                if r.get("ruleType") not in ("ApplicationRule", "NetworkRule"):
                    raise ArmError(f"[arm.network.firewall.collection.rule] {r.get('name')}: ruleType must be ApplicationRule or NetworkRule")
    for z in net.get("dns_zone", []):
        keys("arm.network.dns_zone", z, ZONE_KEYS)
        if not z.get("name", "").startswith("privatelink."):
            raise ArmError("[arm.network.dns_zone] name must be a privatelink zone")
        for link in z.get("links", ["vnet"]):
            if link not in ("vnet", "hub") and not link.startswith("/subscriptions/"):
                raise ArmError(f"[arm.network.dns_zone] {z['name']}: link {link!r} is not \"vnet\", \"hub\" or an ARM id")
    mn = net.get("managed_network")
    if mn is not None:
        keys("arm.network.managed_network", mn, {"isolationMode", "outboundRules", "status", "firewallSku"})
        for name, rule in (mn.get("outboundRules") or {}).items():
            keys(f"arm.network.managed_network.outboundRules.{name}", rule, {"type", "category", "status", "destination"})
            if rule.get("type") not in ("FQDN", "ServiceTag", "PrivateEndpoint"):
                raise ArmError(f"outbound rule {name}: type must be FQDN, ServiceTag or PrivateEndpoint")
    # The client's resolver is the testbed's custom DNS server: the VNet says so too.
    net.setdefault("dns_servers", ["{dns_ip}"])
    net.setdefault("address_prefixes", ["10.10.0.0/16"])
    net.setdefault("subnet_prefix", "10.10.0.0/24")
    net.setdefault("route_table", "rt-ml")
    net.setdefault("forbidden", [])
    net.setdefault("second_nic", True)
    return net


# ---------------------------------------------------------------- ids

def rid(sub, group, provider_path):
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{provider_path}"


def vm_id(vm):
    """The VM's ARM id as IMDS gives it: in the workspace's subscription unless [azure_vm]
    resource_id says otherwise (an Azure ML compute's VM lives in a Microsoft subscription)."""
    return vm.get("resource_id") or rid(ARM_SUBSCRIPTION, ARM_GROUP, f"Microsoft.Compute/virtualMachines/{vm['name']}")


def ids(sc, net):
    """Every ARM id of an [arm.network] world."""
    vm = sc["azure_vm"]
    out = {"vm": vm_id(vm)}
    out.update({
        "nic": rid(ARM_SUBSCRIPTION, ARM_GROUP, f"Microsoft.Network/networkInterfaces/{vm['name']}-nic"),
        "nic2": rid(ARM_SUBSCRIPTION, ARM_GROUP, f"Microsoft.Network/networkInterfaces/{vm['name']}-nic-backup"),
        "vnet": rid(ARM_SUBSCRIPTION, NET_GROUP, "Microsoft.Network/virtualNetworks/vnet-ml"),
        "route_table": rid(ARM_SUBSCRIPTION, NET_GROUP, f"Microsoft.Network/routeTables/{net['route_table']}"),
        "hub": rid(HUB_SUBSCRIPTION, HUB_GROUP, "Microsoft.Network/virtualNetworks/vnet-hub"),
    })
    out["subnet"] = f"{out['vnet']}/subnets/snet-ml"
    for n in net.get("nsg", []):
        out[f"nsg:{n['name']}"] = rid(ARM_SUBSCRIPTION, NET_GROUP, f"Microsoft.Network/networkSecurityGroups/{n['name']}")
    fw = net.get("firewall")
    if fw is not None:
        out["firewall"] = rid(HUB_SUBSCRIPTION, HUB_GROUP, f"Microsoft.Network/azureFirewalls/{fw.get('name', 'fw-hub')}")
        out["policy"] = rid(HUB_SUBSCRIPTION, HUB_GROUP, f"Microsoft.Network/firewallPolicies/{fw.get('policy', 'fwp-hub')}")
    for z in net.get("dns_zone", []):
        out[f"zone:{z['name']}"] = rid(HUB_SUBSCRIPTION, DNS_GROUP, f"Microsoft.Network/privateDnsZones/{z['name']}")
    return out


def ref(i):
    return {"id": i}


def name_of(i):
    return i.rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- IMDS

def imds_body(vm):
    """/metadata/instance as IMDS shapes it, trimmed to what amlprobe reads (compute, and the
    network interface's MAC and addresses, which attribution matches against the NIC's)."""
    interface = {"ipv4": {"ipAddress": [{"privateIpAddress": CLIENT_IP, "publicIpAddress": ""}],
                          "subnet": [{"address": "10.10.0.0", "prefix": "24"}]},
                 "ipv6": {"ipAddress": []}, "macAddress": CLIENT_MAC_IMDS}
    return json.dumps({
        "compute": {"azEnvironment": vm["az_environment"], "location": vm["location"], "name": vm["name"],
                    "resourceId": vm_id(vm),
                    "vmId": "6f1a3d9e-0b7c-4e52-9a41-2c8d5e7f9b10", "vmScaleSetName": "", "vmSize": "Standard_DS3_v2"},
        "network": {"interface": [interface]},
    }, separators=(",", ":"))


# ---------------------------------------------------------------- discovery's documents

def endpoint_addresses(h):
    """A name's private endpoint addresses: its own, or (where the VNet's resolver answers it
    publicly) the private one Azure DNS would answer."""
    private = [a for a in (h.get("azure_addresses") or h["addresses"])
               if ipaddress.ip_address(a) in ipaddress.ip_network(PRIVATE_POOL)]
    return private or h["addresses"]


def discovery_documents(sc, hosts, render, managed):
    """path -> document: the workspace (with its managed network, if any), its private endpoint
    with customDnsConfigs holding the world's private addresses (or a wrong one for [arm]
    wrong_ip), and empty private endpoint connection lists for storage and key vault; the
    registry with none."""
    ctx = sc["context"]
    sub = f"/subscriptions/{ARM_SUBSCRIPTION}/resourceGroups/{ARM_GROUP}/providers"
    ws_id = f"{sub}/Microsoft.MachineLearningServices/workspaces/{ctx['workspace_name']}"
    pe_id = f"{sub}/Microsoft.Network/privateEndpoints/ws-pe"
    storage = f"{sub}/Microsoft.Storage/storageAccounts/{ctx['storage_account']}"
    vault = f"{sub}/Microsoft.KeyVault/vaults/{ctx['key_vault']}"
    registry = f"{sub}/Microsoft.ContainerRegistry/registries/{ctx['container_registry']}"
    status = "Pending" if sc["arm"].get("pending") else "Approved"
    workspace = {
        "id": ws_id, "name": ctx["workspace_name"], "type": "Microsoft.MachineLearningServices/workspaces",
        "location": ctx["region"],
        "properties": {
            "workspaceId": ctx["workspace_id"], "storageAccount": storage, "keyVault": vault,
            "containerRegistry": registry, "publicNetworkAccess": "Disabled",
            "privateEndpointConnections": [{
                "id": f"{ws_id}/privateEndpointConnections/ws-pe-conn", "name": "ws-pe-conn",
                "properties": {"privateEndpoint": {"id": pe_id},
                               "privateLinkServiceConnectionState": {"status": status, "description": "", "actionsRequired": "None"}},
            }],
        },
    }
    if managed is not None:
        workspace["properties"]["managedNetwork"] = managed
    wrong = {render(n).lower() for n in sc["arm"].get("wrong_ip", [])}
    ws_names = sorted(n for n in hosts if hosts[n]["private"] and f"{ctx['workspace_id']}.workspace." in n)
    configs = [{"fqdn": n, "ipAddresses": ["10.10.1.250"] if n in wrong else endpoint_addresses(hosts[n])} for n in ws_names]
    endpoint = {"id": pe_id, "name": "ws-pe", "type": "Microsoft.Network/privateEndpoints", "location": ctx["region"],
                "properties": {"provisioningState": "Succeeded", "customDnsConfigs": configs,
                               "networkInterfaces": [{"id": f"{sub}/Microsoft.Network/networkInterfaces/ws-pe.nic"}]}}
    return ({ws_id: workspace, pe_id: endpoint,
             registry: {"id": registry, "name": ctx["container_registry"], "properties": {"privateEndpointConnections": []}}},
            {f"{storage}/privateEndpointConnections": [], f"{vault}/privateEndpointConnections": []})


# ---------------------------------------------------------------- NSGs

# The default rules every NSG has (network-security-groups-overview.md, "Default security rules").
DEFAULT_RULES = [
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
]


def configured_rule(nsg_id, kind, props):
    """A SecurityRule as an NSG's GET lists it (networkSecurityGroup.json)."""
    p = {"protocol": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*", "direction": "Outbound", **props}
    name = p.pop("name")
    if not any(k in p for k in ("destinationAddressPrefix", "destinationAddressPrefixes")):
        p["destinationAddressPrefix"] = "*"
    if not any(k in p for k in ("destinationPortRange", "destinationPortRanges")):
        p["destinationPortRange"] = "*"
    p["provisioningState"] = "Succeeded"
    return {"id": f"{nsg_id}/{kind}/{name}", "name": name, "type": f"Microsoft.Network/networkSecurityGroups/{kind}",
            "properties": p}


def default_rules(nsg_id):
    return [configured_rule(nsg_id, "defaultSecurityRules", {
        "name": n, "priority": prio, "direction": d, "access": a, "sourceAddressPrefix": src,
        "destinationAddressPrefix": dst, "description": "default rule"}) for n, prio, d, a, src, dst in DEFAULT_RULES]


def effective_ports(p):
    """`*` → `0-65535`, `445` → `445-445`: how effective rules write port ranges."""
    p = str(p).strip()
    if p == "*":
        return "0-65535"
    return p if "-" in p else f"{p}-{p}"


def effective_rule(rule, kind, tags):
    """A configured SecurityRule as `EffectiveNetworkSecurityRule` (the spec example's form):
    `All` for `*`, ranges for ports, `0.0.0.0/0` for `*`, and a service tag with its prefixes in
    `expanded…AddressPrefix`."""
    p = rule["properties"]
    out = {"name": f"{kind}/{rule['name']}",
           "protocol": {"*": "All"}.get(p["protocol"], p["protocol"]),
           "access": p["access"], "priority": p["priority"], "direction": p["direction"]}
    for side in ("source", "destination"):
        if f"{side}PortRanges" in p:
            out[f"{side}PortRanges"] = [effective_ports(x) for x in p[f"{side}PortRanges"]]
        else:
            out[f"{side}PortRange"] = effective_ports(p[f"{side}PortRange"])
        prefixes = p.get(f"{side}AddressPrefixes") or [p.get(f"{side}AddressPrefix", "*")]
        written, expanded = [], []
        for x in prefixes:
            if x == "*":
                written.append("0.0.0.0/0")
            elif re.fullmatch(r"[0-9.]+(/[0-9]+)?", x):
                written.append(x if "/" in x else f"{x}/32")
            else:
                if x not in tags:
                    raise ArmError(f"service tag {x!r} has no prefixes in this world: add it to [arm.network] service_tags")
                written.append(x)
                expanded += tags[x]
        if f"{side}AddressPrefixes" in p:
            out[f"{side}AddressPrefixes"] = written
        else:
            out[f"{side}AddressPrefix"] = written[0]
        if expanded:
            out[f"expanded{side[0].upper()}{side[1:]}AddressPrefix"] = expanded
    return out


# ---------------------------------------------------------------- routes

RESERVED = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]


def effective_routes(net, udrs):
    """`EffectiveRouteListResult` (the spec example's form): the VNet's space VnetLocal, a
    connected peering's space VNetPeering, 0.0.0.0/0 Internet and the reserved ranges None
    (virtual-networks-udr-overview.md, "Default"), and the UDRs (source User); a system route
    whose prefix a UDR takes is listed Invalid."""
    taken = {r["addressPrefix"] for r in udrs}

    def system(prefix, hop):
        return {"source": "Default", "state": "Invalid" if prefix in taken else "Active",
                "addressPrefix": [prefix], "nextHopType": hop, "nextHopIpAddress": []}

    space = [ipaddress.ip_network(p) for p in net["address_prefixes"]]
    out = [system(p, "VnetLocal") for p in net["address_prefixes"]]
    for p in (net.get("hub") or {}).get("address_prefixes", []):
        out.append(system(p, "VNetPeering"))
    out.append(system("0.0.0.0/0", "Internet"))
    for r in RESERVED:
        if not any(ipaddress.ip_network(r).subnet_of(s) for s in space):
            out.append(system(r, "None"))
    for u in udrs:
        out.append({"name": u["name"], "source": "User", "state": "Active", "addressPrefix": [u["addressPrefix"]],
                    "nextHopType": u["nextHopType"],
                    "nextHopIpAddress": [u["nextHopIpAddress"]] if u.get("nextHopIpAddress") else []})
    return out


# ---------------------------------------------------------------- private DNS

def zone_records(zone, hosts, own):
    """relative name -> A records of a privatelink zone: the scenario's own, else the private
    address of every name of the world whose private DNS zone it is (what Azure DNS answers)."""
    if own is not None:
        return {k.lower(): v if isinstance(v, list) else [v] for k, v in own.items()}
    out = {}
    public = zone[len("privatelink."):]
    for name, h in sorted(hosts.items()):
        if h["zone"] != zone or not h["private"]:
            continue
        private = endpoint_addresses(h)
        if not any(ipaddress.ip_address(a) in ipaddress.ip_network(PRIVATE_POOL) for a in private):
            continue
        # The name's CNAME target in the zone (as the testbed's DNS builds it).
        relative = name[: -len(public) - 1] if name.endswith("." + public) else name.split(".", 1)[0]
        out[relative] = private
    return out


# ---------------------------------------------------------------- everything

def config(sc, hosts, render):
    """What the `arm` listener serves (arm.json); `render` applies the scenario's templates."""
    net = render_deep(sc["arm_network"], render) if sc["arm_network"] is not None else None
    managed = net.get("managed_network") if net else None
    documents, lists = discovery_documents(sc, hosts, render, managed)
    actions = {}
    subscriptions = [ARM_SUBSCRIPTION]
    forbidden = ALWAYS_FORBIDDEN + (net["forbidden"] if net else [])
    if net is not None:
        subscriptions.append(HUB_SUBSCRIPTION)
        build_network(sc, net, hosts, documents, lists, actions)
    return {
        "token": ARM_TOKEN,
        "origin": ARM_ORIGIN,
        "subscriptions": subscriptions,
        "api_versions": API_VERSIONS,
        "forbidden": forbidden,
        # ARM treats paths case-insensitively: keys are lower-cased, the responder looks up so.
        "documents": {k.lower(): v for k, v in documents.items()},
        "lists": {k.lower(): v for k, v in lists.items()},
        "actions": {k.lower(): v for k, v in actions.items()},
        # GETs of these parents' children may 404 by design (an A record set that does not exist).
        "may_be_missing": sorted(f"{v}/A/".lower() for k, v in (ids(sc, net) if net else {}).items()
                                 if k.startswith("zone:")),
    }


def build_network(sc, net, hosts, documents, lists, actions):
    the = ids(sc, net)
    vm = sc["azure_vm"]
    location = vm["location"]
    hub_prefixes = (net.get("hub") or {}).get("address_prefixes", [])
    tags = {"VirtualNetwork": net["address_prefixes"] + hub_prefixes, "Internet": [PUBLIC_POOL],
            "AzureLoadBalancer": ["168.63.129.16/32"], **(net.get("service_tags") or {})}
    nsgs = {n.get("applied_to", "subnet"): n for n in net.get("nsg", [])}
    udrs = net.get("route", [])

    # This VM and its NICs: a second, unrelated NIC comes first so that attribution must pick
    # the one whose MAC / private IP IMDS lists.
    nics = [the["nic"]]
    if net["second_nic"]:
        nics.insert(0, the["nic2"])
    if not vm.get("resource_id"):
        documents[the["vm"]] = {
            "id": the["vm"], "name": vm["name"], "type": "Microsoft.Compute/virtualMachines", "location": location,
            "properties": {"vmId": "6f1a3d9e-0b7c-4e52-9a41-2c8d5e7f9b10", "provisioningState": "Succeeded",
                           "hardwareProfile": {"vmSize": "Standard_DS3_v2"},
                           "networkProfile": {"networkInterfaces": [
                               {"id": n, "properties": {"primary": n == the["nic"]}} for n in nics]}}}

    def nic_doc(nic_id, mac, ip, primary, subnet):
        props = {"provisioningState": "Succeeded", "macAddress": mac, "primary": primary,
                 "enableAcceleratedNetworking": False, "enableIPForwarding": False,
                 "dnsSettings": {"dnsServers": [], "appliedDnsServers": net.get("dns_servers", [])},
                 "virtualMachine": ref(the["vm"]),
                 "ipConfigurations": [{"id": f"{nic_id}/ipConfigurations/ipconfig1", "name": "ipconfig1",
                                       "properties": {"primary": True, "privateIPAddress": ip,
                                                      "privateIPAllocationMethod": "Dynamic",
                                                      "privateIPAddressVersion": "IPv4", "subnet": ref(subnet)}}]}
        if primary and "nic" in nsgs:
            props["networkSecurityGroup"] = ref(the[f"nsg:{nsgs['nic']['name']}"])
        return {"id": nic_id, "name": name_of(nic_id), "type": "Microsoft.Network/networkInterfaces",
                "location": location, "properties": props}

    documents[the["nic"]] = nic_doc(the["nic"], "00-0D-3A-5B-7C-9E", CLIENT_IP, True, the["subnet"])
    if net["second_nic"]:
        documents[the["nic2"]] = nic_doc(the["nic2"], "00-0D-3A-11-22-33", "10.10.0.99", False, the["subnet"])

    subnet = {"id": the["subnet"], "name": "snet-ml", "type": "Microsoft.Network/virtualNetworks/subnets",
              "properties": {"provisioningState": "Succeeded", "addressPrefix": net["subnet_prefix"],
                             "ipConfigurations": [ref(f"{the['nic']}/ipConfigurations/ipconfig1")]}}
    if "subnet" in nsgs:
        subnet["properties"]["networkSecurityGroup"] = ref(the[f"nsg:{nsgs['subnet']['name']}"])
    if udrs:
        subnet["properties"]["routeTable"] = ref(the["route_table"])
    documents[the["subnet"]] = subnet
    vnet = {"id": the["vnet"], "name": "vnet-ml", "type": "Microsoft.Network/virtualNetworks", "location": location,
            "properties": {"provisioningState": "Succeeded",
                           "addressSpace": {"addressPrefixes": net["address_prefixes"]},
                           "dhcpOptions": {"dnsServers": net.get("dns_servers", [])},
                           "subnets": [subnet], "virtualNetworkPeerings": []}}
    if hub_prefixes:
        vnet["properties"]["virtualNetworkPeerings"].append({
            "id": f"{the['vnet']}/virtualNetworkPeerings/to-hub", "name": "to-hub",
            "properties": {"peeringState": "Connected", "peeringSyncLevel": "FullyInSync",
                           "remoteVirtualNetwork": ref(the["hub"]), "allowForwardedTraffic": True,
                           "allowVirtualNetworkAccess": True, "useRemoteGateways": False,
                           "remoteAddressSpace": {"addressPrefixes": hub_prefixes}}})
    documents[the["vnet"]] = vnet

    # NSGs: as configured (GET) and as the NIC's effective rules (POST).
    effective = []
    for where in ("nic", "subnet"):
        if where not in nsgs:
            continue
        n = nsgs[where]
        nsg_id = the[f"nsg:{n['name']}"]
        rules = [configured_rule(nsg_id, "securityRules", r) for r in n.get("rule", [])]
        defaults = default_rules(nsg_id)
        attached = {"networkInterfaces": [ref(the["nic"])]} if where == "nic" else {"subnets": [ref(the["subnet"])]}
        documents[nsg_id] = {"id": nsg_id, "name": n["name"], "type": "Microsoft.Network/networkSecurityGroups",
                             "location": location,
                             "properties": {"provisioningState": "Succeeded", "securityRules": rules,
                                            "defaultSecurityRules": defaults, **attached}}
        effective.append({
            "networkSecurityGroup": ref(nsg_id),
            "association": {"networkInterface": ref(the["nic"])} if where == "nic" else {"subnet": ref(the["subnet"])},
            "effectiveSecurityRules": [effective_rule(r, "securityRules", tags) for r in rules]
                                      + [effective_rule(r, "defaultSecurityRules", tags) for r in defaults]})
    if udrs:
        rt = the["route_table"]
        documents[rt] = {"id": rt, "name": net["route_table"], "type": "Microsoft.Network/routeTables",
                         "location": location,
                         "properties": {"provisioningState": "Succeeded", "disableBgpRoutePropagation": False,
                                        "subnets": [ref(the["subnet"])],
                                        "routes": [{"id": f"{rt}/routes/{u['name']}", "name": u["name"],
                                                    "type": "Microsoft.Network/routeTables/routes",
                                                    "properties": {"provisioningState": "Succeeded",
                                                                   **{k: v for k, v in u.items() if k != "name"}}}
                                                   for u in udrs]}}
    nic = the["nic"]
    # Location forms of the spec examples: the NSG list's (double slash, under the NSG), the
    # route table's (under the NIC); the routes' operation answers 202 once more before 200.
    first_nsg = the[f"nsg:{net['nsg'][0]['name']}"] if net.get("nsg") else nic
    actions[f"{nic}/effectiveNetworkSecurityGroups"] = {
        "location": f"{ARM_ORIGIN}/{first_nsg}/operationResults/2b6c3f0e-7d41-4e8a-9c55-0f1e2d3c4b5a?api-version=2024-05-01",
        "polls": 0, "result": {"value": effective}}
    actions[f"{nic}/effectiveRouteTable"] = {
        "location": f"{ARM_ORIGIN}{nic}/operationResults/8e4d2a1c-5b3f-4c6e-9a7d-1f2e3d4c5b6a?api-version=2024-05-01",
        "polls": 1, "result": {"value": effective_routes(net, udrs)}}

    # The hub: the firewall and its policy, the private DNS zones.
    firewalls = {ARM_SUBSCRIPTION: [], HUB_SUBSCRIPTION: []}
    fw = net.get("firewall")
    if fw is not None:
        fw_id, policy_id = the["firewall"], the["policy"]
        firewalls[HUB_SUBSCRIPTION].append({
            "id": fw_id, "name": name_of(fw_id), "type": "Microsoft.Network/azureFirewalls", "location": location,
            "properties": {"provisioningState": "Succeeded", "threatIntelMode": "Alert",
                           "sku": {"name": "AZFW_VNet", "tier": "Standard"},
                           "ipConfigurations": [{
                               "id": f"{fw_id}/azureFirewallIpConfigurations/AzureFirewallIpConfiguration",
                               "name": "AzureFirewallIpConfiguration",
                               "properties": {"privateIPAddress": fw["private_ip"],
                                              "subnet": ref(f"{the['hub']}/subnets/AzureFirewallSubnet")}}],
                           "firewallPolicy": ref(policy_id)}})
        groups = {}
        for c in fw.get("collection", []):
            g = groups.setdefault(c["group"], {"priority": c.get("group_priority", 300), "collections": []})
            g["collections"].append({"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": c["name"],
                                     "priority": c["priority"], "action": {"type": c["action"]},
                                     "rules": c.get("rule", [])})
        group_docs = [{"id": f"{policy_id}/ruleCollectionGroups/{gname}", "name": gname,
                       "type": "Microsoft.Network/FirewallPolicies/ruleCollectionGroups",
                       "properties": {"provisioningState": "Succeeded", "priority": g["priority"],
                                      "ruleCollections": g["collections"]}} for gname, g in groups.items()]
        documents[policy_id] = {"id": policy_id, "name": name_of(policy_id), "type": "Microsoft.Network/firewallPolicies",
                                "location": location,
                                "properties": {"provisioningState": "Succeeded", "threatIntelMode": "Alert",
                                               "sku": {"tier": "Standard"}, "firewalls": [ref(fw_id)],
                                               "ruleCollectionGroups": [ref(g["id"]) for g in group_docs]}}
        lists[f"{policy_id}/ruleCollectionGroups"] = group_docs
    zones = {ARM_SUBSCRIPTION: [], HUB_SUBSCRIPTION: []}
    for z in net.get("dns_zone", []):
        zid = the[f"zone:{z['name']}"]
        records = zone_records(z["name"], hosts, z.get("records"))
        links = z.get("links", ["vnet"])
        zones[HUB_SUBSCRIPTION].append({
            "id": zid, "name": z["name"], "type": "Microsoft.Network/privateDnsZones", "location": "global",
            "properties": {"provisioningState": "Succeeded", "maxNumberOfRecordSets": 25000,
                           "numberOfRecordSets": len(records) + 1, "numberOfVirtualNetworkLinks": len(links)}})
        lists[f"{zid}/virtualNetworkLinks"] = [{
            "id": f"{zid}/virtualNetworkLinks/link-{name_of(the.get(link, link))}", "name": f"link-{name_of(the.get(link, link))}",
            "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "location": "global",
            "properties": {"virtualNetwork": ref(the.get(link, link)), "registrationEnabled": False,
                           "virtualNetworkLinkState": "Completed", "provisioningState": "Succeeded"}} for link in links]
        for rel, addresses in records.items():
            documents[f"{zid}/A/{rel}"] = {
                "id": f"{zid}/A/{rel}", "name": rel, "type": "Microsoft.Network/privateDnsZones/A",
                "properties": {"ttl": 10, "fqdn": f"{rel}.{z['name']}.", "isAutoRegistered": False,
                               "aRecords": [{"ipv4Address": a} for a in addresses]}}
    for sub in (ARM_SUBSCRIPTION, HUB_SUBSCRIPTION):
        lists[f"/subscriptions/{sub}/providers/Microsoft.Network/azureFirewalls"] = firewalls[sub]
        lists[f"/subscriptions/{sub}/providers/Microsoft.Network/privateDnsZones"] = zones[sub]


def world_lines(cfg):
    """A readable list of what the fake ARM answers, for world.txt."""
    out = [f"# fake ARM (lib/stubs.py arm, via nginx at management.azure.com): forbidden {cfg['forbidden']}"]
    for path in sorted(cfg["documents"]):
        out.append(f"#   GET  {path}")
    for path, items in sorted(cfg["lists"].items()):
        out.append(f"#   LIST {path} ({len(items)})")
    for path, a in sorted(cfg["actions"].items()):
        out.append(f"#   POST {path} -> 202, {a['polls']} more 202, then 200")
    return out


# ---------------------------------------------------------------- the request log

LOG_LINE = re.compile(r"^arm: (\S+) (\S+) -> (\d{3}) ?(.*)$")


def log_problems(lines):
    """What the fake ARM's log (the `arm:` lines of stubs.out) shows went wrong: a request
    without the token, to a path the world does not hold, with a wrong api-version, a POST
    without Content-Length."""
    out = []
    for line in lines:
        m = LOG_LINE.match(line)
        if not m:
            continue
        note = m.group(4)
        if note.split(":")[0] in ("unknown", "no token", "wrong token", "bad api-version", "no content-length"):
            out.append(f"fake ARM: {m.group(1)} {m.group(2)} -> {m.group(3)} {note}")
    return out
