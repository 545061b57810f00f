//! The probes: each observes one step against one target and returns data, never prints.

pub mod dns;
pub mod http;
pub mod proxy;
pub mod smb;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// What a socket-level step (a TCP connect, a UDP exchange) saw, in the kernel's terms. What it
/// means for the flow is decided in `verdict::socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketOutcome {
    /// TCP: the handshake completed.
    Connected,
    /// UDP: this many bytes came back.
    Replied(usize),
    /// A TCP reset, or for UDP an ICMP port unreachable.
    Refused,
    /// No route to the peer's network (`ENETUNREACH`).
    NetworkUnreachable,
    /// The peer is unreachable (`EHOSTUNREACH`: ICMP host unreachable or no route).
    HostUnreachable,
    /// A local netfilter rule refused the packet (`EPERM` / `EACCES`).
    LocalFirewall,
    /// The kernel gave up (`ETIMEDOUT`).
    KernelTimeout,
    /// Nothing came back before our deadline.
    Silent,
    /// Any other socket error, with the OS's words.
    Failed(String),
}

impl SocketOutcome {
    /// The outcome an OS error stands for.
    pub fn from_error(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => SocketOutcome::Refused,
            io::ErrorKind::NetworkUnreachable => SocketOutcome::NetworkUnreachable,
            io::ErrorKind::HostUnreachable => SocketOutcome::HostUnreachable,
            io::ErrorKind::PermissionDenied => SocketOutcome::LocalFirewall,
            io::ErrorKind::TimedOut => SocketOutcome::KernelTimeout,
            _ => SocketOutcome::Failed(e.to_string()),
        }
    }

    /// [`SocketOutcome::from_error`] for a connected UDP socket. Windows reports an ICMP port
    /// unreachable as WSAECONNRESET on the next receive (Microsoft Learn, `recv`, WSAECONNRESET:
    /// "For a UDP datagram socket, this error indicates a previous send operation resulted in an
    /// ICMP Port Unreachable message"), where Linux gives ECONNREFUSED.
    pub fn from_udp_error(e: &io::Error) -> Self {
        if cfg!(windows) && e.kind() == io::ErrorKind::ConnectionReset {
            return SocketOutcome::Refused;
        }
        SocketOutcome::from_error(e)
    }
}

/// The OS error numbers the socket tests feed in: errno on Unix, Winsock codes on Windows.
#[cfg(test)]
pub(crate) mod os_error {
    #[cfg(unix)]
    pub const REFUSED: i32 = 111; // ECONNREFUSED
    #[cfg(windows)]
    pub const REFUSED: i32 = 10061; // WSAECONNREFUSED
    #[cfg(unix)]
    pub const NET_UNREACHABLE: i32 = 101; // ENETUNREACH
    #[cfg(windows)]
    pub const NET_UNREACHABLE: i32 = 10051; // WSAENETUNREACH
    #[cfg(unix)]
    pub const HOST_UNREACHABLE: i32 = 113; // EHOSTUNREACH
    #[cfg(windows)]
    pub const HOST_UNREACHABLE: i32 = 10065; // WSAEHOSTUNREACH
    /// What a local firewall rule gives: EPERM from netfilter, WSAEACCES from Windows Firewall.
    #[cfg(unix)]
    pub const FORBIDDEN: i32 = 1;
    #[cfg(windows)]
    pub const FORBIDDEN: i32 = 10013;
    #[cfg(unix)]
    pub const TIMED_OUT: i32 = 110; // ETIMEDOUT
    #[cfg(windows)]
    pub const TIMED_OUT: i32 = 10060; // WSAETIMEDOUT
    #[cfg(unix)]
    pub const ADDR_NOT_AVAILABLE: i32 = 99; // EADDRNOTAVAIL
    #[cfg(windows)]
    pub const ADDR_NOT_AVAILABLE: i32 = 10049; // WSAEADDRNOTAVAIL
    #[cfg(unix)]
    pub const RESET: i32 = 104; // ECONNRESET
    #[cfg(windows)]
    pub const RESET: i32 = 10054; // WSAECONNRESET
}

/// One socket-level step against one peer.
#[derive(Debug, Clone)]
pub struct SocketObservation {
    /// Who was contacted.
    pub peer: SocketAddr,
    /// What happened.
    pub outcome: SocketOutcome,
    /// The deadline that applied.
    pub waited: Duration,
    /// Time the step took.
    pub elapsed: Duration,
}

/// Library setup errors: the run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The system resolver configuration could not be read.
    #[error("cannot use the system resolver configuration ({0}); pass --dns-server IP")]
    ResolverConfig(String),
    /// The DNS resolver could not be built.
    #[error("cannot build the DNS resolver: {0}")]
    Resolver(String),
    /// A trust anchor file could not be used.
    #[error("--ca-file {file}: {message}")]
    CaFile {
        /// The path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The TLS configuration could not be built.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
}

impl SetupError {
    /// The exit code it calls for: the user's input (a CA file, a resolver setup a flag can
    /// replace) is a usage error; the rest is internal.
    pub fn exit_code(&self) -> u8 {
        use crate::model::exit;
        match self {
            SetupError::ResolverConfig(_) | SetupError::CaFile { .. } => exit::USAGE,
            SetupError::Resolver(_) | SetupError::Tls(_) => exit::INTERNAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::exit;

    #[test]
    fn setup_errors_carry_their_exit_code() {
        let ca = SetupError::CaFile {
            file: "x.pem".into(),
            message: "holds no PEM certificates".into(),
        };
        assert_eq!(ca.exit_code(), exit::USAGE);
        assert_eq!(
            SetupError::ResolverConfig("no nameserver".into()).exit_code(),
            exit::USAGE
        );
        assert_eq!(SetupError::Tls("no provider".into()).exit_code(), exit::INTERNAL);
        assert_eq!(SetupError::Resolver("x".into()).exit_code(), exit::INTERNAL);
    }
}
