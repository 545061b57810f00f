//! Command-line definitions (clap). Parsing only records values; `config` validates them.

pub mod defaults;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod packaged;
pub mod progress;
pub mod settings;

use crate::model::context::{Cloud, Resource};
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
    Run(RunCommand),
    /// List suites, flows and the concrete probes they expand to, without sending anything.
    Suites(SuitesArgs),
    /// Run the probes (or take a saved report) and pack what support asks for into a .tar.gz.
    Bundle(BundleArgs),
    /// Compare two reports: which flows changed state. Exit 1 when one got worse.
    Diff(DiffArgs),
    /// Merge reports from many nodes into a node × flow matrix.
    Merge(MergeArgs),
    /// Re-run the suites on an interval; serve /metrics, /healthz and /report over HTTP.
    Serve(ServeArgs),
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
    /// Region of the container registry (or the geo-replica this VNet pulls from), for its
    /// `<registry>.<region>.data` endpoint [default: --region].
    #[arg(long, env = "AMLPROBE_CONTAINER_REGISTRY_REGION", value_name = "REGION")]
    pub container_registry_region: Option<String>,
    /// Compute instance name.
    #[arg(long, env = "AMLPROBE_COMPUTE_INSTANCE", value_name = "NAME")]
    pub compute_instance: Option<String>,
    /// Domain of the compute instance names (`<instance>.<region>.<domain>`), when your private
    /// endpoint lists another one than the cloud's documented default.
    #[arg(long, env = "AMLPROBE_INSTANCES_DOMAIN", value_name = "DOMAIN")]
    pub instances_domain: Option<String>,
    /// First label of the workspace's notebook host, as its private endpoint lists it
    /// (`ml-<name>-<region>-<id>`); derived from name, region and id when absent.
    #[arg(long, env = "AMLPROBE_NOTEBOOK_LABEL", value_name = "LABEL")]
    pub notebook_label: Option<String>,
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
    /// A fact about this deployment that decides whether flows apply (repeatable): FACT or
    /// FACT=no, one of workspace_private_endpoint, registry_data_endpoint, aks_node; it wins
    /// over what ARM, IMDS or the rest of the context imply.
    #[arg(long, env = "AMLPROBE_ASSUME", value_delimiter = ',', value_name = "FACT[=no]")]
    pub assume: Vec<String>,
    /// Suite to run (repeatable) [default: all but those marked `default = false`: arc, aks-training].
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
    /// JUnit XML, one test case per flow, for CI systems.
    Junit,
    /// Prometheus text exposition, for node-exporter's textfile collector.
    Prometheus,
    /// One self-contained HTML page, for a ticket.
    Html,
}

/// Output formats of `suites` and `diff`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Human table.
    #[default]
    Table,
    /// JSON.
    Json,
}

/// Output formats of `merge`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    /// Human table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// A Markdown table to paste into a ticket.
    Markdown,
    /// A self-contained HTML heatmap: flows × node groups.
    Html,
}

/// `amlprobe run`.
#[derive(Debug, Clone, Args)]
#[allow(clippy::struct_excessive_bools, reason = "each bool is an on/off command-line flag")]
pub struct RunArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Deadline per step (DNS, connect, handshake) in seconds [default: 5].
    #[arg(long, env = "AMLPROBE_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<f64>,
    /// TLS handshakes in flight at most, the CPU-heavy step; waits are not limited [default: 64].
    #[arg(long, env = "AMLPROBE_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Connections in flight to one IP address at most (politeness, SNAT ports) [default: 16].
    #[arg(long, env = "AMLPROBE_PER_DESTINATION", value_name = "N")]
    pub per_destination: Option<usize>,
    /// Names being resolved at once at most (politeness towards the resolver) [default: 64].
    #[arg(long, env = "AMLPROBE_DNS_CONCURRENCY", value_name = "N")]
    pub dns_concurrency: Option<usize>,
    /// How long a UDP probe waits for a reply in seconds [default: --timeout, at most 1].
    #[arg(long, env = "AMLPROBE_UDP_TIMEOUT", value_name = "SECS")]
    pub udp_timeout: Option<f64>,
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
    /// Also write the report to this file: HTML when its name ends in .html, else JSON.
    #[arg(long, env = "AMLPROBE_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write each report to DIR/amlprobe-<UTC time>.json and DIR/latest.json.
    #[arg(long, env = "AMLPROBE_REPORT_DIR", value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Reports kept in --report-dir; older ones are deleted [default: 48].
    #[arg(long, env = "AMLPROBE_KEEP_REPORTS", value_name = "N")]
    pub keep_reports: Option<usize>,
    /// Name recorded for this machine in the report [default: the kernel's host name]; in
    /// Kubernetes, the node name from the downward API, so `merge` shows nodes, not pods.
    #[arg(long, env = "AMLPROBE_HOST_NAME", value_name = "NAME")]
    pub host_name: Option<String>,
    /// Inconclusive or skipped required flows also fail the exit code.
    #[arg(long, env = "AMLPROBE_STRICT")]
    pub strict: bool,
    /// No ANSI colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Print only the root causes of required flows and the summary line.
    #[arg(long, short, conflicts_with = "all")]
    pub quiet: bool,
    /// The table lists every flow, grouped by suite, and every root cause in full (by default it
    /// fits on one screen: the causes of required flows and the required flows that fail).
    #[arg(long, short = 'v', visible_short_alias = 'a')]
    pub all: bool,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// Learning the workspace from ARM (`run`, `bundle`, `serve`).
