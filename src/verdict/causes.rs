//! Root causes: the few changes that fix every failing flow. Blocked and inconclusive flows are
//! grouped by what their deciding observations share (the DNS server, the private DNS zone, the
//! TLS issuer, the proxy, the port and service tag), read from structured probe fields only,
//! never from message text. Pure functions, no I/O.

use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::model::suite::CauseHint;
use crate::model::suite::ReasonHint;
use crate::model::template;
use crate::report::schema::Comparison;
use crate::report::schema::{CauseKind, RootCause};
use crate::report::{FlowReport, ProbeKind, ProbeReport};
use std::collections::BTreeMap;

/// What grouping needs besides the flows.
pub struct Facts<'a> {
    /// The resolver that gave the answers, e.g. `10.0.0.4 (resolv.conf)`.
    pub resolver: &'a str,
    /// Hints per reason code (`[reason.<code>]`).
    pub hints: &'a BTreeMap<ReasonCode, ReasonHint>,
    /// Root-cause texts per reason code (`[cause.<code>]`).
    pub causes: &'a BTreeMap<ReasonCode, CauseHint>,
    /// `--compare-resolvers` results, to quote Azure DNS's answer for a zone.
    pub comparison: Option<&'a [Comparison]>,
}

/// Observations with the same key have the same cause; the reason is always part of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: CauseKind,
    reason: ReasonCode,
    subject: String,
}

fn protocol(p: &ProbeReport) -> &'static str {
    if p.kind == ProbeKind::Udp { "UDP" } else { "TCP" }
}

fn key(flow: &FlowReport, p: &ProbeReport, resolver: &str) -> Option<Key> {
    #[allow(clippy::enum_glob_use, reason = "the match below lists reason codes by the dozen")]
    use ReasonCode::*;
    let reason = p.reason?;
    let (kind, subject) = match reason {
        DnsTimeout | DnsUnreachable | DnsServfail | DnsRefused => (CauseKind::DnsServer, resolver.to_string()),
        DnsPublicIp | DnsWrongIp if flow.private_dns_zone.is_some() => (
            CauseKind::PrivateDnsZone,
            flow.private_dns_zone.clone().unwrap_or_default(),
        ),
        TlsUntrustedIssuer | TlsInspected if p.tls.as_ref().is_some_and(|t| t.issuer.is_some()) => (
            CauseKind::TlsIssuer,
            p.tls.as_ref().and_then(|t| t.issuer.clone()).unwrap_or_default(),
        ),
        ProxyUnreachable | ProxyDenied | ProxyAuthRequired | ProxyUpstreamFailed | ProxyTunnelClosed | ProxyError
            if p.proxy.is_some() =>
        {
            (CauseKind::Proxy, p.proxy.clone().unwrap_or_default())
        }
        // Ports are not part of the key: a destination dropped on 80 and 443 is one rule to
        // fix, whichever port each flow happened to fail on first. The subject names them all.
        TcpTimeout | TcpRefused | TcpUnreachable | UdpNoReply | UdpRefused if p.port.is_some() => (
            CauseKind::Destination,
            format!("{} to {}", protocol(p), flow.service_tag),
        ),
        _ => (
            CauseKind::Observation,
            match p.port {
                Some(port) => format!("{}:{port}", p.host),
                None => p.host.clone(),
            },
        ),
    };
    Some(Key { kind, reason, subject })
}

/// The probe that decided a blocked or inconclusive flow: its first real-path probe with the
/// flow's status and reason (side-path probes of `--compare-direct` come after them).
fn culprit(flow: &FlowReport) -> Option<&ProbeReport> {
    let status = match flow.status {
        FlowStatus::Blocked => ProbeStatus::Fail,
        FlowStatus::Inconclusive => ProbeStatus::Inconclusive,
        FlowStatus::Works | FlowStatus::Skipped | FlowStatus::NotTestable => return None,
    };
    flow.probes
        .iter()
        .find(|p| p.status == status && p.reason == flow.reason)
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

fn push_new(v: &mut Vec<String>, item: String) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// What a cause's texts may name, read from its group.
struct CauseValues<'a> {
    resolver: &'a str,
    private_dns_zone: Option<&'a str>,
    issuer: Option<&'a str>,
    proxy: Option<&'a str>,
    protocol: &'static str,
    ports: &'a [String],
    service_tag: &'a str,
    hosts: &'a [String],
    addresses: &'a [String],
    flows: usize,
}

