//! What the tool knows before it sends anything: the workspace context, suites as data, the
//! reason-code vocabulary, templates, expected private-endpoint addresses, address ranges and
//! proxy settings. No I/O beyond parsing.

pub mod context;
pub mod duration;
pub mod endpoints;
pub mod exit;
pub mod facts;
pub mod netaddr;
pub mod outcome;
pub mod proxy;
pub mod setting;
pub mod suite;
pub mod template;
pub mod values;
