#!/usr/bin/env python3
"""Scenario logic of the VNet testbed (stdlib only; the shell runner does the processes).

  vnet.py prepare SCENARIO.toml OUTDIR   reads the scenario, writes the amlprobe arguments
  vnet.py render  SCENARIO.toml OUTDIR [--samba]
                                         turns `amlprobe suites` (OUTDIR/plan.json) plus the
                                         scenario's overrides into daemon configs (--samba:
                                         healthy SMB on 445 from smbd, not the stub)
  vnet.py check   SCENARIO.toml OUTDIR   compares OUTDIR/report.json with the expectations
  vnet.py wire    OUTDIR                 [app_firewall] worlds: from inside the client namespace,
                                         proves on the wire what OUTDIR/wire.json says each port
                                         of each name answers (deny responder or its own server)

The world is derived from what amlprobe itself will probe (`amlprobe suites --format json` for
the scenario's context), so a healthy world covers every name the suites use without listing
them by hand; a scenario only writes down what differs from healthy and what it expects.
"""
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
import tomllib

import armworld
from armworld import ARM_GROUP, ARM_SUBSCRIPTION, ARM_TOKEN

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(os.path.dirname(HERE), "scenarios")

# Keep in sync with lib/netns.sh.
DNS_IP = "10.10.2.53"
DNS_SERVFAIL_IP = "10.10.2.98"
DNS_SILENT_IP = "10.10.2.99"
AZURE_DNS_IP = "10.10.2.168"   # a second dnsmasq playing Azure DNS (168.63.129.16), [azure_dns]
PROXY_IP, PROXY_PORT = "10.10.3.10", 3128
IMDS_IP = "169.254.169.254"    # nginx plays IMDS in [azure_vm] scenarios
APPFW_IP = "10.10.3.20"        # the app firewall's deny responder (lib/stubs.py appfw_*), [app_firewall]
# What cloud-init and Microsoft's docs read on every Azure VM (see src/env/imds.rs).
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
CLOUD_OF_ENVIRONMENT = {"AzurePublicCloud": "public", "AzureUSGovernmentCloud": "usgov", "AzureChinaCloud": "china"}
SQUID_HELPER_DIRS = ["/usr/lib/squid", "/usr/lib/squid3", "/usr/libexec/squid", "/usr/lib64/squid"]
PRIVATE_POOL = ipaddress.ip_network("10.10.1.0/24")    # private endpoints
PUBLIC_POOL = ipaddress.ip_network("198.18.0.0/15")     # public Azure front ends (RFC 2544)

CONTEXT_KEYS = ["cloud", "region", "workspace_id", "workspace_name", "storage_account", "key_vault",
                "container_registry", "compute_instance"]
DNS_MODES = {"privatelink", "a", "public", "nxdomain", "nodata", "servfail", "timeout"}
CERT_KINDS = {"testbed", "inspection", "wrong_name", "expired"}
FIREWALL_ACTIONS = {"drop", "reset", "unreachable", "accept"}
APPFW_STYLES = {"azure_firewall", "nva_reset", "block_page"}
# The body Azure Firewall answers plain HTTP with when no application rule matches (README,
# [app_firewall], cites where this comes from).
AZFW_DENY_TEXT = "Action: Deny. Reason: No rule matched. Proceeding with default action."
NVA_CA_CN = "FortiGate CA"     # subject CN of lib/pki.sh's nva CA: the block_page NVA's own CA
FLOW_STATUSES = {"works", "blocked", "inconclusive", "skipped", "not_testable"}
PROBE_STATUSES = {"pass", "fail", "inconclusive"}


class ScenarioError(Exception):
    pass


# ---------------------------------------------------------------- loading

def load(path):
    """The scenario merged over scenarios/_defaults.toml."""
    with open(os.path.join(SCENARIO_DIR, "_defaults.toml"), "rb") as f:
        base = tomllib.load(f)
    with open(path, "rb") as f:
        sc = tomllib.load(f)
    known = {"description", "context", "run", "dns", "endpoint", "firewall", "app_firewall", "proxy", "azure_dns",
             "azure_vm", "arm", "expect"}
    unknown = set(sc) - known
    if unknown:
        raise ScenarioError(f"unknown top-level keys {sorted(unknown)} (known: {sorted(known)})")
    # Typos in a scenario must fail loudly, not silently assert nothing.
    allowed = {
        "context": set(CONTEXT_KEYS) | {"public_resources"},
        "run": {"suites", "suite_files", "timeout", "ca_file", "args", "env", "pending", "requires",
                "expect_failure", "expect_mismatches", "prometheus", "table", "context_flags", "amlprobe"},
        "dns": {"name", "mode", "address", "cname", "private", "private_only", "ports", "protocol"},
        "endpoint": {"host", "cert", "azure_headers", "listen", "smb"},
        "firewall": {"host", "address", "port", "protocol", "action", "comment"},
        "app_firewall": {"allow", "unprobed", "deny", "style", "deny_text", "reset", "block_status"},
        "proxy": {"allow", "auth"},
        "proxy.auth": {"user", "password"},
        "azure_dns": {"enabled"},
        "azure_vm": {"asset_tag", "location", "az_environment", "name", "identity", "resource_id"},
        "arm": {"wrong_ip", "pending", "network", "config_json"},
        "expect": {"others", "optional_others", "exit_code", "flow", "absent", "resolver", "resolver_others", "report", "alerts",
                   "cause", "causes", "required_causes", "wire_denied", "table_max_lines", "table_contains",
                   "warnings_contains", "warnings_absent", "arm_requests"},
        "expect.cause": {"reason", "kind", "subject", "flows", "count", "required", "summary_contains",
                         "fix_contains", "commands_contains", "destinations", "azure_contains", "blocked_by",
                         "change_contains", "change_count", "azure_notes_contains"},
        "blocked_by": {"kind", "name", "basis", "says_contains", "says_absent"},
        "expect.flow": {"id", "status", "reason", "probes", "probe", "path", "direct"},
        "direct": {"status", "reason"},
        "probe": {"kind", "host", "port", "address", "path", "status", "reason", "message_contains",
                  "issuer_contains", "addresses", "cname_contains"},
        "expect.resolver": {"host", "verdict", "diagnosis_contains", "answers"},
        "answer": {"resolver", "reason", "addresses", "addresses_in", "cname_contains"},
    }

    def validate(section, table):
        extra = set(table) - allowed[section]
        if extra:
            raise ScenarioError(f"[{section}]: unknown keys {sorted(extra)} (known: {sorted(allowed[section])})")

    for section in ("context", "run", "app_firewall", "proxy", "azure_dns", "azure_vm", "arm", "expect"):
        validate(section, sc.get(section) or {})
    if "auth" in (sc.get("proxy") or {}):
        validate("proxy.auth", sc["proxy"]["auth"])
        if not all(sc["proxy"]["auth"].get(k) for k in ("user", "password")):
            raise ScenarioError("[proxy] auth needs a user and a password")
    for section in ("dns", "endpoint", "firewall"):
        for entry in sc.get(section, []):
            validate(section, entry)
    for flow in (sc.get("expect") or {}).get("flow", []):
        validate("expect.flow", flow)
        if "direct" in flow:
            validate("direct", flow["direct"])
        for probe in flow.get("probes", []) + flow.get("probe", []):
            validate("probe", probe)
    for cause in (sc.get("expect") or {}).get("cause", []):
        validate("expect.cause", cause)
        if "reason" not in cause:
            raise ScenarioError("[[expect.cause]] needs a reason")
        if "blocked_by" in cause:
            validate("blocked_by", cause["blocked_by"])
    try:
        arm_network = armworld.network(sc.get("arm"))
    except armworld.ArmError as e:
        raise ScenarioError(str(e))
    if arm_network is not None and sc.get("azure_vm") is None:
        raise ScenarioError("[arm.network] needs [azure_vm]: attribution starts from IMDS")
    for res in (sc.get("expect") or {}).get("resolver", []):
        validate("expect.resolver", res)
        if "host" not in res:
            raise ScenarioError("[[expect.resolver]] needs a host (a glob over the compared names)")
        for a in res.get("answers", []):
            validate("answer", a)
    merged = {
        "name": os.path.splitext(os.path.basename(path))[0],
        "path": os.path.abspath(path),
        "description": sc.get("description", ""),
        "context": {**base.get("context", {}), **sc.get("context", {})},
        "run": {**base.get("run", {}), **sc.get("run", {})},
        "dns": sc.get("dns", []),
        "endpoint": sc.get("endpoint", []),
        "firewall": sc.get("firewall", []),
        "app_firewall": app_firewall(sc.get("app_firewall")),
        "proxy": sc.get("proxy"),
        "azure_dns": sc.get("azure_dns") if (sc.get("azure_dns") or {}).get("enabled", True) else None,
        "azure_vm": azure_vm(sc.get("azure_vm")),
        "arm": sc.get("arm"),
        "arm_network": arm_network,
        "expect": {**base.get("expect", {}), **sc.get("expect", {})},
    }
    return merged


def app_firewall(table):
    """[app_firewall]: its options checked and completed with their defaults (None without it).
    Options of another style are an error, not silently ignored."""
    if table is None:
        return None
    fw = {"allow": [], "unprobed": [], "deny": [], "style": "azure_firewall", **table}
    if fw["style"] not in APPFW_STYLES:
        raise ScenarioError(f"[app_firewall] style {fw['style']!r} is not one of {sorted(APPFW_STYLES)}")
    for key in ("allow", "unprobed", "deny"):
        if not isinstance(fw[key], list) or not all(isinstance(p, str) and p for p in fw[key]):
            raise ScenarioError(f"[app_firewall] {key} must be a list of FQDN patterns (\"name\", \"*.suffix\" or \"*\")")
    for key, owner in (("deny_text", "azure_firewall"), ("reset", "azure_firewall"), ("block_status", "block_page")):
        if key in table and fw["style"] != owner:
            raise ScenarioError(f"[app_firewall] {key} applies only to style = \"{owner}\", not {fw['style']!r}")
    fw.setdefault("deny_text", AZFW_DENY_TEXT)
    fw.setdefault("reset", False)
    fw.setdefault("block_status", 200)
    text = fw["deny_text"]
    if not isinstance(text, str) or not text.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ScenarioError("[app_firewall] deny_text must be a non-empty line of text (no control characters)")
    if not isinstance(fw["reset"], bool):
        raise ScenarioError("[app_firewall] reset must be true or false")
    if fw["block_status"] not in (200, 403):
        raise ScenarioError(f"[app_firewall] block_status must be 200 or 403, not {fw['block_status']!r}")
    return fw


def azure_vm(table):
    """[azure_vm]: the client sees a DMI chassis asset tag and an IMDS at 169.254.169.254."""
    if table is None:
        return None
    vm = {"asset_tag": AZURE_ASSET_TAG, "location": "eastus", "az_environment": "AzurePublicCloud",
          "name": "vm-testbed", **table}
    if vm["az_environment"] not in CLOUD_OF_ENVIRONMENT:
        raise ScenarioError(f"[azure_vm] az_environment must be one of {sorted(CLOUD_OF_ENVIRONMENT)}")
    return vm


def template_vars(sc, outdir):
    v = {k: str(val) for k, val in sc["context"].items() if isinstance(val, (str, int))}
    v.update({
        "pki": os.path.join(os.path.dirname(os.path.abspath(outdir)), "pki"),
        "scenario_dir": os.path.dirname(sc["path"]),
        "proxy_url": f"http://{PROXY_IP}:{PROXY_PORT}",
        "proxy_hostport": f"{PROXY_IP}:{PROXY_PORT}",
        "dns_ip": DNS_IP,
        "azure_dns_ip": AZURE_DNS_IP,
        "arm_subscription": ARM_SUBSCRIPTION,
        "arm_resource_group": ARM_GROUP,
        "hub_subscription": armworld.HUB_SUBSCRIPTION,
        "outdir": os.path.abspath(outdir),
    })
    return v


