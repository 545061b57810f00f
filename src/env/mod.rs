//! Facts about the machine amlprobe runs on: Azure instance metadata (IMDS) and the DMI tag
//! that says this is an Azure VM, the resolver setup (resolv.conf, systemd-resolved, hosts) and
//! host identity. Read once per run, never judged here.

pub mod hostinfo;
pub mod imds;
pub mod sysdns;
