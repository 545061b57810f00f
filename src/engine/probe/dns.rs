//! DNS: resolve a name's A and AAAA records, keeping the whole CNAME chain, and record how a
//! lookup failed in the resolver's terms (what it means is decided in `verdict::dns`).

use super::{SetupError, SocketOutcome};
use crate::model::duration::FlagDuration;
use crate::report::schema::CnameLink;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

/// A successful resolution.
#[derive(Debug, Clone, Default)]
pub struct DnsAnswer {
    /// CNAME hops in order.
    pub cname_chain: Vec<CnameLink>,
    /// Every A and AAAA address.
    pub addresses: Vec<IpAddr>,
}

/// How a lookup failed, as the resolver (or the socket under it) put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFailureKind {
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// The name exists but has no A or AAAA records.
    NoRecords,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// No answer before the deadline.
    TimedOut,
    /// No nameserver could be reached (ICMP errors, no route).
    Unreachable,
    /// The query could not be sent to any nameserver.
    Unsendable,
    /// The CNAME chain loops.
    CnameLoop,
    /// The CNAME chain is longer than resolvers follow.
    ChainTooLong,
    /// Anything else the resolver reported.
    Other,
}

impl DnsFailureKind {
    /// How much a failure says about the name, most first: when A and AAAA both fail, the
    /// observation keeps the more telling one (NXDOMAIN over a timeout of the other family).
    fn rank(self) -> u8 {
        match self {
            DnsFailureKind::NxDomain => 0,
            DnsFailureKind::ServFail | DnsFailureKind::Refused => 1,
            DnsFailureKind::TimedOut | DnsFailureKind::Unreachable => 2,
            DnsFailureKind::Unsendable | DnsFailureKind::Other => 3,
            DnsFailureKind::NoRecords | DnsFailureKind::CnameLoop | DnsFailureKind::ChainTooLong => 4,
        }
    }
}

/// A failed lookup: its kind and what was seen, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure {
    /// The kind.
    pub kind: DnsFailureKind,
    /// What happened, naming the name, record type and resolver where known.
    pub detail: String,
}

impl DnsFailure {
    fn new(kind: DnsFailureKind, detail: impl Into<String>) -> Self {
        DnsFailure {
            kind,
            detail: detail.into(),
        }
    }
}

/// What resolving one name observed.
#[derive(Debug, Clone)]
pub struct DnsObservation {
    /// The answer, or why there is none.
    pub result: Result<DnsAnswer, DnsFailure>,
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
    servers: Vec<SocketAddr>,
    /// Why no nameserver can be reached at all, once checked (`None`: one may be).
    unreachable: Arc<OnceCell<Option<String>>>,
    /// The background check, stopped when the prober goes: it must not outlive the run.
    check: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// Names whose AAAA query went unanswered after their A query was answered.
    aaaa_dropped: std::sync::Mutex<Vec<String>>,
}

