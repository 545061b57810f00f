//! amlprobe: tells, from inside a VNet, which Azure Machine Learning network flows work and why
//! the others don't.
//!
//! Data flows one way: [`cli`] → [`config`] (validated settings and [`context`]) → [`suite`]
//! (flows as data) → [`plan`] (templates rendered) → [`engine`] (concurrent [`probe`]s) →
//! [`verdict`] (expectations, hints, flow status) → [`causes`] (failures grouped) → [`report`] (JSON contract and renderers).
//! [`runner`] ties one run together for the front ends: `run`, [`bundle`] and [`serve`].
//! Only [`app`] prints.

pub mod app;
pub mod bundle;
pub mod causes;
pub mod cli;
pub mod config;
pub mod context;
pub mod discovery;
pub mod endpoints;
pub mod engine;
pub mod files;
pub mod hostinfo;
pub mod imds;
pub mod limits;
pub mod netaddr;
pub mod outcome;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod resolvers;
pub mod runner;
pub mod sanitize;
pub mod serve;
pub mod suite;
pub mod sysdns;
pub mod template;
pub mod verdict;