def render_str(s, tv):
    """Replaces {name} with scenario values; unknown names are an error (typos show up early)."""
    if not isinstance(s, str):
        return s
    out, i = [], 0
    while i < len(s):
        j = s.find("{", i)
        if j < 0:
            out.append(s[i:])
            break
        k = s.find("}", j)
        if k < 0:
            raise ScenarioError(f"unbalanced '{{' in {s!r}")
        key = s[j + 1:k]
        if key not in tv:
            raise ScenarioError(f"unknown template value {{{key}}} in {s!r} (known: {sorted(tv)})")
        out.append(s[i:j] + tv[key])
        i = k + 1
    return "".join(out)


# ---------------------------------------------------------------- prepare

def cmd_prepare(path, outdir):
    sc = load(path)
    tv = template_vars(sc, outdir)
    ctx = sc["context"]
    run = sc["run"]
    sel = []  # arguments both `amlprobe suites` and `amlprobe run` take
    context = []
    for key in CONTEXT_KEYS:
        if ctx.get(key):
            context += ["--" + key.replace("_", "-"), render_str(str(ctx[key]), tv)]
    # context_flags = false: the run is given none of it (it must learn it, e.g. from ARM); the
    # world is still built from it.
    if run.get("context_flags", True):
        sel += context
    for r in ctx.get("public_resources", []):
        sel += ["--public-resource", r]
    for s in run.get("suites", []):
        sel += ["--suite", s]
    for f in run.get("suite_files", []):
        p = render_str(f, tv)
        sel += ["--suite-file", p if os.path.isabs(p) else os.path.join(SCENARIO_DIR, p)]
    # prometheus = true: stdout is the Prometheus exposition (metrics.prom) and the JSON report
    # goes to --report, so the alert rules can be tested on this very run's series.
    if run.get("prometheus", False):
        stdout = "metrics.prom"
        runargs = ["--format", "prometheus", "--report", os.path.join(os.path.abspath(outdir), "report.json")]
    elif run.get("table", False):
        # table = true: stdout is the one-screen table (table.txt), what a person over SSH reads.
        stdout = "table.txt"
        runargs = ["--format", "table", "--report", os.path.join(os.path.abspath(outdir), "report.json")]
    else:
        stdout = "report.json"
        runargs = ["--format", "json"]
    runargs += ["--timeout", str(run.get("timeout", 2)), "--no-color"]
    if run.get("ca_file", True):
        runargs += ["--ca-file", os.path.join(tv["pki"], "root-ca.pem")]
    runargs += [render_str(a, tv) for a in run.get("args", [])]
    env = {k: render_str(v, tv) for k, v in run.get("env", {}).items()}
    meta = {
        "name": sc["name"],
        "description": sc["description"].strip(),
        "pending": run.get("pending", ""),
        "requires": run.get("requires", []),
        "expect_failure": bool(run.get("expect_failure", False)),
        "amlprobe": run.get("amlprobe", True),
    }
    # amlprobe = false: a self-test of the world itself (its wire checks), amlprobe is not run.
    if not isinstance(meta["amlprobe"], bool):
        raise ScenarioError("[run] amlprobe must be true or false")
    if "wire_denied" in sc["expect"] and sc["app_firewall"] is None:
        raise ScenarioError("[expect] wire_denied needs an [app_firewall]: there are no wire checks without it")
    if not meta["amlprobe"] and (sc["app_firewall"] is None or "wire_denied" not in sc["expect"]):
        raise ScenarioError("[run] amlprobe = false needs [app_firewall] and [expect] wire_denied: "
                            "its wire checks are all there is to check")
    os.makedirs(outdir, exist_ok=True)
    # The world is built from `amlprobe suites`, which runs outside the VM and cannot ask IMDS:
    # give it the region and cloud the run will learn from IMDS by itself.
    plan_extra = [] if run.get("context_flags", True) else context
    vm = sc["azure_vm"]
    if vm is not None:
        for flag, value in (("--region", vm["location"]), ("--cloud", CLOUD_OF_ENVIRONMENT[vm["az_environment"]])):
            if flag not in plan_extra:
                plan_extra += [flag, value]
        with open(os.path.join(outdir, "azure_vm.tag"), "w") as f:
            f.write(vm["asset_tag"] + "\n")
    for name, args in (("select.args", sel), ("run.args", runargs), ("plan.args", plan_extra)):
        with open(os.path.join(outdir, name), "w") as f:
            f.write("".join(a + "\n" for a in args))
    with open(os.path.join(outdir, "run.env"), "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in env.items()))
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(outdir, "stdout.file"), "w") as f:
        f.write(stdout + "\n")


# ---------------------------------------------------------------- render

def app_for(port, protocol):
    """The listener a port gets when a scenario adds a host the suites don't know."""
    if protocol == "udp":
        return "none"
    return {443: "tls", 80: "http", 445: "smb"}.get(port, "none")


def privatelink_name(host, zone):
    """The name Azure's public DNS CNAMEs a private-endpoint host to."""
    if zone and zone.startswith("privatelink."):
        public_part = zone[len("privatelink."):]
        if host.endswith("." + public_part):
            return host[: -len(public_part)] + zone
        return host.split(".", 1)[0] + "." + zone   # e.g. kv.vault.azure.net -> kv.privatelink.vaultcore.azure.net
    first, rest = host.split(".", 1)
    return f"{first}.privatelink.{rest}"


class Allocator:
    def __init__(self, pool, first_offset=10):
        self.pool, self.next = pool, first_offset

    def take(self):
        addr = self.pool.network_address + self.next
        self.next += 1
        if addr not in self.pool:
            raise ScenarioError(f"address pool {self.pool} exhausted")
        return str(addr)


def build_world(sc, plan, tv):
    """Hosts with their DNS shape, addresses, listeners and certificates."""
    hosts = {}
    for suite in plan.get("suites", []):
        for flow in suite.get("flows", []):
            p = flow.get("plan", {})
            if p.get("state") != "probe":
                continue
            for t in p.get("targets", []):
                h = hosts.setdefault(t["host"], {"private": False, "checks": set(), "zone": None})
                h["private"] |= t.get("expect") == "private"
                h["zone"] = h["zone"] or p.get("private_dns_zone")
                for c in t.get("checks", []):
                    h["checks"].add((c["port"], c["protocol"], c["app"]))
    def is_glob(name):
        return any(c in name for c in "*?[")

    for d in sc["dns"]:  # names only a scenario knows about
        name = render_str(d["name"], tv).lower()
        if is_glob(name):
            continue
        h = hosts.setdefault(name, {"private": d.get("private", False), "checks": set(), "zone": None})
        for port in d.get("ports", []):
            proto = d.get("protocol", "tcp")
            h["checks"].add((port, proto, app_for(port, proto)))

    for h in hosts.values():
        h.update(mode="privatelink" if h["private"] else "a", addresses=None, cname=None,
                 cert="testbed", azure_headers=True, listen=True, smb="smb")
    # [[dns]] entries in file order; a glob name applies to every matching host (private_only:
    # only to names that must resolve privately), so later, exact entries can refine it.
    for d in sc["dns"]:
        name = render_str(d["name"], tv).lower()
        targets = [n for n in sorted(hosts) if fnmatch.fnmatchcase(n, name)] if is_glob(name) else [name]
        if d.get("private_only"):
            targets = [n for n in targets if hosts[n]["private"]]
        if not targets:
            raise ScenarioError(f"dns {name}: matches no host of the plan")
        for n in targets:
            h = hosts[n]
            mode = d.get("mode", h["mode"])
            if mode not in DNS_MODES:
                raise ScenarioError(f"dns {name}: mode {mode!r} is not one of {sorted(DNS_MODES)}")
            h["mode"] = mode
            if "address" in d:
                a = d["address"]
                h["addresses"] = [render_str(x, tv) for x in (a if isinstance(a, list) else [a])]
            if "cname" in d:
                h["cname"] = render_str(d["cname"], tv).lower()
    for e in sc["endpoint"]:
        name = render_str(e["host"], tv).lower()
        if name not in hosts:
            raise ScenarioError(f"endpoint {name}: no such host in the plan or in [[dns]]")
        h = hosts[name]
        for key in ("cert", "azure_headers", "listen", "smb"):
            if key in e:
                h[key] = e[key]
        if h["cert"] not in CERT_KINDS:
            raise ScenarioError(f"endpoint {name}: cert {h['cert']!r} is not one of {sorted(CERT_KINDS)}")

    # Deterministic addresses: sorted names, private endpoints and public front ends apart.
    priv, pub = Allocator(PRIVATE_POOL), Allocator(PUBLIC_POOL)
    for name in sorted(hosts):
        h = hosts[name]
        if h["addresses"] is None and h["mode"] in ("privatelink", "a", "public"):
            private = h["mode"] == "privatelink" or (h["mode"] == "a" and h["private"])
            h["addresses"] = [(priv if private else pub).take()]
        if h["mode"] in ("nxdomain", "nodata", "servfail", "timeout"):
            h["addresses"] = []
    # What Azure DNS (168.63.129.16, [azure_dns]) answers: the healthy view, whatever the custom
    # DNS server says. A name that must be private but has no private address in this world
    # gets one of its own (only resolved, nothing listens there), allocated after the others so
    # that [azure_dns] changes no other address.
    for name in sorted(hosts):
        h = hosts[name]
        own = [a for a in h["addresses"] if (ipaddress.ip_address(a) in PRIVATE_POOL) == h["private"]]
        wanted = sc.get("azure_dns") or (sc.get("arm_network") or {}).get("dns_zone")
        h["azure_addresses"] = own or [(priv if h["private"] else pub).take()] if wanted else None
    app_firewall_verdicts(sc["app_firewall"], hosts, tv)
    return hosts


FQDN_PATTERN = re.compile(r"(\*|(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9])?)+)")


def fqdn_matches(name, pattern):
    """Azure Firewall's target FQDN match: `*.contoso.com` matches any name below contoso.com
    but not contoso.com itself (azure-docs firewall-faq.md, "How do wildcards work in an
    application rule target FQDN?"); `*` matches every name."""
    if pattern == "*" or pattern == name:
        return True
    return pattern.startswith("*.") and name.endswith(pattern[1:])


def public_addresses(h):
    return [a for a in h["addresses"] if ipaddress.ip_address(a) in PUBLIC_POOL]