impl Drop for DnsProber {
    fn drop(&mut self) {
        if let Some(check) = self.check.get_mut().ok().and_then(Option::take) {
            check.abort();
        }
    }
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
            None => {
                let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| SetupError::ResolverConfig(e.to_string()))?;
                (distinct_servers(&config), opts)
            }
        };
        let servers: Vec<SocketAddr> = config
            .name_servers()
            .iter()
            .map(|ns| SocketAddr::new(ns.ip, ns.connections.first().map_or(53, |c| c.port)))
            .collect();
        let nameservers = servers
            .iter()
            .map(|s| {
                if s.port() == 53 {
                    s.ip().to_string()
                } else {
                    s.to_string()
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
            servers,
            unreachable: Arc::new(OnceCell::new()),
            check: std::sync::Mutex::new(None),
            aaaa_dropped: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Starts checking in the background whether any nameserver can be reached at all, so that
    /// a lookup that times out can tell "nothing listens there / no route" from "dropped"
    /// without waiting any longer. Call it before the lookups start.
    pub fn start_server_check(&self) {
        let (cell, servers, wait) = (self.unreachable.clone(), self.servers.clone(), self.timeout);
        let task = tokio::spawn(async move {
            cell.get_or_init(|| all_unreachable(servers, wait)).await;
        });
        if let Ok(mut check) = self.check.lock() {
            *check = Some(task.abort_handle());
        }
    }

    /// Why no nameserver accepts queries, or `None` when one may (it answered, or stayed silent).
    async fn servers_unreachable(&self) -> Option<&str> {
        self.unreachable
            .get_or_init(|| all_unreachable(self.servers.clone(), self.timeout))
            .await
            .as_deref()
    }

    /// The nameservers queried, for the report.
    pub fn nameservers(&self) -> &[String] {
        &self.nameservers
    }

    /// What this resolver was seen doing wrong during the run, once each (e.g. dropping AAAA
    /// queries), for the report.
    pub fn warnings(&self) -> Vec<String> {
        let dropped = self.aaaa_dropped.lock().map(|d| d.clone()).unwrap_or_default();
        let Some(first) = dropped.first() else {
            return Vec::new();
        };
        let servers = if self.nameservers.is_empty() {
            "the system resolver".to_string()
        } else {
            self.nameservers.join(", ")
        };
        vec![format!(
            "{servers} answered A but never AAAA for {} name(s), e.g. {first}: it seems to drop AAAA queries. \
             amlprobe stopped waiting shortly after each A answer and probed those names over IPv4 only; \
             clients that wait for AAAA stall until their own DNS timeout",
            dropped.len()
        )]
    }

    /// Resolves `host` (as a fully qualified name) for A and AAAA in parallel.
    pub async fn resolve_chain(&self, host: &str) -> DnsObservation {
        let start = Instant::now();
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        let a = self.lookup(&fqdn, RecordType::A);
        let aaaa = self.lookup(&fqdn, RecordType::AAAA);
        tokio::pin!(a, aaaa);
        let (v4, v6) = tokio::select! {
            v4 = &mut a => {
                let answered = v4.as_ref().is_ok_and(|(_, addrs)| !addrs.is_empty());
                let v6 = if answered {
                    let grace = aaaa_grace(start.elapsed(), self.timeout);
                    match tokio::time::timeout(grace, &mut aaaa).await {
                        Ok(v6) => v6,
                        Err(_) => {
                            if let Ok(mut dropped) = self.aaaa_dropped.lock() {
                                dropped.push(host.to_string());
                            }
                            let why = format!(
                                "no AAAA answer for {host} within {} of the A answer",
                                FlagDuration(grace)
                            );
                            Err(DnsFailure::new(DnsFailureKind::TimedOut, why))
                        }
                    }
                } else {
                    aaaa.await
                };
                (v4, v6)
            }
            v6 = &mut aaaa => (a.await, v6),
        };
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
        let mut partial_chain = answer.cname_chain.clone();
        if !answer.addresses.is_empty() {
            return DnsObservation {
                result: Ok(answer),
                partial_chain,
                elapsed,
            };
        }
        // Both families failed or were empty: keep the most telling failure.
        let mut failure = failures
            .into_iter()
            .min_by_key(|f| f.kind.rank())
            .unwrap_or_else(|| DnsFailure::new(DnsFailureKind::NoRecords, format!("{host} has no A or AAAA records")));
        // hickory drops the chain when it gives up following it, and a recursive resolver
        // answers SERVFAIL for a loop: walking the chain tells which it was, and keeps it.
        if matches!(failure.kind, DnsFailureKind::NoRecords | DnsFailureKind::ServFail) {
            let (walked, verdict) = self.walk_cnames(host, start + self.timeout).await;
            if walked.len() > partial_chain.len() {
                partial_chain = walked;
            }
            failure = verdict.unwrap_or(failure);
        }
        DnsObservation {
            result: Err(failure),
            partial_chain,
            elapsed: start.elapsed(),
        }
    }

    /// Follows `host`'s CNAMEs with one CNAME query per hop until the chain ends, loops or
    /// reaches [`MAX_CNAME_HOPS`], within `deadline`; returns the chain and, for a loop or an
    /// over-long chain, the failure to report instead.
    async fn walk_cnames(&self, host: &str, deadline: Instant) -> (Vec<CnameLink>, Option<DnsFailure>) {
        let mut chain: Vec<CnameLink> = Vec::new();
        let mut current = host.trim_end_matches('.').to_ascii_lowercase();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let query = self.resolver.lookup(format!("{current}."), RecordType::CNAME);
            let Ok(Ok(lookup)) = tokio::time::timeout(remaining, query).await else {
                return (chain, None);
            };
            // A recursive resolver may send several hops in one answer, in any order.
            let (links, _) = answer_of(&lookup);
            let before = chain.len();
            while let Some(link) = links.iter().find(|l| l.name.eq_ignore_ascii_case(&current)) {
                let target = link.target.to_ascii_lowercase();
                chain.push(link.clone());
                let seen = |name: &str| chain.iter().any(|l| l.name.eq_ignore_ascii_case(name));
                if seen(&target) {
                    let message = format!("the CNAME chain of {host} loops: {}", render_chain(&chain));
                    return (chain, Some(DnsFailure::new(DnsFailureKind::CnameLoop, message)));
                }
                if chain.len() >= MAX_CNAME_HOPS {
                    let message = format!(
                        "the CNAME chain of {host} reaches {MAX_CNAME_HOPS} hops without an address, more than resolvers follow: {}",
                        render_chain(&chain)
                    );
                    return (chain, Some(DnsFailure::new(DnsFailureKind::ChainTooLong, message)));
                }
                current = target;
            }
            if chain.len() == before {
                return (chain, None);
            }
        }
    }

    async fn lookup(&self, fqdn: &str, rt: RecordType) -> Result<(Vec<CnameLink>, Vec<IpAddr>), DnsFailure> {
        let host = fqdn.trim_end_matches('.');
        let unreachable = |why: &str| {
            DnsFailure::new(
                DnsFailureKind::Unreachable,
                format!("no {rt} query for {host} got through: {why}"),
            )
        };
        // hickory ignores ICMP errors, so a server that is down looks like a silent one until
        // the deadline; the server check sees them and ends the wait early.
        let known_unreachable = async {
            match self.servers_unreachable().await {
                Some(why) => why,
                None => std::future::pending().await,
            }
        };
        let failure = tokio::select! {
            biased;
            resolved = tokio::time::timeout(self.timeout, self.resolver.lookup(fqdn, rt)) => match resolved {
                // hickory's own timeout and ours are the same deadline: one message for both.
                Err(_) | Ok(Err(NetError::Timeout)) => DnsFailure::new(
                    DnsFailureKind::TimedOut,
                    format!("no {rt} answer for {host} within {}", FlagDuration(self.timeout)),
                ),
                Ok(Err(e)) => classify(host, rt, &e, &self.nameservers),
                Ok(Ok(lookup)) => return Ok(answer_of(&lookup)),
            },
            why = known_unreachable => return Err(unreachable(why)),
        };
        if matches!(
            failure.kind,
            DnsFailureKind::TimedOut | DnsFailureKind::Unsendable | DnsFailureKind::Other
        ) && let Some(why) = self.servers_unreachable().await
        {
            return Err(unreachable(why));
        }
        Err(failure)
    }
}

/// How long to keep waiting for AAAA once A was answered after `a_took`: as long again as A
/// took, and at least 300 ms, within the overall `timeout`. Both queries go out together and a
/// working resolver answers them about as fast (a cold cache costs both the same upstream
/// round trips), so a resolver still silent by then drops AAAA; without this cut-off every
/// name would cost the full timeout. A slow resolver keeps a proportional grace.
fn aaaa_grace(a_took: Duration, timeout: Duration) -> Duration {
    let wait_until = (a_took + a_took.max(Duration::from_millis(300))).min(timeout);
    wait_until.saturating_sub(a_took)
}

/// The longest CNAME chain followed: hickory stops re-querying after this many hops, and so
/// does the walk that explains why it stopped.
const MAX_CNAME_HOPS: usize = 8;

/// `a → b → c` for a chain starting at `a`.
fn render_chain(chain: &[CnameLink]) -> String {
    let mut names: Vec<&str> = chain.iter().map(|l| l.name.as_str()).take(1).collect();
    names.extend(chain.iter().map(|l| l.target.as_str()));
    names.join(" → ")
}

/// The CNAME chain and addresses of an answer.
fn answer_of(lookup: &hickory_resolver::lookup::Lookup) -> (Vec<CnameLink>, Vec<IpAddr>) {
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
    (chain, addrs)
}

/// Why none of `servers` can be reached, or `None` when at least one may be.
async fn all_unreachable(servers: Vec<SocketAddr>, wait: Duration) -> Option<String> {
    let mut checks = JoinSet::new();
    for server in servers {
        checks.spawn(server_unreachable(server, wait));
    }
    let mut reasons = Vec::new();
    while let Some(done) = checks.join_next().await {
        reasons.push(done.ok().flatten()?);
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// `config` with each nameserver once: on Windows two adapters often name the same server, and
/// it would be asked (and reported) twice.
fn distinct_servers(config: &ResolverConfig) -> ResolverConfig {
    let mut seen = Vec::new();
    let servers = config
        .name_servers()
        .iter()
        .filter(|ns| {
            let first = !seen.contains(&ns.ip);
            seen.push(ns.ip);
            first
        })
        .cloned()
        .collect();
    ResolverConfig::from_parts(config.domain().cloned(), config.search().to_vec(), servers)
}

/// A DNS query for the root's NS records: any answer at all shows the server is there.
const ROOT_NS_QUERY: [u8; 17] = [0x61, 0x6d, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];

/// Queries `server` over a connected UDP socket, which (unlike hickory's) receives the ICMP
/// errors a closed port or a rejecting firewall sends back. The query is repeated until `wait`
/// runs out: hosts rate-limit ICMP errors per peer (Linux: a burst of 6, then one a second),
/// and the run's own lookups may have used them up.
async fn server_unreachable(server: SocketAddr, wait: Duration) -> Option<String> {
    const RESEND: Duration = Duration::from_millis(250);
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    if let Err(e) = socket.connect(server).await {
        return unreachable_reason(server, &e);
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 512];
    loop {
        if let Err(e) = socket.send(&ROOT_NS_QUERY).await {
            return unreachable_reason(server, &e);
        }
        let slice = RESEND.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(slice, socket.recv(&mut buf)).await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => return unreachable_reason(server, &e),
            Err(_) if tokio::time::Instant::now() >= deadline => return None,
            Err(_) => {}
        }
    }
}

/// The socket errors that mean a query cannot reach `server` at all.
fn unreachable_reason(server: SocketAddr, e: &io::Error) -> Option<String> {
    match SocketOutcome::from_udp_error(e) {
        SocketOutcome::Refused => Some(format!(
            "{server} answered ICMP port unreachable: nothing listens on port {} there, or a firewall rejects it",
            server.port()
        )),
        SocketOutcome::NetworkUnreachable => Some(format!("no route to {server} from this host")),
        SocketOutcome::HostUnreachable => Some(format!("{server} is unreachable (ICMP host unreachable)")),
        _ => None,
    }
}

/// What a resolver error says.
fn classify(host: &str, rt: RecordType, e: &NetError, nameservers: &[String]) -> DnsFailure {
    use DnsFailureKind as K;
    if e.is_nx_domain() {
        return DnsFailure::new(K::NxDomain, format!("{host} does not exist (NXDOMAIN)"));
    }
    match e {
        NetError::Dns(DnsError::NoRecordsFound(_)) => {
            DnsFailure::new(K::NoRecords, format!("{host} has no {rt} records"))
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            DnsFailure::new(K::ServFail, format!("the resolver answered SERVFAIL for {host} {rt}"))
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            DnsFailure::new(K::Refused, format!("the resolver refused to answer for {host} {rt}"))
        }
        NetError::Timeout => DnsFailure::new(K::TimedOut, format!("no {rt} answer for {host} in time")),
        // hickory gives up before sending when every socket fails (no route, refused).
        NetError::NoConnections => DnsFailure::new(
            K::Unsendable,
            format!(
                "could not send the {rt} query for {host} to any nameserver ({}): no route to them?",
                nameservers.join(", ")
            ),
        ),
        other => DnsFailure::new(K::Other, format!("{rt} lookup of {host} failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(e: NetError) -> DnsFailure {
        classify("ws.example", RecordType::A, &e, &["10.0.0.4:53".to_string()])
    }

    #[test]
    fn socket_errors_that_mean_no_query_gets_through() {
        use crate::engine::probe::os_error::*;
        let server: SocketAddr = "10.0.0.4:53".parse().unwrap();
        let why = |errno| unreachable_reason(server, &io::Error::from_raw_os_error(errno));
        assert!(why(REFUSED).unwrap().contains("ICMP port unreachable"));
        assert!(why(NET_UNREACHABLE).unwrap().contains("no route to 10.0.0.4:53"));
        assert!(why(HOST_UNREACHABLE).unwrap().contains("ICMP host unreachable"));
        assert_eq!(why(TIMED_OUT), None, "maybe only slow");
        assert_eq!(
            why(RESET).is_some(),
            cfg!(windows),
            "Windows' form of the ICMP error on UDP"
        );
    }

    #[tokio::test]
    #[cfg_attr(
        windows,
        ignore = "Wine 8 does not report ICMP port unreachable to UDP sockets (the receive times out); \
                  on Windows itself run it with --ignored"
    )]
    async fn a_closed_port_is_unreachable_while_silent_or_answering_servers_are_not() {
        let wait = Duration::from_millis(300);
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let why = all_unreachable(vec![closed], wait)
            .await
            .expect("nothing listens there");
        assert!(
            why.contains(&closed.to_string()) && why.contains("port unreachable"),
            "{why}"
        );

        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let answering = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let answering_addr = answering.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            if let Ok((n, from)) = answering.recv_from(&mut buf).await {
                let _ = answering.send_to(&buf[..n], from).await;
            }
        });
        assert_eq!(all_unreachable(vec![silent.local_addr().unwrap()], wait).await, None);
        // One server that may work is enough for the timeout to stand.
        assert_eq!(all_unreachable(vec![closed, answering_addr], wait).await, None);
    }

    #[test]
    fn a_server_named_by_two_adapters_is_asked_once() {
        let ns = |ip: &str| NameServerConfig::udp_and_tcp(ip.parse().unwrap());
        let config = ResolverConfig::from_parts(None, vec![], vec![ns("10.0.0.4"), ns("10.0.0.5"), ns("10.0.0.4")]);
        let ips: Vec<String> = distinct_servers(&config)
            .name_servers()
            .iter()
            .map(|n| n.ip.to_string())
            .collect();
        assert_eq!(ips, ["10.0.0.4", "10.0.0.5"]);
    }

    #[test]
    fn aaaa_grace_follows_the_a_answer_within_the_deadline() {
        let ms = Duration::from_millis;
        assert_eq!(aaaa_grace(ms(5), ms(8000)), ms(300), "a fast A answer: 300 ms more");
        assert_eq!(aaaa_grace(ms(900), ms(8000)), ms(900), "a slow one: as long again");
        assert_eq!(aaaa_grace(ms(900), ms(1000)), ms(100), "never past the deadline");
        assert_eq!(aaaa_grace(ms(1000), ms(1000)), Duration::ZERO);
    }

    #[test]
    fn chains_render_from_the_first_name() {
        let link = |n: &str, t: &str| CnameLink {
            name: n.into(),
            target: t.into(),
        };
        assert_eq!(render_chain(&[link("a", "b"), link("b", "a")]), "a → b → a");
        assert_eq!(render_chain(&[]), "");
    }

    #[test]
    fn unsendable_queries_name_the_nameservers() {
        let f = failure(NetError::NoConnections);
        assert_eq!(f.kind, DnsFailureKind::Unsendable);
        assert!(
            f.detail.contains("10.0.0.4:53") && f.detail.contains("no route"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn resolver_errors_keep_their_kind_and_words() {
        let f = failure(NetError::Msg("malformed answer".into()));
        assert_eq!(f.kind, DnsFailureKind::Other);
        assert!(f.detail.contains("malformed answer"), "{}", f.detail);
        assert_eq!(failure(NetError::Timeout).kind, DnsFailureKind::TimedOut);
        assert_eq!(
            failure(NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))).kind,
            DnsFailureKind::ServFail
        );
        assert_eq!(
            failure(NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused))).kind,
            DnsFailureKind::Refused
        );
    }

    #[test]
    fn the_more_telling_failure_of_two_families_ranks_first() {
        assert!(DnsFailureKind::NxDomain.rank() < DnsFailureKind::TimedOut.rank());
        assert!(DnsFailureKind::ServFail.rank() < DnsFailureKind::Other.rank());
        assert!(DnsFailureKind::TimedOut.rank() < DnsFailureKind::NoRecords.rank());
    }
}
