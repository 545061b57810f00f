//! The report: the stable JSON contract (schema_version 1) and the data every renderer reads.

pub mod render;
pub mod saved;
pub mod store;

use crate::engine::probe::dns::CnameLink;
use crate::engine::probe::http::HttpDetails;
use crate::engine::probe::tls::TlsDetails;
use crate::env::imds::ImdsInfo;
use crate::env::sysdns::ResolverSetup;
use crate::model::context::WorkspaceContext;
use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::model::suite::{Direction, Expectation, Protocol};
use crate::plan::Route;
pub use crate::verdict::causes::RootCause;
use crate::verdict::resolvers::Comparison;
use serde::Serialize;
use std::net::IpAddr;

/// Bumped on any incompatible change to the JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// JSON contract version.
    pub schema_version: u32,
    /// The tool that wrote it.
    pub tool: Tool,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// The machine it ran on.
    pub host: HostInfo,
    /// Workspace facts the suites were rendered with.
    pub context: WorkspaceContext,
    /// How the run was configured.
    pub settings: Settings,
    /// Counts per flow status.
    pub summary: Summary,
    /// Blocked and inconclusive flows grouped by shared cause, most important first.
    pub root_causes: Vec<RootCause>,
    /// Every flow, in suite order.
    pub flows: Vec<FlowReport>,
    /// Each probed name through each resolver (`--compare-resolvers`; null otherwise).
    pub resolver_comparison: Option<Vec<Comparison>>,
}

/// Tool identity.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// `amlprobe`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// The machine the probes ran from.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// OS pretty name.
    pub os: String,
    /// Nameservers queried.
    pub nameservers: Vec<String>,
    /// What the nameservers were seen doing wrong (e.g. dropping AAAA queries), once each.
    pub dns_warnings: Vec<String>,
    /// Search domains, systemd-resolved upstreams and /etc/hosts overrides.
    pub resolver: ResolverSetup,
    /// Instance metadata, when IMDS answered.
    pub imds: Option<ImdsInfo>,
    /// Why there is no instance metadata (null when it was read or not asked for).
    pub imds_error: Option<String>,
}

/// Engine settings, recorded so a report can be reproduced.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Suites run.
    pub suites: Vec<String>,
    /// Per-step deadline.
    pub timeout_ms: u64,
    /// Parallel probes at most.
    pub concurrency: usize,
    /// `--dns-server`, if given.
    pub dns_server: Option<String>,
    /// Extra trust anchors.
    pub ca_files: Vec<String>,
    /// Extra private ranges.
    pub private_cidrs: Vec<String>,
    /// Whether inconclusive and skipped required flows fail the run.
    pub strict: bool,
}

/// Counts per flow status.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// All flows.
    pub flows: usize,
    /// Working.
    pub works: usize,
    /// Blocked.
    pub blocked: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Skipped for missing context.
    pub skipped: usize,
    /// Not testable from inside.
    pub not_testable: usize,
}

impl Summary {
    /// Counts `flows`.
    pub fn of(flows: &[FlowReport]) -> Self {
        let count = |s: FlowStatus| flows.iter().filter(|f| f.status == s).count();
        Summary {
            flows: flows.len(),
            works: count(FlowStatus::Works),
            blocked: count(FlowStatus::Blocked),
            inconclusive: count(FlowStatus::Inconclusive),
            skipped: count(FlowStatus::Skipped),
            not_testable: count(FlowStatus::NotTestable),
        }
    }
}

/// One flow's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    /// Flow id.
    pub id: String,
    /// Suite name.
    pub suite: String,
    /// Human title.
    pub title: String,
    /// Outbound or inbound.
    pub direction: Direction,
    /// Service tag that allows it.
    pub service_tag: String,
    /// Whether it fails the run when blocked.
    pub required: bool,
    /// Scenario that needs it.
    pub scenario: String,
    /// Document and section it comes from.
    pub source: String,
    /// The documented wildcard the probed host stands for.
    pub representative_of: Option<String>,
    /// Host names probed (templates when context is missing).
    pub hosts: Vec<String>,
    /// Ports checked.
    pub ports: Vec<u16>,
    /// Transport.
    pub protocol: Protocol,
    /// The verdict.
    pub status: FlowStatus,
    /// Reason of the first probe that did not pass (or `missing_context`).
    pub reason: Option<ReasonCode>,
    /// What happened, in one line.
    pub message: String,
    /// What to change, for the first problem.
    pub hint: Option<String>,
    /// The path the verdict is about: `proxy` when a proxy applies to the flow.
    pub path: Route,
    /// The direct path's verdict for a proxied flow (with `--compare-direct`).
    pub direct_path: Option<DirectPath>,
    /// The private DNS zone that should hold the flow's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_dns_zone: Option<String>,
    /// The id of the root cause that explains this flow (blocked and inconclusive flows).
    pub cause: Option<u32>,
    /// Every probe, in order: DNS per host, then per port and address.
    pub probes: Vec<ProbeReport>,
}

/// Probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Name resolution.
    Dns,
    /// TCP connect.
    Tcp,
    /// TLS handshake.
    Tls,
    /// UDP datagram.
    Udp,
    /// The proxy's answer to CONNECT.
    Proxy,
    /// HTTP request.
    Http,
    /// SMB2 negotiation.
    Smb,
}