def app_firewall_verdicts(fw, hosts, tv):
    """h["appfw"] for every host: None (no [app_firewall], or VNet-local: only private endpoint
    addresses), "allow" or "deny". Only public front end addresses pass the app firewall, and
    a public address is DNATed as a whole, so it may not serve an allowed and a denied name."""
    for h in hosts.values():
        h["appfw"] = None
    if fw is None:
        return
    fw["deny_text"] = render_str(fw["deny_text"], tv)
    # Rules for names no probe uses (a documented wildcard with no concrete name under it) are
    # listed apart, so the allow-list can be a page's whole table while typos still fail.
    unprobed = {render_str(p, tv).lower() for p in fw.get("unprobed", [])}
    for key in ("allow", "deny"):
        fw[key] = [render_str(p, tv).lower() for p in fw[key]]
        for p in fw[key] + (sorted(unprobed) if key == "allow" else []):
            if not FQDN_PATTERN.fullmatch(p):
                raise ScenarioError(f"[app_firewall] {key}: {p!r} is not an FQDN, a \"*.suffix\" wildcard or \"*\"")
            matched = any(fqdn_matches(n, p) for n in hosts)
            if not matched and p not in unprobed:
                raise ScenarioError(f"[app_firewall] {key}: {p!r} matches no name of this world (a typo?)")
            if matched and p in unprobed:
                raise ScenarioError(f"[app_firewall] unprobed: {p!r} matches a name of this world; move it to allow")
    owners = {}
    for name in sorted(hosts):
        h = hosts[name]
        if public_addresses(h):
            # Deny rules first (a higher-priority Deny collection), then allow, then the default deny.
            allowed = not any(fqdn_matches(name, p) for p in fw["deny"]) and any(fqdn_matches(name, p) for p in fw["allow"])
            h["appfw"] = "allow" if allowed else "deny"
            for a in public_addresses(h):
                owners.setdefault(a, {}).setdefault(h["appfw"], []).append(name)
    for a, verdicts in owners.items():
        if len(verdicts) > 1:
            raise ScenarioError(f"[app_firewall]: {a} serves allowed {verdicts['allow']} and denied {verdicts['deny']}: "
                                "the testbed denies by address, give them addresses of their own")


def dnsmasq_conf(hosts, workdir, azure=False):
    """The custom DNS server of the VNet; with azure=True, Azure DNS's healthy view instead."""
    listen, log = (AZURE_DNS_IP, "dnsmasq-azure.log") if azure else (DNS_IP, "dnsmasq.log")
    lines = [
        "# generated by tests/vnet/lib/vnet.py" + (": Azure DNS (168.63.129.16) with the privatelink zones" if azure else ""),
        "no-resolv", "no-hosts", "no-poll", "keep-in-foreground", "bind-interfaces",
        f"listen-address={listen}", "cache-size=0", "log-queries",
        f"log-facility={workdir}/{log}",
        # Each instance its own pid file: two started together race for /var/run/dnsmasq.pid.
        f"pid-file={workdir}/{log.replace('.log', '.pid')}",
        "# every name not listed below is NXDOMAIN (no upstream: the testbed has no Internet)",
        "address=/#/",
    ]
    for name in sorted(hosts):
        h = hosts[name]
        mode, addrs = h["mode"], h["addresses"]
        if azure:
            mode, addrs = ("privatelink" if h["private"] else "a"), h["azure_addresses"]
        cname = None if azure else h["cname"]
        if mode == "a":
            lines.append(f"host-record={name},{','.join(addrs)}")
        elif mode == "privatelink":
            target = cname or privatelink_name(name, h["zone"])
            lines += [f"cname={name},{target}", f"host-record={target},{','.join(addrs)}"]
        elif mode == "public":
            # A custom DNS server without the privatelink zone forwards to public DNS, which
            # answers the privatelink name with the service's public front end.
            target = cname or privatelink_name(name, h["zone"])
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            frontend = f"fe-{name.split('.', 1)[0][:40]}-{digest}.frontend.cloudapp.azure.net"
            lines += [f"cname={name},{target}", f"cname={target},{frontend}",
                      f"host-record={frontend},{','.join(addrs)}"]
        elif mode == "nodata":
            lines.append(f'txt-record={name},"amlprobe testbed: no address records"')
        elif mode == "servfail":
            lines.append(f"server=/{name}/{DNS_SERVFAIL_IP}")
        elif mode == "timeout":
            lines.append(f"server=/{name}/{DNS_SILENT_IP}")
        # nxdomain: nothing, address=/#/ answers it
    return "\n".join(lines) + "\n"


def nginx_conf(hosts, workdir, pki, vm=None, arm=False):
    """One server block per (address, port, host); SNI picks the host's certificate. With an
    [azure_vm], IMDS too: JSON only for requests carrying `Metadata: true`, as the real one.
    With [arm], management.azure.com's TLS server hands every /subscriptions path to the fake
    ARM (lib/stubs.py `arm`). The access log says of each request whether it carried an
    Authorization header (never its value): `vnet.py check` proves the token went to ARM only."""
    groups = {}
    for name in sorted(hosts):
        h = hosts[name]
        if not h["listen"]:
            continue
        for port, proto, app in sorted(h["checks"]):
            if proto != "tcp" or app == "smb":
                continue
            for a in h["addresses"]:
                groups.setdefault((a, port, app), []).append(name)
    out = [
        "# generated by tests/vnet/lib/vnet.py",
        "worker_processes 1;", f"pid {workdir}/nginx.pid;", f"error_log {workdir}/nginx-error.log warn;",
        "daemon off;", "events { worker_connections 512; }", "http {",
        '  map $http_authorization $amlp_auth { default "bearer"; "" "none"; }',
        "  log_format amlp '$server_name $server_addr:$server_port \"$request\" $status auth=$amlp_auth';",
        f"  access_log {workdir}/nginx-access.log amlp;",
        f"  client_body_temp_path {workdir}/nginx-tmp;", f"  proxy_temp_path {workdir}/nginx-tmp;",
        f"  fastcgi_temp_path {workdir}/nginx-tmp;", f"  uwsgi_temp_path {workdir}/nginx-tmp;",
        f"  scgi_temp_path {workdir}/nginx-tmp;",
        "  server_names_hash_bucket_size 256;", "  server_tokens off;",
    ]
    for (addr, port, app), names in sorted(groups.items()):
        for i, name in enumerate(names):
            h = hosts[name]
            default = " default_server" if i == 0 else ""
            ssl = " ssl" if app == "tls" else ""
            out.append("  server {")
            out.append(f"    listen {addr}:{port}{ssl}{default};")
            out.append(f"    server_name {name};")
            if app == "tls":
                out.append(f"    ssl_certificate {pki}/leaf-{h['cert']}.pem;")
                out.append(f"    ssl_certificate_key {pki}/leaf-{h['cert']}.key;")
                out.append("    ssl_protocols TLSv1.2 TLSv1.3;")
            if h["azure_headers"]:
                # What makes an answer look like an Azure front end to amlprobe's http = "azure".
                out.append("    add_header x-ms-request-id $request_id always;")
            if arm and name == "management.azure.com" and app == "tls":
                host, port = armworld.RESPONDER
                out += ["    location /subscriptions {", f"      proxy_pass http://{host}:{port};",
                        "      proxy_set_header Host $host;", "      proxy_read_timeout 30s;", "    }"]
            out.append("    location / { return 200 \"amlprobe testbed\\n\"; }")
            out.append("  }")
    if vm is not None:
        out += [
            "  server {", f"    listen {IMDS_IP}:80;",
            "    location /metadata/instance {",
            "      if ($http_metadata != \"true\") { return 400; }",
            "      default_type application/json;",
            f"      return 200 '{armworld.imds_body(vm)}';",
            "    }",
        ]
        if vm.get("identity"):
            # The VM's managed identity: a token for ARM, as IMDS answers it.
            token = json.dumps({"access_token": ARM_TOKEN, "expires_in": "3599", "token_type": "Bearer",
                                "resource": "https://management.azure.com/"}, separators=(",", ":"))
            out += ["    location /metadata/identity/oauth2/token {",
                    "      if ($http_metadata != \"true\") { return 400; }",
                    "      default_type application/json;", f"      return 200 '{token}';", "    }"]
        out += ["    location / { return 404; }", "  }"]
    out.append("}")
    return "\n".join(out) + "\n"


def stub_listeners(hosts):
    out = []
    for name in sorted(hosts):
        h = hosts[name]
        if not h["listen"]:
            continue
        for port, proto, app in sorted(h["checks"]):
            kind = "udp" if proto == "udp" else (h["smb"] if app == "smb" else None)
            if kind:
                out += [{"kind": kind, "address": a, "port": port, "host": name} for a in h["addresses"]]
    out.append({"kind": "servfail", "address": DNS_SERVFAIL_IP, "port": 53, "host": "(broken upstream DNS)"})
    # One listener per (address, port, protocol), whatever the number of names on it.
    seen, unique = set(), []
    for entry in out:
        key = (entry["address"], entry["port"], entry["kind"] in ("udp", "servfail"))
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    return unique


def firewall_entries(sc, hosts, tv):
    """[[firewall]] in file order: dicts of dests (addresses or CIDRs), proto (None: every
    protocol), ports, action and comment."""
    entries = []
    for r in sc["firewall"]:
        action = r.get("action", "drop")
        if action not in FIREWALL_ACTIONS:
            raise ScenarioError(f"firewall: action {action!r} is not one of {sorted(FIREWALL_ACTIONS)}")
        ports = r.get("port", [])
        ports = ports if isinstance(ports, list) else [ports]
        # A rule without port or protocol matches every protocol; with ports, TCP by default.
        proto = r.get("protocol", "tcp" if ports else None)
        if "host" in r:
            name = render_str(r["host"], tv).lower()
            if name not in hosts or not hosts[name]["addresses"]:
                raise ScenarioError(f"firewall: host {name} has no testbed address")
            dests = hosts[name]["addresses"]
        elif "address" in r:
            dests = [render_str(r["address"], tv)]
        else:
            raise ScenarioError("firewall: each rule needs host or address (an IP or CIDR)")
        target = render_str(r.get("host", r.get("address")), tv)
        comment = render_str(r.get("comment", f"{action} {target}"), tv).replace('"', "'")[:120]
        entries.append({"dests": dests, "proto": proto, "ports": ports, "action": action, "comment": comment})
    return entries


def firewall_action(entries, address, port, proto):
    """The action of the first [[firewall]] entry matching a new connection, or None."""
    for e in entries:
        if e["proto"] not in (None, proto) or (e["ports"] and port not in e["ports"]):
            continue
        if any(ipaddress.ip_address(address) in ipaddress.ip_network(d, strict=False) for d in e["dests"]):
            return e["action"]
    return None


def appfw_ports(h):
    """A denied name's TCP ports by what the app firewall does with them: the TLS ones and the
    plain HTTP ones go to the deny responder, everything else (other TCP ports, UDP) is dropped."""
    tls = sorted({p for p, pr, a in h["checks"] if pr == "tcp" and a == "tls"})
    http = sorted({p for p, pr, a in h["checks"] if pr == "tcp" and a == "http"} - set(tls))
    return tls, http


def nft_rules(sc, hosts, tv):
    """The router. Its forward chain holds [[firewall]], the NSG and the firewall's network
    rules, in order. With [app_firewall], a NAT chain before it sends the TLS and HTTP ports of
    denied names to the deny responder, and the forward chain drops whatever else goes to them.
    Azure Firewall processes network rules before application rules: a connection any
    [[firewall]] entry matches is decided by it (`accept` included) and never meets the
    application rules, so the NAT chain first returns for every [[firewall]] match."""
    entries = firewall_entries(sc, hosts, tv)
    matches = []
    for e in entries:
        match = f"meta l4proto {e['proto']}" if e["proto"] else ""
        if e["ports"]:
            match = f"{e['proto']} dport {{ {', '.join(str(p) for p in e['ports'])} }}"
        verdict = {
            "drop": "drop",
            "accept": "accept",
            "reset": {"tcp": "reject with tcp reset", None: "reject"}.get(e["proto"], "reject with icmp type port-unreachable"),
            "unreachable": "reject with icmp type host-unreachable",
        }[e["action"]]
        for d in e["dests"]:
            matches.append((" ".join(["ip daddr", d] + ([match] if match else [])), verdict, e["comment"]))
    forward = [f'    {m} {v} comment "{c}"' for m, v, c in matches]
    out = "table inet amlp_fw {\n"
    fw = sc["app_firewall"]
    if fw is not None:
        nat = [f'    {m} return comment "{c[:100]} (network rule first)"' for m, _, c in matches]
        denied = []
        for name in sorted(hosts):
            h = hosts[name]
            if h["appfw"] != "deny":
                continue
            tls, http = appfw_ports(h)
            for a in public_addresses(h):
                denied.append(a)
                for ports, target, what in ((tls, 443, "TLS"), (http, 80, "HTTP")):
                    if ports:
                        nat.append(f"    ip daddr {a} tcp dport {{ {', '.join(map(str, ports))} }} "
                                   f'dnat ip to {APPFW_IP}:{target} comment "app firewall denies {name[:80]} ({what})"')
        out += ("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
                + "".join(line + "\n" for line in nat) + "  }\n")
        # What the NAT chain sent to the responder matched no [[firewall]] entry: let it through.
        forward.insert(0, '    ct status dnat accept comment "app firewall: to the deny responder"')
        if denied:
            forward.append(f"    ip daddr {{ {', '.join(denied)} }} drop "
                           'comment "app firewall: no application rule allows these names (default deny)"')
    return (out + "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
            + "".join(line + "\n" for line in forward) + "  }\n}\n")


