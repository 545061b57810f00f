//! Root causes: the few changes that fix every failing flow. Each observation that decides a
//! flow (`precedence::deciding`) is keyed by the change that would fix it, read from structured
//! probe fields only, never from message text: one resolver, one private DNS zone, one
//! inspecting CA, one proxy, one firewall's application rules, one web filter, or one
//! destination (a host, whatever flows or service tags reach it). A flow blocked by two
//! independent problems is listed under both. Pure functions, no I/O.

use super::precedence;
use crate::model::netaddr::PrivateRanges;
use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::model::suite::{CauseHint, Expectation, HostsMatch, Protocol, ReasonHint};
use crate::model::template::{self, Lookup};
use crate::report::schema::{CauseDestination, CauseKind, Comparison, RootCause};
use crate::report::{FlowReport, ProbeKind, ProbeReport};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What grouping needs besides the flows.
pub struct Facts<'a> {
    /// The resolver that gave the answers, e.g. `10.0.0.4 (resolv.conf)`.
    pub resolver: &'a str,
    /// Hints per reason code (`[reason.<code>]`).
    pub hints: &'a BTreeMap<ReasonCode, ReasonHint>,
    /// Root-cause texts per kind and reason (`[cause.<kind>.<code>]`).
    pub causes: &'a BTreeMap<(CauseKind, ReasonCode), CauseHint>,
    /// `--compare-resolvers` results, to quote Azure DNS's answers.
    pub comparison: Option<&'a [Comparison]>,
    /// Addresses that count as private: a destination there is a private endpoint.
    pub ranges: &'a PrivateRanges,
}

/// The variables cause texts may use (`probes/hints.toml`, `[cause.*]`): what [`Group::render`]
/// fills in, and what the test of every text renders with.
pub const VARIABLES: [&str; 19] = [
    "resolver",
    "private_dns_zone",
    "issuer",
    "filter",
    "proxy",
    "protocol",
    "port",
    "service_tag",
    "host",
    "hosts",
    "examples",
    "names",
    "address",
    "addresses",
    "flows",
    "targets",
    "evidence",
    "azure_dns",
    "resource",
];

/// Observations with the same key are fixed by one change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: CauseKind,
    /// The reason of the texts (the firewall's fingerprints share one).
    reason: ReasonCode,
    subject: String,
}

/// Run-wide facts the keys need.
struct Run<'a> {
    resolver: &'a str,
    /// Whether the resolver fails several public names it should know while answering others:
    /// then their NXDOMAIN is the resolver's forwarding, not each name's.
    resolver_fails_public_names: bool,
}

/// A public service name: no private DNS zone and no private answer expected; it never gets
/// privatelink advice.
fn public_name(flow: &FlowReport, p: &ProbeReport) -> bool {
    flow.private_dns_zone.is_none() && p.expect != Some(Expectation::Private)
}

impl<'a> Run<'a> {
    fn of(flows: &[FlowReport], resolver: &'a str) -> Run<'a> {
        let mut failing = BTreeSet::new();
        let mut answered = false;
        for flow in flows {
            for p in flow
                .probes
                .iter()
                .filter(|p| p.kind == ProbeKind::Dns && !p.compare_only)
            {
                match p.reason {
                    None if p.status == ProbeStatus::Pass => answered = true,
                    Some(ReasonCode::DnsNxdomain | ReasonCode::DnsNoRecords) if public_name(flow, p) => {
                        failing.insert(p.host.as_str());
                    }
                    _ => {}
                }
            }
        }
        Run {
            resolver,
            resolver_fails_public_names: answered && failing.len() >= 2,
        }
    }

    fn key(&self, flow: &FlowReport, p: &ProbeReport) -> Option<Key> {
        #[allow(clippy::enum_glob_use, reason = "the match below lists reason codes by the dozen")]
        use ReasonCode::*;
        let reason = p.reason?;
        let issuer = || p.tls.as_ref().and_then(|t| t.issuer.clone());
        let block_page = || p.http.as_ref().and_then(|h| h.block_page.clone());
        let (kind, reason, subject) = match reason {
            DnsTimeout | DnsUnreachable | DnsServfail | DnsRefused => {
                (CauseKind::DnsServer, reason, self.resolver.into())
            }
            DnsNxdomain | DnsNoRecords | DnsPublicIp | DnsWrongIp if flow.private_dns_zone.is_some() => (
                CauseKind::PrivateDnsZone,
                reason,
                flow.private_dns_zone.clone().unwrap_or_default(),
            ),
            DnsNxdomain | DnsNoRecords if self.resolver_fails_public_names && public_name(flow, p) => {
                (CauseKind::DnsServer, reason, self.resolver.into())
            }
            TlsUntrustedIssuer | TlsInspected if issuer().is_some() => {
                (CauseKind::TlsIssuer, reason, issuer().unwrap_or_default())
            }
            ProxyUnreachable | ProxyDenied | ProxyAuthRequired | ProxyUpstreamFailed | ProxyTunnelClosed
            | ProxyError
                if p.proxy.is_some() =>
            {
                (CauseKind::Proxy, reason, p.proxy.clone().unwrap_or_default())
            }
            // One firewall answers both ways: 470 (or a hang-up) for plain HTTP, a hang-up after
            // the ClientHello for TLS. The path names it: direct, or the proxy in front of it.
            HttpFirewallDenied | TlsClosedAfterHello | HttpClosedAfterRequest => (
                CauseKind::FirewallRules,
                HttpFirewallDenied,
                p.proxy.clone().unwrap_or_else(|| "direct".into()),
            ),
            HttpBlockPage if block_page().is_some() => (CauseKind::BlockPage, reason, block_page().unwrap_or_default()),
            TcpTimeout | TcpRefused | TcpUnreachable | UdpNoReply | UdpRefused if p.port.is_some() => {
                (CauseKind::Destination, reason, format!("{} to {}", protocol(p), p.host))
            }
            // Alternatives (two documented forms of one name) failing alike are one thing to
            // fix: either of them.
            _ if flow.hosts_match == HostsMatch::Any && flow.hosts.contains(&p.host) => {
                (CauseKind::Observation, reason, flow.hosts.join(" or "))
            }
            _ => (
                CauseKind::Observation,
                reason,
                match p.port {
                    Some(port) => format!("{}:{port}", p.host),
                    None => p.host.clone(),
                },
            ),
        };
        Some(Key { kind, reason, subject })
    }
}

fn protocol(p: &ProbeReport) -> &'static str {
    if p.kind == ProbeKind::Udp { "UDP" } else { "TCP" }
}