/// A variable of [`CAUSE_VARIABLES`] (any cause's values: the alias keeps their lifetime open).
type CauseVariable = (&'static str, fn(&CauseValues) -> String);

/// The variables a `[cause.*]` text, and a reason's hint filled in for a cause, may name, each
/// with how it reads the cause's values.
const CAUSE_VARIABLES: &[CauseVariable] = &[
    ("resolver", |v| v.resolver.to_string()),
    ("private_dns_zone", |v| {
        v.private_dns_zone
            .unwrap_or("the matching privatelink DNS zone")
            .to_string()
    }),
    ("issuer", |v| v.issuer.unwrap_or("the presenting CA").to_string()),
    ("proxy", |v| v.proxy.unwrap_or("the proxy").to_string()),
    ("protocol", |v| v.protocol.to_string()),
    ("port", |v| or_else(v.ports, "the port")),
    ("service_tag", |v| v.service_tag.to_string()),
    ("host", |v| list(v.hosts)),
    ("hosts", |v| list(v.hosts)),
    ("examples", |v| examples(v.hosts)),
    ("names", |v| v.hosts.len().to_string()),
    ("address", |v| or_else(v.addresses, "the address")),
    ("addresses", |v| or_else(v.addresses, "the address")),
    ("flows", |v| v.flows.to_string()),
];

/// `items` listed, or `none` when there are none.
fn or_else(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        list(items)
    }
}

/// A group being built: its key, flows and the values its observations had.
struct Group<'a> {
    key: Key,
    flows: Vec<&'a FlowReport>,
    probes: Vec<&'a ProbeReport>,
}

impl Group<'_> {
    fn required(&self) -> bool {
        self.flows.iter().any(|f| f.required)
    }

    fn blocked(&self) -> bool {
        self.flows.iter().any(|f| f.status == FlowStatus::Blocked)
    }

    /// Azure DNS's answer for one of the zone's names, when `--compare-resolvers` asked it.
    fn azure_dns_answer(&self, facts: &Facts) -> Option<String> {
        let hosts: Vec<&str> = self.probes.iter().map(|p| p.host.as_str()).collect();
        facts
            .comparison?
            .iter()
            .filter(|c| hosts.contains(&c.host.as_str()))
            .find_map(|c| {
                c.answers
                    .iter()
                    .find(|a| a.resolver.ends_with("(Azure DNS)") && a.reason.is_none())
                    .map(|a| {
                        let addresses: Vec<String> = a.addresses.iter().map(ToString::to_string).collect();
                        format!("; {} answers {} for {}", a.resolver, list(&addresses), c.host)
                    })
            })
    }

    fn render(&self, id: u32, facts: &Facts) -> RootCause {
        let (mut hosts, mut addresses) = (Vec::new(), Vec::new());
        for p in &self.probes {
            push_new(&mut hosts, p.host.clone());
            if let Some(a) = p.address {
                push_new(&mut addresses, a.to_string());
            }
        }
        let mut port_numbers: Vec<u16> = self.probes.iter().filter_map(|p| p.port).collect();
        port_numbers.sort_unstable();
        port_numbers.dedup();
        let ports: Vec<String> = port_numbers.iter().map(ToString::to_string).collect();
        let first = self.probes[0];
        let key = &self.key;
        let values = CauseValues {
            resolver: facts.resolver,
            private_dns_zone: self.flows[0].private_dns_zone.as_deref(),
            issuer: first.tls.as_ref().and_then(|t| t.issuer.as_deref()),
            proxy: first.proxy.as_deref(),
            protocol: protocol(first),
            ports: &ports,
            service_tag: &self.flows[0].service_tag,
            hosts: &hosts,
            addresses: &addresses,
            flows: self.flows.len(),
        };
        let lookup = template::lookup_in(CAUSE_VARIABLES, &values);
        let fill = |t: &str| template::render(t, &lookup).unwrap_or_else(|_| t.to_string());
        let reason_hint = facts.hints.get(&key.reason);
        let text = facts
            .causes
            .get(&key.reason)
            .filter(|_| key.kind != CauseKind::Observation);
        let summary = match text {
            Some(t) => fill(&t.summary),
            // A cause of its own: the observation says it best.
            None => first.message.clone(),
        };
        let summary = match key.kind {
            CauseKind::PrivateDnsZone => summary + &self.azure_dns_answer(facts).unwrap_or_default(),
            _ => summary,
        };
        let fix = match (text.and_then(|t| t.fix.as_deref()), reason_hint) {
            (Some(fix), hint) => match hint.and_then(|h| h.learn.as_deref()) {
                Some(url) => format!("{} ({url})", fill(fix)),
                None => fill(fix),
            },
            // Probe hints are already rendered with the probe's own values.
            (None, _) if key.kind == CauseKind::Observation && first.hint.is_some() => {
                first.hint.clone().unwrap_or_default()
            }
            (None, Some(h)) => match &h.learn {
                Some(url) => format!("{} ({url})", fill(&h.hint)),
                None => fill(&h.hint),
            },
            (None, None) => String::new(),
        };
        let subject = match key.kind {
            CauseKind::Destination => format!("{} {} to {}", protocol(first), list(&ports), self.flows[0].service_tag),
            _ => key.subject.clone(),
        };
        RootCause {
            id,
            kind: key.kind,
            reason: key.reason,
            subject,
            summary,
            fix,
            required: self.required(),
            flows: self.flows.iter().map(|f| f.id.clone()).collect(),
            probes: self.probes.len(),
        }
    }
}

