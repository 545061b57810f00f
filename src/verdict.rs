//! From observations to verdicts: apply each flow's expectations to what was observed, attach
//! hints, and decide each flow's status. Pure functions, no I/O.

use crate::engine::{ConnKey, Observations};
use crate::netaddr::PrivateRanges;
use crate::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::plan::{FlowPlan, PlannedFlow, Target};
use crate::probe::Observation;
use crate::report::{FlowReport, ProbeKind, ProbeReport};
use crate::suite::{Expectation, ReasonHint};
use crate::template::{self, Lookup};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Values a hint template may use.
#[derive(Default)]
struct HintValues<'a> {
    host: Option<&'a str>,
    port: Option<u16>,
    address: Option<IpAddr>,
    service_tag: Option<&'a str>,
    private_dns_zone: Option<&'a str>,
    issuer: Option<&'a str>,
    protocol: &'a str,
}

/// Renders the hint for `reason`; a value a probe doesn't have becomes a neutral phrase.
fn render_hint(hints: &BTreeMap<ReasonCode, ReasonHint>, reason: ReasonCode, v: &HintValues) -> Option<String> {
    let h = hints.get(&reason)?;
    let lookup = |name: &str| {
        Lookup::Value(match name {
            "host" => v.host.unwrap_or("the host").to_string(),
            "port" => v.port.map_or_else(|| "the port".to_string(), |p| p.to_string()),
            "address" => v.address.map_or_else(|| "the address".to_string(), |a| a.to_string()),
            "service_tag" => v.service_tag.unwrap_or("the service tag for this flow").to_string(),
            "private_dns_zone" => v.private_dns_zone.unwrap_or("the matching privatelink DNS zone").to_string(),
            "issuer" => v.issuer.unwrap_or("the presenting CA").to_string(),
            "protocol" => v.protocol.to_string(),
            _ => return Lookup::Unknown,
        })
    };
    let text = template::render(&h.hint, lookup).unwrap_or_else(|_| h.hint.clone());
    Some(match &h.learn {
        Some(url) => format!("{text} ({url})"),
        None => text,
    })
}

/// Builds every flow's report.
pub fn assess(
    flows: &[PlannedFlow],
    observed: &Observations,
    ranges: &PrivateRanges,
    hints: &BTreeMap<ReasonCode, ReasonHint>,
) -> Vec<FlowReport> {
    flows.iter().map(|f| assess_flow(f, observed, ranges, hints)).collect()
}

fn assess_flow(
    flow: &PlannedFlow,
    observed: &Observations,
    ranges: &PrivateRanges,
    hints: &BTreeMap<ReasonCode, ReasonHint>,
) -> FlowReport {
    let spec = &flow.spec;
    let mut report = FlowReport {
        id: spec.id.clone(),
        suite: flow.suite.clone(),
        title: spec.title.clone(),
        direction: spec.direction,
        service_tag: spec.service_tag.clone(),
        required: spec.required,
        scenario: spec.scenario.clone(),
        source: spec.source.clone(),
        representative_of: spec.representative_of.clone(),
        hosts: match &flow.plan {
            FlowPlan::Probe { targets, .. } => targets.iter().map(|t| t.host.clone()).collect(),
            FlowPlan::MissingContext { .. } | FlowPlan::NotTestable { .. } => spec.hosts.clone(),
        },
        ports: spec.ports.clone(),
        protocol: spec.protocol,
        status: FlowStatus::Works,
        reason: None,
        message: String::new(),
        hint: None,
        probes: Vec::new(),
    };
    match &flow.plan {
        FlowPlan::NotTestable { why } => {
            report.status = FlowStatus::NotTestable;
            report.message = why.clone();
        }
        FlowPlan::MissingContext { flags } => {
            report.status = FlowStatus::Skipped;
            report.reason = Some(ReasonCode::MissingContext);
            report.message = format!("not probed: needs {}", flags.join(", "));
            report.hint = Some(format!("pass {} to probe this flow", flags.join(" and ")));
        }
        FlowPlan::Probe { targets, private_dns_zone } => {
            let base = HintValues {
                service_tag: Some(&spec.service_tag),
                private_dns_zone: private_dns_zone.as_deref(),
                protocol: match spec.protocol {
                    crate::suite::Protocol::Tcp => "TCP",
                    crate::suite::Protocol::Udp => "UDP",
                },
                ..Default::default()
            };
            for target in targets {
                report.probes.extend(target_probes(target, observed, ranges, hints, &base));
            }
            conclude(&mut report);
        }
    }
    report
}

