//! Concurrent execution of a probe plan. Every distinct host is resolved once; every distinct
//! (host, address, port, protocol, tls) check runs once, however many flows share it. All of it
//! runs at once, bounded by what costs something (handshakes, destinations, the resolver, file
//! descriptors: see [`crate::engine::limits`]), so total time tracks the slowest chain, not the sum.

pub mod limits;
pub mod probe;
pub mod resolvers;

use crate::engine::probe::dns::{DnsObservation, DnsProber};
use crate::engine::probe::http::{self, Exchange};
use crate::engine::probe::proxy::TunnelObservation;
use crate::engine::probe::smb::SmbObservation;
use crate::engine::probe::tls::{TlsObservation, TlsProber};
use crate::engine::probe::{SetupError, SocketObservation, proxy, smb, tcp, udp};
use crate::model::proxy::{ProxySettings, ProxyUrl};
use crate::model::suite::HttpCheck;
use crate::model::suite::Protocol;
use crate::plan::{App, Check, FlowPlan, PlannedFlow, Route};
use limits::Limits;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Addresses probed per name at most. Azure front ends answer with one to a few addresses; a
/// name with thousands (a hostile or broken resolver) must not hold the run for rounds of
/// timeouts. The report says how many were left out.
pub const MAX_ADDRESSES_PER_NAME: usize = 16;

/// Engine settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Deadline for each step (DNS, connect, handshake, request).
    pub timeout: Duration,
    /// TLS handshakes in flight at most (the CPU-heavy step).
    pub concurrency: usize,
    /// Connections in flight to one IP address at most.
    pub per_destination: usize,
    /// Names being resolved at once at most.
    pub dns_concurrency: usize,
    /// How long a UDP probe waits for a reply.
    pub udp_timeout: Duration,
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
    /// Address contacted directly; `None` through a proxy, which resolves the name itself.
    pub address: Option<IpAddr>,
    /// What was checked.
    pub check: Check,
}

/// The application-layer step after the connect (HTTP or SMB).
#[derive(Debug, Clone)]
pub enum AppObservation {
    /// An HTTP exchange with the origin, or with the proxy when `to_proxy` (a plain-HTTP
    /// request in absolute form, which the proxy may answer itself).
    Http {
        /// What came back.
        exchange: Exchange,
        /// Whether the request went to the proxy rather than through a tunnel.
        to_proxy: bool,
    },
    /// An SMB2 negotiation.
    Smb(SmbObservation),
}

/// How the check reached its peer: the socket step, or why none was taken.
#[derive(Debug, Clone)]
pub enum Reach {
    /// The TCP connect or UDP exchange with the target, or with the proxy for a proxied check.
    Socket(SocketObservation),
    /// The proxy's host name did not resolve, so nothing was sent.
    ProxyUnresolved(String),
    /// The plan routed the check through a proxy that no setting applies to. The plan and the
    /// engine share one `ProxySettings`, so this is a defect; nothing was sent.
    NoProxy,
}

/// What a connection-level probe observed.
#[derive(Debug, Clone)]
pub struct ConnObservation {
    /// TCP connect (to the target, or to the proxy) or UDP exchange.
    pub connect: Reach,
    /// The proxy, when the check went through one.
    pub proxy: Option<ProxyUrl>,
    /// Where the proxy was reached.
    pub proxy_address: Option<SocketAddr>,
    /// The proxy's answer to CONNECT.
    pub tunnel: Option<TunnelObservation>,
    /// TLS handshake, when asked for and everything before it worked.
    pub tls: Option<TlsObservation>,
    /// HTTP or SMB step.
    pub app: Option<AppObservation>,
}

impl ConnObservation {
    fn connected(connect: Reach) -> Self {
        ConnObservation {
            connect,
            proxy: None,
            proxy_address: None,
            tunnel: None,
            tls: None,
            app: None,
        }
    }
}

/// Everything observed in a run, keyed for lookup by the verdict stage.
#[derive(Debug, Default)]
pub struct Observations {
    /// Per host name.
    pub dns: HashMap<String, DnsObservation>,
    /// Per connection-level probe.
    pub conns: HashMap<ConnKey, ConnObservation>,
    /// Hosts still unfinished when the run's deadline came (their checks are not observed).
    pub unfinished: usize,
}

/// The addresses `check` contacts given the name's `resolved` ones: each of the first
/// [`MAX_ADDRESSES_PER_NAME`] directly, or `None` once through the proxy, which resolves the
/// name itself. The key of each observation in [`Observations::conns`].
pub fn peers(check: Check, resolved: &[IpAddr]) -> Vec<Option<IpAddr>> {
    match check.route {
        Route::Direct => resolved
            .iter()
            .take(MAX_ADDRESSES_PER_NAME)
            .copied()
            .map(Some)
            .collect(),
        Route::Proxy => vec![None],
    }
}