def appfw_action(fw, port, proto, app):
    """What the app firewall does with a connection to a denied name's port (README,
    [app_firewall]); also the name of the wire check that proves it."""
    if proto == "tcp" and app == "tls":
        return {"azure_firewall": "rst_after_hello" if fw["reset"] else "fin_after_hello",
                "nva_reset": "rst_after_hello", "block_page": "block_page_tls"}[fw["style"]]
    if proto == "tcp" and app == "http":
        return {"azure_firewall": "deny_470", "nva_reset": "rst_after_request",
                "block_page": "block_page_http"}[fw["style"]]
    return "drop_udp" if proto == "udp" else "drop_tcp"


def appfw_listeners(fw, hosts, pki):
    """The deny responder's listeners (lib/stubs.py appfw_*) when [app_firewall] denies a name."""
    if fw is None or not any(h["appfw"] == "deny" for h in hosts.values()):
        return []
    common = {"address": APPFW_IP, "host": "(app firewall deny responder)", "style": fw["style"]}
    http, tls = {"kind": "appfw_http", "port": 80, **common}, {"kind": "appfw_tls", "port": 443, **common}
    if fw["style"] == "azure_firewall":
        http["deny_text"], tls["reset"] = fw["deny_text"], fw["reset"]
    if fw["style"] == "block_page":
        http["block_status"] = tls["block_status"] = fw["block_status"]
        tls.update(cert=f"{pki}/leaf-nva.pem", key=f"{pki}/leaf-nva.key")
    return [http, tls]


def wire_plan(sc, hosts, tv, outdir):
    """What `vnet.py wire` checks from the client in an [app_firewall] world: every port of
    every name, denied ones answered as the style does, the others by their own servers.
    Which names are denied comes from [expect] wire_denied when the scenario states it (an
    oracle independent of the world's own pattern matching), else from the world."""
    fw = sc["app_firewall"]
    entries = firewall_entries(sc, hosts, tv)
    listed = sc["expect"].get("wire_denied")
    if listed is None:
        denied = {n for n, h in hosts.items() if h["appfw"] == "deny"}
    else:
        denied = {render_str(n, tv).lower() for n in listed}
        if denied - set(hosts):
            raise ScenarioError(f"[expect] wire_denied: {sorted(denied - set(hosts))} are not names of this world")
    checks = []
    for name in sorted(hosts):
        h = hosts[name]
        for a in h["addresses"]:
            for port, proto, app in sorted(h["checks"]):
                action = firewall_action(entries, a, port, proto)
                if action not in (None, "accept"):
                    continue  # the NSG decides: amlprobe's own scenarios prove those rules
                # Private endpoint addresses are VNet-local: never behind the app firewall.
                if name in denied and action is None and ipaddress.ip_address(a) in PUBLIC_POOL:
                    expect = appfw_action(fw, port, proto, app)
                elif not h["listen"] or (app == "tls" and h["cert"] != "testbed"):
                    continue  # a broken endpoint of the scenario's own making
                else:
                    expect = {"tls": "service_tls", "http": "service_http"}.get(app, f"service_{proto}")
                checks.append({"host": name, "address": a, "port": port, "expect": expect,
                               "azure_headers": h["azure_headers"]})
    return {"style": fw["style"], "deny_text": fw["deny_text"], "block_status": fw["block_status"],
            "root_ca": os.path.join(tv["pki"], "root-ca.pem"), "nva_ca": os.path.join(tv["pki"], "nva-ca.pem"),
            "logs": [os.path.join(os.path.abspath(outdir), "stubs.out")], "checks": checks}


def check_policy_matches_app_firewall(sc, arm_cfg, tv):
    """[app_firewall] and [arm.network.firewall] describe one firewall: the FQDN patterns the
    data plane allows must be exactly the target FQDNs of the policy's Allow application rules
    (a world where they drift apart would test nothing)."""
    policy = set()
    for path, groups in arm_cfg["lists"].items():
        if path.endswith("/rulecollectiongroups"):
            for g in groups:
                for c in g["properties"]["ruleCollections"]:
                    if c["action"]["type"] == "Allow":
                        for r in c["rules"]:
                            if r["ruleType"] == "ApplicationRule":
                                policy |= {x.lower() for x in r.get("targetFqdns", [])}
    data_plane = set(sc["app_firewall"]["allow"]) | {render_str(p, tv).lower() for p in sc["app_firewall"].get("unprobed", [])}
    if policy != data_plane:
        raise ScenarioError(f"[arm.network.firewall] and [app_firewall] disagree: only in the policy "
                            f"{sorted(policy - data_plane)}, only in [app_firewall] allow {sorted(data_plane - policy)}")


def squid_helper(name):
    for d in SQUID_HELPER_DIRS:
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    raise ScenarioError(f"[proxy] auth: squid's {name} helper is in none of {SQUID_HELPER_DIRS}")


def htpasswd_line(user, password):
    """`user:$apr1$...`, the format squid's basic_ncsa_auth reads (the password via stdin, not argv)."""
    try:
        hashed = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password + "\n",
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise ScenarioError(f"[proxy] auth: openssl passwd -apr1 failed: {e}")
    return f"{user}:{hashed}\n"


def squid_conf(sc, tv, workdir):
    p = sc["proxy"]
    allow = [render_str(d, tv) for d in p.get("allow", [])]
    auth = p.get("auth")
    lines = [
        "# generated by tests/vnet/lib/vnet.py: forced tunnelling through an explicit proxy",
        f"http_port {PROXY_IP}:{PROXY_PORT}",
        "visible_hostname amlprobe-testbed-proxy",
        f"dns_nameservers {DNS_IP}",
        f"pid_filename {workdir}/squid.pid",
        f"cache_log {workdir}/squid-cache.log",
        f"access_log stdio:{workdir}/squid-access.log",
        "cache deny all",
        "cache_mem 8 MB",
        "shutdown_lifetime 0 seconds",
        f"coredump_dir {workdir}",
        "acl SSL_ports port 443",
        "acl Safe_ports port 80 443",
        "acl CONNECT method CONNECT",
        "http_access deny !Safe_ports",
        "http_access deny CONNECT !SSL_ports",
    ]
    if auth:
        # Basic auth against a generated password file: no or wrong credentials -> 407.
        lines += [
            f"auth_param basic program {squid_helper('basic_ncsa_auth')} {workdir}/squid.passwd",
            "auth_param basic children 2 startup=1 idle=1",
            "auth_param basic realm amlprobe testbed proxy",
            "acl authenticated proxy_auth REQUIRED",
            "http_access deny !authenticated",
        ]
    if allow:
        lines += [f"acl allowed dstdomain {' '.join(allow)}", "http_access allow allowed"]
    elif auth:
        lines.append("http_access allow authenticated")
    lines.append("http_access deny all")
    return "\n".join(x for x in lines if x) + "\n"


def smb_conf(addresses, workdir):
    """A private smbd answering SMB2+ on 445 of the file endpoints: real negotiation, no shares."""
    d = f"{workdir}/samba"
    return "\n".join([
        "# generated by tests/vnet/lib/vnet.py: the Azure Files endpoints' SMB (445 only)",
        "[global]",
        "  server role = standalone server",
        "  workgroup = AMLPTESTBED",
        "  netbios name = AMLPTESTBED",
        f"  interfaces = {' '.join(addresses)}",
        "  bind interfaces only = yes",
        "  smb ports = 445",
        "  disable netbios = yes",
        "  server min protocol = SMB2_02",
        "  map to guest = never",
        "  load printers = no",
        "  printing = bsd",
        "  printcap name = /dev/null",
        "  disable spoolss = yes",
        f"  private dir = {d}/private",
        f"  lock directory = {d}/lock",
        f"  state directory = {d}/state",
        f"  cache directory = {d}/cache",
        f"  pid directory = {d}/run",
        f"  ncalrpc dir = {d}/run/ncalrpc",
        f"  log file = {workdir}/smbd.log",
        "  log level = 1",
        "  max log size = 0",
    ]) + "\n"


