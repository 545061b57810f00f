//! DNS → reason codes: `dns_*` from how a lookup failed, and from what an answer means against
//! the flow's expectation (public where a private endpoint was expected, not the endpoint's
//! address, a sinkhole).

use super::step::StepVerdict;
use crate::engine::probe::dns::{DnsFailure, DnsFailureKind};
use crate::model::netaddr::{self, PrivateRanges};
use crate::model::outcome::ReasonCode;
use crate::model::suite::Expectation;
use crate::report::schema::CnameLink;
use crate::sanitize;
use std::net::IpAddr;
use std::time::Duration;

/// The reason code for a failed lookup.
pub fn failure_reason(kind: DnsFailureKind) -> ReasonCode {
    match kind {
        DnsFailureKind::NxDomain => ReasonCode::DnsNxdomain,
        DnsFailureKind::NoRecords => ReasonCode::DnsNoRecords,
        DnsFailureKind::ServFail => ReasonCode::DnsServfail,
        DnsFailureKind::Refused => ReasonCode::DnsRefused,
        DnsFailureKind::TimedOut => ReasonCode::DnsTimeout,
        DnsFailureKind::Unreachable => ReasonCode::DnsUnreachable,
        DnsFailureKind::CnameLoop => ReasonCode::DnsCnameLoop,
        DnsFailureKind::ChainTooLong => ReasonCode::DnsChainTooLong,
        // The query never left, or the resolver failed in a way that says nothing about the
        // name: not a verdict on the name itself.
        DnsFailureKind::Unsendable | DnsFailureKind::Other => ReasonCode::DnsError,
    }
}

/// The verdict on a failed lookup.
pub fn failure_verdict(failure: &DnsFailure, elapsed: Duration) -> StepVerdict {
    StepVerdict::fail(failure_reason(failure.kind), failure.detail.clone(), elapsed)
}

