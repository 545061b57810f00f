//! UDP: send one datagram and wait for a reply, recording a reply, an ICMP error or silence.

use super::{SocketObservation, SocketOutcome};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Probes `addr` with a small datagram.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> SocketObservation {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, exchange(addr)).await {
        Ok(Ok(n)) => SocketOutcome::Replied(n),
        Ok(Err(e)) => SocketOutcome::from_udp_error(&e),
        Err(_) => SocketOutcome::Silent,
    };
    SocketObservation {
        peer: addr,
        outcome,
        waited: timeout,
        elapsed: start.elapsed(),
    }
}

async fn exchange(addr: SocketAddr) -> io::Result<usize> {
    let local: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await?;
    // A connected socket is what lets the kernel report ICMP unreachable back to us.
    socket.connect(addr).await?;
    socket.send(b"amlprobe\n").await?;
    let mut buf = [0u8; 512];
    // An ICMP unreachable sets the socket error, which wakes this recv with ECONNREFUSED
    // (WSAECONNRESET on Windows).
    socket.recv(&mut buf).await
}