/// How long a whole run may take: every step of a chain (DNS, connect, CONNECT, TLS, HTTP) has
/// its own deadline, and the limits may queue a chain behind others; past this bound the run
/// ends with what it has, so `serve` keeps its rhythm and `/healthz` stays honest.
pub fn run_deadline(timeout: Duration) -> Duration {
    timeout * 8 + Duration::from_secs(10)
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

/// A proxy's address, or why it has none.
type ProxyAddress = Result<SocketAddr, String>;

/// Runs probes. Cheap to share: clone the `Arc`.
pub struct Engine {
    proxies: ProxySettings,
    dns: DnsProber,
    tls: TlsProber,
    limits: Limits,
    config: EngineConfig,
}

/// Per-host work: whether to resolve, and the checks.
#[derive(Default)]
struct HostWork {
    resolve: bool,
    checks: BTreeSet<Check>,
}

impl Engine {
    /// Builds the resolver and TLS state once for the run.
    /// `proxies` are the run's (the plan's routing): the engine reaches each proxied check
    /// through the one the plan chose for its scheme.
    pub fn new(config: EngineConfig, proxies: ProxySettings) -> Result<Arc<Self>, SetupError> {
        Ok(Arc::new(Engine {
            proxies,
            dns: DnsProber::new(config.dns_server, config.timeout)?,
            tls: TlsProber::new(&config.ca_files)?,
            limits: Limits::new(
                config.concurrency,
                config.dns_concurrency,
                config.per_destination,
                limits::socket_budget(config.dns_concurrency),
            ),
            config,
        }))
    }

    /// The nameservers the resolver queries.
    pub fn nameservers(&self) -> &[String] {
        self.dns.nameservers()
    }

    /// What the resolver was seen doing wrong during the run, once each.
    pub fn dns_warnings(&self) -> Vec<String> {
        self.dns.warnings()
    }

    /// Runs every probe the plan asks for.
    pub async fn execute(self: &Arc<Self>, flows: &[PlannedFlow], progress: ProgressFn) -> Observations {
        let mut work: BTreeMap<String, HostWork> = BTreeMap::new();
        for flow in flows {
            if let FlowPlan::Probe { targets, .. } = &flow.plan {
                for t in targets {
                    let w = work.entry(t.host.clone()).or_default();
                    w.resolve |= t.resolve;
                    w.checks.extend(t.checks.iter().copied());
                }
            }
        }
        progress(ProgressEvent::Planned(
            work.values()
                .map(|w| u64::from(w.resolve) + w.checks.len() as u64)
                .sum(),
        ));
        self.dns.start_server_check();
        let proxies = Arc::new(self.resolve_proxies().await);
        let mut hosts = JoinSet::new();
        for (host, w) in work {
            let (engine, progress, proxies) = (self.clone(), progress.clone(), proxies.clone());
            hosts.spawn(async move { engine.probe_host(host, w, progress, proxies).await });
        }
        let mut observations = Observations::default();
        let deadline = tokio::time::sleep(run_deadline(self.config.timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = hosts.join_next() => match done {
                    None => break,
                    // A probe task only ends early if it panicked; the verdict stage then
                    // reports its checks as not observed rather than taking the run down.
                    Some(Ok((host, dns, conns))) => {
                        observations.dns.extend(dns.map(|d| (host, d)));
                        observations.conns.extend(conns);
                    }
                    Some(Err(_)) => {}
                },
                () = &mut deadline => {
                    observations.unfinished = hosts.len();
                    hosts.abort_all();
                    break;
                }
            }
        }
        observations
    }

    /// Resolves each configured proxy's host once.
    async fn resolve_proxies(&self) -> HashMap<ProxyUrl, ProxyAddress> {
        let mut out = HashMap::new();
        for proxy in [&self.proxies.https, &self.proxies.http].into_iter().flatten() {
            if out.contains_key(proxy) {
                continue;
            }
            let address = match proxy.host.parse::<IpAddr>() {
                Ok(ip) => Ok(SocketAddr::new(ip, proxy.port)),
                Err(_) => match self.dns.resolve_chain(&proxy.host).await.result {
                    Ok(a) => a
                        .addresses
                        .first()
                        .map(|ip| SocketAddr::new(*ip, proxy.port))
                        .ok_or_else(|| "no address".to_string()),
                    Err(failure) => Err(failure.detail),
                },
            };
            out.insert(proxy.clone(), address);
        }
        out
    }

    async fn probe_host(
        self: Arc<Self>,
        host: String,
        work: HostWork,
        progress: ProgressFn,
        proxies: Arc<HashMap<ProxyUrl, ProxyAddress>>,
    ) -> (String, Option<DnsObservation>, Vec<(ConnKey, ConnObservation)>) {
        let dns = if work.resolve {
            let _permit = self.limits.resolve().await;
            let d = self.dns.resolve_chain(&host).await;
            progress(ProgressEvent::Step(format!("resolved {host}")));
            Some(d)
        } else {
            None
        };
        let addresses = dns
            .as_ref()
            .and_then(|d| d.result.as_ref().ok())
            .map(|a| a.addresses.clone())
            .unwrap_or_default();
        let mut probes = JoinSet::new();
        for check in &work.checks {
            for address in peers(*check, &addresses) {
                let (engine, host, check, proxies) = (self.clone(), host.clone(), *check, proxies.clone());
                probes.spawn(async move {
                    let observed = match address {
                        Some(ip) => engine.probe_direct(&host, ip, check).await,
                        None => engine.probe_via_proxy(&host, check, &proxies).await,
                    };
                    (ConnKey { host, address, check }, observed)
                });
            }
        }
        let conns: Vec<_> = probes.join_all().await;
        for check in &work.checks {
            progress(ProgressEvent::Step(format!("{host}:{}", check.port)));
        }
        (host, dns, conns)
    }

    async fn probe_direct(&self, host: &str, address: IpAddr, check: Check) -> ConnObservation {
        let target = SocketAddr::new(address, check.port);
        let timeout = self.config.timeout;
        let _slot = self.limits.destination(address).await;
        if check.protocol == Protocol::Udp {
            return ConnObservation::connected(Reach::Socket(udp::probe(target, self.config.udp_timeout).await));
        }
        let (connect, stream) = tcp::connect(target, timeout).await;
        let mut observed = ConnObservation::connected(Reach::Socket(connect));
        if let Some(stream) = stream {
            self.speak(&mut observed, stream, host, check).await;
        }
        observed
    }

    async fn probe_via_proxy(
        &self,
        host: &str,
        check: Check,
        proxies: &HashMap<ProxyUrl, ProxyAddress>,
    ) -> ConnObservation {
        let timeout = self.config.timeout;
        // The proxy is built for many tunnels and sits inside the network (no SNAT): only the
        // socket budget applies, not the per-destination limit.
        let _socket = self.limits.socket().await;
        let Some(proxy) = self.proxies.for_host(host, check.app == App::Tls).cloned() else {
            return ConnObservation::connected(Reach::NoProxy);
        };
        let resolved = proxies
            .get(&proxy)
            .cloned()
            .unwrap_or_else(|| Err("not resolved".into()));
        let (connect, stream) = match resolved {
            Ok(addr) => {
                let (o, s) = tcp::connect(addr, timeout).await;
                (Reach::Socket(o), s.map(|s| (s, addr)))
            }
            Err(why) => (Reach::ProxyUnresolved(why), None),
        };
        let mut observed = ConnObservation::connected(connect);
        observed.proxy = Some(proxy.clone());
        let Some((mut stream, addr)) = stream else {
            return observed;
        };
        observed.proxy_address = Some(addr);
        if check.app == App::Http {
            // Plain HTTP goes to the proxy as an absolute-form request; no tunnel.
            let auth = proxy
                .authorization()
                .map(|a| format!("Proxy-Authorization: {a}\r\n"))
                .unwrap_or_default();
            let exchange = http::exchange(
                &mut stream,
                &format!("http://{host}:{}/", check.port),
                host,
                &auth,
                timeout,
            )
            .await;
            observed.app = Some(AppObservation::Http {
                exchange,
                to_proxy: true,
            });
            return observed;
        }
        let tunnel = proxy::connect_tunnel(&mut stream, &proxy, host, check.port, timeout).await;
        let open = tunnel.opened();
        observed.tunnel = Some(tunnel);
        if open {
            self.speak(&mut observed, stream, host, check).await;
        }
        observed
    }

    /// The application layer over an open connection (direct or tunnelled).
    async fn speak(&self, observed: &mut ConnObservation, mut stream: TcpStream, host: &str, check: Check) {
        let timeout = self.config.timeout;
        match check.app {
            App::None => {}
            App::Smb => {
                let target = format!("{host}:{}", check.port);
                observed.app = Some(AppObservation::Smb(smb::negotiate(&mut stream, &target, timeout).await));
            }
            App::Http => {
                let exchange = http::exchange(&mut stream, "/", host, "", timeout).await;
                observed.app = Some(AppObservation::Http {
                    exchange,
                    to_proxy: false,
                });
            }
            App::Tls => {
                let (tls, session) = {
                    let _cpu = self.limits.handshake().await;
                    self.tls.handshake(stream, host, timeout).await
                };
                let trusted = tls.trusted();
                observed.tls = Some(tls);
                if let (Some(mut session), true, false) = (session, trusted, check.http == HttpCheck::None) {
                    let exchange = http::exchange(&mut session, "/", host, "", timeout).await;
                    observed.app = Some(AppObservation::Http {
                        exchange,
                        to_proxy: false,
                    });
                }
            }
        }
    }
}