fn probe(kind: ProbeKind, host: &str, port: Option<u16>, address: Option<IpAddr>, o: &Observation) -> ProbeReport {
    ProbeReport {
        kind,
        host: host.to_string(),
        port,
        address,
        status: o.status,
        reason: o.reason,
        message: o.message.clone(),
        hint: None,
        elapsed_ms: o.elapsed.as_millis() as u64,
        expect: None,
        cname_chain: None,
        addresses: None,
        tls: None,
    }
}

fn target_probes(
    target: &Target,
    observed: &Observations,
    ranges: &PrivateRanges,
    hints: &BTreeMap<ReasonCode, ReasonHint>,
    base: &HintValues,
) -> Vec<ProbeReport> {
    let host = target.host.as_str();
    let with_hint = |mut p: ProbeReport, issuer: Option<&str>| {
        if let Some(reason) = p.reason {
            let v = HintValues { host: Some(host), port: p.port, address: p.address, issuer, ..*base };
            p.hint = render_hint(hints, reason, &v);
        }
        p
    };
    let Some(dns) = observed.dns.get(host) else {
        let o = Observation::inconclusive(ReasonCode::DnsError, format!("{host} was not resolved (internal error)"), Default::default());
        return vec![probe(ProbeKind::Dns, host, None, None, &o)];
    };
    let dns_obs = match &dns.result {
        Err((reason, message)) => Observation::fail(*reason, message.clone(), dns.elapsed),
        Ok(answer) => dns_verdict(host, target.expect, &answer.addresses, &answer.cname_chain, ranges, dns.elapsed),
    };
    let mut dns_probe = probe(ProbeKind::Dns, host, None, None, &dns_obs);
    dns_probe.expect = Some(target.expect);
    dns_probe.cname_chain = Some(match &dns.result {
        Ok(a) => a.cname_chain.clone(),
        Err(_) => dns.partial_chain.clone(),
    });
    let addresses = dns.result.as_ref().map(|a| a.addresses.clone()).unwrap_or_default();
    dns_probe.addresses = Some(addresses.clone());
    let mut out = vec![with_hint(dns_probe, None)];
    for check in &target.checks {
        for &address in &addresses {
            let key = ConnKey { host: host.to_string(), address, check: *check };
            let Some(conn) = observed.conns.get(&key) else { continue };
            let kind = match check.protocol {
                crate::suite::Protocol::Tcp => ProbeKind::Tcp,
                crate::suite::Protocol::Udp => ProbeKind::Udp,
            };
            out.push(with_hint(probe(kind, host, Some(check.port), Some(address), &conn.connect), None));
            if let Some(tls) = &conn.tls {
                let mut p = probe(ProbeKind::Tls, host, Some(check.port), Some(address), &tls.observation);
                p.tls = tls.details.clone();
                let issuer = tls.details.as_ref().and_then(|d| d.issuer.clone());
                out.push(with_hint(p, issuer.as_deref()));
            }
        }
    }
    out
}

fn dns_verdict(
    host: &str,
    expect: Expectation,
    addresses: &[IpAddr],
    chain: &[crate::probe::dns::CnameLink],
    ranges: &PrivateRanges,
    elapsed: std::time::Duration,
) -> Observation {
    let list = addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let via = chain.last().map(|l| format!(" via {}", l.target)).unwrap_or_default();
    let public: Vec<String> = addresses.iter().filter(|a| !ranges.contains(**a)).map(ToString::to_string).collect();
    if expect == Expectation::Private && !public.is_empty() {
        let zone_hint = if chain.iter().any(|l| l.target.contains(".privatelink.")) {
            ""
        } else {
            " and the answer never passed through a privatelink name"
        };
        return Observation::fail(
            ReasonCode::DnsPublicIp,
            format!("{host} resolved to {} (not private){via}{zone_hint}; a private endpoint address was expected", public.join(", ")),
            elapsed,
        );
    }
    Observation::pass(format!("{host} resolved to {list}{via}"), elapsed)
}

/// An IPv6 probe that failed only because this host has no IPv6 route, while IPv4 to the same
/// host and port works: real clients fall back to IPv4, so it must not block the flow.
fn ipv6_fallback(p: &ProbeReport, all: &[ProbeReport]) -> bool {
    p.address.is_some_and(|a| a.is_ipv6())
        && p.reason == Some(ReasonCode::TcpUnreachable)
        && all.iter().any(|o| {
            o.kind == p.kind
                && o.host == p.host
                && o.port == p.port
                && o.address.is_some_and(|a| a.is_ipv4())
                && o.status == ProbeStatus::Pass
        })
}