def cmd_render(path, outdir, samba=False):
    sc = load(path)
    tv = template_vars(sc, outdir)
    with open(os.path.join(outdir, "plan.json")) as f:
        plan = json.load(f)
    # `amlprobe suites --format json` is a contract too (docs/suites.schema.json).
    try:
        import jsonschema
        with open(os.path.join(os.path.dirname(REPORT_SCHEMA), "suites.schema.json")) as f:
            errors = list(jsonschema.Draft202012Validator(json.load(f)).iter_errors(plan))
        if errors:
            raise ScenarioError(f"plan.json does not match docs/suites.schema.json: {errors[0].message[:300]}")
    except ImportError:
        pass
    hosts = build_world(sc, plan, tv)
    workdir = os.path.abspath(outdir)

    def write(name, text):
        with open(os.path.join(outdir, name), "w") as f:
            f.write(text)

    addrs = sorted({a for h in hosts.values() for a in h["addresses"]},
                   key=lambda a: ipaddress.ip_address(a))
    for a in addrs:
        ip = ipaddress.ip_address(a)
        if ip not in PRIVATE_POOL and ip not in PUBLIC_POOL:
            raise ScenarioError(f"address {a} is outside the testbed pools {PRIVATE_POOL} and {PUBLIC_POOL}")
    write("addresses.txt", "".join(a + "\n" for a in addrs))
    write("dnsmasq.conf", dnsmasq_conf(hosts, workdir))
    write("nginx.conf", nginx_conf(hosts, workdir, tv["pki"], sc["azure_vm"], sc["arm"] is not None))
    stubs = stub_listeners(hosts) + appfw_listeners(sc["app_firewall"], hosts, tv["pki"])
    arm_cfg = None
    if sc["arm"] is not None:
        # The Azure ML SDK's config.json, where amlprobe runs (run.sh starts it in this folder);
        # config_json = false: none (an Azure ML compute, whose workspace comes from [run] env).
        if sc["arm"].get("config_json", True):
            write("config.json", json.dumps({"subscription_id": ARM_SUBSCRIPTION, "resource_group": ARM_GROUP,
                                             "workspace_name": sc["context"]["workspace_name"]}, indent=1) + "\n")
        try:
            arm_cfg = armworld.config(sc, hosts, lambda v: render_str(v, tv))
        except armworld.ArmError as e:
            raise ScenarioError(str(e))
        if sc["app_firewall"] is not None and sc["arm_network"] and "firewall" in sc["arm_network"]:
            check_policy_matches_app_firewall(sc, arm_cfg, tv)
        write("arm.json", json.dumps(arm_cfg, indent=1))
        host, port = armworld.RESPONDER
        stubs.append({"kind": "arm", "address": host, "port": port, "host": "(fake ARM)",
                      "config": os.path.join(workdir, "arm.json")})
    # Healthy SMB on 445 is a real smbd when run.sh found one (--samba); the stub stays for the
    # broken answers (notsmb, silent) and as the fallback.
    smbd = [e for e in stubs if samba and e["kind"] == "smb" and e["port"] == 445]
    stubs = [e for e in stubs if e not in smbd]
    write("stubs.json", json.dumps(stubs, indent=1))
    if smbd:
        write("smb.conf", smb_conf([e["address"] for e in smbd], workdir))
        for sub in ("private", "lock", "state", "cache", "run"):
            os.makedirs(os.path.join(outdir, "samba", sub), exist_ok=True)
    write("router.nft", nft_rules(sc, hosts, tv))
    if sc["azure_dns"] is not None:
        write("dnsmasq-azure.conf", dnsmasq_conf(hosts, workdir, azure=True))
    if sc["proxy"] is not None:
        write("squid.conf", squid_conf(sc, tv, workdir))
        auth = sc["proxy"].get("auth")
        if auth:
            write("squid.passwd", htpasswd_line(auth["user"], auth["password"]))
    fw = sc["app_firewall"]
    entries = firewall_entries(sc, hosts, tv)
    if fw is not None:
        write("wire.json", json.dumps(wire_plan(sc, hosts, tv, outdir), indent=1))
    # Leaf certificates: one per kind in use, each valid for every name of the scenario.
    kinds = sorted({h["cert"] for h in hosts.values()} | {"testbed"}
                   | ({"nva"} if fw is not None and fw["style"] == "block_page" else set()))
    names = sorted(hosts)
    spec = {"testbed": ("root", "valid", names), "inspection": ("inspection", "valid", names),
            "expired": ("root", "expired", names), "wrong_name": ("root", "valid", ["wrong-name.testbed.invalid"]),
            "nva": ("nva", "valid", names)}
    write("certs.txt", "".join(f"leaf-{k} {spec[k][0]} {spec[k][1]} {' '.join(spec[k][2])}\n" for k in kinds))
    # A readable map of the world, for whoever debugs a failing scenario.
    with open(os.path.join(outdir, "world.txt"), "w") as f:
        if arm_cfg is not None:
            f.write("".join(line + "\n" for line in armworld.world_lines(arm_cfg)))
        if fw is not None:
            f.write(f"# [app_firewall] style={fw['style']} deny={fw['deny']} allow={fw['allow']}: denied names' TLS and HTTP ports are "
                    f"DNATed to the deny responder {APPFW_IP}, their other ports dropped; "
                    "[[firewall]] entries come first\n")
        for name in names:
            h = hosts[name]
            ports = ",".join(f"{p}/{pr}:{a}" for p, pr, a in sorted(h["checks"])) or "-"
            flags = [] if h["cert"] == "testbed" else [f"cert={h['cert']}"]
            flags += [] if h["azure_headers"] else ["no-azure-headers"]
            flags += [] if h["listen"] else ["not-listening"]
            if h["listen"] and any(p == 445 and a == "smb" for p, _, a in h["checks"]):
                flags.append("smb=samba" if any(e["address"] in h["addresses"] for e in smbd) else f"smb=stub:{h['smb']}")
            if h["azure_addresses"] is not None:
                flags.append(f"azure-dns={','.join(h['azure_addresses'])}")
            if h["appfw"] == "deny":
                # Per port: what the app firewall does, unless a [[firewall]] entry decides first.
                done = []
                for p, pr, a in sorted(h["checks"]):
                    nsg = {firewall_action(entries, addr, p, pr) for addr in public_addresses(h)} - {None}
                    done.append(f"{p}/{pr}:" + (f"[[firewall]] {'/'.join(sorted(nsg))}" if nsg else appfw_action(fw, p, pr, a)))
                flags.append(f"appfw=DENIED({','.join(done)})")
            elif fw is not None:
                flags.append("appfw=allowed" if h["appfw"] == "allow" else "appfw=vnet-local")
            f.write(f"{name:70} {h['mode']:11} {','.join(h['addresses']) or '-':15} {ports} {' '.join(flags)}\n")


# ---------------------------------------------------------------- check

def describe_probe(p):
    where = p.get("host") or ""
    if p.get("port") is not None:
        where += f":{p['port']}"
    if p.get("address"):
        where += f" @{p['address']}"
    reason = p.get("reason") or "-"
    return f"{p.get('kind', '?'):5} {where:60} {p.get('status', '?'):12} {reason}"


def check_probe(exp, flow, tv):
    """Mismatches between one expected probe (a selector plus assertions) and a flow's probes."""
    sel_keys = ("kind", "host", "port", "address", "path")
    sel = {k: (render_str(exp[k], tv) if isinstance(exp[k], str) else exp[k]) for k in sel_keys if k in exp}
    label = " ".join(f"{k}={v}" for k, v in sel.items()) or "(any probe)"

    def selected(p):
        for k, v in sel.items():
            actual = p.get(k)
            if isinstance(v, str) and isinstance(actual, str):
                if not fnmatch.fnmatch(actual.lower(), v.lower()):
                    return False
            elif actual != v:
                return False
        return True

    probes = [p for p in flow.get("probes", []) if selected(p)]
    if not probes:
        return [f"probe {label}: no such probe in the flow"]
    out = []
    for p in probes:
        where = f"probe {describe_probe(p).split()[0]} {p.get('host')}" + (f":{p['port']}" if p.get("port") is not None else "")
        if "status" in exp and p.get("status") != exp["status"]:
            out.append(f"{where}: status expected {exp['status']}, got {p.get('status')} (reason {p.get('reason')})")
        if "reason" in exp:
            want = None if exp["reason"] in ("", "none") else exp["reason"]
            if p.get("reason") != want:
                out.append(f"{where}: reason expected {want}, got {p.get('reason')} ({p.get('message')})")
        if "message_contains" in exp:
            want = render_str(exp["message_contains"], tv)
            if want.lower() not in (p.get("message") or "").lower():
                out.append(f"{where}: message lacks {want!r}: {p.get('message')!r}")
        if "issuer_contains" in exp:
            issuer = ((p.get("tls") or {}).get("issuer") or "")
            if exp["issuer_contains"].lower() not in issuer.lower():
                out.append(f"{where}: TLS issuer expected to contain {exp['issuer_contains']!r}, got {issuer!r}")
        if "addresses" in exp:
            want = sorted(render_str(a, tv) for a in exp["addresses"])
            if sorted(p.get("addresses") or []) != want:
                out.append(f"{where}: addresses expected {want}, got {p.get('addresses')}")
        if "cname_contains" in exp:
            chain = p.get("cname_chain") or []
            names = [x for c in chain for x in ((c.get("name", ""), c.get("target", "")) if isinstance(c, dict) else (c,))]
            if not any(exp["cname_contains"].lower() in n.lower() for n in names):
                out.append(f"{where}: CNAME chain lacks {exp['cname_contains']!r}: {chain}")
    return out


def documented_reasons():
    """Reason codes the project README documents (a unit test keeps it complete), or None."""
    import re
    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "README.md")) as f:
            return set(re.findall(r"^\| `([a-z_]+)` \|", f.read(), re.M)) or None
    except OSError:
        return None


def contract_problems(report):
    """Whatever the scenario, the report must keep the JSON contract: known states and codes."""
    reasons = documented_reasons()
    out = []
    for f in report.get("flows", []):
        fid = f.get("id", "?")
        if f.get("status") not in FLOW_STATUSES:
            out.append((fid, f"contract: flow status {f.get('status')!r} is not one of {sorted(FLOW_STATUSES)}"))
        if reasons and f.get("reason") is not None and f["reason"] not in reasons:
            out.append((fid, f"contract: flow reason {f['reason']!r} is not documented in README.md"))
        if f.get("status") == "works" and f.get("reason") is not None:
            out.append((fid, f"contract: a working flow carries reason {f['reason']!r}"))
        if f.get("status") == "blocked" and f.get("reason") is None:
            out.append((fid, "contract: a blocked flow has no reason"))
        for p in f.get("probes", []):
            if p.get("status") not in PROBE_STATUSES:
                out.append((fid, f"contract: probe status {p.get('status')!r} is not one of {sorted(PROBE_STATUSES)}"))
            if reasons and p.get("reason") is not None and p["reason"] not in reasons:
                out.append((fid, f"contract: probe reason {p['reason']!r} is not documented in README.md"))
            if p.get("kind") == "dns" and p.get("port") is not None:
                out.append((fid, "contract: a dns probe has a port"))
    return out


def check_resolvers(sc, report, tv):
    """[[expect.resolver]]: the --compare-resolvers table (report.resolver_comparison)."""
    exp = sc["expect"]
    wanted, others = exp.get("resolver", []), exp.get("resolver_others")
    if not wanted and not others:
        return []
    table = report.get("resolver_comparison")
    if not isinstance(table, list):
        return [("-", f"resolver_comparison: expected a list (--compare-resolvers), got {table!r}")]
    problems, named = [], set()
    for e in wanted:
        pattern = render_str(e["host"], tv).lower()
        rows = [r for r in table if fnmatch.fnmatchcase((r.get("host") or "").lower(), pattern)]
        if not rows:
            problems.append(("-", f"resolver_comparison: no name matches {pattern}"))
        for r in rows:
            host = r.get("host")
            named.add(host)
            where = f"resolver_comparison {host}"
            if "verdict" in e and r.get("verdict") != e["verdict"]:
                problems.append(("-", f"{where}: verdict expected {e['verdict']}, got {r.get('verdict')} ({r.get('diagnosis')})"))
            wants = e.get("diagnosis_contains", [])
            for w in [wants] if isinstance(wants, str) else wants:
                w = render_str(w, tv)
                if w.lower() not in (r.get("diagnosis") or "").lower():
                    problems.append(("-", f"{where}: diagnosis lacks {w!r}: {r.get('diagnosis')!r}"))
            for a in e.get("answers", []):
                sel = render_str(a.get("resolver", "*"), tv)
                answers = [x for x in r.get("answers", []) if fnmatch.fnmatch(x.get("resolver") or "", sel)]
                if not answers:
                    problems.append(("-", f"{where}: no answer from a resolver matching {sel!r} "
                                          f"(got {[x.get('resolver') for x in r.get('answers', [])]})"))
                for x in answers:
                    w2 = f"{where} via {x.get('resolver')}"
                    if "reason" in a:
                        want = None if a["reason"] in ("", "none") else a["reason"]
                        if x.get("reason") != want:
                            problems.append(("-", f"{w2}: reason expected {want}, got {x.get('reason')}"))
                    if "addresses" in a and sorted(x.get("addresses") or []) != sorted(render_str(i, tv) for i in a["addresses"]):
                        problems.append(("-", f"{w2}: addresses expected {a['addresses']}, got {x.get('addresses')}"))
                    if "addresses_in" in a:
                        net = ipaddress.ip_network(render_str(a["addresses_in"], tv))
                        got = x.get("addresses") or []
                        if not got or any(ipaddress.ip_address(i) not in net for i in got):
                            problems.append(("-", f"{w2}: addresses expected inside {net}, got {got}"))
                    if "cname_contains" in a:
                        chain = x.get("cname_chain") or []
                        names = [n for c in chain for n in ((c.get("name", ""), c.get("target", "")) if isinstance(c, dict) else (c,))]
                        if not any(a["cname_contains"].lower() in n.lower() for n in names):
                            problems.append(("-", f"{w2}: CNAME chain lacks {a['cname_contains']!r}: {chain}"))
    if others:
        for r in table:
            if r.get("host") not in named and r.get("verdict") not in others:
                problems.append(("-", f"resolver_comparison {r.get('host')}: verdict {r.get('verdict')} "
                                      f"({r.get('diagnosis')}); names not in [[expect.resolver]] must be one of {others}"))
    return problems


