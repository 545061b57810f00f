//! Concurrent execution of a probe plan. Every distinct host is resolved once; every distinct
//! (host, address, port, protocol, tls) check runs once, however many flows share it. All of it
//! runs under one semaphore, so total time tracks the slowest chain, not the sum.

use crate::plan::{Check, FlowPlan, PlannedFlow};
use crate::probe::dns::{DnsObservation, DnsProber};
use crate::probe::tls::{TlsObservation, TlsProber};
use crate::probe::{Observation, SetupError, tcp, udp};
use crate::suite::Protocol;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Engine settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Deadline for each step (DNS, connect, handshake).
    pub timeout: Duration,
    /// Probes in flight at most.
    pub concurrency: usize,
    /// Resolver to query instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// Extra trust anchors.
    pub ca_files: Vec<PathBuf>,
}

/// One connection-level probe's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Host name (the TLS server name).
    pub host: String,
    /// Address contacted.
    pub address: IpAddr,
    /// What was checked.
    pub check: Check,
}

/// What a connection-level probe observed.
#[derive(Debug, Clone)]
pub struct ConnObservation {
    /// TCP connect or UDP exchange.
    pub connect: Observation,
    /// TLS handshake, when asked for and the connect worked.
    pub tls: Option<TlsObservation>,
}

/// Everything observed in a run, keyed for lookup by the verdict stage.
#[derive(Debug, Default)]
pub struct Observations {
    /// Per host name.
    pub dns: HashMap<String, DnsObservation>,
    /// Per connection-level probe.
    pub conns: HashMap<ConnKey, ConnObservation>,
}

/// Progress notifications for a front end; the engine never draws anything itself.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// The run will take about this many steps.
    Planned(u64),
    /// One step finished.
    Step(String),
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Runs probes. Cheap to share: clone the `Arc`.
pub struct Engine {
    dns: DnsProber,
    tls: TlsProber,
    config: EngineConfig,
}

impl Engine {
    /// Builds the resolver and TLS state once for the run.
    pub fn new(config: EngineConfig) -> Result<Arc<Self>, SetupError> {
        Ok(Arc::new(Engine {
            dns: DnsProber::new(config.dns_server, config.timeout)?,
            tls: TlsProber::new(&config.ca_files)?,
            config,
        }))
    }

    /// The nameservers the resolver queries.
    pub fn nameservers(&self) -> &[String] {
        self.dns.nameservers()
    }

    /// Runs every probe the plan asks for.
    pub async fn execute(self: &Arc<Self>, flows: &[PlannedFlow], progress: ProgressFn) -> Observations {
        let mut work: BTreeMap<String, BTreeSet<Check>> = BTreeMap::new();
        for flow in flows {
            if let FlowPlan::Probe { targets, .. } = &flow.plan {
                for t in targets {
                    work.entry(t.host.clone()).or_default().extend(t.checks.iter().copied());
                }
            }
        }
        progress(ProgressEvent::Planned(work.values().map(|c| 1 + c.len() as u64).sum()));
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut hosts = JoinSet::new();
        for (host, checks) in work {
            let (engine, permits, progress) = (self.clone(), permits.clone(), progress.clone());
            hosts.spawn(async move { engine.probe_host(host, checks, permits, progress).await });
        }
        let mut observations = Observations::default();
        while let Some(done) = hosts.join_next().await {
            // A probe task only ends early if it panicked; the verdict stage then reports its
            // checks as not observed rather than taking the run down.
            if let Ok((host, dns, conns)) = done {
                observations.dns.insert(host, dns);
                observations.conns.extend(conns);
            }
        }
        observations
    }

    async fn probe_host(
        self: Arc<Self>,
        host: String,
        checks: BTreeSet<Check>,
        permits: Arc<Semaphore>,
        progress: ProgressFn,
    ) -> (String, DnsObservation, Vec<(ConnKey, ConnObservation)>) {
        let dns = {
            let _permit = permits.acquire().await.expect("semaphore is never closed");
            self.dns.resolve_chain(&host).await
        };
        progress(ProgressEvent::Step(format!("resolved {host}")));
        let addresses = dns.result.as_ref().map(|a| a.addresses.clone()).unwrap_or_default();
        let mut probes = JoinSet::new();
        for check in &checks {
            for &address in &addresses {
                let (engine, permits, host, check) = (self.clone(), permits.clone(), host.clone(), *check);
                probes.spawn(async move {
                    let _permit = permits.acquire().await.expect("semaphore is never closed");
                    let observed = engine.probe_address(&host, address, check).await;
                    (ConnKey { host, address, check }, observed)
                });
            }
        }
        let conns: Vec<_> = probes.join_all().await;
        for check in &checks {
            progress(ProgressEvent::Step(format!("{host}:{}", check.port)));
        }
        (host, dns, conns)
    }

    async fn probe_address(&self, host: &str, address: IpAddr, check: Check) -> ConnObservation {
        let target = SocketAddr::new(address, check.port);
        let timeout = self.config.timeout;
        match check.protocol {
            Protocol::Udp => ConnObservation { connect: udp::probe(target, timeout).await, tls: None },
            Protocol::Tcp => {
                let (connect, stream) = tcp::connect(target, timeout).await;
                let tls = match stream {
                    Some(s) if check.tls => Some(self.tls.handshake(s, host, timeout).await),
                    _ => None,
                };
                ConnObservation { connect, tls }
            }
        }
    }
}
