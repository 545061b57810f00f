//! DNS: resolve a name's A and AAAA records, keeping the whole CNAME chain, and classify failures.

use super::SetupError;
use crate::outcome::ReasonCode;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One CNAME hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CnameLink {
    /// The alias.
    pub name: String,
    /// Where it points.
    pub target: String,
}

/// A successful resolution.
#[derive(Debug, Clone, Default)]
pub struct DnsAnswer {
    /// CNAME hops in order.
    pub cname_chain: Vec<CnameLink>,
    /// Every A and AAAA address.
    pub addresses: Vec<IpAddr>,
}

/// What resolving one name observed.
#[derive(Debug, Clone)]
pub struct DnsObservation {
    /// The answer, or why there is none.
    pub result: Result<DnsAnswer, (ReasonCode, String)>,
    /// CNAME hops seen even when no address came back.
    pub partial_chain: Vec<CnameLink>,
    /// Time taken.
    pub elapsed: Duration,
}

/// A resolver configured for probing: no cache, no retries, no hosts file, one deadline.
pub struct DnsProber {
    resolver: TokioResolver,
    timeout: Duration,
    nameservers: Vec<String>,
}

impl DnsProber {
    /// Uses `server` when given, else the system's `/etc/resolv.conf`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, SetupError> {
        let (config, mut opts) = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                (
                    ResolverConfig::from_parts(None, vec![], vec![ns]),
                    ResolverOpts::default(),
                )
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| SetupError::ResolverConfig(e.to_string()))?,
        };
        let nameservers = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(53, |c| c.port);
                if port == 53 {
                    ns.ip.to_string()
                } else {
                    SocketAddr::new(ns.ip, port).to_string()
                }
            })
            .collect();
        opts.timeout = timeout;
        // hickory retries `attempts` more times after the first; one try keeps the deadline honest.
        opts.attempts = 0;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| SetupError::Resolver(e.to_string()))?;
        Ok(DnsProber {
            resolver,
            timeout,
            nameservers,
        })
    }

    /// The nameservers queried, for the report.
    pub fn nameservers(&self) -> &[String] {
        &self.nameservers
    }

    /// Resolves `host` (as a fully qualified name) for A and AAAA in parallel.
    pub async fn resolve_chain(&self, host: &str) -> DnsObservation {
        let start = Instant::now();
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        let (v4, v6) = tokio::join!(self.lookup(&fqdn, RecordType::A), self.lookup(&fqdn, RecordType::AAAA));
        let elapsed = start.elapsed();
        let mut answer = DnsAnswer::default();
        let mut failures = Vec::new();
        for family in [v4, v6] {
            match family {
                Ok((chain, addrs)) => {
                    for link in chain {
                        if !answer.cname_chain.contains(&link) {
                            answer.cname_chain.push(link);
                        }
                    }
                    answer.addresses.extend(addrs);
                }
                Err(f) => failures.push(f),
            }
        }
        let partial_chain = answer.cname_chain.clone();
        if !answer.addresses.is_empty() {
            return DnsObservation {
                result: Ok(answer),
                partial_chain,
                elapsed,
            };
        }
        // Both families failed or were empty: report the most telling failure.
        let rank = |r: ReasonCode| match r {
            ReasonCode::DnsNxdomain => 0,
            ReasonCode::DnsServfail | ReasonCode::DnsRefused => 1,
            ReasonCode::DnsTimeout => 2,
            ReasonCode::DnsError => 3,
            _ => 4,
        };
        let failure = failures
            .into_iter()
            .min_by_key(|(r, _)| rank(*r))
            .unwrap_or((ReasonCode::DnsNoRecords, format!("{host} has no A or AAAA records")));
        DnsObservation {
            result: Err(failure),
            partial_chain,
            elapsed,
        }
    }

    async fn lookup(&self, fqdn: &str, rt: RecordType) -> Result<(Vec<CnameLink>, Vec<IpAddr>), (ReasonCode, String)> {
        let host = fqdn.trim_end_matches('.');
        let lookup = match tokio::time::timeout(self.timeout, self.resolver.lookup(fqdn, rt)).await {
            Err(_) => {
                return Err((
                    ReasonCode::DnsTimeout,
                    format!("no {rt} answer for {host} within {:?}", self.timeout),
                ));
            }
            Ok(Err(e)) => return Err(classify(host, rt, &e, &self.nameservers)),
            Ok(Ok(l)) => l,
        };
        let mut chain = Vec::new();
        let mut addrs = Vec::new();
        for r in lookup.answers() {
            match &r.data {
                RData::CNAME(c) => chain.push(CnameLink {
                    name: r.name.to_string().trim_end_matches('.').to_string(),
                    target: c.0.to_string().trim_end_matches('.').to_string(),
                }),
                RData::A(a) => addrs.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => addrs.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
        Ok((chain, addrs))
    }
}

/// Maps a resolver error to a reason code and message.
fn classify(host: &str, rt: RecordType, e: &NetError, nameservers: &[String]) -> (ReasonCode, String) {
    if e.is_nx_domain() {
        return (ReasonCode::DnsNxdomain, format!("{host} does not exist (NXDOMAIN)"));
    }
    match e {
        NetError::Dns(DnsError::NoRecordsFound(_)) => (ReasonCode::DnsNoRecords, format!("{host} has no {rt} records")),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => (
            ReasonCode::DnsServfail,
            format!("the resolver answered SERVFAIL for {host} {rt}"),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => (
            ReasonCode::DnsRefused,
            format!("the resolver refused to answer for {host} {rt}"),
        ),
        NetError::Timeout => (ReasonCode::DnsTimeout, format!("no {rt} answer for {host} in time")),
        // hickory gives up before sending when every socket fails (no route, refused).
        NetError::NoConnections => (
            ReasonCode::DnsError,
            format!(
                "could not send the {rt} query for {host} to any nameserver ({}): no route to them?",
                nameservers.join(", ")
            ),
        ),
        other => (ReasonCode::DnsError, format!("{rt} lookup of {host} failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: NetError) -> (ReasonCode, String) {
        classify("ws.example", RecordType::A, &e, &["10.0.0.4:53".to_string()])
    }

    #[test]
    fn unsendable_queries_are_dns_error_naming_the_nameservers() {
        let (code, message) = reason(NetError::NoConnections);
        assert_eq!(code, ReasonCode::DnsError);
        assert!(
            message.contains("10.0.0.4:53") && message.contains("no route"),
            "{message}"
        );
    }

    #[test]
    fn unexpected_resolver_failures_are_dns_error_not_a_verdict_about_the_name() {
        let (code, message) = reason(NetError::Msg("malformed answer".into()));
        assert_eq!(code, ReasonCode::DnsError);
        assert!(message.contains("malformed answer"), "{message}");
        assert_eq!(reason(NetError::Timeout).0, ReasonCode::DnsTimeout);
    }
}