/// The real-path probes of a flow that decide it (side-path probes of `--compare-direct` are
/// reported, never counted).
fn deciding(flow: &FlowReport) -> Vec<&ProbeReport> {
    let real = flow
        .probes
        .iter()
        .position(|p| p.compare_only)
        .unwrap_or(flow.probes.len());
    precedence::deciding(&flow.probes[..real])
}

/// At most this many names in a summary; fixes list them all (an allow-list needs every one).
const EXAMPLES: usize = 3;

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn examples(items: &[String]) -> String {
    if items.len() <= EXAMPLES {
        list(items)
    } else {
        format!("{} and {} more", items[..EXAMPLES].join(", "), items.len() - EXAMPLES)
    }
}

fn strings(items: &[impl ToString]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// A group being built: its key, flows and the observations that decided them.
struct Group<'a> {
    key: Key,
    flows: Vec<&'a FlowReport>,
    probes: Vec<&'a ProbeReport>,
}

/// The service tag of the flows that reach a destination: the most specific one a required
/// flow names (a regional tag over a global one, anything over `Internet`).
fn service_tag(flows: &[&FlowReport]) -> String {
    let generic = |t: &str| matches!(t, "Internet" | "VirtualNetwork");
    let mut tags: Vec<(&FlowReport, &str)> = flows.iter().map(|f| (*f, f.service_tag.as_str())).collect();
    tags.sort_by_key(|(f, t)| (!f.required, generic(t), !t.contains('.')));
    tags.first()
        .map_or_else(|| "Internet".to_string(), |(_, t)| (*t).to_string())
}

