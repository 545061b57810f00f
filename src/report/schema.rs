//! The JSON contract, in one place: every type a report serialises (schema_version 1). Probes,
//! host facts and verdicts fill these records; renderers read them. `docs/report.schema.json`
//! is generated from them (`UPDATE_SCHEMA=1 cargo test report_schema`), and the testbed checks
//! every report it produces against that file.

use crate::model::context::{Cloud, Resource, WorkspaceContext};
pub use crate::model::outcome::CauseKind;
use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
use crate::model::suite::HttpCheck;
use crate::model::suite::{Direction, Expectation, FlowSpec, HostsMatch, Protocol};
use crate::plan::Route;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Bumped on any incompatible change to the JSON shape. 2: a flow may belong to several root
/// causes (`causes`), causes are grouped by the change to make (new kinds, `destinations`,
/// `resolver`, `commands`).
pub const SCHEMA_VERSION: u32 = 2;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// What each reason code that appears in this report means, so the report explains itself
    /// wherever it is read (`probes/hints.toml`). Reports written before it existed read back
    /// without it.
    #[serde(default)]
    pub reasons: BTreeMap<ReasonCode, ReasonText>,
}

/// The explanation of one reason code.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReasonText {
    /// One line: what was observed.
    pub summary: String,
    /// What usually causes it.
    pub cause: String,
    /// A Microsoft Learn page about it.
    pub learn: Option<String>,
}

/// Tool identity.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Tool {
    /// `amlprobe`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// The machine the probes ran from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Where the proxy in force came from: `--proxy`, the environment variables' names, or on
    /// Windows "Windows Internet Options (ProxyServer)" or "WinHTTP machine proxy (netsh winhttp)";
    /// null when no proxy applied.
    pub proxy_source: Option<String>,
}

/// Counts per flow status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[schemars(deny_unknown_fields)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Whether it fails the run when blocked, in this context.
    pub required: bool,
    /// Why the flow is optional or does not apply here, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicability: Option<String>,
    /// Whether every host must work (`all`) or any one of them (`any`: alternatives).
    #[serde(default, skip_serializing_if = "is_all")]
    pub hosts_match: HostsMatch,
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
    /// The id of the root cause of the observation that decided this flow (blocked and
    /// inconclusive flows).
    pub cause: Option<u32>,
    /// Every root cause this flow is listed under: more than one when independent problems
    /// block it (a dropped port and a missing record), `cause` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<u32>,
    /// The workspace-owned resource behind the flow's hosts, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// Every probe, in order: DNS per host, then per port and address; the probes of
    /// `--compare-direct`'s side path last.
    pub probes: Vec<ProbeReport>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_all(m: &HostsMatch) -> bool {
    *m == HostsMatch::All
}

/// Probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Probed only for `--compare-direct`: the path real clients don't take, never counted in
    /// the flow's verdict or causes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compare_only: bool,
    /// HTTP: status and server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetails>,
}

impl ProbeReport {
    /// A step with its identity and status; reason, message, timing and the kind-specific
    /// details (DNS chain, certificate, HTTP answer) are set by whoever observed them.
    pub fn new(
        kind: ProbeKind,
        host: &str,
        port: Option<u16>,
        address: Option<IpAddr>,
        status: ProbeStatus,
        path: Route,
    ) -> ProbeReport {
        ProbeReport {
            kind,
            host: host.to_string(),
            port,
            address,
            status,
            reason: None,
            message: String::new(),
            hint: None,
            elapsed_ms: 0,
            path,
            proxy: None,
            warning: None,
            expect: None,
            cname_chain: None,
            addresses: None,
            expected_addresses: None,
            tls: None,
            compare_only: false,
            http: None,
        }
    }
}

