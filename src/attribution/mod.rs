//! Attribution (issue 25): for each flow the probes found blocked, the Azure configuration that
//! blocks it — the NSG rule, the route, the Azure Firewall rule, the private DNS zone or link,
//! the managed-network outbound rule — and a change that would fix it.
//!
//! A self-contained stage: the runner calls [`attribute`] after the verdicts with the questions
//! the root causes raise and the ARM access discovery acquired, and joins the [`Attribution`]s
//! to its causes and the warnings to `context.warnings`. Reads are in `gather.rs`/`read.rs`; the
//! evaluators (`nsg`, `routes`, `firewall`, `dns`, `managed`) are pure and do no I/O;
//! `judge` joins the two. Sources for every fact: docs/attribution.md.

mod change;
mod dns;
mod firewall;
mod gather;
mod managed;
mod matching;
mod nsg;
mod read;
mod routes;

#[cfg(test)]
mod fake_arm;

// The findings are the report's vocabulary (report/azure.rs); the evaluators name them so.
use crate::report::azure as finding;
pub use finding::{Attribution, AzureFinding, Basis, Change, Effect};
pub use gather::Target;
pub use read::{Limits, Unavailable};

use crate::discovery::ArmAccess;
use crate::model::outcome::CauseKind;
use crate::model::suite::Protocol;
use crate::report::schema::{FlowReport, ProbeKind, RootCause};
use gather::Evidence;
use routes::Selection;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What the data plane showed, for attribution to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// A destination that was dropped or refused.
    Destination {
        /// The name probed.
        host: String,
        /// The addresses it resolved to.
        addresses: Vec<IpAddr>,
        /// The ports that failed.
        ports: Vec<u16>,
        /// TCP or UDP.
        protocol: Protocol,
        /// The service tag Microsoft documents for this destination, when the suite knows it:
        /// the allow rule names it (else the addresses), and a managed network's service tag
        /// rule for it is recognised.
        service_tag: Option<String>,
    },
    /// An application-rule denial seen on the data plane (HTTP 470, a reset after ClientHello).
    FirewallDenied {
        /// The names denied.
        fqdns: Vec<String>,
        /// The ports.
        ports: Vec<u16>,
    },
    /// A privatelink name that resolved wrong or not at all.
    Zone {
        /// The privatelink zone, e.g. `privatelink.api.azureml.ms`.
        zone: String,
        /// The name in that zone.
        name: String,
        /// The private endpoint's address, when known.
        expected_ip: Option<IpAddr>,
        /// What the resolver answered.
        observed: Vec<IpAddr>,
        /// The private endpoint's ARM id, when known: its DNS zone groups name the zone.
        private_endpoint: Option<String>,
    },
}

/// Attribution's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// One answer per question, in the questions' order.
    pub answers: Vec<Attribution>,
    /// Lines for `context.warnings`: what could not be read, naming the permission it needs.
    pub warnings: Vec<String>,
}

/// Reads what the questions need through `access` (within `limits`) and answers them.
pub async fn attribute(access: &ArmAccess, target: &Target<'_>, questions: &[Question], limits: &Limits) -> Outcome {
    if questions.is_empty() {
        return Outcome::default();
    }
    let arm = read::Arm::new(&access.client, &access.arm, &access.token, limits);
    let evidence = Box::pin(gather::gather(&arm, target, questions)).await;
    Outcome {
        answers: judge(questions, &evidence),
        warnings: warnings(&evidence),
    }
}

/// The outcome when there is no ARM token: empty answers and one warning.
pub fn without_access(questions: &[Question], why: &str) -> Outcome {
    Outcome {
        answers: vec![Attribution::default(); questions.len()],
        warnings: vec![Unavailable::NoToken(crate::sanitize::echo(why)).warning()],
    }
}