impl Group<'_> {
    fn required_flows(&self) -> usize {
        self.flows.iter().filter(|f| f.required).count()
    }

    fn blocked(&self) -> bool {
        self.flows.iter().any(|f| f.status == FlowStatus::Blocked)
    }

    /// Each name the cause is about, with the ports and addresses its observations had.
    fn destinations(&self) -> Vec<CauseDestination> {
        let mut out: Vec<CauseDestination> = Vec::new();
        for p in &self.probes {
            let protocol = if p.kind == ProbeKind::Udp {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            let i = match out.iter().position(|d| d.host == p.host) {
                Some(i) => i,
                None => {
                    out.push(CauseDestination {
                        host: p.host.clone(),
                        protocol,
                        ports: Vec::new(),
                        addresses: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let d = &mut out[i];
            if let Some(port) = p.port {
                push_new(&mut d.ports, port);
            }
            if let Some(a) = p.address {
                push_new(&mut d.addresses, a);
            }
        }
        for d in &mut out {
            d.ports.sort_unstable();
        }
        out
    }

    /// What Azure DNS answers for the cause's names, when `--compare-resolvers` asked it:
    /// `; 168.63.129.16 (Azure DNS) answers 10.1.0.5 for ws.api.azureml.ms` for one name,
    /// `; 168.63.129.16 (Azure DNS) resolves 4 of them` for several.
    fn azure_dns(&self, facts: &Facts) -> String {
        let hosts: BTreeSet<&str> = self.probes.iter().map(|p| p.host.as_str()).collect();
        let answers: Vec<(&str, &str, Vec<String>)> = facts
            .comparison
            .unwrap_or_default()
            .iter()
            .filter(|c| hosts.contains(c.host.as_str()))
            .filter_map(|c| {
                c.answers
                    .iter()
                    .find(|a| a.resolver.ends_with("(Azure DNS)") && a.reason.is_none())
                    .map(|a| {
                        let addresses = a.addresses.iter().map(ToString::to_string).collect();
                        (c.host.as_str(), a.resolver.as_str(), addresses)
                    })
            })
            .collect();
        match answers.as_slice() {
            [] => String::new(),
            [(host, resolver, addresses)] if hosts.len() == 1 || self.key.kind == CauseKind::PrivateDnsZone => {
                format!("; {resolver} answers {} for {host}", list(addresses))
            }
            [(_, resolver, _), ..] => format!("; {resolver} resolves {} of them", answers.len()),
        }
    }

    /// What shows the hang-ups are the firewall's rules and not the services: other names on
    /// the same path complete their handshakes.
    fn evidence(&self, all: &[FlowReport]) -> String {
        let path = self.probes.first().and_then(|p| p.proxy.clone());
        let denied: BTreeSet<&str> = self.probes.iter().map(|p| p.host.as_str()).collect();
        let through: BTreeSet<&str> = all
            .iter()
            .flat_map(|f| &f.probes)
            .filter(|p| p.kind == ProbeKind::Tls && p.status == ProbeStatus::Pass && p.proxy == path && !p.compare_only)
            .map(|p| p.host.as_str())
            .filter(|h| !denied.contains(h))
            .collect();
        let mut evidence = match through.len() {
            0 => String::new(),
            n => format!("; {n} other name(s) on the same path complete their TLS handshakes"),
        };
        // Newer Azure Firewall versions name the policy and rule in the deny text: quote them.
        let named = self
            .probes
            .iter()
            .filter_map(|p| p.http.as_ref().and_then(|h| h.firewall.as_ref()))
            .find(|d| d.policy.is_some() || d.rule.is_some());
        if let Some(d) = named {
            let parts: Vec<String> = [
                ("policy", &d.policy),
                ("rule collection group", &d.rule_collection_group),
                ("rule collection", &d.rule_collection),
                ("rule", &d.rule),
            ]
            .into_iter()
            .filter_map(|(what, v)| v.as_ref().map(|v| format!("{what} {v}")))
            .collect();
            evidence.push_str(&format!("; its deny text names {}", parts.join(", ")));
        }
        evidence
    }

    /// `Https=443 Http=80 …` and each name with its ports, for an application rule.
    fn targets(&self) -> (Vec<String>, Vec<String>) {
        let mut protocols = Vec::new();
        let mut targets = Vec::new();
        for d in self.destinations() {
            let ports: Vec<String> = d
                .ports
                .iter()
                .map(|p| {
                    let scheme = if *p == 80 { "Http" } else { "Https" };
                    push_new(&mut protocols, format!("{scheme}={p}"));
                    format!("{scheme}:{p}")
                })
                .collect();
            targets.push(format!("{} ({})", d.host, ports.join(", ")));
        }
        (protocols, targets)
    }

    fn render(&self, id: u32, facts: &Facts, all: &[FlowReport]) -> RootCause {
        let destinations = self.destinations();
        let hosts: Vec<String> = destinations.iter().map(|d| d.host.clone()).collect();
        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        for d in &destinations {
            for a in &d.addresses {
                push_new(&mut addresses, *a);
            }
            for p in &d.ports {
                push_new(&mut ports, *p);
            }
        }
        ports.sort_unstable();
        let first = self.probes[0];
        let key = &self.key;
        let private = !addresses.is_empty() && addresses.iter().all(|a| facts.ranges.contains(*a));
        let tag = if private {
            "VirtualNetwork".to_string()
        } else {
            service_tag(&self.flows)
        };
        let (protocols, targets) = self.targets();
        let values = Values {
            group: self,
            facts,
            all,
            hosts: &hosts,
            addresses: &addresses,
            ports: &ports,
            tag: &tag,
            targets: &targets,
        };
        let lookup = |name: &str| {
            values
                .get(name)
                .filter(|_| VARIABLES.contains(&name))
                .map_or(Lookup::Unknown, Lookup::Value)
        };
        let fill = |t: &str| template::render(t, lookup).unwrap_or_else(|_| t.to_string());
        let reason_hint = facts.hints.get(&key.reason);
        let text = facts.causes.get(&(key.kind, key.reason));
        let summary = text.map_or_else(|| first.message.clone(), |t| fill(&t.summary));
        let learn = |fix: String| match reason_hint.and_then(|h| h.learn.as_deref()) {
            Some(url) => format!("{fix} ({url})"),
            None => fix,
        };
        let fix = match text {
            Some(CauseHint {
                fix_private: Some(f), ..
            }) if private => learn(fill(f)),
            Some(CauseHint { fix: Some(f), .. }) => learn(fill(f)),
            // Probe hints are already rendered with the probe's own values.
            _ => first.hint.clone().unwrap_or_default(),
        };
        let subject = match key.kind {
            CauseKind::Destination => format!("{} {} to {}", protocol(first), list(&strings(&ports)), first.host),
            _ => key.subject.clone(),
        };
        RootCause {
            id,
            kind: key.kind,
            reason: first.reason.unwrap_or(key.reason),
            subject,
            summary,
            fix,
            commands: self.commands(private, &tag, &protocols, &ports),
            resolver: matches!(key.kind, CauseKind::DnsServer | CauseKind::PrivateDnsZone)
                .then(|| facts.resolver.to_string()),
            service_tag: (key.kind == CauseKind::Destination && !private).then(|| tag.clone()),
            destinations,
            azure: Vec::new(),
            change: None,
            azure_notes: Vec::new(),
            required: self.required_flows() > 0,
            required_flows: self.required_flows(),
            flows: self.flows.iter().map(|f| f.id.clone()).collect(),
            probes: self.probes.len(),
        }
    }

    /// The Azure CLI commands that make the change, with `<placeholders>` for the names amlprobe
    /// cannot know from the data plane (docs/attribution.md lists each command's flags and
    /// source): an NSG rule for a destination, an application rule collection for a firewall,
    /// a zone link or the records for a private DNS zone.
    fn commands(&self, private: bool, tag: &str, protocols: &[String], ports: &[u16]) -> Vec<String> {
        let first = self.probes[0];
        let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
        match (self.key.kind, self.key.reason) {
            (CauseKind::Destination, ReasonCode::TcpTimeout | ReasonCode::UdpNoReply) => {
                let destination = if private {
                    self.destinations()
                        .iter()
                        .flat_map(|d| d.addresses.iter().map(ToString::to_string))
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    tag.to_string()
                };
                vec![format!(
                    "az network nsg rule create -g <resource-group> --nsg-name <nsg> -n allow-{}-{} --priority <priority> --direction Outbound --access Allow --protocol {} --destination-address-prefixes {destination} --destination-port-ranges {}",
                    rule_word(if private { &first.host } else { tag }),
                    ports.join("-"),
                    if first.kind == ProbeKind::Udp { "Udp" } else { "Tcp" },
                    ports.join(" ")
                )]
            }
            (CauseKind::FirewallRules, _) => {
                let hosts: Vec<String> = self.destinations().into_iter().map(|d| d.host).collect();
                vec![format!(
                    "az network firewall policy rule-collection-group collection add-filter-collection -g <resource-group> --policy-name <policy> --rule-collection-group-name <rule-collection-group> -n allow-azureml --collection-priority <priority> --action Allow --rule-name allow-azureml-fqdns --rule-type ApplicationRule --source-addresses <this-subnet> --protocols {} --target-fqdns {}",
                    protocols.join(" "),
                    hosts.join(" ")
                )]
            }
            (CauseKind::PrivateDnsZone, ReasonCode::DnsPublicIp) => {
                let zone = &self.key.subject;
                vec![format!(
                    "az network private-dns link vnet create -g <zone-resource-group> -z {zone} -n <link-name> -v <this-vnet-id> -e false"
                )]
            }
            (
                CauseKind::PrivateDnsZone,
                ReasonCode::DnsNxdomain | ReasonCode::DnsNoRecords | ReasonCode::DnsWrongIp,
            ) => {
                let zone = &self.key.subject;
                let mut commands = Vec::new();
                for command in self.probes.iter().filter_map(|p| {
                        let record = record_name(&p.host, zone)?;
                        let address = p
                            .expected_addresses
                            .as_ref()
                            .and_then(|a| a.first())
                            .map_or_else(|| "<private-endpoint-ip>".to_string(), ToString::to_string);
                    Some(format!(
                        "az network private-dns record-set a add-record -g <zone-resource-group> -z {zone} -n {record} -a {address}"
                    ))
                }) {
                    push_new(&mut commands, command);
                }
                commands
            }
            _ => Vec::new(),
        }
    }
}

/// The values cause texts are filled with (every name in [`VARIABLES`]).
struct Values<'a> {
    group: &'a Group<'a>,
    facts: &'a Facts<'a>,
    all: &'a [FlowReport],
    hosts: &'a [String],
    addresses: &'a [IpAddr],
    ports: &'a [u16],
    tag: &'a str,
    targets: &'a [String],
}

impl Values<'_> {
    fn first(&self) -> &ProbeReport {
        self.group.probes[0]
    }

    /// The value of variable `name`; `None` for a name that is no variable.
    fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "resolver" => self.facts.resolver.to_string(),
            "private_dns_zone" => (self.group.flows[0].private_dns_zone.clone())
                .unwrap_or_else(|| "the matching privatelink DNS zone".into()),
            "issuer" => self
                .first()
                .tls
                .as_ref()
                .and_then(|t| t.issuer.clone())
                .unwrap_or_else(|| "the presenting CA".into()),
            "filter" => self.group.key.subject.clone(),
            "proxy" => self.first().proxy.clone().unwrap_or_else(|| "the proxy".into()),
            "protocol" => protocol(self.first()).to_string(),
            "port" if self.ports.is_empty() => "the port".into(),
            "port" => list(&strings(self.ports)),
            "service_tag" => self.tag.to_string(),
            "host" | "hosts" => list(self.hosts),
            "examples" => examples(self.hosts),
            "names" => self.hosts.len().to_string(),
            "address" | "addresses" if self.addresses.is_empty() => "the address".into(),
            "address" | "addresses" => list(&strings(self.addresses)),
            "flows" => self.group.flows.len().to_string(),
            "targets" => list(self.targets),
            "evidence" => self.group.evidence(self.all),
            "azure_dns" => self.group.azure_dns(self.facts),
            "resource" => self.group.flows[0]
                .resource
                .map_or_else(|| "a resource".into(), |r| r.label().to_string()),
            _ => return None,
        })
    }
}