def check_causes(sc, report, tv):
    """[[expect.cause]] and [expect] causes: the report's root_causes. Each expectation selects
    exactly one cause by reason (and kind, and subject glob); `flows` globs must cover exactly the
    cause's flows; every blocked or inconclusive flow must be in exactly one cause."""
    exp = sc["expect"]
    wanted, total = exp.get("cause", []), exp.get("causes")
    causes = report.get("root_causes")
    if not isinstance(causes, list):
        return [("-", f"root_causes: expected a list, got {causes!r}")] if wanted or total is not None else []
    problems = []
    for f in report.get("flows", []):
        holding = sorted(c.get("id") for c in causes if f.get("id") in (c.get("flows") or []))
        failing = f.get("status") in ("blocked", "inconclusive")
        if bool(holding) != failing:
            problems.append((f.get("id"), f"root_causes: a {f.get('status')} flow is in causes {holding}"))
        elif failing and f.get("cause") not in holding:
            problems.append((f.get("id"), f"cause is {f.get('cause')!r} but root causes {holding} list it"))
        elif failing and sorted(f.get("causes") or []) != holding:
            problems.append((f.get("id"), f"causes are {f.get('causes')!r} but root causes {holding} list it"))
    shown = "; ".join(f"{c.get('id')}. {c.get('reason')} {c.get('subject')} ({len(c.get('flows') or [])} flows)"
                      for c in causes)
    if total is not None and len(causes) != total:
        problems.append(("-", f"root_causes: expected {total}, got {len(causes)}: {shown}"))
    required_total = exp.get("required_causes")
    required = [c for c in causes if c.get("required")]
    if required_total is not None and len(required) != required_total:
        problems.append(("-", f"root_causes of required flows: expected {required_total}, got {len(required)}: {shown}"))
    for e in wanted:
        subject = render_str(e.get("subject", "*"), tv)
        picked = [c for c in causes if fnmatch.fnmatchcase(c.get("reason") or "", e["reason"])
                  and e.get("kind", c.get("kind")) == c.get("kind")
                  and fnmatch.fnmatchcase(c.get("subject") or "", subject)]
        where = f"root cause {e['reason']} {subject}"
        if len(picked) != 1:
            problems.append(("-", f"{where}: expected exactly one such cause, got {len(picked)}: {shown}"))
            continue
        c = picked[0]
        got = c.get("flows") or []
        if "flows" in e:
            globs = e["flows"]
            strays = [f for f in got if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
            if strays:
                problems.append(("-", f"{where}: explains flows outside {globs}: {strays}"))
            failing = [f.get("id") for f in report.get("flows", []) if f.get("status") in ("blocked", "inconclusive")]
            missing = [f for f in failing if f not in got and any(fnmatch.fnmatchcase(f, g) for g in globs)]
            if missing:
                problems.append(("-", f"{where}: lacks failing flows matching {globs}: {missing}"))
        if "count" in e and len(got) != e["count"]:
            problems.append(("-", f"{where}: expected {e['count']} flows, got {len(got)}: {got}"))
        if "required" in e and c.get("required") != e["required"]:
            problems.append(("-", f"{where}: required expected {e['required']}, got {c.get('required')}"))
        for key in ("summary_contains", "fix_contains", "commands_contains"):
            wants = e.get(key, [])
            field = key.split("_")[0]
            value = c.get(field) or ""
            value = "\n".join(value) if isinstance(value, list) else value
            for w in [wants] if isinstance(wants, str) else wants:
                w = render_str(w, tv)
                if w.lower() not in value.lower():
                    problems.append(("-", f"{where}: {field} lacks {w!r}: {value!r}"))
        if "destinations" in e:
            want = sorted(render_str(d, tv) for d in e["destinations"])
            got = sorted(d.get("host") for d in c.get("destinations") or [])
            if got != want:
                problems.append(("-", f"{where}: destinations expected {want}, got {got}"))
        problems += [("-", f"{where}: {m}") for m in check_attribution(e, c, tv)]
    return problems


def describe_findings(azure):
    return "; ".join(f"{f.get('kind')} {f.get('name')!r} {(f.get('verdict') or {}).get('effect')} ({f.get('basis')}): "
                     f"{(f.get('verdict') or {}).get('says')}" for f in azure) or "none"


def check_attribution(e, c, tv):
    """The cause's Azure attribution (issue 25): azure_contains (a finding's name or verdict),
    blocked_by (the first finding that blocks: what the table prints), change_contains and
    change_count (its `az` commands), azure_notes_contains."""
    out = []
    azure = c.get("azure") or []

    def texts(key):
        wants = e.get(key, [])
        return [render_str(w, tv) for w in ([wants] if isinstance(wants, str) else wants)]

    for w in texts("azure_contains"):
        if not any(w.lower() in (f.get("name") or "").lower() or w.lower() in ((f.get("verdict") or {}).get("says") or "").lower()
                   for f in azure):
            out.append(f"no Azure finding names {w!r}: {describe_findings(azure)}")
    if "blocked_by" in e:
        b = e["blocked_by"]
        first = next((f for f in azure if (f.get("verdict") or {}).get("effect") == "blocks"), None)
        if first is None:
            out.append(f"no Azure finding blocks (blocked_by {b}): {describe_findings(azure)}")
        else:
            for key in ("kind", "name", "basis"):
                if key in b and not fnmatch.fnmatchcase(first.get(key) or "", render_str(b[key], tv)):
                    out.append(f"blocked by {first.get('kind')} {first.get('name')!r} ({first.get('basis')}), "
                               f"expected {key} {render_str(b[key], tv)!r}: {first.get('verdict', {}).get('says')}")
            says = (first.get("verdict", {}).get("says") or "").lower()
            for key, present in (("says_contains", True), ("says_absent", False)):
                wants = b.get(key, [])
                for w in [wants] if isinstance(wants, str) else wants:
                    w = render_str(w, tv)
                    if (w.lower() in says) != present:
                        out.append(f"the blocking finding's verdict {'lacks' if present else 'holds'} {w!r}: "
                                   f"{first.get('verdict', {}).get('says')!r}")
    az = ((c.get("change") or {}).get("az")) or ""
    # A wanted text ending in a newline must end a command: "--target-fqdns a b\n" is exact.
    for w in texts("change_contains"):
        if w.lower() not in (az + "\n").lower():
            out.append(f"change lacks {w!r}: {az!r}")
    if "change_count" in e and len(az.splitlines()) != e["change_count"]:
        out.append(f"change: expected {e['change_count']} command(s), got {len(az.splitlines())}: {az!r}")
    notes = "\n".join(c.get("azure_notes") or [])
    for w in texts("azure_notes_contains"):
        if w.lower() not in notes.lower():
            out.append(f"azure_notes lack {w!r}: {c.get('azure_notes')!r}")
    return out


def check_arm(sc, tv):
    """[arm] worlds: the fake ARM saw no unexpected request (its `arm:` log), each
    [expect] arm_requests glob matches a request, and no request carrying an Authorization header
    reached any server but ARM (nginx's access log records only whether one was there); with
    [expect] warnings_contains, context.warnings is checked elsewhere."""
    if sc["arm"] is None:
        return []
    outdir = tv["outdir"]
    problems = []
    try:
        with open(os.path.join(outdir, "stubs.out"), errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return [("-", f"fake ARM: no stubs.out: {e}")]
    problems += [("-", m) for m in armworld.log_problems(lines)]
    requests = [line[len("arm: "):] for line in lines if line.startswith("arm: ")]
    for pattern in sc["expect"].get("arm_requests", []):
        pattern = render_str(pattern, tv)
        if not any(fnmatch.fnmatchcase(r, pattern) for r in requests):
            problems.append(("-", f"fake ARM: no request matches {pattern!r} (saw {len(requests)}: see stubs.out)"))
    try:
        with open(os.path.join(outdir, "nginx-access.log"), errors="replace") as f:
            for line in f:
                server = line.split(" ", 1)[0]
                if line.rstrip().endswith("auth=bearer") and server != "management.azure.com":
                    problems.append(("-", f"a request with an Authorization header reached {server or 'IMDS'}: {line.strip()[:200]}"))
    except OSError:
        pass
    return problems


def check_warnings(sc, report, tv):
    """[expect] warnings_contains: each text is in exactly one line of context.warnings;
    warnings_absent: each text is in none."""
    lines = (report.get("context") or {}).get("warnings") or []
    out = []
    for w in sc["expect"].get("warnings_absent", []):
        w = render_str(w, tv)
        hits = [line for line in lines if w.lower() in line.lower()]
        if hits:
            out.append(("-", f"context.warnings: {hits} contain {w!r}, which [expect] warnings_absent forbids"))
    for w in sc["expect"].get("warnings_contains", []):
        w = render_str(w, tv)
        hits = [line for line in lines if w.lower() in line.lower()]
        if len(hits) != 1:
            out.append(("-", f"context.warnings: {len(hits)} line(s) contain {w!r}, expected exactly one: {lines}"))
    return out


def check_table(sc, outdir, tv):
    """[expect] table_max_lines and table_contains, over the one-screen table (run.table)."""
    exp = sc["expect"]
    if "table_max_lines" not in exp and "table_contains" not in exp:
        return []
    path = os.path.join(outdir, "table.txt")
    if not os.path.exists(path):
        raise ScenarioError("[expect] table_* needs [run] table = true")
    with open(path, encoding="utf-8") as f:
        table = f.read()
    problems = []
    lines = table.rstrip("\n").split("\n")
    if "table_max_lines" in exp and len(lines) > exp["table_max_lines"]:
        problems.append(("-", f"table: {len(lines)} lines, more than {exp['table_max_lines']}"))
    for w in exp.get("table_contains", []):
        w = render_str(w, tv)
        if w not in table:
            problems.append(("-", f"table lacks {w!r}"))
    return problems


def check(sc, report, exit_code, tv, raw=None):
    """Every mismatch as (flow id or '-', text). raw: {file name: text} for [expect] absent."""
    problems = []
    exp = sc["expect"]
    flows = report.get("flows")
    if not isinstance(flows, list):
        return [("-", "the report has no flows array")]
    for key in ("schema_version", "tool", "summary", "context"):
        if key not in report:
            problems.append(("-", f"the report lacks '{key}'"))
    problems += contract_problems(report)
    problems += schema_problems(report)
    if exp.get("alerts"):
        problems += check_alerts(tv["outdir"], report)
    for pointer, want in (exp.get("report") or {}).items():
        got = report
        for part in pointer.split("."):
            got = got.get(part) if isinstance(got, dict) else None
        want = render_str(want, tv)
        if got != want:
            problems.append(("-", f"report {pointer}: expected {want!r}, got {got!r}"))
    by_id = {f.get("id"): f for f in flows}
    summary = report.get("summary") or {}
    if summary.get("flows") not in (None, len(flows)):
        problems.append(("-", f"summary.flows is {summary.get('flows')} but the report lists {len(flows)} flows"))
    # Each flow is checked against one expectation: an exact id wins over patterns, and among
    # patterns the first one in the file; so `compute.*` can be refined by `compute.arm`.
    expectations = exp.get("flow", [])
    chosen = {}
    for e in expectations:
        ids = [i for i in by_id if fnmatch.fnmatchcase(i, e["id"])]
        if not ids:
            problems.append((e["id"], "flow not in the report"))
        for fid in ids:
            exact = fid == e["id"]
            if fid not in chosen or (exact and chosen[fid]["id"] != fid):
                chosen[fid] = e
    named = set(chosen)
    for fid in sorted(chosen):
        e, f = chosen[fid], by_id[fid]
        pattern = e["id"]
        if "status" in e and e["status"] not in FLOW_STATUSES:
            raise ScenarioError(f"expect.flow {pattern}: status {e['status']!r} is not one of {sorted(FLOW_STATUSES)}")
        if "status" in e and f.get("status") != e["status"]:
            problems.append((fid, f"status expected {e['status']}, got {f.get('status')} (reason {f.get('reason')}: {f.get('message')})"))
        if "reason" in e:
            want = None if e["reason"] in ("", "none") else e["reason"]
            if f.get("reason") != want:
                problems.append((fid, f"reason expected {want}, got {f.get('reason')} ({f.get('message')})"))
        if "path" in e and f.get("path") != e["path"]:
            problems.append((fid, f"path expected {e['path']}, got {f.get('path')}"))
        if "direct" in e:
            # --compare-direct: the same flow tried without the proxy.
            direct = f.get("direct_path") or {}
            for key in ("status", "reason"):
                if key in e["direct"] and direct.get(key) != e["direct"][key]:
                    problems.append((fid, f"direct path {key} expected {e['direct'][key]}, got {direct.get(key)} "
                                          f"({direct.get('message')})"))
        for pe in e.get("probes", []) + e.get("probe", []):
            if "status" in pe and pe["status"] not in PROBE_STATUSES:
                raise ScenarioError(f"expect.flow {pattern}: probe status {pe['status']!r} is not one of {sorted(PROBE_STATUSES)}")
            problems += [(fid, m) for m in check_probe(pe, f, tv)]
    others = exp.get("others")
    optional_others = exp.get("optional_others", others)
    for f in flows:
        allowed = others if f.get("required") else optional_others
        if allowed and f.get("id") not in named and f.get("status") not in allowed:
            which = "" if f.get("required") or optional_others is others else "optional "
            problems.append((f.get("id"), f"status {f.get('status')} (reason {f.get('reason')}: {f.get('message')}); "
                                           f"{which}flows not named in the scenario must be one of {allowed}"))
    problems += check_resolvers(sc, report, tv)
    problems += check_causes(sc, report, tv)
    problems += check_warnings(sc, report, tv)
    problems += check_arm(sc, tv)
    # Secrets (e.g. a proxy password) must appear nowhere in what amlprobe wrote.
    for secret in exp.get("absent", []):
        secret = render_str(secret, tv)
        for fname, text in (raw or {}).items():
            if secret in text:
                problems.append(("-", f"{fname} contains {secret!r}, which [expect] absent forbids "
                                      f"(line {text[:text.index(secret)].count(chr(10)) + 1})"))
    if "exit_code" in exp and exp["exit_code"] != exit_code:
        problems.append(("-", f"exit code expected {exp['exit_code']}, got {exit_code}"))
    return problems


REPORT_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "docs", "report.schema.json")


def schema_problems(report):
    """The report against the published JSON schema (docs/report.schema.json, generated from the
    Rust types): a field renamed, dropped or added without regenerating it shows up here."""
    try:
        import jsonschema
    except ImportError:
        return [("-", "python3-jsonschema is not installed: the report was not checked against its schema")]
    with open(REPORT_SCHEMA) as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    return [("-", f"schema: /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}") for e in errors[:10]]


ALERT_RULES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))),
                           "packaging", "prometheus", "amlprobe-alerts.yml")


