//! What the engine bounds while probing, and why.
//!
//! A pending connect costs a socket and a timer, not CPU: a thousand of them waiting on silently
//! dropped SYNs take one timeout together, so the number of waits in flight is not what is limited.
//! What is:
//!
//! - CPU-heavy work: TLS handshakes in flight (`--concurrency`), so a burst of handshakes neither
//!   starves the runtime nor eats its own deadlines on a small VM;
//! - politeness towards one destination: connections in flight to one IP address
//!   (`--per-destination`). It also caps the SNAT ports a run holds towards one public address
//!   (Azure's default outbound access may give a VM only ~1,000 per destination IP);
//! - politeness towards the resolver: names being resolved at once (`--dns-concurrency`);
//! - file descriptors: sockets in flight stay within the open-file limit, which is raised from its
//!   soft to its hard value first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Descriptors kept out of the socket budget: stdio, the runtime's epoll and wakers, report files,
/// and the resolver's own sockets (counted separately, two queries per name).
const RESERVED_FDS: u64 = 64;
/// Socket budget when the open-file limit is unlimited or unknown.
const MAX_SOCKETS: u64 = 65_536;

/// The engine's limits for one run.
pub struct Limits {
    handshakes: Semaphore,
    resolves: Semaphore,
    sockets: Arc<Semaphore>,
    per_destination: usize,
    destinations: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// Held while a connection to one destination is open; dropping it frees the slot.
pub struct DestinationPermit {
    _destination: OwnedSemaphorePermit,
    _socket: OwnedSemaphorePermit,
}

impl Limits {
    /// `handshakes` TLS handshakes, `resolves` names and `per_destination` connections to one
    /// address in flight at most, and `sockets` sockets in all (each at least 1).
    pub fn new(handshakes: usize, resolves: usize, per_destination: usize, sockets: usize) -> Self {
        Limits {
            handshakes: Semaphore::new(handshakes.max(1)),
            resolves: Semaphore::new(resolves.max(1)),
            sockets: Arc::new(Semaphore::new(sockets.max(1))),
            per_destination: per_destination.max(1),
            destinations: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot to open a connection (TCP or UDP) to `address`.
    pub async fn destination(&self, address: IpAddr) -> DestinationPermit {
        let slots = self
            .destinations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(address)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
            .clone();
        // The destination first: a probe queued behind others to the same address holds no socket.
        let destination = slots.acquire_owned().await.expect("semaphore is never closed");
        DestinationPermit {
            _destination: destination,
            _socket: self.socket().await,
        }
    }

    /// Waits for a socket when the destination needs no politeness slot (a proxy).
    pub async fn socket(&self) -> OwnedSemaphorePermit {
        self.sockets
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed")
    }

    /// Waits for a TLS handshake slot.
    pub async fn handshake(&self) -> SemaphorePermit<'_> {
        self.handshakes.acquire().await.expect("semaphore is never closed")
    }

    /// Waits for a slot to resolve one name.
    pub async fn resolve(&self) -> SemaphorePermit<'_> {
        self.resolves.acquire().await.expect("semaphore is never closed")
    }
}

/// Sockets a run may hold at once: the open-file limit (raised to its hard value once per
/// process) minus what the rest of the process and `resolves` names in flight need.
pub fn socket_budget(resolves: usize) -> usize {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    let limit = *LIMIT.get_or_init(raise_open_files);
    let budget = limit
        .saturating_sub(RESERVED_FDS)
        .saturating_sub(2 * resolves as u64)
        .clamp(16, MAX_SOCKETS);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Windows has no open-file limit on sockets; what runs out first is the dynamic (ephemeral) port
/// range, 49152-65535 by default since Windows Vista and Server 2008 (Microsoft Learn, "The
/// default dynamic port range for TCP/IP has changed"): 16,384 ports.
#[cfg(windows)]
fn raise_open_files() -> u64 {
    16_384
}

/// Raises the soft open-file limit to the hard one; returns the soft limit in force afterwards.
/// A failure (a sandbox refusing setrlimit) keeps the old limit: the budget then follows it.
#[cfg(unix)]
fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(MAX_SOCKETS);
    let hard = current.maximum.unwrap_or(MAX_SOCKETS).min(MAX_SOCKETS + RESERVED_FDS);
    if soft >= hard {
        return soft;
    }
    let raised = rustix::process::Rlimit {
        current: Some(hard),
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => hard,
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Peak of concurrent holders seen by `probes` tasks against `target`.
    async fn peak_in_flight(limits: Arc<Limits>, addresses: Vec<IpAddr>, target: IpAddr) -> usize {
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = tokio::task::JoinSet::new();
        for address in addresses {
            let (limits, now, peak) = (limits.clone(), now.clone(), peak.clone());
            tasks.spawn(async move {
                let _permit = limits.destination(address).await;
                if address == target {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
        tasks.join_all().await;
        peak.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_n_in_flight_to_one_address() {
        let busy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut addresses = vec![busy; 40];
        addresses.extend((2..42).map(|i| IpAddr::from([10, 0, 0, i])));
        let limits = Arc::new(Limits::new(64, 64, 3, 1000));
        assert_eq!(peak_in_flight(limits, addresses, busy).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_addresses_do_not_wait_for_a_busy_one() {
        let busy: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = Arc::new(Limits::new(64, 64, 1, 1000));
        let held = limits.destination(busy).await;
        // With the busy address's only slot held, another address still gets its slot at once.
        let other = tokio::time::timeout(Duration::from_secs(1), limits.destination("10.0.0.2".parse().unwrap())).await;
        assert!(other.is_ok());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limits.destination(busy))
                .await
                .is_err()
        );
        drop(held);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sockets_in_all_stay_within_the_budget() {
        let addresses: Vec<IpAddr> = (1..=60).map(|i| IpAddr::from([10, 0, 1, i])).collect();
        let limits = Arc::new(Limits::new(64, 64, 16, 7));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = tokio::task::JoinSet::new();
        for address in addresses {
            let (limits, now, peak) = (limits.clone(), now.clone(), peak.clone());
            tasks.spawn(async move {
                let _permit = limits.destination(address).await;
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            });
        }
        tasks.join_all().await;
        assert_eq!(peak.load(Ordering::SeqCst), 7);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        let hard = before.maximum.unwrap_or(MAX_SOCKETS).min(MAX_SOCKETS + RESERVED_FDS);
        if hard <= 256 {
            return; // nothing to raise in this sandbox
        }
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(256),
                maximum: before.maximum,
            },
        )
        .unwrap();
        assert_eq!(raise_open_files(), hard);
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
        setrlimit(Resource::Nofile, before).unwrap();
    }
}
