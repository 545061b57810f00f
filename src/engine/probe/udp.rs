//! UDP: send one datagram and wait for a reply. Silence proves nothing (many services ignore
//! unknown datagrams), so only a reply passes and only an ICMP unreachable fails.

use super::Observation;
use crate::model::outcome::ReasonCode;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Probes `addr` with a small datagram.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Observation {
    let start = Instant::now();
    match tokio::time::timeout(timeout, exchange(addr)).await {
        Ok(Ok(n)) => Observation::pass(format!("{addr} replied with {n} bytes"), start.elapsed()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Observation::fail(
            ReasonCode::UdpRefused,
            format!("{addr} answered with ICMP port unreachable: nothing listens there or a firewall rejects it"),
            start.elapsed(),
        ),
        // Routing or a local firewall said no.
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable | io::ErrorKind::PermissionDenied
            ) =>
        {
            Observation::fail(
                ReasonCode::UdpRefused,
                format!("{addr} is unreachable: {e}"),
                start.elapsed(),
            )
        }
        Ok(Err(e)) => Observation::inconclusive(
            ReasonCode::UdpNoReply,
            format!("sending to {addr} failed: {e}"),
            start.elapsed(),
        ),
        Err(_) => Observation::inconclusive(
            ReasonCode::UdpNoReply,
            format!(
                "no reply from {addr} within {timeout:?} (--udp-timeout); UDP services often stay silent, so this is not proof of a block"
            ),
            start.elapsed(),
        ),
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
    // An ICMP unreachable sets the socket error, which wakes this recv with ECONNREFUSED.
    socket.recv(&mut buf).await
}