/// One line per reason; refusals of one permission collapse into one line.
fn warnings(ev: &Evidence) -> Vec<String> {
    let mut lines = Vec::new();
    let mut forbidden: BTreeMap<&str, (String, usize)> = BTreeMap::new();
    for u in &ev.unavailable {
        match u {
            Unavailable::Forbidden { permission, .. } => {
                forbidden.entry(permission).or_insert_with(|| (u.warning(), 0)).1 += 1;
            }
            other => lines.push(other.warning()),
        }
    }
    for (line, count) in forbidden.into_values() {
        lines.push(if count > 1 {
            format!("{line}; {} more reads were refused for the same permission", count - 1)
        } else {
            line
        });
    }
    let nsgs = ev.nsgs.as_ref().is_some_and(|(_, b)| *b == Basis::SubnetRules);
    let routes = ev.routes.as_ref().is_some_and(|r| r.basis == Basis::SubnetRules);
    let rebuilt = match (nsgs, routes) {
        (true, true) => Some("NSG and route verdicts are"),
        (true, false) => Some("NSG verdicts are"),
        (false, true) => Some("route verdicts are"),
        (false, false) => None,
    };
    if let Some(what) = rebuilt {
        lines.push(format!("Azure attribution: {what} {}", Basis::SubnetRules.label()));
    }
    lines.dedup();
    lines
}

/// Answers every question from what was read. Pure: no I/O.
fn judge(questions: &[Question], ev: &Evidence) -> Vec<Attribution> {
    questions
        .iter()
        .enumerate()
        .map(|(i, q)| match q {
            Question::Destination {
                host,
                addresses,
                ports,
                protocol,
                service_tag,
            } => destination(host, addresses, ports, *protocol, service_tag.as_deref(), ev),
            Question::FirewallDenied { fqdns, ports } => firewall_denied(fqdns, ports, ev),
            Question::Zone {
                zone,
                name,
                expected_ip,
                observed,
                ..
            } => zone_answer(i, zone, name, *expected_ip, observed, ev),
        })
        .collect()
}

/// Collects findings, notes and commands without repeats.
#[derive(Default)]
struct Answer {
    attribution: Attribution,
    commands: Vec<String>,
    bicep: Vec<String>,
}

impl Answer {
    fn finding(&mut self, f: AzureFinding) {
        if !self.attribution.azure.contains(&f) {
            self.attribution.azure.push(f);
        }
    }

    fn note(&mut self, n: String) {
        if !self.attribution.notes.contains(&n) {
            self.attribution.notes.push(n);
        }
    }

    fn change(&mut self, c: Option<Change>) {
        if let Some(c) = c {
            for line in c.az.lines() {
                if !self.commands.iter().any(|l| l == line) {
                    self.commands.push(line.to_string());
                }
            }
            self.bicep.extend(c.bicep);
        }
    }

    fn done(mut self) -> Attribution {
        if !self.commands.is_empty() {
            self.attribution.change = Some(Change {
                az: self.commands.join("\n"),
                bicep: (!self.bicep.is_empty()).then(|| self.bicep.join("\n\n")),
            });
        }
        self.attribution
    }
}

/// HTTP and HTTPS by their standard ports: application rules apply to those only.
fn app_kind(port: u16) -> Option<firewall::AppKind> {
    match port {
        80 => Some(firewall::AppKind::Http),
        443 => Some(firewall::AppKind::Https),
        _ => None,
    }
}

fn firewall_at(ev: &Evidence, hop: IpAddr) -> Option<&gather::Firewall> {
    ev.firewalls.iter().find(|f| f.private_ips.contains(&hop))
}

