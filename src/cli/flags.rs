//! Every setting besides the context values (those are rows of `model::values`), one row each:
//! how it is given on the command line, in the environment and in `--config`. The clap
//! arguments and the config file's keys are built from these rows (`given.rs`); `settings.rs`
//! reads each value by its row. Defaults are in `defaults.rs`, applied after the layers so a
//! value's source stays known.

use crate::model::setting::{Choices, Kind, Setting};

/// `--suite`.
pub const SUITE: Setting = Setting::new(
    "suite",
    "suite",
    "AMLPROBE_SUITE",
    "NAME",
    "Suite to run (repeatable) [default: all but those marked `default = false`: arc, aks-training]",
    Kind::Texts,
);
/// `--suite-file`.
pub const SUITE_FILE: Setting = Setting::new(
    "suite_file",
    "suite-file",
    "AMLPROBE_SUITE_FILE",
    "FILE",
    "Extra suite file in the built-in TOML format (repeatable)",
    Kind::Paths,
);

/// `--timeout`.
pub const TIMEOUT: Setting = Setting::new(
    "timeout",
    "timeout",
    "AMLPROBE_TIMEOUT",
    "SECS",
    "Deadline per step (DNS, connect, handshake) in seconds [default: 5]",
    Kind::Seconds,
);
/// `--concurrency`.
pub const CONCURRENCY: Setting = Setting::new(
    "concurrency",
    "concurrency",
    "AMLPROBE_CONCURRENCY",
    "N",
    "TLS handshakes in flight at most, the CPU-heavy step; waits are not limited [default: 64]",
    Kind::Count,
);
/// `--per-destination`.
pub const PER_DESTINATION: Setting = Setting::new(
    "per_destination",
    "per-destination",
    "AMLPROBE_PER_DESTINATION",
    "N",
    "Connections in flight to one IP address at most (politeness, SNAT ports) [default: 16]",
    Kind::Count,
);
/// `--dns-concurrency`.
pub const DNS_CONCURRENCY: Setting = Setting::new(
    "dns_concurrency",
    "dns-concurrency",
    "AMLPROBE_DNS_CONCURRENCY",
    "N",
    "Names being resolved at once at most (politeness towards the resolver) [default: 64]",
    Kind::Count,
);
/// `--udp-timeout`.
pub const UDP_TIMEOUT: Setting = Setting::new(
    "udp_timeout",
    "udp-timeout",
    "AMLPROBE_UDP_TIMEOUT",
    "SECS",
    "How long a UDP probe waits for a reply in seconds [default: --timeout, at most 1]",
    Kind::Seconds,
);
/// `--dns-server`.
pub const DNS_SERVER: Setting = Setting::new(
    "dns_server",
    "dns-server",
    "AMLPROBE_DNS_SERVER",
    "IP[:PORT]",
    "Resolver to query instead of /etc/resolv.conf",
    Kind::Text,
);
/// `--ca-file`.
pub const CA_FILE: Setting = Setting::new(
    "ca_file",
    "ca-file",
    "AMLPROBE_CA_FILE",
    "PEM",
    "Extra trust anchors (PEM), on top of Mozilla's roots and the OS store (repeatable)",
    Kind::Paths,
);
/// `--private-cidr`.
pub const PRIVATE_CIDR: Setting = Setting::new(
    "private_cidr",
    "private-cidr",
    "AMLPROBE_PRIVATE_CIDR",
    "CIDR",
    "Extra address range that counts as private (repeatable)",
    Kind::Texts,
);
/// `--proxy`.
pub const PROXY: Setting = Setting {
    conflicts_with: Some("no_proxy"),
    ..Setting::new(
        "proxy",
        "proxy",
        "AMLPROBE_PROXY",
        "URL",
        "HTTP proxy for TLS and HTTP probes (http://[user:pass@]host:port); overrides https_proxy etc",
        Kind::Text,
    )
};
/// `--no-proxy` (no variable: `NO_PROXY` is the proxy exceptions' own).
pub const NO_PROXY: Setting = Setting::switch(
    "no_proxy",
    "no-proxy",
    None,
    "Ignore proxy environment variables: probe every target directly",
);
/// `--compare-direct`.
pub const COMPARE_DIRECT: Setting = Setting::switch(
    "compare_direct",
    "compare-direct",
    Some("AMLPROBE_COMPARE_DIRECT"),
    "For proxied targets, also probe the direct path and report both",
);
/// `--expect-ip`.
pub const EXPECT_IP: Setting = Setting::new(
    "expect_ip",
    "expect-ip",
    "AMLPROBE_EXPECT_IP",
    "FQDN=IP",
    "A private-endpoint name and the exact address it must resolve to (repeatable)",
    Kind::Texts,
);
/// `--private-endpoints`.
pub const PRIVATE_ENDPOINTS: Setting = Setting::new(
    "private_endpoints",
    "private-endpoints",
    "AMLPROBE_PRIVATE_ENDPOINTS",
    "FILE",
    "Expected addresses from `az network private-endpoint show` / `az network nic show` JSON, or `fqdn ip` lines",
    Kind::Path,
);
/// `--compare-resolvers`.
pub const COMPARE_RESOLVERS: Setting = Setting::switch(
    "compare_resolvers",
    "compare-resolvers",
    Some("AMLPROBE_COMPARE_RESOLVERS"),
    "Resolve every probed name through each resolver (resolv.conf's, Azure DNS, --dns-server) side by side",
);
/// `--azure-dns`.
pub const AZURE_DNS: Setting = Setting::new(
    "azure_dns",
    "azure-dns",
    "AMLPROBE_AZURE_DNS",
    "IP[:PORT]",
    "Azure DNS address for --compare-resolvers [default: 168.63.129.16, asked only on Azure VMs]",
    Kind::Text,
);
/// `--imds-endpoint`.
pub const IMDS_ENDPOINT: Setting = Setting::new(
    "imds_endpoint",
    "imds-endpoint",
    "AMLPROBE_IMDS_ENDPOINT",
    "URL",
    "Instance metadata endpoint, read for host context and the default region and cloud [default: http://169.254.169.254, asked only on Azure VMs]",
    Kind::Text,
);
/// `--no-imds`.
pub const NO_IMDS: Setting = Setting {
    conflicts_with: Some("imds_endpoint"),
    ..Setting::switch(
        "no_imds",
        "no-imds",
        Some("AMLPROBE_NO_IMDS"),
        "Don't read instance metadata (IMDS)",
    )
};
/// The output formats of `run`, in `Format::ALL` order.
pub const FORMATS: Choices = Choices {
    type_name: "Format",
    names: &["table", "json", "junit", "prometheus", "html"],
    help: &[
        "Human table",
        "The JSON report",
        "JUnit XML, one test case per flow, for CI systems",
        "Prometheus text exposition, for node-exporter's textfile collector",
        "One self-contained HTML page, for a ticket",
    ],
};
/// `--format`.
pub const FORMAT: Setting = Setting::new(
    "format",
    "format",
    "AMLPROBE_FORMAT",
    "FORMAT",
    "Output format on stdout [default: table]",
    Kind::Choice(&FORMATS),
);
/// `--report`.
pub const REPORT: Setting = Setting::new(
    "report",
    "report",
    "AMLPROBE_REPORT",
    "FILE",
    "Also write the report to this file: HTML when its name ends in .html, else JSON",
    Kind::Path,
);
/// `--report-dir`.
pub const REPORT_DIR: Setting = Setting::new(
    "report_dir",
    "report-dir",
    "AMLPROBE_REPORT_DIR",
    "DIR",
    "Also write each report to DIR/amlprobe-<UTC time>.json and DIR/latest.json",
    Kind::Path,
);
/// `--keep-reports`.
pub const KEEP_REPORTS: Setting = Setting::new(
    "keep_reports",
    "keep-reports",
    "AMLPROBE_KEEP_REPORTS",
    "N",
    "Reports kept in --report-dir; older ones are deleted [default: 48]",
    Kind::Count,
);
/// `--host-name`.
pub const HOST_NAME: Setting = Setting::new(
    "host_name",
    "host-name",
    "AMLPROBE_HOST_NAME",
    "NAME",
    "Name recorded for this machine in the report [default: the kernel's host name]; in Kubernetes, the node name from the downward API, so `merge` shows nodes, not pods",
    Kind::Text,
);
/// `--strict`.
pub const STRICT: Setting = Setting::switch(
    "strict",
    "strict",
    Some("AMLPROBE_STRICT"),
    "Inconclusive or skipped required flows also fail the exit code",
);