#[cfg(test)]
impl FlowReport {
    /// A required outbound TCP flow `id` (suite `t`, service tag `Storage`, port 443) over
    /// `probes`: its hosts are theirs, its status and reason those of the first that did not
    /// pass. Tests set the rest with struct update syntax.
    pub fn sample(id: &str, probes: Vec<ProbeReport>) -> FlowReport {
        let culprit = probes.iter().find(|p| p.status != ProbeStatus::Pass);
        let status = match culprit.map(|p| p.status) {
            Some(ProbeStatus::Fail) => FlowStatus::Blocked,
            Some(_) => FlowStatus::Inconclusive,
            None => FlowStatus::Works,
        };
        let mut hosts: Vec<String> = Vec::new();
        for p in &probes {
            if !hosts.contains(&p.host) {
                hosts.push(p.host.clone());
            }
        }
        FlowReport {
            id: id.into(),
            suite: "t".into(),
            title: id.into(),
            direction: Direction::Outbound,
            service_tag: "Storage".into(),
            required: true,
            applicability: None,
            hosts_match: HostsMatch::All,
            scenario: String::new(),
            source: String::new(),
            representative_of: None,
            hosts,
            ports: vec![443],
            protocol: Protocol::Tcp,
            status,
            reason: culprit.and_then(|p| p.reason),
            message: culprit.map(|p| p.message.clone()).unwrap_or_default(),
            hint: culprit.and_then(|p| p.hint.clone()),
            path: Route::Direct,
            direct_path: None,
            private_dns_zone: None,
            cause: None,
            causes: Vec::new(),
            resource: None,
            probes,
        }
    }
}

/// The direct path of a proxied flow, probed because of `--compare-direct`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DirectPath {
    /// What the direct path would give.
    pub status: FlowStatus,
    /// Why, when it is not working.
    pub reason: Option<ReasonCode>,
}

/// One CNAME hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CnameLink {
    /// The alias.
    pub name: String,
    /// Where it points.
    pub target: String,
}

/// What the HTTP step saw.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpDetails {
    /// Status code.
    pub status: u16,
    /// `Server` header.
    pub server: Option<String>,
    /// Whether Azure's headers were present.
    pub azure: bool,
    /// A firewall's denial, when the answer was one (HTTP 470, Azure Firewall's deny text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallDenial>,
    /// Who served a block page in the service's place, when the answer was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_page: Option<String>,
}

/// A firewall that answered in the service's place to say it denies the request, with what its
/// answer names (newer Azure Firewall versions echo the policy and rule).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FirewallDenial {
    /// The deny text as it came (control characters escaped, at most 300 characters).
    pub text: String,
    /// `Policy: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `Rule Collection Group: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_collection_group: Option<String>,
    /// `Rule Collection: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_collection: Option<String>,
    /// `Rule: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// What the server presented.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsDetails {
    /// Negotiated protocol version, e.g. `TLSv1.3`.
    pub version: Option<String>,
    /// Leaf subject.
    pub subject: Option<String>,
    /// Leaf issuer.
    pub issuer: Option<String>,
    /// Leaf subject alternative names.
    pub sans: Vec<String>,
    /// Leaf expiry, RFC 3339.
    pub not_after: Option<String>,
    /// Whether the chain verifies against Mozilla's roots plus `--ca-file`.
    pub trusted_public: bool,
    /// Whether the chain verifies against this machine's OS store plus `--ca-file` (null: no OS store).
    pub trusted_system: Option<bool>,
}

/// What IMDS says about this VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ImdsInfo {
    /// `compute.location`, the region.
    pub location: String,
    /// `compute.name`.
    pub name: String,
    /// `compute.vmId`.
    pub vm_id: String,
    /// `compute.vmSize`.
    pub vm_size: String,
    /// `compute.azEnvironment`, e.g. `AzurePublicCloud`.
    pub az_environment: String,
    /// `compute.resourceId`.
    pub resource_id: String,
    /// Private IPv4 addresses of every NIC.
    pub private_ips: Vec<String>,
    /// Subnets of every NIC, as `address/prefix`.
    pub subnets: Vec<String>,
    /// `compute.vmScaleSetName` (empty for a standalone VM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vm_scale_set_name: String,
    /// The names of the VM's tags (`compute.tagsList[].name`); values are not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_names: Vec<String>,
}

