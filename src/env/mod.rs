//! Facts about the machine amlprobe runs on: Azure instance metadata (IMDS) and the DMI tag
//! that says this is an Azure VM, the resolver setup (resolv.conf, systemd-resolved, hosts),
//! host identity, the environment and the SDK config near the working directory. Read once per
//! run, never judged here; `host.rs` gathers what settings depend on.

pub mod host;
pub mod hostinfo;
pub mod imds;
pub mod sysdns;
pub mod workdir;
