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
    /// The suite selection names no known suite.
    #[error("{0}")]
    Suites(String),
}
