//! `--compare-resolvers`, the lookups: the same names through every resolver side by side.
//! What the answers mean (where private-zone forwarding breaks) is `verdict::resolvers`.

use crate::engine::probe::SetupError;
use crate::engine::probe::dns::{DnsObservation, DnsProber};
use crate::model::suite::Expectation;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Azure's virtual DNS server, reachable only from inside a VNet.
pub const AZURE_DNS: &str = "168.63.129.16";

/// How reports name the machine's own resolvers: by where they are configured on this platform.
pub const SYSTEM_RESOLVERS: &str = if cfg!(windows) { "adapter DNS" } else { "resolv.conf" };

/// Where a compared resolver came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverRole {
    /// A nameserver of this machine's resolv.conf (on Windows: of its adapters).
    ResolvConf,
    /// `--dns-server`.
    DnsServer,
    /// Azure DNS (168.63.129.16 or `--azure-dns`): the reference for private zones.
    AzureDns,
}

impl ResolverRole {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolverRole::ResolvConf => SYSTEM_RESOLVERS,
            ResolverRole::DnsServer => "--dns-server",
            ResolverRole::AzureDns => "Azure DNS",
        }
    }
}

/// A resolver to compare and how the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSpec {
    /// Its address.
    pub address: SocketAddr,
    /// Where it came from.
    pub role: ResolverRole,
}

impl ResolverSpec {
    /// `10.0.0.4 (resolv.conf)`: the port only when it is not 53.
    pub fn label(&self) -> String {
        let addr = if self.address.port() == 53 {
            self.address.ip().to_string()
        } else {
            self.address.to_string()
        };
        format!("{addr} ({})", self.role.as_str())
    }
}

/// One name as every resolver answered it.
#[derive(Debug)]
pub struct Lookups {
    /// The name.
    pub host: String,
    /// What its answer must look like.
    pub expect: Expectation,
    /// Each resolver with what it answered, in the order given.
    pub answers: Vec<(ResolverSpec, DnsObservation)>,
}

/// Resolves each of `hosts` through each resolver, at most `concurrency` at a time.
pub async fn lookup_everywhere(
    hosts: Vec<(String, Expectation)>,
    resolvers: &[ResolverSpec],
    timeout: Duration,
    concurrency: usize,
) -> Result<Vec<Lookups>, SetupError> {
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
    let mut grid: Vec<Vec<Option<DnsObservation>>> = (0..hosts.len()).map(|_| vec![None; resolvers.len()]).collect();
    while let Some(Ok((h, r, obs))) = tasks.join_next().await {
        grid[h][r] = Some(obs);
    }
    Ok(hosts
        .into_iter()
        .zip(grid)
        .map(|((host, expect), row)| Lookups {
            host,
            expect,
            answers: resolvers
                .iter()
                .cloned()
                .zip(row)
                .filter_map(|(spec, obs)| Some((spec, obs?)))
                .collect(),
        })
        .collect())
}
