//! Which observations decide a flow, as a rule of its own rather than an accident of loop
//! order: a name's failed lookup explains every check of that name, and within one check (one
//! host, port and address) an earlier step explains the later ones: DNS before the connect,
//! the connect before the proxy's tunnel, the tunnel before TLS, TLS before the application
//! (HTTP, SMB). The flow's status, its reason and its root causes all read the same deciding
//! probes, so reordering how probes are listed cannot change a verdict.

use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::report::{ProbeKind, ProbeReport};

/// The steps of a check, earliest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The lookup of the name.
    Lookup,
    /// The TCP connect or UDP exchange (to the target, or to the proxy).
    Connect,
    /// The proxy's answer to CONNECT.
    Tunnel,
    /// The TLS handshake.
    Handshake,
    /// The request on top: HTTP or SMB.
    Application,
}

impl From<ProbeKind> for Step {
    fn from(kind: ProbeKind) -> Step {
        match kind {
            ProbeKind::Dns => Step::Lookup,
            ProbeKind::Tcp | ProbeKind::Udp => Step::Connect,
            ProbeKind::Proxy => Step::Tunnel,
            ProbeKind::Tls => Step::Handshake,
            ProbeKind::Http | ProbeKind::Smb => Step::Application,
        }
    }
}

/// An IPv6 probe that failed only because this host has no IPv6 route, while IPv4 to the same
/// host and port works: real clients fall back to IPv4, so it decides nothing.
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

/// The probes that did not pass and are not explained by an earlier step: per name, a failed
/// lookup and nothing after it; per check (name, port, address), its earliest step that did
/// not pass. In report order.
pub fn deciding(probes: &[ProbeReport]) -> Vec<&ProbeReport> {
    let open: Vec<&ProbeReport> = probes
        .iter()
        .filter(|p| p.status != ProbeStatus::Pass && !ipv6_fallback(p, probes))
        .collect();
    let lookup_failed = |host: &str| {
        open.iter()
            .any(|p| Step::from(p.kind) == Step::Lookup && p.host == host)
    };
    let earlier_in_check = |p: &ProbeReport| {
        open.iter().any(|q| {
            q.host == p.host
                && q.port == p.port
                && q.address.is_none_or(|a| Some(a) == p.address)
                && Step::from(q.kind) < Step::from(p.kind)
                && Step::from(q.kind) != Step::Lookup
        })
    };
    open.iter()
        .copied()
        .filter(|p| match Step::from(p.kind) {
            Step::Lookup => true,
            _ => !lookup_failed(&p.host) && !earlier_in_check(p),
        })
        .collect()
}

/// The flow status `probes` add up to, and the probe that decided it: any deciding failure
/// blocks the flow (the first one is named), else any deciding silence leaves it
/// inconclusive, else it works.
pub fn status_of(probes: &[ProbeReport]) -> (FlowStatus, Option<&ProbeReport>) {
    let deciding = deciding(probes);
    let first = |s: ProbeStatus| deciding.iter().find(|p| p.status == s).copied();
    if let Some(p) = first(ProbeStatus::Fail) {
        (FlowStatus::Blocked, Some(p))
    } else if let Some(p) = first(ProbeStatus::Inconclusive) {
        (FlowStatus::Inconclusive, Some(p))
    } else {
        (FlowStatus::Works, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Route;

    fn p(
        kind: ProbeKind,
        host: &str,
        port: Option<u16>,
        status: ProbeStatus,
        reason: Option<ReasonCode>,
    ) -> ProbeReport {
        let address = port.map(|_| "10.0.0.5".parse().unwrap());
        ProbeReport {
            reason,
            ..ProbeReport::new(kind, host, port, address, status, Route::Direct)
        }
    }

    fn fail(kind: ProbeKind, host: &str, port: Option<u16>, reason: ReasonCode) -> ProbeReport {
        p(kind, host, port, ProbeStatus::Fail, Some(reason))
    }

    #[test]
    fn steps_are_ordered_as_a_check_runs() {
        let order = [
            ProbeKind::Dns,
            ProbeKind::Tcp,
            ProbeKind::Proxy,
            ProbeKind::Tls,
            ProbeKind::Http,
        ]
        .map(Step::from);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(Step::from(ProbeKind::Udp), Step::Connect);
        assert_eq!(Step::from(ProbeKind::Smb), Step::Application);
    }

    #[test]
    fn the_earliest_step_decides_whatever_order_the_probes_are_listed_in() {
        // A listing that puts the later step first must not make it the reason.
        let tls = fail(ProbeKind::Tls, "a.test", Some(443), ReasonCode::TlsHandshakeFailed);
        let tcp = fail(ProbeKind::Tcp, "a.test", Some(443), ReasonCode::TcpTimeout);
        for probes in [vec![tls.clone(), tcp.clone()], vec![tcp.clone(), tls.clone()]] {
            let (status, culprit) = status_of(&probes);
            assert_eq!(status, FlowStatus::Blocked);
            assert_eq!(culprit.unwrap().reason, Some(ReasonCode::TcpTimeout));
            assert_eq!(deciding(&probes).len(), 1);
        }
    }

    #[test]
    fn a_failed_lookup_explains_every_check_of_its_name_only() {
        let probes = vec![
            fail(ProbeKind::Tcp, "a.test", Some(443), ReasonCode::TcpTimeout),
            fail(ProbeKind::Dns, "a.test", None, ReasonCode::DnsPublicIp),
            fail(ProbeKind::Tcp, "b.test", Some(445), ReasonCode::TcpRefused),
        ];
        let reasons: Vec<_> = deciding(&probes).iter().map(|p| p.reason.unwrap()).collect();
        assert_eq!(reasons, [ReasonCode::DnsPublicIp, ReasonCode::TcpRefused]);
        assert_eq!(status_of(&probes).1.unwrap().reason, Some(ReasonCode::DnsPublicIp));
    }

    #[test]
    fn independent_checks_each_decide_and_failure_beats_silence() {
        let probes = vec![
            p(
                ProbeKind::Udp,
                "u.test",
                Some(5831),
                ProbeStatus::Inconclusive,
                Some(ReasonCode::UdpNoReply),
            ),
            fail(ProbeKind::Tcp, "a.test", Some(445), ReasonCode::TcpTimeout),
            p(ProbeKind::Tcp, "a.test", Some(443), ProbeStatus::Pass, None),
        ];
        assert_eq!(deciding(&probes).len(), 2);
        let (status, culprit) = status_of(&probes);
        assert_eq!((status, culprit.unwrap().port), (FlowStatus::Blocked, Some(445)));
    }

    #[test]
    fn ipv6_without_a_route_decides_nothing_when_ipv4_works() {
        let mut v6 = fail(ProbeKind::Tcp, "a.test", Some(443), ReasonCode::TcpUnreachable);
        v6.address = Some("2603:1030::1".parse().unwrap());
        let v4 = p(ProbeKind::Tcp, "a.test", Some(443), ProbeStatus::Pass, None);
        assert_eq!(status_of(&[v4, v6.clone()]).0, FlowStatus::Works);
        assert_eq!(status_of(&[v6]).0, FlowStatus::Blocked);
    }
}
