//! TCP: connect to one address with a deadline and record how the connection attempt ended.

use super::{SocketObservation, SocketOutcome};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `addr`; on success the stream is handed back for the next step.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> (SocketObservation, Option<TcpStream>) {
    let start = Instant::now();
    let (outcome, stream) = match new_socket(addr) {
        Err(e) => (SocketOutcome::Failed(format!("cannot create a socket: {e}")), None),
        Ok(socket) => match tokio::time::timeout(timeout, socket.connect(addr)).await {
            Ok(Ok(stream)) => (SocketOutcome::Connected, Some(stream)),
            Ok(Err(e)) => (SocketOutcome::from_error(&e), None),
            Err(_) => (SocketOutcome::Silent, None),
        },
    };
    let observed = SocketObservation {
        peer: addr,
        outcome,
        waited: timeout,
        elapsed: start.elapsed(),
    };
    (observed, stream)
}

fn new_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    // Close with RST so probing many targets leaves no TIME_WAIT sockets behind.
    s.set_linger(Some(Duration::ZERO))?;
    Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_keep_what_the_kernel_said() {
        use crate::engine::probe::os_error::*;
        let outcome = |errno| SocketOutcome::from_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(outcome(REFUSED), SocketOutcome::Refused);
        assert_eq!(outcome(NET_UNREACHABLE), SocketOutcome::NetworkUnreachable);
        assert_eq!(outcome(HOST_UNREACHABLE), SocketOutcome::HostUnreachable);
        assert_eq!(outcome(FORBIDDEN), SocketOutcome::LocalFirewall);
        assert_eq!(outcome(TIMED_OUT), SocketOutcome::KernelTimeout);
        // The OS's words are kept (Wine's have no text for Winsock codes, so not checked here).
        assert!(matches!(outcome(ADDR_NOT_AVAILABLE), SocketOutcome::Failed(m) if !m.is_empty()));
        // A reset is only a refusal on a Windows UDP socket (the ICMP error's form there).
        assert!(matches!(outcome(RESET), SocketOutcome::Failed(_)));
        let udp = SocketOutcome::from_udp_error(&io::Error::from_raw_os_error(RESET));
        assert_eq!(udp == SocketOutcome::Refused, cfg!(windows));
        let udp = SocketOutcome::from_udp_error(&io::Error::from_raw_os_error(REFUSED));
        assert_eq!(udp, SocketOutcome::Refused);
    }

    #[tokio::test]
    async fn a_closed_loopback_port_is_refused_and_an_open_one_connects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let (o, stream) = connect(open, Duration::from_secs(2)).await;
        assert_eq!(o.outcome, SocketOutcome::Connected);
        assert!(stream.is_some());
        drop(listener);
        let (o, stream) = connect(open, Duration::from_secs(2)).await;
        assert_eq!(o.outcome, SocketOutcome::Refused);
        assert!(stream.is_none());
        assert_eq!(o.peer, open);
    }
}