/// `--workspace-resource-id`.
pub const WORKSPACE_RESOURCE_ID: Setting = Setting::new(
    "workspace_resource_id",
    "workspace-resource-id",
    "AMLPROBE_WORKSPACE_RESOURCE_ID",
    "ID",
    "ARM id of the workspace to read facts from (/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>) [default: from the Azure ML SDK's config.json in this directory or above]",
    Kind::Text,
);
/// `--workspace-config`.
pub const WORKSPACE_CONFIG: Setting = Setting::new(
    "workspace_config",
    "workspace-config",
    "AMLPROBE_WORKSPACE_CONFIG",
    "FILE",
    "The Azure ML SDK's config.json naming the workspace",
    Kind::Path,
);
/// `--no-discovery`.
pub const NO_DISCOVERY: Setting = Setting::switch(
    "no_discovery",
    "no-discovery",
    Some("AMLPROBE_NO_DISCOVERY"),
    "Don't read the workspace from ARM: use only what flags and files give",
);
/// `--arm-endpoint`.
pub const ARM_ENDPOINT: Setting = Setting::new(
    "arm_endpoint",
    "arm-endpoint",
    "AMLPROBE_ARM_ENDPOINT",
    "URL",
    "ARM endpoint [default: the cloud's, e.g. https://management.azure.com]",
    Kind::Text,
);
/// `--arm-token-file`.
pub const ARM_TOKEN_FILE: Setting = Setting::new(
    "arm_token_file",
    "arm-token-file",
    "AMLPROBE_ARM_TOKEN_FILE",
    "FILE",
    "File holding an ARM access token (or set AMLPROBE_ARM_TOKEN); tried before any identity",
    Kind::Path,
);
/// `--identity-client-id`.
pub const IDENTITY_CLIENT_ID: Setting = Setting::new(
    "identity_client_id",
    "identity-client-id",
    "AMLPROBE_IDENTITY_CLIENT_ID",
    "GUID",
    "Client id of the user-assigned managed identity to read ARM with",
    Kind::Text,
);