/// A lower-case word for a rule name: letters, digits and hyphens.
fn rule_word(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The record name of `host` in `zone` (`privatelink.<parent>`): `host` without `.<parent>`.
fn record_name(host: &str, zone: &str) -> Option<String> {
    let parent = zone.strip_prefix("privatelink.")?;
    host.strip_suffix(parent)?
        .strip_suffix('.')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Groups every blocked and inconclusive flow under the causes of the observations that decide
/// it: one per independent problem. Causes come in the order that unblocks the most: first
/// those that alone unblock the most required flows, then those touching more required flows,
/// more flows, blocked before inconclusive; ties keep report order.
pub fn find(flows: &[FlowReport], facts: &Facts) -> Vec<RootCause> {
    let run = Run::of(flows, facts.resolver);
    let mut groups: Vec<Group> = Vec::new();
    let mut index: BTreeMap<Key, usize> = BTreeMap::new();
    for flow in flows
        .iter()
        .filter(|f| matches!(f.status, FlowStatus::Blocked | FlowStatus::Inconclusive))
    {
        for p in deciding(flow) {
            let Some(k) = run.key(flow, p) else { continue };
            let i = *index.entry(k.clone()).or_insert_with(|| {
                groups.push(Group {
                    key: k,
                    flows: Vec::new(),
                    probes: Vec::new(),
                });
                groups.len() - 1
            });
            let g = &mut groups[i];
            if !g.flows.iter().any(|f| f.id == flow.id) {
                g.flows.push(flow);
            }
            g.probes.push(p);
        }
    }
    // How many required flows each group alone stands between and working.
    let mut sole = vec![0usize; groups.len()];
    for flow in flows.iter().filter(|f| f.required) {
        let holding: Vec<usize> = (0..groups.len())
            .filter(|&i| groups[i].flows.iter().any(|f| f.id == flow.id))
            .collect();
        if let [only] = holding.as_slice() {
            sole[*only] += 1;
        }
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| {
        let g = &groups[i];
        (
            std::cmp::Reverse(sole[i]),
            std::cmp::Reverse(g.required_flows()),
            std::cmp::Reverse(g.flows.len()),
            !g.blocked(),
        )
    });
    order
        .into_iter()
        .zip(1u32..)
        .map(|(i, id)| groups[i].render(id, facts, flows))
        .collect()
}

/// Sets each flow's `causes` to every root cause that lists it, and `cause` to the one of the
/// observation that decided its verdict (the first it is listed under when that is unclear).
pub fn link(flows: &mut [FlowReport], causes: &[RootCause]) {
    for flow in flows {
        let mut ids: Vec<u32> = causes
            .iter()
            .filter(|c| c.flows.contains(&flow.id))
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        let decided_by = flow.reason.and_then(|r| {
            causes
                .iter()
                .filter(|c| ids.contains(&c.id))
                .find(|c| {
                    c.reason == r
                        || (c.kind == CauseKind::FirewallRules
                            && matches!(r, ReasonCode::HttpFirewallDenied | ReasonCode::TlsClosedAfterHello))
                })
                .map(|c| c.id)
        });
        flow.cause = decided_by.or_else(|| ids.first().copied());
        if let Some(first) = flow.cause {
            ids.retain(|i| *i != first);
            ids.insert(0, first);
        }
        flow.causes = ids;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Route;
    use crate::report::schema::TlsDetails;

    fn probe(kind: ProbeKind, host: &str, port: Option<u16>, reason: ReasonCode) -> ProbeReport {
        let status = if reason == ReasonCode::UdpNoReply {
            ProbeStatus::Inconclusive
        } else {
            ProbeStatus::Fail
        };
        let address = port.map(|_| "10.0.0.5".parse().unwrap());
        ProbeReport {
            reason: Some(reason),
            message: format!("{host} {reason}"),
            hint: Some(format!("fix {host} {reason}")),
            elapsed_ms: 1,
            ..ProbeReport::new(kind, host, port, address, status, Route::Direct)
        }
    }

    fn flow(id: &str, probes: Vec<ProbeReport>) -> FlowReport {
        FlowReport::sample(id, probes)
    }

    fn dns(host: &str, reason: ReasonCode) -> FlowReport {
        flow(&format!("t.{host}"), vec![probe(ProbeKind::Dns, host, None, reason)])
    }

    /// Calls `f` with the facts of the built-in catalog and a resolver at 10.0.0.4.
    fn with_facts<T>(f: impl FnOnce(&Facts) -> T) -> T {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let ranges = PrivateRanges::with_extra(&[]);
        f(&Facts {
            resolver: "10.0.0.4 (resolv.conf)",
            hints: &catalog.hints,
            causes: &catalog.causes,
            comparison: None,
            ranges: &ranges,
        })
    }

    fn group(flows: &[FlowReport]) -> Vec<RootCause> {
        with_facts(|facts| find(flows, facts))
    }

    fn ids(c: &RootCause) -> Vec<&str> {
        c.flows.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_failing_dns_server_is_one_cause_naming_it() {
        let flows: Vec<FlowReport> = ["a.test", "b.test", "c.test", "d.test"]
            .iter()
            .map(|h| dns(h, ReasonCode::DnsTimeout))
            .collect();
        let causes = group(&flows);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!(
            (c.id, c.kind, c.reason),
            (1, CauseKind::DnsServer, ReasonCode::DnsTimeout)
        );
        assert_eq!(c.subject, "10.0.0.4 (resolv.conf)");
        assert_eq!(c.resolver.as_deref(), Some("10.0.0.4 (resolv.conf)"));
        assert_eq!(c.flows.len(), 4);
        assert!(c.summary.contains("10.0.0.4 (resolv.conf)"), "{}", c.summary);
        assert!(c.summary.contains("a.test, b.test, c.test and 1 more"), "{}", c.summary);
        assert!(c.fix.contains("53") && c.fix.contains("10.0.0.4"), "{}", c.fix);
    }

    #[test]
    fn grouping_never_merges_two_reasons() {
        // Same server, same zone, same issuer, same proxy, same port: only the reason differs.
        let mut flows = vec![
            dns("a.test", ReasonCode::DnsTimeout),
            dns("b.test", ReasonCode::DnsServfail),
            dns("c.test", ReasonCode::DnsRefused),
            dns("d.test", ReasonCode::DnsUnreachable),
        ];
        for (id, reason) in [("e", ReasonCode::DnsPublicIp), ("f", ReasonCode::DnsWrongIp)] {
            let mut f = dns(id, reason);
            f.private_dns_zone = Some("privatelink.blob.core.windows.net".into());
            flows.push(f);
        }
        for (host, reason) in [
            ("g.test", ReasonCode::TlsUntrustedIssuer),
            ("h.test", ReasonCode::TlsInspected),
        ] {
            let mut p = probe(ProbeKind::Tls, host, Some(443), reason);
            p.tls = Some(tls_by("CN=Inspection CA"));
            flows.push(flow(host, vec![p]));
        }
        for (host, reason) in [
            ("i.test", ReasonCode::ProxyDenied),
            ("j.test", ReasonCode::ProxyUpstreamFailed),
            ("k.test", ReasonCode::ProxyAuthRequired),
        ] {
            let mut p = probe(ProbeKind::Proxy, host, Some(443), reason);
            p.proxy = Some("http://proxy:3128".into());
            flows.push(flow(host, vec![p]));
        }
        for (host, reason) in [
            ("l.test", ReasonCode::TcpTimeout),
            ("m.test", ReasonCode::TcpRefused),
            ("n.test", ReasonCode::TcpUnreachable),
        ] {
            flows.push(flow(host, vec![probe(ProbeKind::Tcp, host, Some(445), reason)]));
        }
        let causes = group(&flows);
        assert_eq!(causes.len(), flows.len(), "{causes:#?}");
        for c in &causes {
            let reasons: Vec<_> = c
                .flows
                .iter()
                .map(|id| flows.iter().find(|f| &f.id == id).unwrap().reason)
                .collect();
            assert!(reasons.iter().all(|r| *r == Some(c.reason)), "{c:#?}");
        }
    }

    #[test]
    fn public_answers_group_per_private_dns_zone() {
        let zoned = |id: &str, host: &str, zone: &str| {
            let mut f = flow(id, vec![probe(ProbeKind::Dns, host, None, ReasonCode::DnsPublicIp)]);
            f.private_dns_zone = Some(zone.into());
            f
        };
        let flows = vec![
            zoned("w.api", "ws.api.azureml.ms", "privatelink.api.azureml.ms"),
            zoned("c.api", "ws.api.azureml.ms", "privatelink.api.azureml.ms"),
            zoned("c.kv", "kv.vault.azure.net", "privatelink.vaultcore.azure.net"),
            zoned("c.cert", "ws.cert.api.azureml.ms", "privatelink.api.azureml.ms"),
            // No zone known: a cause of its own.
            dns("ci.instances.azureml.ms", ReasonCode::DnsPublicIp),
        ];
        let causes = group(&flows);
        assert_eq!(causes.len(), 3, "{causes:#?}");
        assert_eq!(causes[0].subject, "privatelink.api.azureml.ms");
        assert_eq!(ids(&causes[0]), ["w.api", "c.api", "c.cert"]);
        assert!(
            causes[0].summary.contains("privatelink.api.azureml.ms")
                && causes[0].summary.contains("10.0.0.4 (resolv.conf)"),
            "the summary names the zone and the resolver that answered: {}",
            causes[0].summary
        );
        assert!(
            causes[0].fix.contains("privatelink.api.azureml.ms"),
            "{}",
            causes[0].fix
        );
        assert_eq!(causes[1].subject, "privatelink.vaultcore.azure.net");
        assert_eq!(causes[2].kind, CauseKind::Observation);
        assert_eq!(causes[2].subject, "ci.instances.azureml.ms");
    }

    #[test]
    fn azure_dns_answer_is_quoted_for_a_zone() {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let comparison = vec![Comparison {
            host: "ws.api.azureml.ms".into(),
            expect: crate::model::suite::Expectation::Private,
            answers: vec![crate::report::schema::ResolverAnswer {
                resolver: "168.63.129.16 (Azure DNS)".into(),
                reason: None,
                addresses: vec!["10.1.0.5".parse().unwrap()],
                cname_chain: vec![],
            }],
            verdict: crate::report::schema::ResolverVerdict::Diverges,
            diagnosis: None,
        }];
        let ranges = PrivateRanges::with_extra(&[]);
        let facts = Facts {
            resolver: "10.0.0.4 (resolv.conf)",
            hints: &catalog.hints,
            causes: &catalog.causes,
            comparison: Some(&comparison),
            ranges: &ranges,
        };
        let mut f = dns("ws.api.azureml.ms", ReasonCode::DnsPublicIp);
        f.private_dns_zone = Some("privatelink.api.azureml.ms".into());
        let causes = find(&[f], &facts);
        assert!(
            causes[0]
                .summary
                .ends_with("; 168.63.129.16 (Azure DNS) answers 10.1.0.5 for ws.api.azureml.ms"),
            "{}",
            causes[0].summary
        );
    }

    fn tls_by(issuer: &str) -> TlsDetails {
        TlsDetails {
            version: None,
            subject: None,
            issuer: Some(issuer.into()),
            sans: vec![],
            not_after: None,
            trusted_public: false,
            trusted_system: Some(false),
        }
    }

    #[test]
    fn one_issuer_intercepting_several_hosts_is_one_cause_naming_the_ca() {
        let inspected = |host: &str, issuer: &str| {
            let mut p = probe(ProbeKind::Tls, host, Some(443), ReasonCode::TlsUntrustedIssuer);
            p.tls = Some(tls_by(issuer));
            flow(host, vec![probe_pass(ProbeKind::Tcp, host), p])
        };
        let flows = vec![
            inspected("mcr.microsoft.com", "CN=Contoso TLS Inspection CA"),
            inspected("eastus.data.mcr.microsoft.com", "CN=Contoso TLS Inspection CA"),
            inspected("pypi.org", "CN=Other CA"),
        ];
        let causes = group(&flows);
        assert_eq!(causes.len(), 2, "{causes:#?}");
        assert_eq!(causes[0].kind, CauseKind::TlsIssuer);
        assert_eq!(ids(&causes[0]), ["mcr.microsoft.com", "eastus.data.mcr.microsoft.com"]);
        assert!(
            causes[0].summary.contains("CN=Contoso TLS Inspection CA"),
            "{}",
            causes[0].summary
        );
        assert!(
            causes[0]
                .fix
                .contains("mcr.microsoft.com, eastus.data.mcr.microsoft.com"),
            "the fix lists every host to bypass: {}",
            causes[0].fix
        );
    }

    fn probe_pass(kind: ProbeKind, host: &str) -> ProbeReport {
        let mut p = probe(kind, host, Some(443), ReasonCode::TcpTimeout);
        (p.status, p.reason, p.hint) = (ProbeStatus::Pass, None, None);
        p
    }

    #[test]
    fn one_proxy_denying_several_hosts_lists_them_for_its_allow_list() {
        let via = |host: &str, proxy: &str, reason| {
            let mut p = probe(ProbeKind::Proxy, host, Some(443), reason);
            p.proxy = Some(proxy.into());
            let mut connect = probe_pass(ProbeKind::Tcp, "proxy");
            connect.proxy = Some(proxy.into());
            flow(host, vec![connect, p])
        };
        let flows = vec![
            via("a.test", "http://proxy:3128", ReasonCode::ProxyDenied),
            via("b.test", "http://proxy:3128", ReasonCode::ProxyDenied),
            via("c.test", "http://proxy:3128", ReasonCode::ProxyUpstreamFailed),
            via("d.test", "http://other:8080", ReasonCode::ProxyDenied),
        ];
        let causes = group(&flows);
        assert_eq!(causes.len(), 3, "{causes:#?}");
        assert_eq!(causes[0].kind, CauseKind::Proxy);
        assert_eq!(causes[0].subject, "http://proxy:3128");
        assert_eq!(ids(&causes[0]), ["a.test", "b.test"]);
        assert!(causes[0].fix.contains("a.test, b.test"), "{}", causes[0].fix);
        assert!(causes[0].fix.contains("http://proxy:3128"), "{}", causes[0].fix);
    }

    /// `probe` at a public address.
    fn public(mut p: ProbeReport) -> ProbeReport {
        p.address = p.port.map(|_| "20.60.1.2".parse().unwrap());
        p
    }

    #[test]
    fn one_destination_is_one_cause_whatever_flows_or_service_tags_reach_it() {
        // The portal flow (tag Internet) and the ARM flows (tag AzureResourceManager) fail on
        // the same drop: one host to allow, named by its most specific tag.
        let arm = |id: &str, tag: &str, required: bool| {
            let mut f = flow(
                id,
                vec![public(probe(
                    ProbeKind::Tcp,
                    "management.azure.com",
                    Some(443),
                    ReasonCode::TcpTimeout,
                ))],
            );
            f.service_tag = tag.into();
            f.required = required;
            f
        };
        let causes = group(&[
            arm("studio.azure_portal", "Internet", false),
            arm("compute.arm", "AzureResourceManager", true),
            arm("studio.arm", "AzureResourceManager", true),
        ]);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!(
            (c.kind, c.subject.as_str()),
            (CauseKind::Destination, "TCP 443 to management.azure.com")
        );
        assert_eq!(ids(c), ["studio.azure_portal", "compute.arm", "studio.arm"]);
        assert_eq!(c.required_flows, 2);
        assert!(c.fix.contains("service tag AzureResourceManager"), "{}", c.fix);
        assert!(!c.fix.contains("privatelink"), "{}", c.fix);
        assert_eq!(
            c.commands,
            [
                "az network nsg rule create -g <resource-group> --nsg-name <nsg> -n allow-azureresourcemanager-443 --priority <priority> --direction Outbound --access Allow --protocol Tcp --destination-address-prefixes AzureResourceManager --destination-port-ranges 443"
            ]
        );
        assert_eq!(c.destinations[0].addresses, ["20.60.1.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_private_endpoint_destination_is_allowed_by_its_address_never_a_public_tag() {
        let mut f = flow(
            "images.workspace_acr_data",
            vec![probe(
                ProbeKind::Tcp,
                "acr.eastus.data.azurecr.io",
                Some(443),
                ReasonCode::TcpTimeout,
            )],
        );
        f.service_tag = "AzureContainerRegistry.eastus".into();
        f.resource = Some(crate::model::context::Resource::ContainerRegistry);
        let causes = group(&[f]);
        let c = &causes[0];
        assert!(
            c.fix.starts_with(
                "Allow TCP 443 to 10.0.0.5 (acr.eastus.data.azurecr.io: the container registry's private endpoint; service tag VirtualNetwork)"
            ),
            "{}",
            c.fix
        );
        assert!(!c.fix.contains("AzureContainerRegistry"), "{}", c.fix);
        assert!(
            c.commands[0].contains("--destination-address-prefixes 10.0.0.5 "),
            "{:?}",
            c.commands
        );
    }

    #[test]
    fn a_destination_dropped_on_two_ports_is_one_cause_naming_both() {
        // Entra ID's flows: one fails first on 80, the other has only 443; both are the same
        // NSG rule to fix.
        let mut both = flow(
            "w.login",
            vec![
                probe(
                    ProbeKind::Tcp,
                    "login.microsoftonline.com",
                    Some(80),
                    ReasonCode::TcpTimeout,
                ),
                probe(
                    ProbeKind::Tcp,
                    "login.microsoftonline.com",
                    Some(443),
                    ReasonCode::TcpTimeout,
                ),
            ],
        );
        let mut tls_only = flow(
            "c.login",
            vec![probe(
                ProbeKind::Tcp,
                "login.microsoftonline.com",
                Some(443),
                ReasonCode::TcpTimeout,
            )],
        );
        for f in [&mut both, &mut tls_only] {
            f.service_tag = "AzureActiveDirectory".into();
        }
        let causes = group(&[both, tls_only]);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!(
            (c.kind, c.subject.as_str()),
            (CauseKind::Destination, "TCP 80, 443 to login.microsoftonline.com")
        );
        assert_eq!(ids(c), ["w.login", "c.login"]);
        assert_eq!(c.destinations[0].ports, [80, 443]);
    }

    #[test]
    fn required_causes_come_first_then_bigger_ones() {
        let mut optional = vec![
            dns("o1.test", ReasonCode::DnsNxdomain),
            dns("o2.test", ReasonCode::DnsNxdomain),
        ];
        for f in &mut optional {
            f.required = false;
            f.id = "t.optional".into();
        }
        optional[1].id = "t.optional2".into();
        optional[1].probes[0].host = "o1.test".into();
        let mut flows = optional;
        flows.push(dns("r.test", ReasonCode::DnsNxdomain));
        let mut silent = flow(
            "u",
            vec![probe(ProbeKind::Udp, "u.test", Some(5831), ReasonCode::UdpNoReply)],
        );
        silent.required = true;
        flows.push(silent);
        flows.push(dns("w.test", ReasonCode::DnsTimeout));
        flows.push(dns("v.test", ReasonCode::DnsTimeout));
        let causes = group(&flows);
        let order: Vec<(u32, ReasonCode, usize, bool)> = causes
            .iter()
            .map(|c| (c.id, c.reason, c.flows.len(), c.required))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, ReasonCode::DnsTimeout, 2, true),
                (2, ReasonCode::DnsNxdomain, 1, true),
                (3, ReasonCode::UdpNoReply, 1, true),
                (4, ReasonCode::DnsNxdomain, 2, false),
            ]
        );
    }

    #[test]
    fn a_flow_is_under_each_independent_problem_and_its_cause_is_the_deciding_one() {
        let mut flows = vec![
            dns("a.test", ReasonCode::DnsTimeout),
            flow(
                "mixed",
                vec![
                    probe(ProbeKind::Tcp, "m.test", Some(443), ReasonCode::TcpRefused),
                    probe(ProbeKind::Tcp, "m.test", Some(445), ReasonCode::TcpTimeout),
                ],
            ),
            flow(
                "u",
                vec![probe(ProbeKind::Udp, "u.test", Some(5831), ReasonCode::UdpNoReply)],
            ),
            flow("ok", vec![probe_pass(ProbeKind::Tcp, "ok.test")]),
        ];
        let causes = group(&flows);
        link(&mut flows, &causes);
        for f in &flows {
            let holding: Vec<u32> = causes
                .iter()
                .filter(|c| c.flows.contains(&f.id))
                .map(|c| c.id)
                .collect();
            let failing = matches!(f.status, FlowStatus::Blocked | FlowStatus::Inconclusive);
            assert_eq!(!holding.is_empty(), failing, "{}", f.id);
            assert_eq!(f.cause.is_some(), failing, "{}", f.id);
            let mut listed = f.causes.clone();
            listed.sort_unstable();
            assert_eq!(listed, holding, "{}", f.id);
        }
        let mixed = flows.iter().find(|f| f.id == "mixed").unwrap();
        assert_eq!(mixed.causes.len(), 2, "a refused 443 and a dropped 445 are two changes");
        let cause = &causes[mixed.cause.unwrap() as usize - 1];
        assert_eq!(cause.reason, ReasonCode::TcpRefused, "the probe that decided the flow");
        assert_eq!(mixed.causes[0], mixed.cause.unwrap());
    }

    #[test]
    fn a_failed_lookup_explains_its_names_connections() {
        // The name resolved to a public address, which is then dropped: one change (the
        // zone), never "allow the storage account's public IP".
        let mut f = flow(
            "c.blob",
            vec![
                probe(
                    ProbeKind::Dns,
                    "sa.blob.core.windows.net",
                    None,
                    ReasonCode::DnsPublicIp,
                ),
                public(probe(
                    ProbeKind::Tcp,
                    "sa.blob.core.windows.net",
                    Some(443),
                    ReasonCode::TcpTimeout,
                )),
            ],
        );
        f.private_dns_zone = Some("privatelink.blob.core.windows.net".into());
        let causes = group(&[f]);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        assert_eq!(causes[0].kind, CauseKind::PrivateDnsZone);
        assert_eq!(
            causes[0].commands,
            [
                "az network private-dns link vnet create -g <zone-resource-group> -z privatelink.blob.core.windows.net -n <link-name> -v <this-vnet-id> -e false"
            ]
        );
    }

    #[test]
    fn causes_that_alone_unblock_required_flows_come_first() {
        // r is blocked by a dropped port and by the firewall: fixing either alone unblocks
        // nothing; the resolver cause alone unblocks s.
        let both = flow(
            "r",
            vec![
                public(probe(ProbeKind::Tcp, "a.test", Some(445), ReasonCode::TcpTimeout)),
                probe(ProbeKind::Tls, "b.test", Some(443), ReasonCode::TlsClosedAfterHello),
            ],
        );
        let causes = group(&[both, dns("s.test", ReasonCode::DnsServfail)]);
        assert_eq!(causes.len(), 3, "{causes:#?}");
        assert_eq!(causes[0].kind, CauseKind::DnsServer, "{causes:#?}");
    }

    #[test]
    fn a_firewall_denying_by_application_rule_is_one_cause_with_one_rule_collection() {
        // Azure Firewall: 470 on plain HTTP, a hang-up after the ClientHello on TLS, for
        // several names; others on the same path complete their handshakes.
        let denied_http = |id: &str, host: &str| {
            let mut p = probe(ProbeKind::Http, host, Some(80), ReasonCode::HttpFirewallDenied);
            p.http = Some(crate::report::schema::HttpDetails {
                status: 470,
                server: None,
                azure: false,
                firewall: Some(crate::report::schema::FirewallDenial {
                    text: "Action: Deny. Policy: fw-policy. Rule: deny-web".into(),
                    policy: Some("fw-policy".into()),
                    rule: Some("deny-web".into()),
                    ..Default::default()
                }),
                block_page: None,
            });
            flow(id, vec![p])
        };
        let closed = |id: &str, host: &str| {
            flow(
                id,
                vec![probe(ProbeKind::Tls, host, Some(443), ReasonCode::TlsClosedAfterHello)],
            )
        };
        let mut fine = probe_pass(ProbeKind::Tls, "ml.azure.com");
        fine.kind = ProbeKind::Tls;
        let flows = vec![
            denied_http("compute.entra_id", "login.microsoftonline.com"),
            closed("studio.entra_id", "login.microsoftonline.com"),
            closed("images.mcr_data", "eastus.data.mcr.microsoft.com"),
            flow("studio.studio_host", vec![fine]),
        ];
        let causes = group(&flows);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!((c.kind, c.subject.as_str()), (CauseKind::FirewallRules, "direct"));
        assert_eq!(ids(c), ["compute.entra_id", "studio.entra_id", "images.mcr_data"]);
        assert!(
            c.summary.ends_with(
                "; 1 other name(s) on the same path complete their TLS handshakes; its deny text names policy fw-policy, rule deny-web"
            ),
            "{}",
            c.summary
        );
        assert!(
            c.fix
                .contains("login.microsoftonline.com (Http:80, Https:443), eastus.data.mcr.microsoft.com (Https:443)"),
            "{}",
            c.fix
        );
        assert!(
            c.commands[0].ends_with(
                "--protocols Http=80 Https=443 --target-fqdns login.microsoftonline.com eastus.data.mcr.microsoft.com"
            ),
            "{:?}",
            c.commands
        );
    }

    #[test]
    fn a_resolver_failing_public_names_is_one_cause_and_never_privatelink_advice() {
        let mut flows: Vec<FlowReport> = ["graph.windows.net", "github.com", "packages.microsoft.com"]
            .iter()
            .map(|h| {
                let mut f = dns(h, ReasonCode::DnsNxdomain);
                f.probes[0].expect = Some(Expectation::Any);
                f
            })
            .collect();
        let mut resolved = probe_pass(ProbeKind::Dns, "login.microsoftonline.com");
        resolved.port = None;
        flows.push(flow("ok", vec![resolved]));
        let causes = group(&flows);
        assert_eq!(causes.len(), 1, "{causes:#?}");
        let c = &causes[0];
        assert_eq!((c.kind, c.reason), (CauseKind::DnsServer, ReasonCode::DnsNxdomain));
        assert!(
            c.summary.contains("says 3 public name(s) do not exist"),
            "{}",
            c.summary
        );
        for text in [&c.summary, &c.fix] {
            assert!(!text.to_lowercase().contains("privatelink"), "{text}");
        }
        // One public name alone is its own observation, still without privatelink advice.
        let lone = group(&flows[..1].iter().cloned().chain([flows[3].clone()]).collect::<Vec<_>>());
        assert_eq!(lone[0].kind, CauseKind::Observation);
    }

    #[test]
    fn every_variable_has_a_value() {
        let flows = vec![dns("a.test", ReasonCode::DnsTimeout)];
        let group = Group {
            key: Key {
                kind: CauseKind::DnsServer,
                reason: ReasonCode::DnsTimeout,
                subject: "x".into(),
            },
            flows: flows.iter().collect(),
            probes: flows[0].probes.iter().collect(),
        };
        with_facts(|facts| {
            let values = Values {
                group: &group,
                facts,
                all: &flows,
                hosts: &[],
                addresses: &[],
                ports: &[],
                tag: "Storage",
                targets: &[],
            };
            for name in VARIABLES {
                assert!(values.get(name).is_some(), "{name}");
            }
            assert!(values.get("hots").is_none());
        });
    }

    #[test]
    fn record_names_are_relative_to_the_zone() {
        assert_eq!(
            record_name("ws.workspace.eastus.api.azureml.ms", "privatelink.api.azureml.ms").as_deref(),
            Some("ws.workspace.eastus")
        );
        assert_eq!(
            record_name("sa.blob.core.windows.net", "privatelink.vaultcore.azure.net"),
            None
        );
        assert_eq!(record_name("api.azureml.ms", "privatelink.api.azureml.ms"), None);
    }

    #[test]
    fn every_cause_text_renders_with_known_values_only() {
        #[allow(clippy::enum_glob_use, reason = "a table of reason codes")]
        use ReasonCode::*;
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        for ((kind, reason), text) in &catalog.causes {
            for t in std::iter::once(&text.summary).chain(&text.fix).chain(&text.fix_private) {
                let known = |name: &str| {
                    if VARIABLES.contains(&name) {
                        Lookup::Value(String::new())
                    } else {
                        Lookup::Unknown
                    }
                };
                assert!(
                    template::render(t, known).is_ok(),
                    "[cause.{}.{reason}]: {t}",
                    kind.as_str()
                );
            }
        }
        // Every grouping rule has its text: only observations of their own fall back to the probe's.
        let grouped: &[(CauseKind, &[ReasonCode])] = &[
            (
                CauseKind::DnsServer,
                &[
                    DnsTimeout,
                    DnsUnreachable,
                    DnsServfail,
                    DnsRefused,
                    DnsNxdomain,
                    DnsNoRecords,
                ],
            ),
            (
                CauseKind::PrivateDnsZone,
                &[DnsPublicIp, DnsWrongIp, DnsNxdomain, DnsNoRecords],
            ),
            (CauseKind::TlsIssuer, &[TlsUntrustedIssuer, TlsInspected]),
            (
                CauseKind::Proxy,
                &[
                    ProxyUnreachable,
                    ProxyDenied,
                    ProxyAuthRequired,
                    ProxyUpstreamFailed,
                    ProxyTunnelClosed,
                    ProxyError,
                ],
            ),
            (CauseKind::FirewallRules, &[HttpFirewallDenied]),
            (CauseKind::BlockPage, &[HttpBlockPage]),
            (
                CauseKind::Destination,
                &[TcpTimeout, TcpRefused, TcpUnreachable, UdpNoReply, UdpRefused],
            ),
        ];
        for (kind, reasons) in grouped {
            for reason in *reasons {
                assert!(
                    catalog.causes.contains_key(&(*kind, *reason)),
                    "probes/hints.toml lacks [cause.{}.{reason}]",
                    kind.as_str()
                );
            }
        }
    }
}