/// Groups every blocked and inconclusive flow under exactly one root cause: the cause of the
/// probe that decided its verdict. Causes of required flows come first, then those explaining
/// more flows, blocked before inconclusive; ties keep report order.
pub fn find(flows: &[FlowReport], facts: &Facts) -> Vec<RootCause> {
    let mut groups: Vec<Group> = Vec::new();
    for flow in flows {
        let Some(k) = culprit(flow).and_then(|p| key(flow, p, facts.resolver)) else {
            continue;
        };
        // Every probe of the flow with the same key counts for the cause, not only the first.
        let probes: Vec<&ProbeReport> = flow
            .probes
            .iter()
            .filter(|p| p.status != ProbeStatus::Pass && key(flow, p, facts.resolver).as_ref() == Some(&k))
            .collect();
        match groups.iter_mut().find(|g| g.key == k) {
            Some(g) => {
                g.flows.push(flow);
                g.probes.extend(probes);
            }
            None => groups.push(Group {
                key: k,
                flows: vec![flow],
                probes,
            }),
        }
    }
    groups.sort_by_key(|g| (!g.required(), std::cmp::Reverse(g.flows.len()), !g.blocked()));
    groups.iter().zip(1u32..).map(|(g, id)| g.render(id, facts)).collect()
}

/// Sets each flow's `cause` to the id of the root cause that lists it.
pub fn link(flows: &mut [FlowReport], causes: &[RootCause]) {
    for flow in flows {
        flow.cause = causes.iter().find(|c| c.flows.contains(&flow.id)).map(|c| c.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::suite::{Direction, Protocol};
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
        let culprit = probes.iter().find(|p| p.status != ProbeStatus::Pass);
        let status = match culprit.map(|p| p.status) {
            Some(ProbeStatus::Fail) => FlowStatus::Blocked,
            Some(_) => FlowStatus::Inconclusive,
            None => FlowStatus::Works,
        };
        FlowReport {
            id: id.into(),
            suite: "t".into(),
            title: id.into(),
            direction: Direction::Outbound,
            service_tag: "Storage".into(),
            required: true,
            applicability: None,
            hosts_match: crate::model::suite::HostsMatch::All,
            scenario: String::new(),
            source: String::new(),
            representative_of: None,
            hosts: probes.iter().map(|p| p.host.clone()).collect(),
            ports: vec![443],
            protocol: Protocol::Tcp,
            status,
            reason: culprit.and_then(|p| p.reason),
            message: culprit.map(|p| p.message.clone()).unwrap_or_default(),
            hint: culprit.and_then(|p| p.hint.clone()),
            path: Route::Direct,
            direct_path: None,
            private_dns_zone: None,
            cause: None,
            probes,
        }
    }

    fn dns(host: &str, reason: ReasonCode) -> FlowReport {
        flow(&format!("t.{host}"), vec![probe(ProbeKind::Dns, host, None, reason)])
    }

    fn group(flows: &[FlowReport]) -> Vec<RootCause> {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let facts = Facts {
            resolver: "10.0.0.4 (resolv.conf)",
            hints: &catalog.hints,
            causes: &catalog.causes,
            comparison: None,
        };
        find(flows, &facts)
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
        let facts = Facts {
            resolver: "10.0.0.4 (resolv.conf)",
            hints: &catalog.hints,
            causes: &catalog.causes,
            comparison: Some(&comparison),
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

    #[test]
    fn one_port_to_one_service_tag_is_one_cause_with_the_rule_to_add() {
        let smb = |id: &str, host: &str| {
            flow(
                id,
                vec![
                    probe(ProbeKind::Tcp, host, Some(445), ReasonCode::TcpTimeout),
                    probe(ProbeKind::Tcp, host, Some(445), ReasonCode::TcpTimeout),
                ],
            )
        };
        let mut other_tag = smb("x.file", "x.file.core.windows.net");
        other_tag.service_tag = "AzureMachineLearning".into();
        let flows = vec![
            smb("c.file", "sa.file.core.windows.net"),
            smb("s.file", "sa.file.core.windows.net"),
            other_tag,
        ];
        let causes = group(&flows);
        assert_eq!(causes.len(), 2, "{causes:#?}");
        let c = &causes[0];
        assert_eq!(
            (c.kind, c.subject.as_str()),
            (CauseKind::Destination, "TCP 445 to Storage")
        );
        assert_eq!(ids(c), ["c.file", "s.file"]);
        assert_eq!(c.probes, 4, "every failing probe of its flows counts");
        assert!(c.fix.contains("TCP 445 to service tag Storage"), "{}", c.fix);
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
            (CauseKind::Destination, "TCP 80, 443 to AzureActiveDirectory")
        );
        assert_eq!(ids(c), ["w.login", "c.login"]);
        assert!(
            c.fix.contains("TCP 80, 443 to service tag AzureActiveDirectory"),
            "{}",
            c.fix
        );
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
    fn every_failing_flow_belongs_to_exactly_one_cause() {
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
            let holding = causes.iter().filter(|c| c.flows.contains(&f.id)).count();
            let failing = matches!(f.status, FlowStatus::Blocked | FlowStatus::Inconclusive);
            assert_eq!(holding, usize::from(failing), "{}", f.id);
            assert_eq!(f.cause.is_some(), failing, "{}", f.id);
        }
        let mixed = flows.iter().find(|f| f.id == "mixed").unwrap();
        let cause = &causes[mixed.cause.unwrap() as usize - 1];
        assert_eq!(cause.reason, ReasonCode::TcpRefused, "the probe that decided the flow");
    }

    /// Values for every cause variable: empty lists once (the neutral phrases), full ones once.
    fn cause_values(full: bool) -> CauseValues<'static> {
        const LIST: &[String] = &[];
        CauseValues {
            resolver: "10.0.0.4 (resolv.conf)",
            private_dns_zone: full.then_some("privatelink.blob.core.windows.net"),
            issuer: full.then_some("Contoso CA"),
            proxy: full.then_some("http://proxy:3128"),
            protocol: "TCP",
            ports: LIST,
            service_tag: "Storage",
            hosts: LIST,
            addresses: LIST,
            flows: 2,
        }
    }

    #[test]
    fn every_cause_text_and_hint_renders_with_the_variables_its_renderer_knows() {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let (hosts, addresses, ports) = (
            vec!["a.test".to_string(), "b.test".to_string()],
            vec!["10.0.0.5".to_string()],
            vec!["443".to_string()],
        );
        let full = CauseValues {
            hosts: &hosts,
            addresses: &addresses,
            ports: &ports,
            ..cause_values(true)
        };
        // Reason hints are filled in with a cause's values when no cause text fits.
        let hints = catalog
            .hints
            .iter()
            .map(|(r, h)| (format!("[reason.{r}].hint"), &h.hint));
        let causes = catalog.causes.iter().flat_map(|(r, c)| {
            std::iter::once((format!("[cause.{r}].summary"), &c.summary))
                .chain(c.fix.iter().map(move |f| (format!("[cause.{r}].fix"), f)))
        });
        for (name, text) in hints.chain(causes) {
            for values in [&cause_values(false), &full] {
                let rendered = template::render(text, template::lookup_in(CAUSE_VARIABLES, values));
                assert!(rendered.is_ok(), "probes/hints.toml {name}: {rendered:?} in {text}");
            }
        }
        let typo = template::render("fix {hots}", template::lookup_in(CAUSE_VARIABLES, &full));
        assert_eq!(typo, Err(vec![template::TemplateError::Unknown("hots".into())]));
        // Every grouping rule has its text: only observations of their own fall back to the probe's.
        for reason in [
            ReasonCode::DnsTimeout,
            ReasonCode::DnsUnreachable,
            ReasonCode::DnsServfail,
            ReasonCode::DnsRefused,
            ReasonCode::DnsPublicIp,
            ReasonCode::DnsWrongIp,
            ReasonCode::TlsUntrustedIssuer,
            ReasonCode::TlsInspected,
            ReasonCode::ProxyUnreachable,
            ReasonCode::ProxyDenied,
            ReasonCode::ProxyAuthRequired,
            ReasonCode::ProxyUpstreamFailed,
            ReasonCode::ProxyTunnelClosed,
            ReasonCode::ProxyError,
            ReasonCode::TcpTimeout,
            ReasonCode::TcpRefused,
            ReasonCode::TcpUnreachable,
            ReasonCode::UdpNoReply,
            ReasonCode::UdpRefused,
        ] {
            assert!(
                catalog.causes.contains_key(&reason),
                "probes/hints.toml lacks [cause.{reason}]"
            );
        }
    }
}