/// `--attribution-budget`.
pub const ATTRIBUTION_BUDGET: Setting = Setting::new(
    "attribution_budget",
    "attribution-budget",
    "AMLPROBE_ATTRIBUTION_BUDGET",
    "SECS",
    "Time for reading the Azure configuration behind the causes (effective NSG rules and routes, \
     firewall policy, private DNS zones), all reads together, in seconds [default: 10]",
    Kind::Seconds,
);
/// `--no-attribution`.
pub const NO_ATTRIBUTION: Setting = Setting::switch(
    "no_attribution",
    "no-attribution",
    Some("AMLPROBE_NO_ATTRIBUTION"),
    "Don't read the Azure configuration behind the causes: report what the probes saw only",
);

/// Suite selection, after the context values (`run` and `suites`).
pub const SELECTION: &[&Setting] = &[&SUITE, &SUITE_FILE];

/// How `run`, `bundle` and `serve` probe and report, in `--help` order.
pub const RUN: &[&Setting] = &[
    &TIMEOUT,
    &CONCURRENCY,
    &PER_DESTINATION,
    &DNS_CONCURRENCY,
    &UDP_TIMEOUT,
    &DNS_SERVER,
    &CA_FILE,
    &PRIVATE_CIDR,
    &PROXY,
    &NO_PROXY,
    &COMPARE_DIRECT,
    &EXPECT_IP,
    &PRIVATE_ENDPOINTS,
    &COMPARE_RESOLVERS,
    &AZURE_DNS,
    &IMDS_ENDPOINT,
    &NO_IMDS,
    &FORMAT,
    &REPORT,
    &REPORT_DIR,
    &KEEP_REPORTS,
    &HOST_NAME,
    &STRICT,
];

/// Learning the workspace from ARM (`run`, `bundle`, `serve`), in `--help` order.
pub const DISCOVERY: &[&Setting] = &[
    &WORKSPACE_RESOURCE_ID,
    &WORKSPACE_CONFIG,
    &NO_DISCOVERY,
    &ARM_ENDPOINT,
    &ARM_TOKEN_FILE,
    &IDENTITY_CLIENT_ID,
    &ATTRIBUTION_BUDGET,
    &NO_ATTRIBUTION,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;

    #[test]
    fn every_format_has_its_word() {
        assert_eq!(FORMATS.names.len(), Format::ALL.len());
        for (i, format) in Format::ALL.into_iter().enumerate() {
            assert_eq!(Format::from_name(FORMATS.names[i]), Some(format));
        }
        assert_eq!(Format::from_name("xml"), None);
    }
}