/// One probe's result.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// What kind of step.
    pub kind: ProbeKind,
    /// Host name.
    pub host: String,
    /// Port (null for DNS).
    pub port: Option<u16>,
    /// Address contacted, where one was.
    pub address: Option<IpAddr>,
    /// Step result.
    pub status: ProbeStatus,
    /// Why it did not pass.
    pub reason: Option<ReasonCode>,
    /// Human detail.
    pub message: String,
    /// What to change.
    pub hint: Option<String>,
    /// Step duration.
    pub elapsed_ms: u64,
    /// Whether the probe went straight to the target or through the proxy.
    pub path: Route,
    /// The proxy used, credentials redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Something that works today but is fragile (e.g. a private answer without privatelink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// DNS: required answer shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// DNS: CNAME hops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cname_chain: Option<Vec<CnameLink>>,
    /// DNS: every address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<IpAddr>>,
    /// DNS: the exact addresses expected (from --expect-ip / --private-endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_addresses: Option<Vec<IpAddr>>,
    /// TLS: the presented certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetails>,
    /// HTTP: status and server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetails>,
}

/// The direct path of a proxied flow, probed because of `--compare-direct`.
#[derive(Debug, Clone, Serialize)]
pub struct DirectPath {
    /// What the direct path would give.
    pub status: FlowStatus,
    /// Why, when it is not working.
    pub reason: Option<ReasonCode>,
}

/// Process exit codes (documented in the README).
pub mod exit {
    /// Every required flow works.
    pub const OK: u8 = 0;
    /// At least one required flow is blocked (or, with --strict, not proven to work).
    pub const BLOCKED: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// Internal error.
    pub const INTERNAL: u8 = 3;
}

impl ProbeKind {
    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Dns => "dns",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Tls => "tls",
            ProbeKind::Udp => "udp",
            ProbeKind::Proxy => "proxy",
            ProbeKind::Http => "http",
            ProbeKind::Smb => "smb",
        }
    }
}

impl Report {
    /// Whether `flow` makes the run fail: a required flow that is blocked, or with `--strict`
    /// one that was not proven to work.
    pub fn fails_run(&self, flow: &FlowReport) -> bool {
        flow.required
            && match flow.status {
                FlowStatus::Blocked => true,
                FlowStatus::Inconclusive | FlowStatus::Skipped => self.settings.strict,
                FlowStatus::Works | FlowStatus::NotTestable => false,
            }
    }

    /// The exit code this report calls for.
    pub fn exit_code(&self) -> u8 {
        if self.flows.iter().any(|f| self.fails_run(f)) {
            exit::BLOCKED
        } else {
            exit::OK
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}

/// A small report with one working and one blocked flow, for renderer tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    fn probe(
        kind: ProbeKind,
        host: &str,
        port: Option<u16>,
        status: ProbeStatus,
        reason: Option<ReasonCode>,
    ) -> ProbeReport {
        ProbeReport {
            kind,
            host: host.into(),
            port,
            address: port.map(|_| "10.0.0.5".parse().unwrap()),
            status,
            reason,
            message: format!("{} {}", kind.as_str(), status.as_str()),
            hint: None,
            elapsed_ms: 12,
            path: Route::Direct,
            proxy: None,
            warning: None,
            expect: None,
            cname_chain: None,
            addresses: None,
            expected_addresses: None,
            tls: None,
            http: None,
        }
    }

    fn flow(id: &str, host: &str, status: FlowStatus, reason: Option<ReasonCode>) -> FlowReport {
        let (tcp_status, hint) = match reason {
            None => (ProbeStatus::Pass, None),
            Some(_) => (
                ProbeStatus::Fail,
                Some("Allow TCP 443 to Storage in the NSG.".to_string()),
            ),
        };
        FlowReport {
            id: id.into(),
            suite: "w".into(),
            title: format!("Title of {id} & <co>"),
            direction: Direction::Outbound,
            service_tag: "Storage".into(),
            required: true,
            scenario: "always".into(),
            source: "seed".into(),
            representative_of: None,
            hosts: vec![host.into()],
            ports: vec![443],
            protocol: Protocol::Tcp,
            status,
            reason,
            message: reason.map_or("works".into(), |r| format!("{host}:443 {r}")),
            hint: hint.clone(),
            path: Route::Direct,
            direct_path: None,
            private_dns_zone: None,
            cause: reason.map(|_| 1),
            probes: vec![
                probe(ProbeKind::Dns, host, None, ProbeStatus::Pass, None),
                probe(ProbeKind::Tcp, host, Some(443), tcp_status, reason),
            ],
        }
    }

    /// `w.api` works, `w.blob` is blocked by `tcp_timeout`.
    pub fn sample_report() -> Report {
        let flows = vec![
            flow("w.api", "api.example", FlowStatus::Works, None),
            flow(
                "w.blob",
                "sa.blob.core.windows.net",
                FlowStatus::Blocked,
                Some(ReasonCode::TcpTimeout),
            ),
        ];
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "amlprobe".into(),
                version: "0.1.0".into(),
            },
            started_at: "2026-11-18T11:06:40Z".into(),
            duration_ms: 1500,
            host: HostInfo {
                hostname: "node-a".into(),
                os: "Linux".into(),
                nameservers: vec!["10.0.0.4".into()],
                dns_warnings: vec![],
                resolver: ResolverSetup::default(),
                imds: None,
                imds_error: None,
            },
            context: WorkspaceContext::default(),
            settings: Settings {
                suites: vec!["w".into()],
                timeout_ms: 5000,
                concurrency: 64,
                dns_server: None,
                ca_files: vec![],
                private_cidrs: vec![],
                strict: false,
            },
            summary: Summary::of(&flows),
            root_causes: vec![RootCause {
                id: 1,
                kind: crate::verdict::causes::CauseKind::Destination,
                reason: ReasonCode::TcpTimeout,
                subject: "TCP 443 to Storage".into(),
                summary: "TCP 443 to Storage is silently dropped".into(),
                fix: "Allow TCP 443 to Storage in the NSG.".into(),
                required: true,
                flows: vec!["w.blob".into()],
                probes: 1,
            }],
            flows,
            resolver_comparison: None,
        }
    }
}
