//! The verdict on one step of a probe (a lookup, a connect, a handshake, a request): what every
//! classifier in this folder returns, and what a `ProbeReport` is built from.

use crate::model::outcome::{ProbeStatus, ReasonCode};
use std::time::Duration;

/// One step, judged.
#[derive(Debug, Clone)]
pub struct StepVerdict {
    /// Pass, fail or inconclusive.
    pub status: ProbeStatus,
    /// Why it did not pass.
    pub reason: Option<ReasonCode>,
    /// Human detail.
    pub message: String,
    /// Time the step took.
    pub elapsed: Duration,
}

impl StepVerdict {
    /// A passing step.
    pub fn pass(message: impl Into<String>, elapsed: Duration) -> Self {
        StepVerdict {
            status: ProbeStatus::Pass,
            reason: None,
            message: message.into(),
            elapsed,
        }
    }

    /// A failing step.
    pub fn fail(reason: ReasonCode, message: impl Into<String>, elapsed: Duration) -> Self {
        StepVerdict {
            status: ProbeStatus::Fail,
            reason: Some(reason),
            message: message.into(),
            elapsed,
        }
    }

    /// A step that could not conclude.
    pub fn inconclusive(reason: ReasonCode, message: impl Into<String>, elapsed: Duration) -> Self {
        StepVerdict {
            status: ProbeStatus::Inconclusive,
            reason: Some(reason),
            message: message.into(),
            elapsed,
        }
    }
}
