//! From observations to verdicts: the one place reason codes are decided for what probes
//! observed (TLS trust, HTTP answers, proxy answers, DNS expectations), hints are attached and
//! each flow's status is concluded. Pure functions, no I/O.

pub mod causes;
mod dns;
mod firewall;
mod http;
pub mod precedence;
pub(crate) mod proxy;
pub mod resolvers;
mod smb;
mod socket;
mod step;
mod tls;

use crate::engine::{self, AppObservation, ConnKey, ConnObservation, MAX_ADDRESSES_PER_NAME, Observations, Reach};
use crate::model::endpoints::ExpectedIps;
use crate::model::netaddr::PrivateRanges;
use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::model::suite::{Expectation, HostsMatch, Protocol, ReasonHint};
use crate::model::template;
use crate::plan::{App, Check, FlowPlan, PlannedFlow, Route, Target};
use crate::report::{DirectPath, FlowReport, ProbeKind, ProbeReport};
use precedence::status_of;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;
use step::StepVerdict;

/// What the verdict stage needs besides the plan and the observations.
pub struct Judgement<'a> {
    /// Addresses that count as private.
    pub ranges: &'a PrivateRanges,
    /// Exact expected addresses per name.
    pub expected: &'a ExpectedIps,
    /// Hints per reason code.
    pub hints: &'a BTreeMap<ReasonCode, ReasonHint>,
    /// `/etc/hosts` entries for probed names.
    pub hosts_file: &'a BTreeMap<String, Vec<IpAddr>>,
    /// The resolver that gave the answers, e.g. `10.0.0.4 (resolv.conf)`: a wrong answer names it.
    pub resolver: &'a str,
}

/// Values a hint template may use.
#[derive(Default, Clone, Copy)]
struct HintValues<'a> {
    host: Option<&'a str>,
    port: Option<u16>,
    address: Option<IpAddr>,
    service_tag: Option<&'a str>,
    private_dns_zone: Option<&'a str>,
    issuer: Option<&'a str>,
    protocol: &'a str,
    /// The name is a public service name (no private DNS zone, no private answer expected):
    /// its hint never gives privatelink advice.
    public_name: bool,
}

