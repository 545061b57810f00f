//! `--compare-resolvers`, the verdict: where the resolvers' answers for a name differ, say which
//! one is wrong and which conditional forwarder is missing (Azure DNS is the reference).

use crate::engine::resolvers::{Lookups, ResolverRole};
use crate::model::netaddr::PrivateRanges;
use crate::model::suite::Expectation;
use crate::report::schema::{Comparison, ResolverAnswer, ResolverVerdict};

/// Every name's answers side by side, with a diagnosis where they diverge.
pub fn compare(lookups: Vec<Lookups>, ranges: &PrivateRanges) -> Vec<Comparison> {
    lookups
        .into_iter()
        .map(|l| {
            let roles: Vec<ResolverRole> = l.answers.iter().map(|(spec, _)| spec.role).collect();
            let answers: Vec<ResolverAnswer> = l
                .answers
                .into_iter()
                .map(|(spec, obs)| {
                    let (reason, addresses, cname_chain) = match obs.result {
                        Ok(a) => (None, a.addresses, a.cname_chain),
                        Err(f) => (Some(super::dns::failure_reason(f.kind)), Vec::new(), obs.partial_chain),
                    };
                    ResolverAnswer {
                        resolver: spec.label(),
                        reason,
                        addresses,
                        cname_chain,
                    }
                })
                .collect();
            let diagnosis = diagnose(&l.host, l.expect, &answers, &roles, ranges);
            Comparison {
                host: l.host,
                expect: l.expect,
                verdict: if diagnosis.is_some() {
                    ResolverVerdict::Diverges
                } else {
                    ResolverVerdict::Consistent
                },
                answers,
                diagnosis,
            }
        })
        .collect()
}

/// The zone a conditional forwarder should cover: the public parent of the `privatelink.` zone
/// the chain went through, else the name without its first two labels.
fn forwarder_zone(host: &str, answers: &[ResolverAnswer]) -> String {
    let privatelink = answers.iter().flat_map(|a| &a.cname_chain).find_map(|l| {
        l.target
            .find("privatelink.")
            .map(|i| l.target[i + "privatelink.".len()..].to_string())
    });
    privatelink.unwrap_or_else(|| {
        let labels: Vec<&str> = host.split('.').collect();
        labels[labels.len().saturating_sub(3)..].join(".")
    })
}

fn describe(a: &ResolverAnswer, ranges: &PrivateRanges) -> String {
    match a.reason {
        Some(r) => format!("{} answers {r}", a.resolver),
        None => {
            let list = crate::sanitize::list(&a.addresses);
            let kind = if a.addresses.iter().all(|ip| ranges.contains(*ip)) {
                "private"
            } else {
                "public"
            };
            format!("{} returns {list} ({kind})", a.resolver)
        }
    }
}

/// Answers paired with the role of the resolver that gave them.
type Answered<'a> = Vec<(&'a ResolverAnswer, &'a ResolverRole)>;

fn diagnose(
    host: &str,
    expect: Expectation,
    answers: &[ResolverAnswer],
    roles: &[ResolverRole],
    ranges: &PrivateRanges,
) -> Option<String> {
    let good = |a: &ResolverAnswer| {
        a.reason.is_none() && (expect == Expectation::Any || a.addresses.iter().all(|ip| ranges.contains(*ip)))
    };
    let (ok, bad): (Answered, Answered) = answers.iter().zip(roles).partition(|(a, _)| good(a));
    if ok.is_empty() || bad.is_empty() {
        return None;
    }
    let reference = ok
        .iter()
        .find(|(_, role)| **role == ResolverRole::AzureDns)
        .unwrap_or(&ok[0])
        .0;
    let bad: Vec<&ResolverAnswer> = bad.into_iter().map(|(a, _)| a).collect();
    let zone = forwarder_zone(host, answers);
    let wrong: Vec<String> = bad.iter().map(|a| describe(a, ranges)).collect();
    let servers: Vec<&str> = bad
        .iter()
        .map(|a| a.resolver.split(' ').next().unwrap_or_default())
        .collect();
    Some(format!(
        "{}, but {}: add a conditional forwarder for {zone} to 168.63.129.16 on {} (and link the privatelink.{zone} zone to the DNS server's VNet)",
        describe(reference, ranges),
        wrong.join("; "),
        servers.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ReasonCode;
    use crate::report::schema::CnameLink;

    fn answer(resolver: &str, reason: Option<ReasonCode>, ips: &[&str], via: Option<&str>) -> ResolverAnswer {
        ResolverAnswer {
            resolver: resolver.into(),
            reason,
            addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
            cname_chain: via
                .map(|t| CnameLink {
                    name: "h".into(),
                    target: t.into(),
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn names_the_forwarder_zone_when_custom_dns_answers_public() {
        let ranges = PrivateRanges::with_extra(&[]);
        let answers = [
            answer(
                "10.0.0.4 (resolv.conf)",
                None,
                &["20.1.2.3"],
                Some("ws.workspace.eastus.privatelink.api.azureml.ms"),
            ),
            answer(
                "168.63.129.16 (Azure DNS)",
                None,
                &["10.1.0.5"],
                Some("ws.workspace.eastus.privatelink.api.azureml.ms"),
            ),
        ];
        let d = diagnose(
            "ws.workspace.eastus.api.azureml.ms",
            Expectation::Private,
            &answers,
            &[ResolverRole::ResolvConf, ResolverRole::AzureDns],
            &ranges,
        )
        .unwrap();
        assert!(
            d.starts_with("168.63.129.16 (Azure DNS) returns 10.1.0.5 (private)"),
            "{d}"
        );
        assert!(d.contains("10.0.0.4 (resolv.conf) returns 20.1.2.3 (public)"), "{d}");
        assert!(
            d.contains("conditional forwarder for api.azureml.ms to 168.63.129.16 on 10.0.0.4"),
            "{d}"
        );
    }

    const BOTH: [ResolverRole; 2] = [ResolverRole::ResolvConf, ResolverRole::DnsServer];

    #[test]
    fn nxdomain_on_one_resolver_diverges_and_agreement_does_not() {
        let ranges = PrivateRanges::with_extra(&[]);
        let split = [
            answer("a", Some(ReasonCode::DnsNxdomain), &[], None),
            answer("b", None, &["10.1.0.5"], None),
        ];
        assert!(
            diagnose(
                "acct.blob.core.windows.net",
                Expectation::Private,
                &split,
                &BOTH,
                &ranges
            )
            .unwrap()
            .contains("a answers dns_nxdomain")
        );
        let same = [
            answer("a", None, &["20.1.1.1"], None),
            answer("b", None, &["20.1.1.2"], None),
        ];
        assert!(diagnose("mcr.microsoft.com", Expectation::Any, &same, &BOTH, &ranges).is_none());
    }
}
