//! TCP: connect to one address with a deadline and tell dropped, refused and unreachable apart.

use super::Observation;
use crate::model::outcome::ReasonCode;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `addr`; on success the stream is handed back for a TLS handshake.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> (Observation, Option<TcpStream>) {
    let start = Instant::now();
    let socket = match new_socket(addr) {
        Ok(s) => s,
        Err(e) => {
            return (
                Observation::fail(
                    ReasonCode::TcpError,
                    format!("cannot create a socket: {e}"),
                    start.elapsed(),
                ),
                None,
            );
        }
    };
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(stream)) => (
            Observation::pass(format!("connected to {addr}"), start.elapsed()),
            Some(stream),
        ),
        Ok(Err(e)) => (classify(addr, &e, start.elapsed()), None),
        Err(_) => (
            Observation::fail(
                ReasonCode::TcpTimeout,
                format!("no answer from {addr} within {timeout:?}: packets are silently dropped"),
                start.elapsed(),
            ),
            None,
        ),
    }
}

fn new_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    // Close with RST so probing many targets leaves no TIME_WAIT sockets behind.
    s.set_linger(Some(Duration::ZERO))?;
    Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(s)))
}

fn classify(addr: SocketAddr, e: &io::Error, elapsed: Duration) -> Observation {
    use io::ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable, PermissionDenied, TimedOut};
    let (reason, message) = match e.kind() {
        ConnectionRefused => (
            ReasonCode::TcpRefused,
            format!("{addr} refused the connection (TCP reset)"),
        ),
        NetworkUnreachable => (
            ReasonCode::TcpUnreachable,
            format!("no route to the network of {addr} from this host"),
        ),
        HostUnreachable => (
            ReasonCode::TcpUnreachable,
            format!("{addr} is unreachable (ICMP unreachable or no route)"),
        ),
        // EPERM / EACCES from connect(): a local netfilter rule said no.
        PermissionDenied => (
            ReasonCode::TcpUnreachable,
            format!("a firewall rule on this host blocks connections to {addr}"),
        ),
        TimedOut => (ReasonCode::TcpTimeout, format!("connecting to {addr} timed out")),
        _ => (ReasonCode::TcpError, format!("connecting to {addr} failed: {e}")),
    };
    Observation::fail(reason, message, elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(errno: i32) -> Option<ReasonCode> {
        let addr: SocketAddr = "10.0.0.4:443".parse().unwrap();
        classify(addr, &io::Error::from_raw_os_error(errno), Duration::ZERO).reason
    }

    #[test]
    fn connect_errors_map_to_their_reason() {
        assert_eq!(reason(111), Some(ReasonCode::TcpRefused)); // ECONNREFUSED
        assert_eq!(reason(101), Some(ReasonCode::TcpUnreachable)); // ENETUNREACH
        assert_eq!(reason(113), Some(ReasonCode::TcpUnreachable)); // EHOSTUNREACH
        assert_eq!(reason(1), Some(ReasonCode::TcpUnreachable)); // EPERM: a local firewall rule
        assert_eq!(reason(110), Some(ReasonCode::TcpTimeout)); // ETIMEDOUT from the kernel
    }

    #[test]
    fn other_connect_errors_are_tcp_error_with_the_os_message() {
        let addr: SocketAddr = "10.0.0.4:443".parse().unwrap();
        let o = classify(addr, &io::Error::from_raw_os_error(99), Duration::ZERO); // EADDRNOTAVAIL
        assert_eq!(o.reason, Some(ReasonCode::TcpError));
        assert!(o.message.contains("10.0.0.4:443"), "{}", o.message);
    }
}