def parse_exposition(text):
    """(series, value) pairs of a Prometheus text exposition (comments skipped)."""
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out.append((series, value))
    return out


def alert_annotations(rule):
    """The summary and description templates of alert `rule` in ALERT_RULES (no YAML parser in
    the stdlib: the file keeps each on one line)."""
    with open(ALERT_RULES) as f:
        text = f.read()
    block = text.split(f"- alert: {rule}", 1)[1].split("- alert:", 1)[0]
    out = {}
    for key in ("summary", "description"):
        line = next(l for l in block.splitlines() if l.strip().startswith(f"{key}:"))
        out[key] = json.loads(line.split(":", 1)[1].strip())
    return out


def promtool_test(series, expected):
    """A `promtool test rules` file: `series` held for 20 minutes, then at 15 min exactly the
    `expected` AmlprobeRequiredFlowBlocked alerts (a list of label dicts) and no stale alert."""
    def q(v):
        return json.dumps(str(v))
    notes = alert_annotations("AmlprobeRequiredFlowBlocked")
    lines = [f"rule_files: [{q(ALERT_RULES)}]", "evaluation_interval: 1m", "tests:",
             "  - interval: 1m", "    input_series:"]
    for name, value in series:
        if name.startswith("amlprobe_last_run_timestamp_seconds"):
            continue  # the real timestamp is 2026: in promtool's clock (starting at 0) a fresh run
        lines += [f"      - series: {q(name)}", f"        values: {q(f'{value}x20')}"]
    lines += ["      - series: 'amlprobe_last_run_timestamp_seconds'", "        values: '0+60x20'",
              "    alert_rule_test:", "      - eval_time: 15m", "        alertname: AmlprobeStale",
              "        exp_alerts: []", "      - eval_time: 15m", "        alertname: AmlprobeRequiredFlowBlocked",
              "        exp_alerts:" + ("" if expected else " []")]
    for labels in expected:
        lines.append("          - exp_labels:")
        lines += [f"              {k}: {q(v)}" for k, v in sorted({**labels, "severity": "warning"}.items())]
        lines.append("            exp_annotations:")
        for key, template in notes.items():
            text = template
            for k, v in labels.items():
                text = text.replace("{{ $labels.%s }}" % k, v)
            lines.append(f"              {key}: {q(text)}")
    # A run that stopped: the last timestamp stays at 0, so after 30 minutes the stale alert fires.
    lines += ["  - interval: 1m", "    input_series:", "      - series: 'amlprobe_last_run_timestamp_seconds'",
              "        values: '0x60'", "    alert_rule_test:", "      - eval_time: 25m",
              "        alertname: AmlprobeStale", "        exp_alerts: []", "      - eval_time: 40m",
              "        alertname: AmlprobeStale", "        exp_alerts:", "          - exp_labels:",
              "              severity: warning", "            exp_annotations:"]
    stale = alert_annotations("AmlprobeStale")
    lines.append(f"              summary: {q(stale['summary'].replace('{{ $value | humanizeDuration }}', '40m 0s'))}")
    lines.append(f"              description: {q(stale['description'])}")
    return "\n".join(lines) + "\n"


def check_alerts(outdir, report):
    """[expect] alerts = true: the shipped alert rules, fed this run's metrics, fire exactly for
    the required flows the JSON report calls blocked; and a wrong expectation makes promtool fail."""
    try:
        with open(os.path.join(outdir, "metrics.prom")) as f:
            series = parse_exposition(f.read())
    except OSError as e:
        return [("-", f"alerts: no metrics.prom (set [run] prometheus = true): {e}")]
    expected = [{"flow": fl["id"], "suite": fl["suite"], "required": "true", "reason": fl.get("reason") or ""}
                for fl in report["flows"] if fl.get("required") and fl.get("status") == "blocked"]
    problems = []

    def promtool(name, text):
        path = os.path.join(outdir, name)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True, timeout=60)
        return r.returncode, (r.stdout + r.stderr).strip()

    rc, out = promtool("alerts-test.yml", promtool_test(series, expected))
    if rc != 0:
        problems.append(("-", f"alerts: promtool test rules failed for the expected alerts:\n{out[-2000:]}"))
    # The same test expecting one alert too many must fail, once for each kind of flow that must
    # never alert (optional blocked, inconclusive, skipped, not_testable): otherwise the test
    # above proves nothing.
    decoys = {}
    for fl in report["flows"]:
        kind = "optional blocked" if fl.get("status") == "blocked" and not fl.get("required") else fl.get("status")
        if kind != "blocked":
            decoys.setdefault(kind, fl)
    for kind, fl in sorted(decoys.items()):
        wrong = expected + [{"flow": fl["id"], "suite": fl["suite"], "required": "true",
                             "reason": fl.get("reason") or "tcp_timeout"}]
        rc, _ = promtool("alerts-test-wrong.yml", promtool_test(series, wrong))
        if rc == 0:
            problems.append(("-", f"alerts: promtool accepted an alert for {fl['id']} ({kind}), which must never alert"))
    return problems


def cmd_check(path, outdir, exit_code, invert=True):
    sc = load(path)
    tv = template_vars(sc, outdir)
    # expect_failure scenarios pass when they mismatch, unless the runner asks for the raw diff.
    expect_failure = invert and bool(sc["run"].get("expect_failure", False))
    label = "expected MISMATCH (self-test)" if expect_failure else "MISMATCH"
    raw = {}
    for fname in ("report.json", "amlprobe.err"):
        try:
            with open(os.path.join(outdir, fname), errors="replace") as f:
                raw[fname] = f.read()
        except OSError:
            pass
    try:
        report = json.loads(raw["report.json"])
    except (KeyError, ValueError) as e:
        problems = [("-", f"no JSON report from amlprobe (exit code {exit_code}): {e}")]
        report = {"flows": []}
    else:
        problems = check(sc, report, int(exit_code), tv, raw) + check_table(sc, outdir, tv)
    flows = {f.get("id"): f for f in report.get("flows", [])}
    for fid, msg in problems:
        print(f"    {label} {sc['name']} {fid}: {msg}")
    # Context for each flow that mismatched: what amlprobe actually saw, probe by probe.
    for fid in sorted({fid for fid, _ in problems if fid in flows}):
        f = flows[fid]
        print(f"      actual {fid}: {f.get('status')} ({f.get('reason')})")
        for p in f.get("probes", []):
            print(f"        {describe_probe(p)}")
    s = report.get("summary", {})
    if s:
        print(f"    summary: {', '.join(f'{k}={v}' for k, v in s.items())}; exit code {exit_code}")
    if problems and not expect_failure:
        # What the binary took for its resolver, and what the DNS server saw last: a whole run of
        # wrong DNS verdicts is most often the resolver set-up, not the classification.
        host = report.get("host") or {}
        print(f"    resolver seen: nameservers {host.get('nameservers')}, {host.get('resolver')}")
        try:
            with open(os.path.join(outdir, "dnsmasq.log"), errors="replace") as f:
                for line in f.readlines()[-6:]:
                    print(f"      dnsmasq: {line.rstrip()}")
        except OSError:
            pass
    if expect_failure:
        want = sc["run"].get("expect_mismatches")
        if want is not None and want != len(problems):
            print(f"    SELF-TEST FAILED: expected exactly {want} mismatches, the checker found {len(problems)}")
            return 1
        if problems:
            print(f"    (self-test: {len(problems)} mismatch(es) expected and found: the checker catches wrong expectations)")
            return 0
        print("    SELF-TEST FAILED: this scenario's expectations are deliberately wrong, yet nothing mismatched")
        return 1
    return 1 if problems else 0


