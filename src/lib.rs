//! amlprobe: tells, from inside a VNet, which Azure Machine Learning network flows work and why
//! the others don't.
//!
//! Data flows one way, one folder per stage (docs/architecture.md):
//! [`cli`] (arguments, layered settings) → [`env`] and [`discovery`] (host facts, IMDS, ARM) →
//! [`model`] (context, suites as data, reason codes) → [`plan`] (suite expansion) → [`engine`]
//! (concurrent probes: observations only) → [`verdict`] (the only place reason codes, flow
//! statuses and root causes are decided) → [`report`] (the JSON contract and its renderers) →
//! [`analyze`] (diff and merge of saved reports). [`runner`] ties one run together for the
//! commands in [`cmd`], the only module that prints.

pub mod analyze;
pub mod cli;
pub mod cmd;
pub mod discovery;
pub mod engine;
pub mod env;
pub mod files;
pub mod http_client;
pub mod model;
pub mod plan;
pub mod redact;
pub mod report;
pub mod runner;
pub mod sanitize;
pub mod verdict;
pub mod wire;