fn destination(
    host: &str,
    addresses: &[IpAddr],
    ports: &[u16],
    protocol: Protocol,
    tag: Option<&str>,
    ev: &Evidence,
) -> Attribution {
    let mut answer = Answer::default();
    let mut denied: Option<(nsg::Outcome, Vec<u16>)> = None;
    for &address in addresses {
        for &port in ports {
            if let Some((groups, basis)) = &ev.nsgs {
                let flow = nsg::Flow {
                    source: ev.source_ip,
                    destination: address,
                    port,
                    protocol,
                };
                let out = nsg::evaluate(groups, &flow);
                for f in nsg::findings(&out, &flow, *basis) {
                    answer.finding(f);
                }
                out.notes.iter().for_each(|n| answer.note(n.clone()));
                let denies = out.stages.iter().any(
                    |s| matches!(&s.decision, nsg::Decision::Matched(r) if !r.access.eq_ignore_ascii_case("allow")),
                );
                if denies {
                    let (_, ports) = denied.get_or_insert_with(|| (out, Vec::new()));
                    if !ports.contains(&port) {
                        ports.push(port);
                    }
                }
            }
            if let Some(r) = &ev.routes {
                route_and_firewall(&mut answer, r, host, address, port, protocol, ev);
            }
        }
    }
    if let Some(net) = &ev.managed {
        let targets: Vec<Option<IpAddr>> = if addresses.is_empty() {
            vec![None]
        } else {
            addresses.iter().copied().map(Some).collect()
        };
        for destination in targets {
            for &port in ports {
                let flow = managed::Flow {
                    fqdn: Some(host.to_string()),
                    destination,
                    port,
                    protocol,
                    service_tag: tag.map(str::to_string),
                    denied_by_firewall: false,
                };
                let (f, c, notes) = managed::evaluate(net, &flow);
                answer.finding(f);
                answer.change(c);
                for n in notes {
                    answer.note(n);
                }
            }
        }
    }
    if let Some((out, ports)) = denied {
        let allow_to: Vec<String> = match tag {
            Some(t) => vec![t.to_string()],
            None => addresses
                .iter()
                .map(|a| {
                    if a.is_ipv4() {
                        format!("{a}/32")
                    } else {
                        format!("{a}/128")
                    }
                })
                .collect(),
        };
        for (az, bicep) in nsg::allow_commands(&out, protocol, &allow_to, &ports, tag.unwrap_or(host)) {
            answer.change(Some(Change { az, bicep: Some(bicep) }));
        }
    }
    if ev.nsgs.is_none() && ev.routes.is_none() && ev.managed.is_none() {
        answer.note("neither this NIC's NSGs nor its routes could be read (see the warnings)".into());
    }
    ev.notes.iter().for_each(|n| answer.note(n.clone()));
    answer.done()
}

fn route_and_firewall(
    answer: &mut Answer,
    r: &gather::Routes,
    host: &str,
    address: IpAddr,
    port: u16,
    protocol: Protocol,
    ev: &Evidence,
) {
    let selection = routes::select(&r.list, address);
    match &selection {
        Selection::Undetermined(why) => answer.note(format!("the route to {address} can't be told: {why}")),
        Selection::NoRoute => answer.note(format!("no active route covers {address} in what was read")),
        Selection::Chosen { .. } => {}
    }
    if let Some(f) = routes::finding(&selection, &address.to_string(), &r.holder, r.basis) {
        answer.finding(f);
    }
    let Selection::Chosen { route, .. } = &selection else {
        return;
    };
    if routes::effect(route) != Effect::Redirects {
        return;
    }
    for hop in route.next_hop_ips() {
        let Some(fw) = firewall_at(ev, hop) else {
            answer.note(format!(
                "the next hop {hop} is not an Azure Firewall this identity can read (a network virtual appliance, or a firewall in a subscription it can't see): its rules were not evaluated"
            ));
            continue;
        };
        match &fw.policies {
            Ok(chain) => {
                let flow = firewall::Flow {
                    source: ev.source_ip,
                    fqdn: Some(host.to_string()),
                    destination: Some(address),
                    port,
                    protocol,
                    app: app_kind(port),
                };
                let out = firewall::evaluate(chain, &flow);
                answer.finding(firewall::finding(&out, chain, &flow));
                out.notes.iter().for_each(|n| answer.note(n.clone()));
                answer.change(firewall::allow_change(&out, chain, &flow, &[host.to_string()], &[]));
            }
            Err(why) => answer.note(format!(
                "Azure Firewall {} at {hop}: {why}",
                crate::sanitize::echo(&fw.id)
            )),
        }
    }
}

fn firewall_denied(fqdns: &[String], ports: &[u16], ev: &Evidence) -> Attribution {
    let mut answer = Answer::default();
    firewall_on_route(&mut answer, fqdns, ports, ev);
    // A managed network's outbound rules decide what its computes reach; its Azure Firewall
    // (which FQDN rules deploy) is Microsoft's and can't be read.
    if let Some(net) = &ev.managed {
        for fqdn in fqdns {
            for &port in ports {
                let flow = managed::Flow {
                    fqdn: Some(fqdn.clone()),
                    destination: None,
                    port,
                    protocol: Protocol::Tcp,
                    service_tag: None,
                    denied_by_firewall: true,
                };
                let (f, c, notes) = managed::evaluate(net, &flow);
                answer.finding(f);
                answer.change(c);
                for n in notes {
                    answer.note(n);
                }
            }
        }
    }
    answer.done()
}

