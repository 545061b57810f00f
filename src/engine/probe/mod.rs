//! The probes: each observes one step against one target and returns data, never prints.

pub mod dns;
pub mod http;
pub mod proxy;
pub mod smb;
pub mod tcp;
pub mod tls;
pub mod udp;

use crate::model::outcome::{ProbeStatus, ReasonCode};
use std::time::Duration;

/// What one step observed.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Pass, fail or inconclusive.
    pub status: ProbeStatus,
    /// Why it did not pass.
    pub reason: Option<ReasonCode>,
    /// Human detail.
    pub message: String,
    /// Time the step took.
    pub elapsed: Duration,
}

impl Observation {
    /// A passing step.
    pub fn pass(message: impl Into<String>, elapsed: Duration) -> Self {
        Observation {
            status: ProbeStatus::Pass,
            reason: None,
            message: message.into(),
            elapsed,
        }
    }

    /// A failing step.
    pub fn fail(reason: ReasonCode, message: impl Into<String>, elapsed: Duration) -> Self {
        Observation {
            status: ProbeStatus::Fail,
            reason: Some(reason),
            message: message.into(),
            elapsed,
        }
    }

    /// A step that could not conclude.
    pub fn inconclusive(reason: ReasonCode, message: impl Into<String>, elapsed: Duration) -> Self {
        Observation {
            status: ProbeStatus::Inconclusive,
            reason: Some(reason),
            message: message.into(),
            elapsed,
        }
    }
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
        use crate::report::exit;
        match self {
            SetupError::ResolverConfig(_) | SetupError::CaFile { .. } => exit::USAGE,
            SetupError::Resolver(_) | SetupError::Tls(_) => exit::INTERNAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::exit;

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