#[derive(Debug, Clone, Default, Args)]
pub struct DiscoveryArgs {
    /// ARM id of the workspace to read facts from
    /// (/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>)
    /// [default: from the Azure ML SDK's config.json in this directory or above].
    #[arg(long, env = "AMLPROBE_WORKSPACE_RESOURCE_ID", value_name = "ID")]
    pub workspace_resource_id: Option<String>,
    /// The Azure ML SDK's config.json naming the workspace.
    #[arg(long, env = "AMLPROBE_WORKSPACE_CONFIG", value_name = "FILE")]
    pub workspace_config: Option<PathBuf>,
    /// Don't read the workspace from ARM: use only what flags and files give.
    #[arg(long, env = "AMLPROBE_NO_DISCOVERY")]
    pub no_discovery: bool,
    /// ARM endpoint [default: the cloud's, e.g. https://management.azure.com].
    #[arg(long, env = "AMLPROBE_ARM_ENDPOINT", value_name = "URL")]
    pub arm_endpoint: Option<String>,
    /// File holding an ARM access token (or set AMLPROBE_ARM_TOKEN); tried before any identity.
    #[arg(long, env = "AMLPROBE_ARM_TOKEN_FILE", value_name = "FILE")]
    pub arm_token_file: Option<PathBuf>,
    /// Client id of the user-assigned managed identity to read ARM with.
    #[arg(long, env = "AMLPROBE_IDENTITY_CLIENT_ID", value_name = "GUID")]
    pub identity_client_id: Option<String>,
}

/// `amlprobe run`: the shared run settings plus what only a one-shot run does.
#[derive(Debug, Clone, Args)]
pub struct RunCommand {
    #[command(flatten)]
    pub run: RunArgs,
    /// Also pack what support asks for (this report, resolver and proxy settings, routes) into
    /// FILE.tar.gz, secrets redacted; as `amlprobe bundle` does.
    #[arg(long, value_name = "FILE.tar.gz")]
    pub bundle: Option<PathBuf>,
}

/// `amlprobe suites`.
#[derive(Debug, Clone, Args)]
pub struct SuitesArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `amlprobe bundle`.
#[derive(Debug, Clone, Args)]
pub struct BundleArgs {
    /// The archive to write (.tar.gz).
    #[arg(value_name = "FILE.tar.gz")]
    pub output: PathBuf,
    /// Pack this saved JSON report instead of probing now.
    #[arg(long, value_name = "REPORT.json")]
    pub from_report: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `amlprobe diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The earlier report (or node A's).
    #[arg(value_name = "OLD.json")]
    pub old: PathBuf,
    /// The later report (or node B's).
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    /// Also list flows that did not change.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `amlprobe merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Report files, or directories whose *.json files are reports.
    #[arg(value_name = "REPORT", required = true)]
    pub paths: Vec<PathBuf>,
    /// Only flows whose result differs between nodes.
    #[arg(long)]
    pub differences: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: MatrixFormat,
}

/// `amlprobe serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve /metrics, /healthz and /report on; loopback unless given (in a pod or for
    /// a scraper on another machine: 0.0.0.0:9477, which also exposes /report, see
    /// --metrics-only and --report-token-file).
    #[arg(long, env = "AMLPROBE_LISTEN", value_name = "ADDR", default_value = defaults::LISTEN)]
    pub listen: String,
    /// Serve /metrics and /healthz only: /report (host names, addresses, proxy settings) is 404.
    #[arg(long, env = "AMLPROBE_METRICS_ONLY", conflicts_with = "report_token_file")]
    pub metrics_only: bool,
    /// /report answers only requests with `Authorization: Bearer <token>`, the token being this
    /// file's contents (surrounding whitespace ignored); others get 401.
    #[arg(long, env = "AMLPROBE_REPORT_TOKEN_FILE", value_name = "FILE")]
    pub report_token_file: Option<PathBuf>,
    /// Time between runs, e.g. 30s, 5m, 1h.
    #[arg(long, env = "AMLPROBE_INTERVAL", value_name = "DURATION", default_value = defaults::INTERVAL)]
    pub interval: String,
    /// Random spread added to each wait (and to the first run), so a fleet doesn't probe in
    /// lockstep [default: a tenth of --interval; 0 for none].
    #[arg(long, env = "AMLPROBE_JITTER", value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Also answer requests whose Host header names NAME (repeatable); IP addresses and
    /// localhost always are, any other name gets 421, so a web page rebound to this address
    /// cannot read the endpoints.
    #[arg(
        long = "allow-host",
        env = "AMLPROBE_ALLOW_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// Accept an --interval below 1s (soak benchmarks only).
    #[arg(long, hide = true)]
    pub no_interval_floor: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Parses `amlprobe <words…>`: the one way unit tests build a command line.
#[cfg(test)]
pub(crate) fn parse_argv<T: Into<std::ffi::OsString>>(words: impl IntoIterator<Item = T>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("amlprobe".into()).chain(words.into_iter().map(Into::into)))
}

/// The run settings of `amlprobe run <words…>`, which must parse.
#[cfg(test)]
pub(crate) fn run_args(words: &[&str]) -> RunArgs {
    let cli =
        parse_argv(std::iter::once("run").chain(words.iter().copied())).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    let Command::Run(run) = cli.command else {
        unreachable!("parsed a run command")
    };
    run.run
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_listens_on_loopback_unless_told_otherwise() {
        let Command::Serve(args) = parse_argv(["serve"]).unwrap().command else {
            unreachable!()
        };
        assert_eq!(args.listen, "127.0.0.1:9477");
        assert!(!args.metrics_only && args.report_token_file.is_none());
        let both = parse_argv(["serve", "--metrics-only", "--report-token-file", "t"]);
        assert!(
            both.is_err(),
            "--metrics-only and --report-token-file exclude each other"
        );
    }
}
