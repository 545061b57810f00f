//! amlprobe: tells, from inside a VNet, which Azure Machine Learning network flows work and why
//! the others don't.
//!
//! Data flows one way, one folder per stage (docs/architecture.md):
//! `cli` (arguments, layered settings) → `env` and `discovery` (host facts, IMDS, ARM) →
//! `model` (context, suites as data, reason codes) → `plan` (suite expansion) → `engine`
//! (concurrent probes: observations only) → `verdict` (the only place reason codes, flow
//! statuses and root causes are decided) → `report` (the JSON contract and its renderers) →
//! `analyze` (diff and merge of saved reports). `runner` ties one run together for the
//! commands in `cmd`, the only module that prints.
//!
//! The crate serves one binary, so every module is `pub(crate)`: the compiler then reports any
//! item nothing uses, and the public surface is the one function `main.rs` calls. Read the
//! internals with `cargo doc --document-private-items --open`.

pub(crate) mod analyze;
pub(crate) mod attribution;
pub(crate) mod cli;
pub(crate) mod cmd;
pub(crate) mod discovery;
pub(crate) mod engine;
pub(crate) mod env;
pub(crate) mod files;
pub(crate) mod http_client;
#[cfg(test)]
mod layers;
pub(crate) mod model;
pub(crate) mod plan;
pub(crate) mod redact;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod sanitize;
pub(crate) mod verdict;
pub(crate) mod wire;

/// Runs the command line in `std::env::args` and returns the exit code the README documents
/// (0 every required flow works, 1 a required flow is blocked, 2 bad input, 3 internal error).
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     amlprobe::main()
/// }
/// ```
pub use cmd::main;
