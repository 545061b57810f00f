//! Facts about the machine amlprobe runs on: Azure instance metadata (IMDS) and the DMI/SMBIOS
//! tag that says this is an Azure VM, the resolver setup (resolv.conf, systemd-resolved, hosts;
//! on Windows the adapters' DNS and the hosts file), the proxy settings of the machine, host
//! identity, the environment and the SDK config near the working directory. Read once per run,
//! never judged here; `host.rs` gathers what settings depend on.

pub mod host;
pub mod hostinfo;
pub mod imds;
#[cfg(any(windows, test))]
pub mod smbios;
pub mod sysdns;
pub mod sysproxy;
#[cfg(windows)]
mod winreg;
pub mod workdir;
