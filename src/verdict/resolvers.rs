//! `--compare-resolvers`: the same names through every resolver side by side, to show where
//! private-zone forwarding breaks (e.g. Azure DNS returns the private endpoint, the custom DNS
//! server a public address).

use crate::engine::probe::SetupError;
use crate::engine::probe::dns::DnsProber;
use crate::model::netaddr::PrivateRanges;
use crate::model::suite::Expectation;
use crate::report::schema::{Comparison, ResolverAnswer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Azure's virtual DNS server, reachable only from inside a VNet.
pub const AZURE_DNS: &str = "168.63.129.16";

/// A resolver to compare and how the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSpec {
    /// Its address.
    pub address: SocketAddr,
    /// Where it came from: `resolv.conf`, `Azure DNS` or `--dns-server`.
    pub role: &'static str,
}

impl ResolverSpec {
    fn label(&self) -> String {
        let addr = if self.address.port() == 53 {
            self.address.ip().to_string()
        } else {
            self.address.to_string()
        };
        format!("{addr} ({})", self.role)
    }
}

/// Resolves each of `hosts` through each resolver, at most `concurrency` at a time.
pub async fn compare(
    hosts: Vec<(String, Expectation)>,
    resolvers: &[ResolverSpec],
    timeout: Duration,
    concurrency: usize,
    ranges: &PrivateRanges,
) -> Result<Vec<Comparison>, SetupError> {
    let probers: Vec<Arc<DnsProber>> = resolvers
        .iter()
        .map(|r| DnsProber::new(Some(r.address), timeout).map(Arc::new))
        .collect::<Result<_, _>>()?;
    for p in &probers {
        p.start_server_check();
    }
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (h, host) in hosts.iter().enumerate() {
        for (r, prober) in probers.iter().enumerate() {
            let (prober, permits, name) = (prober.clone(), permits.clone(), host.0.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire().await.expect("semaphore is never closed");
                (h, r, prober.resolve_chain(&name).await)
            });
        }
    }
    let mut grid: Vec<Vec<Option<ResolverAnswer>>> = vec![vec![None; resolvers.len()]; hosts.len()];
    while let Some(Ok((h, r, obs))) = tasks.join_next().await {
        let (reason, addresses, cname_chain) = match obs.result {
            Ok(a) => (None, a.addresses, a.cname_chain),
            Err((reason, _)) => (Some(reason), Vec::new(), obs.partial_chain),
        };
        grid[h][r] = Some(ResolverAnswer {
            resolver: resolvers[r].label(),
            reason,
            addresses,
            cname_chain,
        });
    }
    Ok(hosts
        .into_iter()
        .zip(grid)
        .map(|((host, expect), row)| {
            let answers: Vec<ResolverAnswer> = row.into_iter().flatten().collect();
            let diagnosis = diagnose(&host, expect, &answers, ranges);
            Comparison {
                host,
                expect,
                verdict: if diagnosis.is_some() { "diverges" } else { "consistent" },
                answers,
                diagnosis,
            }
        })
        .collect())
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
            let list = a
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let kind = if a.addresses.iter().all(|ip| ranges.contains(*ip)) {
                "private"
            } else {
                "public"
            };
            format!("{} returns {list} ({kind})", a.resolver)
        }
    }
}

fn diagnose(host: &str, expect: Expectation, answers: &[ResolverAnswer], ranges: &PrivateRanges) -> Option<String> {
    let good = |a: &ResolverAnswer| {
        a.reason.is_none() && (expect == Expectation::Any || a.addresses.iter().all(|ip| ranges.contains(*ip)))
    };
    let (ok, bad): (Vec<&ResolverAnswer>, Vec<&ResolverAnswer>) = answers.iter().partition(|a| good(a));
    if ok.is_empty() || bad.is_empty() {
        return None;
    }
    let reference = ok.iter().find(|a| a.resolver.contains("Azure DNS")).unwrap_or(&ok[0]);
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

    #[test]
    fn nxdomain_on_one_resolver_diverges_and_agreement_does_not() {
        let ranges = PrivateRanges::with_extra(&[]);
        let split = [
            answer("a", Some(ReasonCode::DnsNxdomain), &[], None),
            answer("b", None, &["10.1.0.5"], None),
        ];
        assert!(
            diagnose("acct.blob.core.windows.net", Expectation::Private, &split, &ranges)
                .unwrap()
                .contains("a answers dns_nxdomain")
        );
        let same = [
            answer("a", None, &["20.1.1.1"], None),
            answer("b", None, &["20.1.1.2"], None),
        ];
        assert!(diagnose("mcr.microsoft.com", Expectation::Any, &same, &ranges).is_none());
    }
}