impl ImdsInfo {
    /// Why this VM is an AKS node, when its tags say so: AKS tags what it creates in the node
    /// resource group `aks-managed-*` (azure-aks-docs `aks/faq.yml`, "Azure-created tags … For
    /// AKS, there are the `aks-managed` and `k8s-azure` tags").
    pub fn aks_node(&self) -> Option<String> {
        let tag = self.tag_names.iter().find(|t| t.starts_with("aks-managed"))?;
        Some(format!(
            "IMDS: this VM carries AKS's tag {}",
            crate::sanitize::echo(tag)
        ))
    }

    /// The cloud `azEnvironment` names.
    pub fn cloud(&self) -> Option<Cloud> {
        match self.az_environment.to_ascii_lowercase().as_str() {
            "azurepubliccloud" => Some(Cloud::Public),
            "azureusgovernmentcloud" => Some(Cloud::Usgov),
            "azurechinacloud" => Some(Cloud::China),
            _ => None,
        }
    }
}

/// Resolver facts for the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ResolverSetup {
    /// Search domains from resolv.conf (names are probed fully qualified, so these don't apply).
    pub search_domains: Vec<String>,
    /// systemd-resolved's real upstream servers, when resolv.conf points at its 127.0.0.53 stub.
    pub upstream_nameservers: Vec<String>,
    /// `/etc/hosts` entries for names this run probed: applications see these, not DNS.
    pub hosts_overrides: Vec<HostsOverride>,
}

/// One `/etc/hosts` entry for a probed name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostsOverride {
    /// The name.
    pub name: String,
    /// The address the hosts file gives it.
    pub address: IpAddr,
}

/// Failing flows that one change fixes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RootCause {
    /// 1..n, most important first.
    pub id: u32,
    /// What its flows share.
    pub kind: CauseKind,
    /// The reason code every one of its observations has.
    pub reason: ReasonCode,
    /// The shared thing: a DNS server, zone, issuer, proxy, firewall path, `TCP 445 to
    /// <host>` or `host:port`.
    pub subject: String,
    /// One line: what is wrong.
    pub summary: String,
    /// The change to make.
    pub fix: String,
    /// Commands that make the change, ready to edit: `<placeholders>` stand for names amlprobe
    /// cannot know (resource group, NSG, firewall policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The names the change is about, each with its ports and addresses: the destination, the
    /// names a firewall denies, the names a resolver fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<CauseDestination>,
    /// The resolver that gave the answers, for DNS causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// The service tag a destination's fix names (none for a private endpoint, allowed by its
    /// address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tag: Option<String>,
    /// What Azure's configuration says (read with an ARM token after the probes): the NSG
    /// rule, route, firewall rule, zone record or link, or outbound rule that decides the
    /// cause, in the order Azure applies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub azure: Vec<crate::report::azure::AzureFinding>,
    /// The change that fixes it, written with the names ARM showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<crate::report::azure::Change>,
    /// What the configuration could not tell (a service tag without its prefixes, an FQDN tag,
    /// a next hop that is no readable Azure Firewall): never a guess.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub azure_notes: Vec<String>,
    /// Whether a required flow is among its flows.
    pub required: bool,
    /// How many of its flows are required.
    #[serde(default)]
    pub required_flows: usize,
    /// The flows it explains, in report order.
    pub flows: Vec<String>,
    /// How many probes of those flows observed it.
    pub probes: usize,
}

/// One name a root cause is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CauseDestination {
    /// The name.
    pub host: String,
    /// Transport.
    pub protocol: Protocol,
    /// The ports that failed (empty for DNS).
    pub ports: Vec<u16>,
    /// The addresses that failed (empty for DNS).
    pub addresses: Vec<IpAddr>,
}

/// One resolver's answer for one name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ResolverAnswer {
    /// `address (role)`.
    pub resolver: String,
    /// Why it gave no address, if it didn't.
    pub reason: Option<ReasonCode>,
    /// Addresses.
    pub addresses: Vec<IpAddr>,
    /// CNAME hops.
    pub cname_chain: Vec<CnameLink>,
}