/// A variable of [`HINT_VARIABLES`] (any probe's values: the alias keeps their lifetime open).
type HintVariable = (&'static str, fn(&HintValues) -> String);

/// The variables a reason's hint may name (`probes/hints.toml`), each with how it reads a
/// probe's values; a value the probe doesn't have becomes a neutral phrase.
const HINT_VARIABLES: &[HintVariable] = &[
    ("host", |v| v.host.unwrap_or("the host").to_string()),
    ("port", |v| {
        v.port.map_or_else(|| "the port".to_string(), |p| p.to_string())
    }),
    ("address", |v| {
        v.address.map_or_else(|| "the address".to_string(), |a| a.to_string())
    }),
    ("service_tag", |v| {
        v.service_tag.unwrap_or("the service tag for this flow").to_string()
    }),
    ("private_dns_zone", |v| {
        v.private_dns_zone
            .unwrap_or("the matching privatelink DNS zone")
            .to_string()
    }),
    ("issuer", |v| v.issuer.unwrap_or("the presenting CA").to_string()),
    ("protocol", |v| v.protocol.to_string()),
];

/// Renders the hint for `reason` with a probe's values.
fn render_hint(hints: &BTreeMap<ReasonCode, ReasonHint>, reason: ReasonCode, v: &HintValues) -> Option<String> {
    let h = hints.get(&reason)?;
    let hint = match &h.hint_public {
        Some(public) if v.public_name => public,
        _ => &h.hint,
    };
    let text = template::render(hint, template::lookup_in(HINT_VARIABLES, v)).unwrap_or_else(|_| hint.clone());
    Some(match &h.learn {
        Some(url) => format!("{text} ({url})"),
        None => text,
    })
}

/// Builds every flow's report.
pub fn assess(flows: &[PlannedFlow], observed: &Observations, judgement: &Judgement) -> Vec<FlowReport> {
    flows.iter().map(|f| assess_flow(f, observed, judgement)).collect()
}

fn assess_flow(flow: &PlannedFlow, observed: &Observations, j: &Judgement) -> FlowReport {
    let spec = &flow.spec;
    let mut report = FlowReport {
        id: spec.id.clone(),
        suite: flow.suite.clone(),
        title: spec.title.clone(),
        direction: spec.direction,
        service_tag: flow.service_tag.clone(),
        required: flow.required,
        applicability: flow.applicability.clone(),
        hosts_match: spec.hosts_match,
        scenario: spec.scenario.clone(),
        source: spec.source.clone(),
        representative_of: spec.representative_of.clone(),
        hosts: match &flow.plan {
            FlowPlan::Probe { targets, .. } => targets.iter().map(|t| t.host.clone()).collect(),
            FlowPlan::MissingContext { .. } | FlowPlan::NotTestable { .. } | FlowPlan::NotApplicable { .. } => {
                spec.hosts.clone()
            }
        },
        ports: spec.ports.clone(),
        protocol: spec.protocol,
        status: FlowStatus::Works,
        reason: None,
        message: String::new(),
        hint: None,
        path: Route::Direct,
        direct_path: None,
        private_dns_zone: match &flow.plan {
            FlowPlan::Probe { private_dns_zone, .. } => private_dns_zone.clone(),
            FlowPlan::MissingContext { .. } | FlowPlan::NotTestable { .. } | FlowPlan::NotApplicable { .. } => None,
        },
        cause: None,
        causes: Vec::new(),
        resource: spec.resource,
        probes: Vec::new(),
    };
    match &flow.plan {
        FlowPlan::NotTestable { why } => {
            report.status = FlowStatus::NotTestable;
            report.message.clone_from(why);
        }
        FlowPlan::MissingContext { flags } => {
            report.status = FlowStatus::Skipped;
            report.reason = Some(ReasonCode::MissingContext);
            report.message = format!("not probed: needs {}", flags.join(", "));
            report.hint = Some(format!("pass {} to probe this flow", flags.join(" and ")));
        }
        FlowPlan::NotApplicable { fact, value } => {
            report.status = FlowStatus::Skipped;
            report.reason = Some(ReasonCode::NotApplicable);
            report.message = format!("not probed: applies only when {} ({})", fact.describe(), value.basis);
            report.hint = Some(format!("pass --assume {fact} if it does"));
        }
        FlowPlan::Probe {
            targets,
            private_dns_zone,
        } => {
            let base = HintValues {
                service_tag: Some(&flow.service_tag),
                private_dns_zone: private_dns_zone.as_deref(),
                protocol: match spec.protocol {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                },
                ..Default::default()
            };
            let real_checks = || targets.iter().flat_map(|t| t.checks.iter().filter(|c| t.is_real(**c)));
            let proxied = real_checks().any(|c| c.route == Route::Proxy);
            report.path = if proxied { Route::Proxy } else { Route::Direct };
            // Ports whose scheme has no proxy go direct even in a proxied flow (plain HTTP
            // without http_proxy, SMB, raw TCP): say so, since their direct path decides.
            let mut direct_ports: Vec<u16> = real_checks()
                .filter(|c| proxied && c.route == Route::Direct)
                .map(|c| c.port)
                .collect();
            direct_ports.sort_unstable();
            direct_ports.dedup();
            let mut direct_compare = Vec::new();
            let mut alternatives = Vec::new();
            for target in targets {
                let start = report.probes.len();
                for (mut probe, counts) in target_probes(target, observed, j, base) {
                    if counts {
                        report.probes.push(probe);
                    } else {
                        probe.compare_only = true;
                        direct_compare.push(probe);
                    }
                }
                if spec.hosts_match == HostsMatch::Any && report.probes.len() > start {
                    alternatives.push((target.host.clone(), start..report.probes.len()));
                }
            }
            if report.probes.is_empty() {
                // Nothing on the real path was observed: never let that add up to "works".
                let host = report.hosts.first().cloned().unwrap_or_default();
                let o = StepVerdict::inconclusive(
                    ReasonCode::NotObserved,
                    "no probe of this flow produced an observation".to_string(),
                    Duration::ZERO,
                );
                let mut p = probe(ProbeKind::Dns, &host, None, None, &o, report.path);
                p.hint = render_hint(
                    j.hints,
                    ReasonCode::NotObserved,
                    &HintValues {
                        host: Some(&host),
                        ..base
                    },
                );
                report.probes.push(p);
            }
            if !direct_compare.is_empty() {
                let (status, culprit) = status_of(&direct_compare);
                report.direct_path = Some(DirectPath {
                    status,
                    reason: culprit.and_then(|p| p.reason),
                });
            }
            conclude(&mut report, &direct_ports, &alternatives);
            report.probes.extend(direct_compare);
        }
    }
    report
}

fn probe(
    kind: ProbeKind,
    host: &str,
    port: Option<u16>,
    address: Option<IpAddr>,
    o: &StepVerdict,
    path: Route,
) -> ProbeReport {
    ProbeReport {
        reason: o.reason,
        message: o.message.clone(),
        elapsed_ms: o.elapsed.as_millis() as u64,
        ..ProbeReport::new(kind, host, port, address, o.status, path)
    }
}

/// Every probe of one target, each with whether it counts for the flow's verdict: probes of each
/// port's real path count; the other path's, from `--compare-direct`, are reported but don't.
/// A real-path check that produced no observation becomes a `not_observed` probe.
fn target_probes(
    target: &Target,
    observed: &Observations,
    j: &Judgement,
    base: HintValues,
) -> Vec<(ProbeReport, bool)> {
    let host = target.host.as_str();
    let with_hint = |mut p: ProbeReport, issuer: Option<&str>| {
        if let Some(reason) = p.reason {
            let v = HintValues {
                host: Some(host),
                port: p.port,
                address: p.address,
                issuer,
                public_name: base.private_dns_zone.is_none() && target.expect == Expectation::Any,
                ..base
            };
            p.hint = render_hint(j.hints, reason, &v);
        }
        p
    };
    let mut out = Vec::new();
    let mut addresses = Vec::new();
    let mut dns_passed = false;
    if target.resolve {
        let dns_probe = match observed.dns.get(host) {
            Some(dns) => {
                addresses = dns.result.as_ref().map(|a| a.addresses.clone()).unwrap_or_default();
                let chain = match &dns.result {
                    Ok(a) => a.cname_chain.clone(),
                    Err(_) => dns.partial_chain.clone(),
                };
                let expected = j.expected.get(host);
                let (mut obs, warning) = match &dns.result {
                    Err(failure) => (dns::failure_verdict(failure, dns.elapsed), None),
                    Ok(_) => {
                        dns::answer_verdict(host, target.expect, &addresses, &chain, expected, j.ranges, dns.elapsed)
                    }
                };
                if matches!(obs.reason, Some(ReasonCode::DnsPublicIp | ReasonCode::DnsWrongIp)) {
                    obs.message = format!("{} (answered by {})", obs.message, j.resolver);
                }
                let mut p = probe(ProbeKind::Dns, host, None, None, &obs, Route::Direct);
                p.expect = Some(target.expect);
                p.cname_chain = Some(chain);
                p.addresses = Some(addresses.clone());
                p.expected_addresses = expected.cloned();
                p.warning = match j.hosts_file.get(host) {
                    // Applications read /etc/hosts before DNS, so its entry is what they use.
                    Some(pinned) => Some(format!(
                        "/etc/hosts overrides {host} with {}: applications on this VM use that, containers and other VMs use DNS",
                        crate::sanitize::list(pinned)
                    )),
                    None => warning,
                };
                if addresses.len() > MAX_ADDRESSES_PER_NAME && !target.checks.is_empty() {
                    let capped = format!(
                        "{host} has {} addresses; the first {MAX_ADDRESSES_PER_NAME} were probed, {} were not",
                        addresses.len(),
                        addresses.len() - MAX_ADDRESSES_PER_NAME
                    );
                    p.warning = Some(match p.warning.take() {
                        Some(w) => format!("{w}; {capped}"),
                        None => capped,
                    });
                }
                p
            }
            None => {
                let o = StepVerdict::inconclusive(
                    ReasonCode::NotObserved,
                    format!("{host} was not resolved: its probe produced no observation"),
                    Duration::ZERO,
                );
                probe(ProbeKind::Dns, host, None, None, &o, Route::Direct)
            }
        };
        dns_passed = dns_probe.status == ProbeStatus::Pass;
        out.push((with_hint(dns_probe, None), target.dns_counts()));
    }
    for check in &target.checks {
        let counts = target.is_real(*check);
        let mut observed_any = false;
        for address in engine::peers(*check, &addresses) {
            let key = ConnKey {
                host: host.to_string(),
                address,
                check: *check,
            };
            if let Some(conn) = observed.conns.get(&key) {
                observed_any = true;
                out.extend(
                    conn_probes(host, address, *check, conn)
                        .into_iter()
                        .map(|(p, issuer)| (with_hint(p, issuer.as_deref()), counts)),
                );
            }
        }
        // A direct check after a failed lookup has nothing to connect to; the DNS probe
        // already explains the flow. Anything else without an observation must not vanish.
        let explained = check.route == Route::Direct && target.resolve && !dns_passed;
        if counts && !observed_any && !explained {
            let o = StepVerdict::inconclusive(
                ReasonCode::NotObserved,
                format!(
                    "{host}:{} ({}) produced no observation",
                    check.port,
                    check.route.as_str()
                ),
                Duration::ZERO,
            );
            let kind = if check.protocol == Protocol::Udp {
                ProbeKind::Udp
            } else {
                ProbeKind::Tcp
            };
            out.push((
                with_hint(probe(kind, host, Some(check.port), None, &o, check.route), None),
                true,
            ));
        }
    }
    out
}

/// The steps of one connection-level probe, in order, each with the TLS issuer for hints.
fn conn_probes(
    host: &str,
    address: Option<IpAddr>,
    check: Check,
    conn: &ConnObservation,
) -> Vec<(ProbeReport, Option<String>)> {
    let route = check.route;
    let proxy = conn.proxy.as_ref().map(ToString::to_string);
    let tag = |mut p: ProbeReport| {
        p.proxy.clone_from(&proxy);
        p
    };
    let mut out = Vec::new();
    let connect_kind = if check.protocol == Protocol::Udp {
        ProbeKind::Udp
    } else {
        ProbeKind::Tcp
    };
    let reached = match &conn.connect {
        Reach::Socket(s) if check.protocol == Protocol::Udp => socket::classify_udp(s),
        Reach::Socket(s) => socket::classify_tcp(s),
        Reach::ProxyUnresolved(why) => StepVerdict::fail(
            ReasonCode::DnsError,
            format!("cannot resolve the proxy host: {why}"),
            Duration::ZERO,
        ),
        // The plan and the engine share one ProxySettings, so this is a defect; the check is
        // reported as not observed rather than guessed.
        Reach::NoProxy => StepVerdict::inconclusive(
            ReasonCode::NotObserved,
            format!(
                "no proxy applies to {host}:{}, yet the plan routed it through one",
                check.port
            ),
            Duration::ZERO,
        ),
    };
    let connect = match (&conn.proxy, conn.proxy_address) {
        // The connect step of a proxied check is to the proxy itself.
        (Some(p), addr) => probe(
            connect_kind,
            &p.host,
            Some(p.port),
            addr.map(|a| a.ip()),
            &proxy::classify_proxy_connect(p, &reached),
            route,
        ),
        (None, _) => probe(connect_kind, host, Some(check.port), address, &reached, route),
    };
    out.push((tag(connect), None));
    if let (Some(t), Some(p)) = (&conn.tunnel, &conn.proxy) {
        let o = proxy::classify_tunnel(p, host, check.port, t);
        out.push((
            tag(probe(ProbeKind::Proxy, host, Some(check.port), None, &o, route)),
            None,
        ));
    }
    if let Some(t) = &conn.tls {
        let o = tls::classify(host, t, conn.proxy.as_ref());
        let mut p = probe(ProbeKind::Tls, host, Some(check.port), address, &o, route);
        p.tls.clone_from(&t.details);
        out.push((tag(p), t.details.as_ref().and_then(|d| d.issuer.clone())));
    }
    match &conn.app {
        Some(AppObservation::Smb(o)) => {
            out.push((
                tag(probe(
                    ProbeKind::Smb,
                    host,
                    Some(check.port),
                    address,
                    &smb::classify(o),
                    route,
                )),
                None,
            ));
        }
        Some(AppObservation::Http { exchange, to_proxy }) => {
            let (o, details) = match (&conn.proxy, to_proxy) {
                (Some(p), true) => http::classify_proxied_response(host, p, exchange, check.http),
                _ => http::classify_response(host, exchange, check.http, check.app == App::Tls),
            };
            let mut p = probe(ProbeKind::Http, host, Some(check.port), address, &o, route);
            p.http = details;
            out.push((tag(p), None));
        }
        None => {}
    }
    out
}

/// Sets the flow's status, reason, hint and message from its real-path probes. `direct_ports`
/// are the ports of a proxied flow that have no proxy for their scheme and go direct.
///
/// A flow whose hosts are alternatives (`hosts_match = "any"`, `alternatives` gives each host's
/// probes in `report.probes`) works when one alternative works; the message names it and what
/// the others met. Otherwise every probe counts.
fn conclude(report: &mut FlowReport, direct_ports: &[u16], alternatives: &[(String, Range<usize>)]) {
    let working = alternatives
        .iter()
        .find(|(_, range)| status_of(&report.probes[range.clone()]).0 == FlowStatus::Works);
    let (status, reason, hint, mut message) = match working {
        Some((host, range)) => {
            let (status, reason, hint, message) = summarise(&report.probes[range.clone()]);
            let others: Vec<String> = alternatives
                .iter()
                .filter(|(h, _)| h != host)
                .map(|(h, r)| match status_of(&report.probes[r.clone()]) {
                    (_, Some(p)) => format!("{h}: {}", p.reason.map_or("not proven", ReasonCode::as_str)),
                    (_, None) => format!("{h}: works"),
                })
                .collect();
            let message = format!("via {host} ({}): {message}", others.join("; "));
            (status, reason, hint, message)
        }
        None => summarise(&report.probes),
    };
    if report.path == Route::Proxy {
        message.push_str(&proxy_suffix(report, direct_ports));
    }
    report.status = status;
    report.reason = reason;
    report.hint = hint;
    report.message = message;
}

/// The status, reason, hint and message `probes` add up to.
fn summarise(probes: &[ProbeReport]) -> (FlowStatus, Option<ReasonCode>, Option<String>, String) {
    let (status, culprit) = status_of(probes);
    let (reason, hint, message) = match culprit {
        Some(p) => {
            let failing = probes
                .iter()
                .filter(|q| q.status == p.status && q.kind == p.kind)
                .count();
            let total = probes.iter().filter(|q| q.kind == p.kind).count();
            let message = if failing > 1 || (total > 1 && p.kind != ProbeKind::Dns) {
                format!(
                    "{} ({failing} of {total} {} probes)",
                    p.message,
                    p.kind.as_str().to_uppercase()
                )
            } else {
                p.message.clone()
            };
            (p.reason, p.hint.clone(), message)
        }
        None => {
            let conns = probes.iter().filter(|p| p.kind != ProbeKind::Dns).count();
            let message = match probes.iter().find_map(|p| p.warning.clone()) {
                Some(w) => format!("works, but {w}"),
                None if conns == 0 => probes.first().map(|p| p.message.clone()).unwrap_or_default(),
                None => format!("{conns} probe(s) passed"),
            };
            (None, None, message)
        }
    };
    (status, reason, hint, message)
}

/// ` [via proxy …]`: which ports went direct, and what `--compare-direct` saw.
fn proxy_suffix(report: &FlowReport, direct_ports: &[u16]) -> String {
    let mut message = String::from(" [via proxy");
    if !direct_ports.is_empty() {
        let ports: Vec<String> = direct_ports.iter().map(ToString::to_string).collect();
        message.push_str(&format!(
            " except port {} (no proxy for its scheme: direct)",
            ports.join(", ")
        ));
    }
    if let Some(d) = &report.direct_path {
        match d.reason {
            Some(r) => message.push_str(&format!("; direct path {} ({r})", d.status.label().to_lowercase())),
            None => message.push_str(&format!("; direct path {}", d.status.label().to_lowercase())),
        }
    }
    message.push(']');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::probe::http::ResponseHead;
    use crate::engine::probe::proxy::{TunnelAnswer, TunnelObservation};
    use crate::engine::probe::{SocketObservation, SocketOutcome};
    use crate::model::suite::Expectation;

    #[test]
    fn every_reason_hint_renders_with_the_variables_its_renderer_knows() {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let absent = HintValues::default();
        let present = HintValues {
            host: Some("sa.blob.core.windows.net"),
            port: Some(443),
            address: Some("10.0.0.5".parse().unwrap()),
            service_tag: Some("Storage"),
            private_dns_zone: Some("privatelink.blob.core.windows.net"),
            issuer: Some("Contoso CA"),
            protocol: "TCP",
            public_name: false,
        };
        for (reason, hint) in &catalog.hints {
            let texts =
                std::iter::once(("hint", &hint.hint)).chain(hint.hint_public.iter().map(|h| ("hint_public", h)));
            for (field, text) in texts {
                for values in [&absent, &present] {
                    let rendered = template::render(text, template::lookup_in(HINT_VARIABLES, values));
                    assert!(
                        rendered.is_ok(),
                        "probes/hints.toml [reason.{reason}].{field}: {rendered:?} in {text}"
                    );
                }
            }
        }
        let typo = template::render("check {hots}", template::lookup_in(HINT_VARIABLES, &present));
        assert_eq!(typo, Err(vec![template::TemplateError::Unknown("hots".into())]));
    }

    fn p(kind: ProbeKind, addr: &str, status: ProbeStatus, reason: Option<ReasonCode>) -> ProbeReport {
        let o = StepVerdict {
            status,
            reason,
            message: format!("{kind:?} {addr}"),
            elapsed: Duration::ZERO,
        };
        probe(
            kind,
            "h.example",
            Some(443),
            Some(addr.parse().unwrap()),
            &o,
            Route::Direct,
        )
    }

    fn flow(probes: Vec<ProbeReport>) -> FlowReport {
        FlowReport {
            service_tag: "X".into(),
            hosts: vec![],
            ports: vec![],
            status: FlowStatus::Works,
            reason: None,
            message: String::new(),
            hint: None,
            ..FlowReport::sample("t.f", probes)
        }
    }

    #[test]
    fn one_failing_address_of_many_blocks_the_flow() {
        let mut f = flow(vec![
            p(ProbeKind::Tcp, "10.0.0.1", ProbeStatus::Pass, None),
            p(
                ProbeKind::Tcp,
                "10.0.0.2",
                ProbeStatus::Fail,
                Some(ReasonCode::TcpTimeout),
            ),
        ]);
        conclude(&mut f, &[], &[]);
        assert_eq!(
            (f.status, f.reason),
            (FlowStatus::Blocked, Some(ReasonCode::TcpTimeout))
        );
        assert!(f.message.contains("1 of 2"), "{}", f.message);
    }

    #[test]
    fn ipv6_without_route_does_not_block_when_ipv4_works() {
        let mut f = flow(vec![
            p(ProbeKind::Tcp, "20.1.1.1", ProbeStatus::Pass, None),
            p(
                ProbeKind::Tcp,
                "2603:1030::1",
                ProbeStatus::Fail,
                Some(ReasonCode::TcpUnreachable),
            ),
        ]);
        conclude(&mut f, &[], &[]);
        assert_eq!(f.status, FlowStatus::Works);
        let mut only_v6 = flow(vec![p(
            ProbeKind::Tcp,
            "2603:1030::1",
            ProbeStatus::Fail,
            Some(ReasonCode::TcpUnreachable),
        )]);
        conclude(&mut only_v6, &[], &[]);
        assert_eq!(only_v6.status, FlowStatus::Blocked);
    }

    #[test]
    fn alternatives_work_when_one_of_them_works() {
        // hosts_match = "any": two documented forms of one name; only one exists here.
        let on = |host: &str, status, reason| {
            let mut probe = p(ProbeKind::Dns, "10.0.0.5", status, reason);
            probe.host = host.into();
            probe
        };
        let mut f = flow(vec![
            on(
                "ci.eastus.instances.ml.azure.ms",
                ProbeStatus::Fail,
                Some(ReasonCode::DnsNxdomain),
            ),
            on("ci.eastus.instances.azureml.ms", ProbeStatus::Pass, None),
        ]);
        let alternatives = [
            ("ci.eastus.instances.ml.azure.ms".to_string(), 0..1),
            ("ci.eastus.instances.azureml.ms".to_string(), 1..2),
        ];
        conclude(&mut f, &[], &alternatives);
        assert_eq!((f.status, f.reason), (FlowStatus::Works, None));
        assert!(
            f.message
                .starts_with("via ci.eastus.instances.azureml.ms (ci.eastus.instances.ml.azure.ms: dns_nxdomain): "),
            "{}",
            f.message
        );
        // Neither works: blocked, by the first failure, like any flow.
        f.probes[1] = on(
            "ci.eastus.instances.azureml.ms",
            ProbeStatus::Fail,
            Some(ReasonCode::DnsPublicIp),
        );
        conclude(&mut f, &[], &alternatives);
        assert_eq!(
            (f.status, f.reason),
            (FlowStatus::Blocked, Some(ReasonCode::DnsNxdomain))
        );
        // Without alternatives, one failing host blocks the flow.
        f.probes[0] = on("a", ProbeStatus::Pass, None);
        conclude(&mut f, &[], &[]);
        assert_eq!(f.status, FlowStatus::Blocked);
    }

    #[test]
    fn a_public_name_never_gets_privatelink_advice() {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let values = |public_name| HintValues {
            host: Some("github.com"),
            public_name,
            protocol: "TCP",
            ..Default::default()
        };
        for reason in [ReasonCode::DnsNxdomain, ReasonCode::DnsNoRecords] {
            let public = render_hint(&catalog.hints, reason, &values(true)).unwrap();
            assert!(!public.to_lowercase().contains("privatelink"), "{reason}: {public}");
            assert!(public.contains("github.com is a public name"), "{reason}: {public}");
            let private = render_hint(&catalog.hints, reason, &values(false)).unwrap();
            assert!(private.contains("privatelink"), "{reason}: {private}");
        }
    }

    #[test]
    fn silence_is_inconclusive_not_blocked() {
        let mut f = flow(vec![p(
            ProbeKind::Udp,
            "10.0.0.1",
            ProbeStatus::Inconclusive,
            Some(ReasonCode::UdpNoReply),
        )]);
        conclude(&mut f, &[], &[]);
        assert_eq!(
            (f.status, f.reason),
            (FlowStatus::Inconclusive, Some(ReasonCode::UdpNoReply))
        );
    }

    #[test]
    fn proxied_flow_names_its_direct_path() {
        let mut f = flow(vec![p(ProbeKind::Tls, "10.0.0.1", ProbeStatus::Pass, None)]);
        f.path = Route::Proxy;
        f.direct_path = Some(DirectPath {
            status: FlowStatus::Blocked,
            reason: Some(ReasonCode::TcpTimeout),
        });
        conclude(&mut f, &[], &[]);
        assert_eq!(f.status, FlowStatus::Works);
        assert!(
            f.message.contains("via proxy; direct path blocked (tcp_timeout)"),
            "{}",
            f.message
        );
    }

    /// A flow on `login.test` ports 80 (plain HTTP) and 443 (TLS) with the given checks.
    fn web_flow(checks: &[(u16, App, Route)]) -> PlannedFlow {
        let spec: crate::model::suite::FlowSpec = toml::from_str(
            r#"id = "t.web"
title = "web"
direction = "outbound"
service_tag = "AzureActiveDirectory"
required = true
scenario = "test"
source = "test"
hosts = ["login.test"]
ports = [80, 443]"#,
        )
        .unwrap();
        let checks: Vec<Check> = checks
            .iter()
            .map(|&(port, app, route)| Check {
                port,
                protocol: Protocol::Tcp,
                app,
                http: crate::model::suite::HttpCheck::Any,
                route,
            })
            .collect();
        let target = Target::new("login.test".into(), Expectation::Any, checks);
        PlannedFlow {
            suite: "t".into(),
            required: spec.required,
            service_tag: spec.service_tag.clone(),
            applicability: None,
            spec,
            plan: FlowPlan::Probe {
                targets: vec![target],
                private_dns_zone: None,
            },
        }
    }

    fn judge(flow: &PlannedFlow, observed: &Observations) -> FlowReport {
        let (ranges, expected, hints, hosts_file) = (
            PrivateRanges::with_extra(&[]),
            ExpectedIps::default(),
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let j = Judgement {
            ranges: &ranges,
            expected: &expected,
            hints: &hints,
            hosts_file: &hosts_file,
            resolver: "test",
        };
        assess_flow(flow, observed, &j)
    }

    fn resolved(observed: &mut Observations, ip: &str) {
        observed.dns.insert(
            "login.test".into(),
            crate::engine::probe::dns::DnsObservation {
                result: Ok(crate::engine::probe::dns::DnsAnswer {
                    addresses: vec![ip.parse().unwrap()],
                    cname_chain: vec![],
                }),
                partial_chain: vec![],
                elapsed: Duration::ZERO,
            },
        );
    }

    /// A TCP connect that ended with `outcome`.
    fn tcp(outcome: SocketOutcome) -> ConnObservation {
        ConnObservation {
            connect: Reach::Socket(SocketObservation {
                peer: "20.1.1.1:443".parse().unwrap(),
                outcome,
                waited: Duration::from_secs(2),
                elapsed: Duration::ZERO,
            }),
            proxy: None,
            proxy_address: None,
            tunnel: None,
            tls: None,
            app: None,
        }
    }

    /// A proxy that answered CONNECT with `status`.
    fn tunnel(status: u16) -> ConnObservation {
        ConnObservation {
            proxy: Some(crate::model::proxy::ProxyUrl::parse("http://proxy.test:3128").unwrap()),
            tunnel: Some(TunnelObservation {
                answer: TunnelAnswer::Answered {
                    head: ResponseHead {
                        status,
                        headers: vec![],
                    },
                    page: false,
                },
                elapsed: Duration::ZERO,
            }),
            ..tcp(SocketOutcome::Connected)
        }
    }

    fn conn(observed: &mut Observations, address: Option<&str>, check: Check, value: ConnObservation) {
        let key = ConnKey {
            host: "login.test".into(),
            address: address.map(|a| a.parse().unwrap()),
            check,
        };
        observed.conns.insert(key, value);
    }

    fn check_of(flow: &PlannedFlow, port: u16, route: Route) -> Check {
        let FlowPlan::Probe { targets, .. } = &flow.plan else {
            unreachable!()
        };
        *targets[0]
            .checks
            .iter()
            .find(|c| c.port == port && c.route == route)
            .unwrap()
    }

    #[test]
    fn a_plan_with_no_observations_is_never_works() {
        let flow = web_flow(&[(443, App::Tls, Route::Proxy), (80, App::Http, Route::Proxy)]);
        let report = judge(&flow, &Observations::default());
        assert_eq!(
            (report.status, report.reason),
            (FlowStatus::Inconclusive, Some(ReasonCode::NotObserved)),
            "{report:?}"
        );
        // One of two ports observed: the other is still not_observed, so not works.
        let mut observed = Observations::default();
        let pass = tcp(SocketOutcome::Connected);
        conn(&mut observed, None, check_of(&flow, 443, Route::Proxy), pass);
        let report = judge(&flow, &observed);
        assert_eq!(report.reason, Some(ReasonCode::NotObserved), "{report:?}");
    }

    #[test]
    fn a_port_without_a_proxy_for_its_scheme_decides_on_its_direct_path() {
        // https_proxy only: 443 through the proxy works, 80 goes direct and is dropped.
        let flow = web_flow(&[(80, App::Http, Route::Direct), (443, App::Tls, Route::Proxy)]);
        let mut observed = Observations::default();
        resolved(&mut observed, "20.1.1.1");
        let pass = tcp(SocketOutcome::Connected);
        conn(&mut observed, None, check_of(&flow, 443, Route::Proxy), pass);
        let drop = tcp(SocketOutcome::Silent);
        conn(
            &mut observed,
            Some("20.1.1.1"),
            check_of(&flow, 80, Route::Direct),
            drop,
        );
        let report = judge(&flow, &observed);
        assert_eq!(
            (report.status, report.reason),
            (FlowStatus::Blocked, Some(ReasonCode::TcpTimeout)),
            "{report:?}"
        );
        assert!(report.message.contains("except port 80"), "{}", report.message);
    }

    #[test]
    fn a_compare_direct_side_path_never_decides() {
        let flow = web_flow(&[(443, App::Tls, Route::Proxy), (443, App::Tls, Route::Direct)]);
        let mut observed = Observations::default();
        resolved(&mut observed, "20.1.1.1");
        let pass = tcp(SocketOutcome::Connected);
        conn(&mut observed, None, check_of(&flow, 443, Route::Proxy), pass.clone());
        let drop = tcp(SocketOutcome::Silent);
        conn(
            &mut observed,
            Some("20.1.1.1"),
            check_of(&flow, 443, Route::Direct),
            drop,
        );
        let report = judge(&flow, &observed);
        assert_eq!(report.status, FlowStatus::Works, "{report:?}");
        assert_eq!(report.direct_path.map(|d| d.reason), Some(Some(ReasonCode::TcpTimeout)));
        // The side path working cannot stand in for a real path that failed.
        let mut observed = Observations::default();
        resolved(&mut observed, "20.1.1.1");
        let denied = tunnel(403);
        conn(&mut observed, None, check_of(&flow, 443, Route::Proxy), denied);
        conn(
            &mut observed,
            Some("20.1.1.1"),
            check_of(&flow, 443, Route::Direct),
            pass,
        );
        let report = judge(&flow, &observed);
        assert_eq!(report.reason, Some(ReasonCode::ProxyDenied), "{report:?}");
    }
}
