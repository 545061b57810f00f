//! Process exit codes (documented in the README): what cloud-init, Kubernetes and scripts read,
//! and the one rule that decides whether a run failed.

use crate::model::outcome::FlowStatus;

/// Every required flow works.
pub const OK: u8 = 0;
/// At least one required flow is blocked (or, with --strict, not proven to work).
pub const BLOCKED: u8 = 1;
/// Usage or configuration error.
pub const USAGE: u8 = 2;
/// Internal error.
pub const INTERNAL: u8 = 3;

/// Whether a flow makes its run fail: a required flow that is blocked, or, with `--strict`, one
/// that was not proven to work. `run`'s exit code, the renderers' failures and `merge`'s exit
/// code all ask this.
pub fn fails_run(required: bool, status: FlowStatus, strict: bool) -> bool {
    required
        && match status {
            FlowStatus::Blocked => true,
            FlowStatus::Inconclusive | FlowStatus::Skipped => strict,
            FlowStatus::Works | FlowStatus::NotTestable => false,
        }
}

/// The exit code of a run whose flows are `(required, status)`, run with or without `--strict`.
pub fn of_run(flows: impl IntoIterator<Item = (bool, FlowStatus)>, strict: bool) -> u8 {
    if flows
        .into_iter()
        .any(|(required, status)| fails_run(required, status, strict))
    {
        BLOCKED
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_required_flows_fail_and_strict_adds_the_unproven() {
        use FlowStatus::{Blocked, Inconclusive, NotTestable, Skipped, Works};
        for (required, status, strict, fails) in [
            (true, Blocked, false, true),
            (false, Blocked, true, false),
            (true, Inconclusive, false, false),
            (true, Inconclusive, true, true),
            (true, Skipped, false, false),
            (true, Skipped, true, true),
            (false, Skipped, true, false),
            (true, Works, true, false),
            (true, NotTestable, true, false),
        ] {
            assert_eq!(
                fails_run(required, status, strict),
                fails,
                "{required} {status:?} strict={strict}"
            );
        }
        assert_eq!(of_run([(true, Works), (true, Skipped)], false), OK);
        assert_eq!(of_run([(true, Works), (true, Skipped)], true), BLOCKED);
        assert_eq!(of_run([], true), OK);
    }
}