/// One name across all resolvers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Comparison {
    /// The name.
    pub host: String,
    /// What its answer must look like.
    pub expect: Expectation,
    /// Every resolver's answer.
    pub answers: Vec<ResolverAnswer>,
    /// Whether the resolvers agree.
    pub verdict: ResolverVerdict,
    /// What is wrong and what to change, when they diverge.
    pub diagnosis: Option<String>,
}

impl ResolverVerdict {
    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolverVerdict::Consistent => "consistent",
            ResolverVerdict::Diverges => "diverges",
        }
    }
}

/// Whether the compared resolvers agree on a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolverVerdict {
    /// Every resolver gave an acceptable answer, or none did.
    Consistent,
    /// Some gave the expected answer and others did not: a forwarding problem.
    Diverges,
}

/// `amlprobe suites --format json`: what each selected suite would probe for the context,
/// without probing (the testbed builds its worlds from it).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SuitesListing {
    /// The context the suites were rendered with.
    pub context: WorkspaceContext,
    /// Every selected suite.
    pub suites: Vec<ListedSuite>,
}

/// One suite and its expanded flows.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListedSuite {
    /// Suite name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `built-in` or a file path.
    pub origin: String,
    /// Flows applying to the context's cloud.
    pub flows: Vec<ListedFlow>,
}

/// A flow as written and what would happen to it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListedFlow {
    /// Suite name.
    pub suite: String,
    /// The flow as its suite file says (docs/suite-format.md).
    pub spec: FlowSpec,
    /// Whether a blocked flow would fail the run in this context.
    pub required: bool,
    /// The service tag for this context.
    pub service_tag: String,
    /// Why the flow is optional or not applicable here, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicability: Option<String>,
    /// What a run would do with it.
    pub plan: ListedPlan,
}

/// What a run would do with a flow.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ListedPlan {
    /// Probe these targets.
    Probe {
        /// Concrete targets.
        targets: Vec<ListedTarget>,
        /// Rendered private DNS zone.
        private_dns_zone: Option<String>,
    },
    /// Not probed: these flags would enable it.
    MissingContext {
        /// Flags to pass.
        flags: Vec<String>,
    },
    /// Never probed, for this reason.
    NotTestable {
        /// Explanation.
        why: String,
    },
    /// Not probed: a fact the flow depends on does not hold here.
    NotApplicable {
        /// The fact.
        fact: crate::model::facts::Fact,
        /// Why amlprobe holds it false.
        basis: String,
    },
}

/// A concrete host and what a run would check on it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListedTarget {
    /// Host name.
    pub host: String,
    /// Required shape of its DNS answer.
    pub expect: Expectation,
    /// Whether the name is resolved here (not when only a proxy reaches it).
    pub resolve: bool,
    /// Port checks.
    pub checks: Vec<ListedCheck>,
}

/// One port check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListedCheck {
    /// Destination port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// What is spoken after the connect: `none`, `tls`, `http` or `smb`.
    pub app: String,
    /// What the HTTP answer must look like.
    pub http: HttpCheck,
    /// Direct or through the proxy.
    pub route: Route,
}

#[cfg(test)]
mod tests {
    /// The published schema is generated from these types: a changed report shape must come
    /// with a regenerated `docs/report.schema.json` (and, if incompatible, a new SCHEMA_VERSION).
    #[test]
    fn report_schema_file_is_current() {
        // What amlprobe writes (fields skipped when empty are optional), not what it would read.
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<super::Report>();
        let text = serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &text).expect("write docs/report.schema.json");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/report.schema.json is out of date: run UPDATE_SCHEMA=1 cargo test report_schema"
        );
        let listing = schemars::generate::SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<super::SuitesListing>();
        let text = serde_json::to_string_pretty(&listing).expect("a schema serialises") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/suites.schema.json");
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &text).expect("write docs/suites.schema.json");
        }
        assert!(
            std::fs::read_to_string(path).unwrap_or_default() == text,
            "docs/suites.schema.json is out of date: run UPDATE_SCHEMA=1 cargo test report_schema"
        );
    }
}