fn conclude(report: &mut FlowReport) {
    let probes = &report.probes;
    let counting: Vec<&ProbeReport> = probes.iter().filter(|p| !ipv6_fallback(p, probes)).collect();
    let first = |s: ProbeStatus| counting.iter().find(|p| p.status == s).copied();
    let (status, culprit) = if let Some(p) = first(ProbeStatus::Fail) {
        (FlowStatus::Blocked, Some(p))
    } else if let Some(p) = first(ProbeStatus::Inconclusive) {
        (FlowStatus::Inconclusive, Some(p))
    } else {
        (FlowStatus::Works, None)
    };
    report.status = status;
    match culprit {
        Some(p) => {
            let failing = counting.iter().filter(|q| q.status == p.status).count();
            let total = counting.iter().filter(|q| q.kind != ProbeKind::Dns).count().max(1);
            report.reason = p.reason;
            report.hint = p.hint.clone();
            report.message = if failing > 1 && p.kind != ProbeKind::Dns {
                format!("{} ({failing} of {total} probes)", p.message)
            } else {
                p.message.clone()
            };
        }
        None => {
            let conns = counting.iter().filter(|p| p.kind != ProbeKind::Dns).count();
            report.message = if conns == 0 {
                counting.first().map(|p| p.message.clone()).unwrap_or_default()
            } else {
                format!("{conns} probe(s) passed")
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: ProbeKind, addr: &str, status: ProbeStatus, reason: Option<ReasonCode>) -> ProbeReport {
        let o = Observation { status, reason, message: format!("{kind:?} {addr}"), elapsed: Default::default() };
        probe(kind, "h.example", Some(443), Some(addr.parse().unwrap()), &o)
    }

    fn flow(probes: Vec<ProbeReport>) -> FlowReport {
        FlowReport {
            id: "t.f".into(),
            suite: "t".into(),
            title: "t".into(),
            direction: crate::suite::Direction::Outbound,
            service_tag: "X".into(),
            required: true,
            scenario: String::new(),
            source: String::new(),
            representative_of: None,
            hosts: vec![],
            ports: vec![],
            protocol: crate::suite::Protocol::Tcp,
            status: FlowStatus::Works,
            reason: None,
            message: String::new(),
            hint: None,
            probes,
        }
    }

    #[test]
    fn one_failing_address_of_many_blocks_the_flow() {
        let mut f = flow(vec![
            p(ProbeKind::Tcp, "10.0.0.1", ProbeStatus::Pass, None),
            p(ProbeKind::Tcp, "10.0.0.2", ProbeStatus::Fail, Some(ReasonCode::TcpTimeout)),
        ]);
        conclude(&mut f);
        assert_eq!((f.status, f.reason), (FlowStatus::Blocked, Some(ReasonCode::TcpTimeout)));
    }

    #[test]
    fn ipv6_without_route_does_not_block_when_ipv4_works() {
        let mut f = flow(vec![
            p(ProbeKind::Tcp, "20.1.1.1", ProbeStatus::Pass, None),
            p(ProbeKind::Tcp, "2603:1030::1", ProbeStatus::Fail, Some(ReasonCode::TcpUnreachable)),
        ]);
        conclude(&mut f);
        assert_eq!(f.status, FlowStatus::Works);
        let mut only_v6 = flow(vec![p(ProbeKind::Tcp, "2603:1030::1", ProbeStatus::Fail, Some(ReasonCode::TcpUnreachable))]);
        conclude(&mut only_v6);
        assert_eq!(only_v6.status, FlowStatus::Blocked);
    }

    #[test]
    fn silence_is_inconclusive_not_blocked() {
        let mut f = flow(vec![p(ProbeKind::Udp, "10.0.0.1", ProbeStatus::Inconclusive, Some(ReasonCode::UdpNoReply))]);
        conclude(&mut f);
        assert_eq!((f.status, f.reason), (FlowStatus::Inconclusive, Some(ReasonCode::UdpNoReply)));
    }

    #[test]
    fn private_expectation_flags_public_answers() {
        let ranges = PrivateRanges::with_extra(&[]);
        let private: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap()];
        let mixed: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap(), "20.40.1.1".parse().unwrap()];
        let ok = dns_verdict("h", Expectation::Private, &private, &[], &ranges, Default::default());
        assert_eq!(ok.status, ProbeStatus::Pass);
        let bad = dns_verdict("h", Expectation::Private, &mixed, &[], &ranges, Default::default());
        assert_eq!(bad.reason, Some(ReasonCode::DnsPublicIp));
        assert!(bad.message.contains("20.40.1.1") && !bad.message.contains("10.1.0.5 ("), "{}", bad.message);
        let any = dns_verdict("h", Expectation::Any, &mixed, &[], &ranges, Default::default());
        assert_eq!(any.status, ProbeStatus::Pass);
    }
}