/// The Azure Firewall the default route leads to, and what its policy says of the names.
fn firewall_on_route(answer: &mut Answer, fqdns: &[String], ports: &[u16], ev: &Evidence) {
    let Some(r) = &ev.routes else {
        if ev.managed.is_none() {
            answer.note(
                "this NIC's routes could not be read, so the firewall that denied can't be found (see the warnings)"
                    .into(),
            );
        }
        return;
    };
    // The denial came from whatever the default route leads to.
    let selection = routes::select(&r.list, IpAddr::from([0, 0, 0, 0]));
    let hops = match &selection {
        Selection::Chosen { route, .. } if routes::effect(route) == Effect::Redirects => route.next_hop_ips(),
        _ => {
            answer.note("the default route does not lead to a virtual appliance, so no Azure Firewall's rules apply to this denial".into());
            return;
        }
    };
    if let Some(f) = routes::finding(&selection, "the internet", &r.holder, r.basis) {
        answer.finding(f);
    }
    for hop in hops {
        let Some(fw) = firewall_at(ev, hop) else {
            answer.note(format!(
                "the next hop {hop} is not an Azure Firewall this identity can read: its rules were not evaluated"
            ));
            continue;
        };
        let chain = match &fw.policies {
            Ok(chain) => chain,
            Err(why) => {
                answer.note(format!(
                    "Azure Firewall {} at {hop}: {why}",
                    crate::sanitize::echo(&fw.id)
                ));
                continue;
            }
        };
        // One allow collection for the whole cause: every denied name, every protocol a denial
        // was seen on, placed before the earliest denial (several commands would each create a
        // collection of the same name and priority).
        let mut denied: Vec<&String> = Vec::new();
        let mut protocols: Vec<(firewall::AppKind, u16)> = Vec::new();
        let mut earliest: Option<(firewall::Outcome, firewall::Flow)> = None;
        for &port in ports {
            // A 470 answer is HTTP; a reset after the ClientHello is TLS.
            let app = if port == 80 {
                firewall::AppKind::Http
            } else {
                firewall::AppKind::Https
            };
            for fqdn in fqdns {
                let flow = firewall::Flow {
                    source: ev.source_ip,
                    fqdn: Some(fqdn.clone()),
                    destination: None,
                    port,
                    protocol: Protocol::Tcp,
                    app: Some(app),
                };
                let out = firewall::evaluate(chain, &flow);
                answer.finding(firewall::finding(&out, chain, &flow));
                out.notes.iter().for_each(|n| answer.note(n.clone()));
                if matches!(&out.decision, firewall::Decision::DefaultDeny)
                    || matches!(&out.decision, firewall::Decision::Matched(h) if !h.action.eq_ignore_ascii_case("allow"))
                {
                    if !denied.contains(&fqdn) {
                        denied.push(fqdn);
                    }
                    if !protocols.contains(&(app, port)) {
                        protocols.push((app, port));
                    }
                    let rank = firewall::denial_rank(&out, chain);
                    if earliest
                        .as_ref()
                        .is_none_or(|(o, _)| rank < firewall::denial_rank(o, chain))
                    {
                        earliest = Some((out, flow));
                    }
                }
            }
        }
        if let Some((out, flow)) = earliest {
            // The names in the cause's order.
            let names: Vec<String> = fqdns.iter().filter(|f| denied.contains(f)).cloned().collect();
            answer.change(firewall::allow_change(&out, chain, &flow, &names, &protocols));
        }
    }
}