def cmd_listeners(outdir, proto):
    """ADDR:PORT lines the daemons of a rendered world must listen on (for readiness checks)."""
    found = set()
    with open(os.path.join(outdir, "nginx.conf")) as f:
        for line in f:
            words = line.split()
            if proto == "tcp" and words[:1] == ["listen"]:
                found.add(words[1].rstrip(";"))
    with open(os.path.join(outdir, "stubs.json")) as f:
        for e in json.load(f):
            if (e["kind"] in ("udp", "servfail")) == (proto == "udp"):
                found.add(f"{e['address']}:{e['port']}")
    if proto == "udp":
        found.add(f"{DNS_IP}:53")
        if os.path.exists(os.path.join(outdir, "dnsmasq-azure.conf")):
            found.add(f"{AZURE_DNS_IP}:53")
    if proto == "tcp" and os.path.exists(os.path.join(outdir, "squid.conf")):
        found.add(f"{PROXY_IP}:{PROXY_PORT}")
    if proto == "tcp" and os.path.exists(os.path.join(outdir, "smb.conf")):
        with open(os.path.join(outdir, "smb.conf")) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "interfaces":
                    found.update(f"{a}:445" for a in value.split())
    print("\n".join(sorted(found)))


# ---------------------------------------------------------------- wire (run in the client namespace)

WIRE_TIMEOUT = 3      # seconds for an answer that must come
SILENCE = 1.0         # seconds of silence that count as "dropped"


class WireError(Exception):
    pass


def client_hello(host):
    """The bytes of a real ClientHello for `host` (SNI), made by Python's OpenSSL."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def connect(address, port, timeout=WIRE_TIMEOUT):
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        raise WireError(f"TCP connect failed: {e!r}")


def read_all(sock):
    """Everything until the peer's FIN; a reset or silence is an error."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        raise WireError(f"TCP reset after {len(data)} bytes")
    except socket.timeout:
        raise WireError(f"no FIN within {WIRE_TIMEOUT}s (got {data[:80]!r})")
    return data


def read_response(sock, head_only=False):
    """One HTTP response: (status line, [(header, value)], body), read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise WireError(f"connection closed before a full response head: {data[:120]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
    while not head_only and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines[0], headers, body


def expect_end(sock, what):
    """The peer must send nothing more and then FIN (not RST, not silence)."""
    rest = read_all(sock)
    if rest:
        raise WireError(f"{what}: unexpected bytes after the response: {rest[:80]!r}")


def request(host, method, marker, close=True):
    """An HTTP request carrying a marker secret in its path and Authorization header: the deny
    responder must never write it down."""
    return (f"{method} /?sig={marker} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: amlprobe-testbed-wire\r\n"
            f"Authorization: Bearer {marker}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def check_service(c, root_ca):
    """The name's own server answers: nginx's 200 (with x-ms-request-id where the world gives
    it), the SMB or other TCP listener accepts, the UDP echo replies."""
    if c["expect"] == "service_udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(WIRE_TIMEOUT)
            s.sendto(b"amlprobe testbed wire\n", (c["address"], c["port"]))
            try:
                s.recvfrom(512)
            except socket.timeout:
                raise WireError("no UDP reply from the service")
        return
    sock = connect(c["address"], c["port"])
    with sock:
        if c["expect"] == "service_tcp":
            return
        if c["expect"] == "service_tls":
            ctx = ssl.create_default_context(cafile=root_ca)
            try:
                sock = ctx.wrap_socket(sock, server_hostname=c["host"])
            except (ssl.SSLError, OSError) as e:
                raise WireError(f"TLS with the testbed root CA failed: {e!r}")
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {c['host']}\r\nConnection: close\r\n\r\n".encode())
        status, headers, _ = read_response(sock)
        names = {k.lower() for k, _ in headers}
        if not status.startswith("HTTP/1.1 200"):
            raise WireError(f"the service answered {status!r}, not 200")
        if c["azure_headers"] and "x-ms-request-id" not in names:
            raise WireError("the service's answer lacks x-ms-request-id")


def check_deny_470(c, plan, marker):
    """Azure Firewall's HTTP deny: exactly its status line, headers and body; then FIN when the
    request said Connection: close; HEAD without the body; a kept-alive connection answered
    again."""
    body = plan["deny_text"].encode()
    want = ["Date", "Content-Length", "Content-Type"]
    for method, close in (("GET", True), ("HEAD", True), ("GET", False)):
        with connect(c["address"], c["port"]) as sock:
            sock.sendall(request(c["host"], method, marker, close))
            status, headers, got = read_response(sock, head_only=method == "HEAD")
            what = f"{method}{'' if close else ' (keep-alive)'}"
            if status != "HTTP/1.1 470 status code 470":
                raise WireError(f"{what}: status line {status!r}")
            names = [k for k, _ in headers]
            if names != want + (["Connection"] if close else []):
                raise WireError(f"{what}: headers {names}, want {want}{' + Connection' if close else ''}")
            values = dict(headers)
            if values["Content-Type"] != "text/plain; charset=utf-8":
                raise WireError(f"{what}: Content-Type {values['Content-Type']!r}")
            if values["Content-Length"] != str(len(body)):
                raise WireError(f"{what}: Content-Length {values['Content-Length']}, the deny text has {len(body)} bytes")
            if method == "GET" and got != body:
                raise WireError(f"{what}: body {got[:120]!r}, want {body!r}")
            if method == "HEAD" and got:
                raise WireError(f"HEAD: a body came: {got[:80]!r}")
            if not close:
                # Go's net/http keeps the connection: a second request gets a second 470.
                sock.sendall(request(c["host"], "GET", marker, True))
                status, _, got = read_response(sock)
                if status != "HTTP/1.1 470 status code 470" or got != body:
                    raise WireError(f"second request on a kept-alive connection: {status!r} {got[:80]!r}")
            expect_end(sock, what)


def check_after_hello(c, how):
    """Connect, send a ClientHello with the name as SNI: the peer must close with a FIN
    (how="fin") or a RST (how="rst") without a single byte: no ServerHello, no TLS alert."""
    with connect(c["address"], c["port"]) as sock:
        sock.sendall(client_hello(c["host"]))
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            if how == "rst":
                return
            raise WireError("RST after the ClientHello, want FIN")
        except socket.timeout:
            raise WireError(f"neither FIN nor RST within {WIRE_TIMEOUT}s of the ClientHello")
        if data:
            kind = {0x15: "a TLS alert", 0x16: "a TLS handshake"}.get(data[0], "bytes")
            raise WireError(f"{kind} after the ClientHello ({data[:16].hex()}), want a silent {how.upper()}")
        if how == "rst":
            raise WireError("FIN after the ClientHello, want RST")


def check_rst_after_request(c, marker):
    with connect(c["address"], c["port"]) as sock:
        sock.sendall(request(c["host"], "GET", marker))
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            return
        except socket.timeout:
            raise WireError(f"no RST within {WIRE_TIMEOUT}s of the request")
        raise WireError(f"{'FIN' if not data else repr(data[:80])} after the request, want RST")


def check_block_page(c, plan, marker):
    """The NVA's block page: its status, HTML, no Server and no Azure header; over TLS, with a
    certificate from the NVA's CA: refused with the testbed root CA, accepted with the NVA's."""
    if c["expect"] == "block_page_tls":
        with connect(c["address"], c["port"]) as probe:
            try:
                ssl.create_default_context(cafile=plan["root_ca"]).wrap_socket(probe, server_hostname=c["host"])
                raise WireError("the block page's certificate is trusted by the testbed root CA")
            except ssl.SSLCertVerificationError:
                pass
        sock = connect(c["address"], c["port"])
        try:
            sock = ssl.create_default_context(cafile=plan["nva_ca"]).wrap_socket(sock, server_hostname=c["host"])
        except (ssl.SSLError, OSError) as e:
            raise WireError(f"TLS with the NVA's CA failed: {e!r}")
        issuer = dict(x[0] for x in sock.getpeercert()["issuer"])
        if issuer.get("commonName") != NVA_CA_CN:
            raise WireError(f"issuer {issuer}, want CN={NVA_CA_CN}")
    else:
        sock = connect(c["address"], c["port"])
    with sock:
        sock.sendall(request(c["host"], "GET", marker))
        status, headers, body = read_response(sock)
        want = f"HTTP/1.1 {plan['block_status']} {'OK' if plan['block_status'] == 200 else 'Forbidden'}"
        names = {k.lower(): v for k, v in headers}
        if status != want:
            raise WireError(f"status line {status!r}, want {want!r}")
        if not names.get("content-type", "").startswith("text/html") or b"Web Page Blocked" not in body:
            raise WireError(f"not the block page: {names} {body[:120]!r}")
        if "server" in names or "x-ms-request-id" in names:
            raise WireError(f"the block page carries {sorted(names)}")
        if marker.encode() in body:
            raise WireError("the block page echoes the request's path or Authorization")


def check_dropped(c):
    """Silence: no SYN-ACK (not a refusal, not an ICMP error), no UDP reply."""
    if c["expect"] == "drop_udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(SILENCE)
            s.connect((c["address"], c["port"]))
            s.send(b"amlprobe testbed wire\n")
            try:
                data = s.recv(512)
            except socket.timeout:
                return
            except OSError as e:
                raise WireError(f"an ICMP error came back ({e!r}), want silence")
            raise WireError(f"a UDP reply came back ({data[:40]!r}), want silence")
    try:
        socket.create_connection((c["address"], c["port"]), timeout=SILENCE).close()
    except socket.timeout:
        return
    except OSError as e:
        raise WireError(f"{e!r}, want silence")
    raise WireError("the TCP connection was accepted, want silence")


def cmd_wire(outdir):
    """Runs OUTDIR/wire.json's checks from the client namespace; prints each failure."""
    with open(os.path.join(outdir, "wire.json")) as f:
        plan = json.load(f)
    marker = "amlp-wire-" + secrets.token_hex(8)
    socket.setdefaulttimeout(WIRE_TIMEOUT)
    failures, counts = [], {}
    for c in plan["checks"]:
        expect = c["expect"]
        try:
            if expect.startswith("service_"):
                check_service(c, plan["root_ca"])
            elif expect == "deny_470":
                check_deny_470(c, plan, marker)
            elif expect in ("fin_after_hello", "rst_after_hello"):
                check_after_hello(c, expect[:3])
            elif expect == "rst_after_request":
                check_rst_after_request(c, marker)
            elif expect.startswith("block_page_"):
                check_block_page(c, plan, marker)
            else:
                check_dropped(c)
        except (WireError, OSError, ValueError, KeyError, IndexError) as e:
            failures.append(f"{c['host']}:{c['port']} ({c['address']}) {expect}: {e}")
        counts[expect] = counts.get(expect, 0) + 1
    time.sleep(0.2)  # the responder's last log line
    for path in plan["logs"]:
        with open(path, errors="replace") as f:
            if marker in f.read():
                failures.append(f"{path} holds the request's secret: the deny responder must not record requests")
    for line in failures:
        print(f"    WIRE MISMATCH {line}")
    print(f"    wire: {len(plan['checks']) - len(failures)}/{len(plan['checks'])} checks as expected ("
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    return 1 if failures else 0


def main(argv):
    try:
        if len(argv) >= 3 and argv[0] == "listeners":
            cmd_listeners(argv[1], argv[2])
            return 0
        if len(argv) >= 3 and argv[0] == "prepare":
            cmd_prepare(argv[1], argv[2])
            return 0
        if len(argv) >= 2 and argv[0] == "wire":
            return cmd_wire(argv[1])
        if len(argv) >= 3 and argv[0] == "render":
            cmd_render(argv[1], argv[2], samba="--samba" in argv[3:])
            return 0
        if len(argv) >= 4 and argv[0] == "check":
            return cmd_check(argv[1], argv[2], argv[3], invert="--no-invert" not in argv[4:])
    except ScenarioError as e:
        print(f"    SCENARIO ERROR in {argv[1]}: {e}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