/// The verdict on an answer, and a warning for an answer that works today but will drift.
pub fn answer_verdict(
    host: &str,
    expect: Expectation,
    addresses: &[IpAddr],
    chain: &[CnameLink],
    expected: Option<&Vec<IpAddr>>,
    ranges: &PrivateRanges,
    elapsed: Duration,
) -> (StepVerdict, Option<String>) {
    // A peer's answer can hold thousands of addresses: messages list the first few.
    let list = sanitize::list::<IpAddr>;
    let via = chain.last().map(|l| format!(" via {}", l.target)).unwrap_or_default();
    let through_privatelink = chain
        .iter()
        .any(|l| l.target.contains(".privatelink.") || l.target.starts_with("privatelink."));
    // Checked first: something local may well answer on a loopback address, so later probes
    // would pass. Ranges the user declared private (--private-cidr) are theirs to use.
    let sinkholed: Vec<String> = addresses
        .iter()
        .filter(|a| !ranges.declares(**a))
        .filter_map(|a| netaddr::sinkhole_kind(*a).map(|kind| format!("{a} ({kind})")))
        .collect();
    if !sinkholed.is_empty() {
        let o = StepVerdict::fail(
            ReasonCode::DnsSinkhole,
            format!(
                "{host} resolved to {}{via}: no service has such an address, so the name is sinkholed or misconfigured",
                sanitize::list(&sinkholed)
            ),
            elapsed,
        );
        return (o, None);
    }
    if let Some(expected) = expected {
        let unexpected: Vec<IpAddr> = addresses.iter().filter(|a| !expected.contains(a)).copied().collect();
        if !unexpected.is_empty() {
            let o = StepVerdict::fail(
                ReasonCode::DnsWrongIp,
                format!(
                    "{host} resolved to {}{via}, but its private endpoint is {}",
                    list(&unexpected),
                    list(expected)
                ),
                elapsed,
            );
            return (o, None);
        }
    }
    let public: Vec<IpAddr> = addresses.iter().filter(|a| !ranges.contains(**a)).copied().collect();
    if expect == Expectation::Private && !public.is_empty() {
        let zone_hint = if through_privatelink {
            ""
        } else {
            " and the answer never passed through a privatelink name"
        };
        let o = StepVerdict::fail(
            ReasonCode::DnsPublicIp,
            format!(
                "{host} resolved to {} (not private){via}{zone_hint}; a private endpoint address was expected",
                list(&public)
            ),
            elapsed,
        );
        return (o, None);
    }
    let warning = (expect == Expectation::Private && !through_privatelink).then(|| {
        format!("{host} resolves to a private address without a privatelink CNAME: a hosts-file entry or hand-made A record that will drift when the endpoint changes")
    });
    (
        StepVerdict::pass(format!("{host} resolved to {}{via}", list(addresses)), elapsed),
        warning,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ProbeStatus;

    /// A 4,000-address answer made a 96 KB message.
    #[test]
    fn a_huge_answer_makes_a_short_message() {
        let many: Vec<IpAddr> = (0..4000u32)
            .map(|i| IpAddr::from([20, 1, (i >> 8) as u8, i as u8]))
            .collect();
        let ranges = PrivateRanges::with_extra(&[]);
        let expected = vec!["10.0.0.5".parse().unwrap()];
        let cases = [
            (Expectation::Any, None),
            (Expectation::Private, None),
            (Expectation::Any, Some(&expected)),
        ];
        for (expect, pinned) in cases {
            let (v, _) = answer_verdict("h.test", expect, &many, &[], pinned, &ranges, Duration::ZERO);
            assert!(v.message.len() < 300, "{} bytes: {}", v.message.len(), v.message);
            assert!(v.message.contains("and 3992 more"), "{}", v.message);
        }
        let sinks: Vec<IpAddr> = (0..4000u32)
            .map(|i| IpAddr::from([127, 0, (i >> 8) as u8, i as u8]))
            .collect();
        let (v, _) = answer_verdict("h.test", Expectation::Any, &sinks, &[], None, &ranges, Duration::ZERO);
        assert!(
            v.message.len() < 400 && v.message.contains("and 3992 more"),
            "{}",
            v.message
        );
    }

    #[test]
    fn every_failure_kind_has_its_reason() {
        use DnsFailureKind as K;
        let cases = [
            (K::NxDomain, ReasonCode::DnsNxdomain),
            (K::NoRecords, ReasonCode::DnsNoRecords),
            (K::ServFail, ReasonCode::DnsServfail),
            (K::Refused, ReasonCode::DnsRefused),
            (K::TimedOut, ReasonCode::DnsTimeout),
            (K::Unreachable, ReasonCode::DnsUnreachable),
            (K::CnameLoop, ReasonCode::DnsCnameLoop),
            (K::ChainTooLong, ReasonCode::DnsChainTooLong),
            (K::Unsendable, ReasonCode::DnsError),
            (K::Other, ReasonCode::DnsError),
        ];
        for (kind, reason) in cases {
            assert_eq!(failure_reason(kind), reason, "{kind:?}");
        }
        let failed = failure_verdict(
            &DnsFailure {
                kind: K::NxDomain,
                detail: "ws.example does not exist (NXDOMAIN)".into(),
            },
            Duration::ZERO,
        );
        assert_eq!(failed.status, ProbeStatus::Fail);
        assert!(failed.message.contains("NXDOMAIN"));
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn private_expectation_flags_public_answers() {
        let ranges = PrivateRanges::with_extra(&[]);
        let (ok, warn) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["10.1.0.5"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(ok.status, ProbeStatus::Pass);
        assert!(warn.unwrap().contains("privatelink"));
        let (bad, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["10.1.0.5", "20.40.1.1"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(bad.reason, Some(ReasonCode::DnsPublicIp));
        assert!(
            bad.message.contains("20.40.1.1") && !bad.message.contains("10.1.0.5 ("),
            "{}",
            bad.message
        );
        let (any, _) = answer_verdict(
            "h",
            Expectation::Any,
            &ips(&["20.40.1.1"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(any.status, ProbeStatus::Pass);
        let chain = [CnameLink {
            name: "h".into(),
            target: "h.privatelink.api.azureml.ms".into(),
        }];
        let (_, none) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["10.1.0.5"]),
            &chain,
            None,
            &ranges,
            Duration::ZERO,
        );
        assert!(none.is_none());
    }

    #[test]
    fn sinkhole_answers_fail_whatever_is_expected() {
        let ranges = PrivateRanges::with_extra(&[]);
        for answer in [
            "0.0.0.0",
            "::",
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "::ffff:127.0.0.1",
        ] {
            for expect in [Expectation::Any, Expectation::Private] {
                let (o, warning) = answer_verdict(
                    "h",
                    expect,
                    &ips(&["10.1.0.5", answer]),
                    &[],
                    None,
                    &ranges,
                    Duration::ZERO,
                );
                assert_eq!(
                    (o.status, o.reason),
                    (ProbeStatus::Fail, Some(ReasonCode::DnsSinkhole)),
                    "{answer}"
                );
                assert!(
                    o.message.contains(answer) && !o.message.contains("10.1.0.5"),
                    "{}",
                    o.message
                );
                assert!(warning.is_none());
            }
        }
        // Sinkholes take precedence over an --expect-ip mismatch: they say more.
        let expected = ips(&["10.1.0.5"]);
        let (o, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["0.0.0.0"]),
            &[],
            Some(&expected),
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(o.reason, Some(ReasonCode::DnsSinkhole));
    }

    #[test]
    fn a_declared_range_is_not_a_sinkhole() {
        let ranges = PrivateRanges::with_extra(&["127.0.0.0/8".parse().unwrap()]);
        let (o, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["127.0.0.1"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(o.status, ProbeStatus::Pass);
        let (o, _) = answer_verdict(
            "h",
            Expectation::Any,
            &ips(&["0.0.0.0"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(
            o.reason,
            Some(ReasonCode::DnsSinkhole),
            "only the declared range is exempt"
        );
    }

    #[test]
    fn ipv4_mapped_answers_are_judged_by_their_ipv4_address() {
        let ranges = PrivateRanges::with_extra(&[]);
        let (ok, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["::ffff:10.1.0.5"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(ok.status, ProbeStatus::Pass, "{}", ok.message);
        let (public, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["::ffff:20.40.1.1"]),
            &[],
            None,
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(public.reason, Some(ReasonCode::DnsPublicIp));
    }

    #[test]
    fn exact_expected_address_is_enforced() {
        let ranges = PrivateRanges::with_extra(&[]);
        let expected = ips(&["10.1.0.5"]);
        let (bad, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["10.1.0.9"]),
            &[],
            Some(&expected),
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(bad.reason, Some(ReasonCode::DnsWrongIp));
        assert!(
            bad.message.contains("10.1.0.9") && bad.message.contains("10.1.0.5"),
            "{}",
            bad.message
        );
        let (ok, _) = answer_verdict(
            "h",
            Expectation::Private,
            &ips(&["10.1.0.5"]),
            &[],
            Some(&expected),
            &ranges,
            Duration::ZERO,
        );
        assert_eq!(ok.status, ProbeStatus::Pass);
    }
}
