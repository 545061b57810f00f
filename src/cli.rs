//! Command-line definitions (clap). Parsing only records values; `config` validates them.

use crate::context::{Cloud, Resource};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Tells which Azure Machine Learning network flows work from this machine, and why the others don't.
#[derive(Debug, Parser)]
#[command(name = "amlprobe", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Probe every flow of the selected suites and report which work.
    Run(RunArgs),
    /// List suites, flows and the concrete probes they expand to, without sending anything.
    Suites(SuitesArgs),
}

/// Workspace facts and suite selection, shared by `run` and `suites`.
/// Each flag can also come from the environment (`AMLPROBE_<NAME>`) or a `--config` file.
#[derive(Debug, Clone, Default, Args)]
pub struct ContextArgs {
    /// TOML file with any of these settings (keys as the flag names with '_' for '-').
    #[arg(long, env = "AMLPROBE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Azure cloud of the workspace [default: public].
    #[arg(long, env = "AMLPROBE_CLOUD", value_enum)]
    pub cloud: Option<Cloud>,
    /// Workspace region, e.g. eastus.
    #[arg(long, env = "AMLPROBE_REGION")]
    pub region: Option<String>,
    /// Workspace id (GUID; the workspaceId property, not the ARM resource id).
    #[arg(long, env = "AMLPROBE_WORKSPACE_ID", value_name = "GUID")]
    pub workspace_id: Option<String>,
    /// Workspace name.
    #[arg(long, env = "AMLPROBE_WORKSPACE_NAME", value_name = "NAME")]
    pub workspace_name: Option<String>,
    /// Default storage account name of the workspace.
    #[arg(long, env = "AMLPROBE_STORAGE_ACCOUNT", value_name = "NAME")]
    pub storage_account: Option<String>,
    /// Key vault name of the workspace.
    #[arg(long, env = "AMLPROBE_KEY_VAULT", value_name = "NAME")]
    pub key_vault: Option<String>,
    /// Container registry name of the workspace.
    #[arg(long, env = "AMLPROBE_CONTAINER_REGISTRY", value_name = "NAME")]
    pub container_registry: Option<String>,
    /// Compute instance name.
    #[arg(long, env = "AMLPROBE_COMPUTE_INSTANCE", value_name = "NAME")]
    pub compute_instance: Option<String>,
    /// A workspace resource reached over its public endpoint in this deployment (repeatable);
    /// its names then need not resolve to private addresses.
    #[arg(
        long,
        env = "AMLPROBE_PUBLIC_RESOURCE",
        value_enum,
        value_delimiter = ',',
        value_name = "RESOURCE"
    )]
    pub public_resource: Vec<Resource>,
    /// Suite to run (repeatable) [default: all].
    #[arg(long, env = "AMLPROBE_SUITE", value_delimiter = ',', value_name = "NAME")]
    pub suite: Vec<String>,
    /// Extra suite file in the built-in TOML format (repeatable).
    #[arg(long, env = "AMLPROBE_SUITE_FILE", value_delimiter = ',', value_name = "FILE")]
    pub suite_file: Vec<PathBuf>,
}

/// Output formats of `run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Human table.
    #[default]
    Table,
    /// The JSON report.
    Json,
}

/// `amlprobe run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Deadline per step (DNS, connect, handshake) in seconds [default: 5].
    #[arg(long, env = "AMLPROBE_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Probes in flight at most [default: 64].
    #[arg(long, env = "AMLPROBE_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Resolver to query instead of /etc/resolv.conf.
    #[arg(long, env = "AMLPROBE_DNS_SERVER", value_name = "IP[:PORT]")]
    pub dns_server: Option<String>,
    /// Extra trust anchors (PEM), on top of Mozilla's roots and the OS store (repeatable).
    #[arg(long, env = "AMLPROBE_CA_FILE", value_delimiter = ',', value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Extra address range that counts as private (repeatable).
    #[arg(long, env = "AMLPROBE_PRIVATE_CIDR", value_delimiter = ',', value_name = "CIDR")]
    pub private_cidr: Vec<String>,
    /// HTTP proxy for TLS and HTTP probes (http://[user:pass@]host:port); overrides https_proxy etc.
    #[arg(long, env = "AMLPROBE_PROXY", value_name = "URL", conflicts_with = "no_proxy")]
    pub proxy: Option<String>,
    /// Ignore proxy environment variables: probe every target directly.
    #[arg(long)]
    pub no_proxy: bool,
    /// For proxied targets, also probe the direct path and report both.
    #[arg(long, env = "AMLPROBE_COMPARE_DIRECT")]
    pub compare_direct: bool,
    /// A private-endpoint name and the exact address it must resolve to (repeatable).
    #[arg(long, env = "AMLPROBE_EXPECT_IP", value_delimiter = ',', value_name = "FQDN=IP")]
    pub expect_ip: Vec<String>,
    /// Expected addresses from `az network private-endpoint show` / `az network nic show` JSON, or `fqdn ip` lines.
    #[arg(long, env = "AMLPROBE_PRIVATE_ENDPOINTS", value_name = "FILE")]
    pub private_endpoints: Option<PathBuf>,
    /// Resolve every probed name through each resolver (resolv.conf's, Azure DNS, --dns-server) side by side.
    #[arg(long, env = "AMLPROBE_COMPARE_RESOLVERS")]
    pub compare_resolvers: bool,
    /// Azure DNS address for --compare-resolvers [default: 168.63.129.16, asked only on Azure VMs].
    #[arg(long, env = "AMLPROBE_AZURE_DNS", value_name = "IP[:PORT]")]
    pub azure_dns: Option<String>,
    /// Instance metadata endpoint, read for host context and the default region and cloud
    /// [default: http://169.254.169.254, asked only on Azure VMs].
    #[arg(long, env = "AMLPROBE_IMDS_ENDPOINT", value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// Don't read instance metadata (IMDS).
    #[arg(long, env = "AMLPROBE_NO_IMDS", conflicts_with = "imds_endpoint")]
    pub no_imds: bool,
    /// Output format on stdout [default: table].
    #[arg(long, env = "AMLPROBE_FORMAT", value_enum)]
    pub format: Option<Format>,
    /// Also write the JSON report to this file.
    #[arg(long, env = "AMLPROBE_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Inconclusive or skipped required flows also fail the exit code.
    #[arg(long, env = "AMLPROBE_STRICT")]
    pub strict: bool,
    /// No ANSI colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Print only the summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `amlprobe suites`.
#[derive(Debug, Clone, Args)]
pub struct SuitesArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