fn zone_answer(
    index: usize,
    zone: &str,
    name: &str,
    expected: Option<IpAddr>,
    observed: &[IpAddr],
    ev: &Evidence,
) -> Attribution {
    let mut answer = Answer::default();
    let zones = ev.zones.get(&index).map_or(&[][..], Vec::as_slice);
    let resolver = dns::Resolver {
        vnet: ev.vnet.clone(),
        dns_servers: ev.dns_servers.clone(),
    };
    let question = dns::Lookup {
        zone: zone.to_string(),
        name: name.to_string(),
        expected,
    };
    let (findings, change, notes) = dns::evaluate(&question, zones, &resolver);
    for f in findings {
        answer.finding(f);
    }
    answer.change(change);
    for n in notes {
        answer.note(n);
    }
    if let Some(ip) = expected
        && !observed.is_empty()
        && !observed.contains(&ip)
    {
        let seen: Vec<String> = observed.iter().map(IpAddr::to_string).collect();
        answer.note(format!(
            "the resolver answered {} where the private endpoint is {ip}",
            seen.join(", ")
        ));
    }
    answer.done()
}

#[cfg(test)]
mod tests;

/// The questions the root causes raise, each with the index of its cause: a dropped or refused
/// destination, a firewall's application-rule denial, and each name of a private DNS zone
/// cause, with the address its DNS probe in `flows` expected and got. Causes of other kinds are about things ARM does not configure (a resolver, a proxy, a
/// CA) and raise none.
pub fn questions(causes: &[RootCause], flows: &[FlowReport]) -> Vec<(usize, Question)> {
    let mut out = Vec::new();
    for (i, c) in causes.iter().enumerate() {
        match c.kind {
            CauseKind::Destination => {
                for d in &c.destinations {
                    out.push((
                        i,
                        Question::Destination {
                            host: d.host.clone(),
                            addresses: d.addresses.clone(),
                            ports: d.ports.clone(),
                            protocol: d.protocol,
                            // A private endpoint is allowed by its address, a public
                            // destination by the tag Microsoft documents for it.
                            service_tag: c.service_tag.clone(),
                        },
                    ));
                }
            }
            CauseKind::FirewallRules => {
                let mut ports: Vec<u16> = c.destinations.iter().flat_map(|d| d.ports.iter().copied()).collect();
                ports.sort_unstable();
                ports.dedup();
                out.push((
                    i,
                    Question::FirewallDenied {
                        fqdns: c.destinations.iter().map(|d| d.host.clone()).collect(),
                        ports,
                    },
                ));
            }
            CauseKind::PrivateDnsZone => {
                for d in &c.destinations {
                    // The cause lists names only; the DNS probe holds what was asked and answered.
                    let lookup = flows
                        .iter()
                        .filter(|f| c.flows.contains(&f.id))
                        .flat_map(|f| &f.probes)
                        .find(|p| p.kind == ProbeKind::Dns && !p.compare_only && p.host == d.host);
                    out.push((
                        i,
                        Question::Zone {
                            zone: c.subject.clone(),
                            name: d.host.clone(),
                            expected_ip: lookup
                                .and_then(|p| p.expected_addresses.as_ref())
                                .and_then(|a| a.first().copied()),
                            observed: lookup.and_then(|p| p.addresses.clone()).unwrap_or_default(),
                            private_endpoint: None,
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// Puts each answer on the cause that asked it: findings, notes and the change's commands,
/// without repeats when a cause asked several questions.
pub fn join(causes: &mut [RootCause], asked: &[(usize, Question)], answers: Vec<Attribution>) {
    for ((i, _), answer) in asked.iter().zip(answers) {
        let c = &mut causes[*i];
        for f in answer.azure {
            if !c.azure.contains(&f) {
                c.azure.push(f);
            }
        }
        for n in answer.notes {
            if !c.azure_notes.contains(&n) {
                c.azure_notes.push(n);
            }
        }
        if let Some(change) = answer.change {
            c.change = Some(match c.change.take() {
                None => change,
                Some(mut had) => {
                    for line in change.az.lines() {
                        if !had.az.lines().any(|l| l == line) {
                            had.az.push('\n');
                            had.az.push_str(line);
                        }
                    }
                    had.bicep = match (had.bicep, change.bicep) {
                        (Some(a), Some(b)) if a != b => Some(format!("{a}\n\n{b}")),
                        (a, b) => a.or(b),
                    };
                    had
                }
            });
        }
    }
}
