//! Process exit codes (documented in the README): what cloud-init, Kubernetes and scripts read.

/// Every required flow works.
pub const OK: u8 = 0;
/// At least one required flow is blocked (or, with --strict, not proven to work).
pub const BLOCKED: u8 = 1;
/// Usage or configuration error.
pub const USAGE: u8 = 2;
/// Internal error.
pub const INTERNAL: u8 = 3;
