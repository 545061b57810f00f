//! Suites as data: the TOML model of `probes/*.toml`, the per-cloud values and reason hints, and
//! loading them (embedded at build time, or from `--suite-file`) with file:line errors.

use crate::model::context::{Cloud, Resource};
use crate::model::facts::Fact;
use crate::model::outcome::{CauseKind, ReasonCode};
use crate::model::template::{self, Lookup, TemplateError};
use crate::model::values;
use crate::sanitize;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// Files under `probes/`, embedded by build.rs: (file name, contents).
const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_probes.rs"));
const CLOUDS_FILE: &str = "clouds.toml";
/// The most (host, port) pairs one flow may expand to: each is a connection per address, and
/// amlprobe checks a VNet's flows, it does not scan ports.
pub const MAX_PAIRS_PER_FLOW: usize = 1024;
/// The most (host, port) pairs one suite file may expand to in all.
pub const MAX_PAIRS_PER_SUITE: usize = 65_536;
const HINTS_FILE: &str = "hints.toml";

/// Which way traffic flows, seen from the VNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the VNet to a service.
    Outbound,
    /// From a service into the VNet.
    Inbound,
}

/// Transport protocol of a flow.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (and TLS on `tls_ports`).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// Whether an HTTP answer must come from an Azure front end.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HttpCheck {
    /// Any valid HTTP response will do.
    #[default]
    Any,
    /// The response must carry Azure's headers.
    Azure,
    /// Send no HTTP request.
    None,
}

/// How many of a flow's hosts must work for the flow to work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostsMatch {
    /// Every host (the default).
    #[default]
    All,
    /// Any one of them: the hosts are alternatives (a mirror and its fallback, two documented
    /// forms of one name); the report shows each.
    Any,
}

/// What a flow's DNS answer must look like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    /// Any address will do.
    #[default]
    Any,
    /// The name must resolve to a private (private-endpoint) address.
    Private,
}

impl Direction {
    /// The lowercase name as it appears in suites and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

impl Protocol {
    /// The lowercase name as it appears in suites and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Expectation {
    /// The lowercase name as it appears in suites and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Any => "any",
            Expectation::Private => "private",
        }
    }
}

/// One flow as written in a suite file. See docs/suite-format.md.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    /// Unique id, `<suite>.<slug>`.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Outbound or inbound.
    pub direction: Direction,
    /// Service tag that allows the flow in an NSG or Azure Firewall.
    pub service_tag: String,
    /// Whether a blocked flow fails the run.
    pub required: bool,
    /// The documented scenario that needs the flow.
    pub scenario: String,
    /// The document and section the flow comes from.
    pub source: String,
    /// Host templates.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Whether every host must work or any one of them.
    #[serde(default)]
    pub hosts_match: HostsMatch,
    /// Facts the flow depends on: it applies only when every one holds (otherwise it is
    /// skipped as `not_applicable`, naming the fact).
    #[serde(default)]
    pub when: Vec<Fact>,
    /// Clouds where the flow is optional though `required` says otherwise, because no source
    /// settles it there (the `source` field says which).
    #[serde(default)]
    pub optional_in: Vec<Cloud>,
    /// Ports; empty means DNS only.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Transport protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Ports that also get a TLS handshake; defaults to 443 when listed.
    #[serde(default)]
    pub tls_ports: Option<Vec<u16>>,
    /// Ports that speak plain HTTP; defaults to 80 when listed.
    #[serde(default)]
    pub http_ports: Option<Vec<u16>>,
    /// Ports that speak SMB; defaults to 445 when listed.
    #[serde(default)]
    pub smb_ports: Option<Vec<u16>>,
    /// What an HTTP answer (after TLS, or on `http_ports`) must look like.
    #[serde(default)]
    pub http: HttpCheck,
    /// Required shape of the DNS answer.
    #[serde(default)]
    pub expect: Expectation,
    /// The workspace-owned resource behind the hosts, if any.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// The documented wildcard a concrete host stands for.
    #[serde(default)]
    pub representative_of: Option<String>,
    /// Private DNS zone template that should hold the record, for hints.
    #[serde(default)]
    pub private_dns_zone: Option<String>,
    /// Clouds the flow applies to; all when absent.
    #[serde(default)]
    pub clouds: Option<Vec<Cloud>>,
    /// Why the flow cannot be observed from inside the VNet, if it can't.
    #[serde(default)]
    pub not_testable: Option<String>,
}

impl FlowSpec {
    fn ports_or_default(&self, explicit: Option<&Vec<u16>>, default: u16) -> Vec<u16> {
        match explicit {
            Some(p) => p.clone(),
            None if self.protocol == Protocol::Tcp && self.ports.contains(&default) => vec![default],
            None => Vec::new(),
        }
    }

    /// The ports that get a TLS handshake.
    pub fn tls_ports(&self) -> Vec<u16> {
        self.ports_or_default(self.tls_ports.as_ref(), 443)
    }

    /// The ports that get a plain HTTP request.
    pub fn http_ports(&self) -> Vec<u16> {
        self.ports_or_default(self.http_ports.as_ref(), 80)
    }

    /// The ports that get an SMB negotiation.
    pub fn smb_ports(&self) -> Vec<u16> {
        self.ports_or_default(self.smb_ports.as_ref(), 445)
    }

    /// Whether the flow applies to `cloud`.
    pub fn applies_to(&self, cloud: Cloud) -> bool {
        self.clouds.as_ref().is_none_or(|c| c.contains(&cloud))
    }
}

/// Header of a suite file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteMeta {
    /// Name used with `--suite`.
    pub name: String,
    /// Human title.
    pub title: String,
    /// What the suite covers.
    #[serde(default)]
    pub description: String,
    /// Whether the suite runs when no `--suite` is given; `false` for suites that only apply to
    /// some deployments (Azure Arc, Kubernetes training), which run only when named.
    #[serde(default = "default_selected")]
    pub default: bool,
    /// Facts under which the suite also runs when no `--suite` is given (e.g. `aks_node`); a
    /// named suite always runs.
    #[serde(default)]
    pub when: Vec<Fact>,
}

fn default_selected() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    suite: SuiteMeta,
    /// Spanned so errors can name each flow's line without searching the file per flow.
    #[serde(default)]
    flow: Vec<toml::Spanned<FlowSpec>>,
}

/// A loaded suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Header.
    pub meta: SuiteMeta,
    /// Where it came from: `built-in` or a file path.
    pub origin: String,
    /// Its flows, in file order.
    pub flows: Vec<FlowSpec>,
}

/// Root-cause text for one kind of cause and reason code: `[cause.<kind>.<reason>]` in
/// `probes/hints.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseHint {
    /// One line naming the shared cause; a template over the cause's values.
    pub summary: String,
    /// The one change that fixes every flow of the cause; absent: the reason's hint.
    #[serde(default)]
    pub fix: Option<String>,
    /// A destination's fix when it is a private endpoint address (never a public service tag).
    #[serde(default)]
    pub fix_private: Option<String>,
}

/// Explanations for one reason code, from `probes/hints.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonHint {
    /// One line: what was observed.
    pub summary: String,
    /// The usual cause.
    pub cause: String,
    /// The change to make; a template over probe values.
    pub hint: String,
    /// The change to make for a public service name (no private DNS zone, no private answer
    /// expected): never privatelink advice. Absent: `hint`.
    #[serde(default)]
    pub hint_public: Option<String>,
    /// A Microsoft Learn page.
    #[serde(default)]
    pub learn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HintsFile {
    reason: BTreeMap<String, ReasonHint>,
    #[serde(default)]
    cause: BTreeMap<String, BTreeMap<String, CauseHint>>,
}

/// A suite, cloud or hints file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A `--suite-file` could not be read.
    #[error("--suite-file {file}: {source}")]
    Read {
        /// The path.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Syntax or schema error at a line.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The path or embedded name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// All suites plus the per-cloud values and hints they are rendered with.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Suites in load order: built-in first, then user files.
    pub suites: Vec<Suite>,
    /// Per-cloud template values.
    pub clouds: BTreeMap<Cloud, BTreeMap<String, String>>,
    /// Hints per reason code.
    pub hints: BTreeMap<ReasonCode, ReasonHint>,
    /// Root-cause texts per kind of cause and reason code.
    pub causes: BTreeMap<(CauseKind, ReasonCode), CauseHint>,
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `text` a TOML parse error points at (1 when it points nowhere): suites and the
/// `--config` file report errors as `file:line`.
pub fn toml_error_line(text: &str, e: &toml::de::Error) -> usize {
    e.span().map_or(1, |s| line_of(text, s.start))
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, SuiteError> {
    toml::from_str(text).map_err(|e| SuiteError::Invalid {
        file: file.to_string(),
        line: toml_error_line(text, &e),
        message: sanitize::parser_message(e.message().trim()),
    })
}

/// The line of each flow's `id = "<id>"` (else of its `[[flow]]` header), so schema errors point
/// at the flow. One pass over `text`: each flow is looked for only between its own header and the
/// next, which keeps loading linear in the size of the file.
fn flow_lines(text: &str, flows: &[toml::Spanned<FlowSpec>]) -> Vec<usize> {
    let mut lines = Vec::with_capacity(flows.len());
    let (mut pos, mut line) = (0, 1);
    for (i, flow) in flows.iter().enumerate() {
        let start = flow.span().start.clamp(pos, text.len());
        line += text[pos..start].matches('\n').count();
        pos = start;
        let end = flows
            .get(i + 1)
            .map_or(text.len(), |next| next.span().start)
            .clamp(start, text.len());
        let id = &flow.get_ref().id;
        let (double, single) = (format!("\"{id}\""), format!("'{id}'"));
        let offset = text[start..end]
            .lines()
            .position(|l| l.trim_start().starts_with("id") && (l.contains(&double) || l.contains(&single)))
            .unwrap_or(0);
        lines.push(line + offset);
    }
    lines
}

impl Catalog {
    /// The suites, cloud values and hints compiled into the binary.
    pub fn builtin() -> Result<Catalog, SuiteError> {
        let find = |name: &str| {
            EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
                .ok_or_else(|| SuiteError::Invalid {
                    file: format!("probes/{name}"),
                    line: 1,
                    message: "missing from the build".into(),
                })
        };
        let clouds_text = find(CLOUDS_FILE)?;
        let clouds: BTreeMap<Cloud, BTreeMap<String, String>> = parse_toml("probes/clouds.toml", clouds_text)?;
        let hints_text = find(HINTS_FILE)?;
        let (hints, causes) = parse_hints("probes/hints.toml", hints_text)?;
        let mut catalog = Catalog {
            suites: Vec::new(),
            clouds,
            hints,
            causes,
        };
        for (name, text) in EMBEDDED.iter().filter(|(n, _)| *n != CLOUDS_FILE && *n != HINTS_FILE) {
            catalog.add_suite(&format!("probes/{name}"), "built-in", text)?;
        }
        Ok(catalog)
    }

    /// Adds a user suite file (`--suite-file`).
    pub fn add_file(&mut self, path: &Path) -> Result<(), SuiteError> {
        let file = path.display().to_string();
        let text = crate::files::read_text(path).map_err(|source| SuiteError::Read {
            file: file.clone(),
            source,
        })?;
        self.add_suite(&file, &file, &text)
    }

    /// Parses and validates one suite's text and appends it.
    pub fn add_suite(&mut self, file: &str, origin: &str, text: &str) -> Result<(), SuiteError> {
        let parsed: SuiteFile = parse_toml(file, text)?;
        let fail = |line: usize, message: String| SuiteError::Invalid {
            file: file.to_string(),
            line,
            message,
        };
        if !valid_id(&parsed.suite.name) {
            return Err(fail(
                1,
                format!(
                    "suite name '{}' must use only a-z, 0-9, '_', '-', '.'",
                    sanitize::echo(&parsed.suite.name)
                ),
            ));
        }
        if self.suites.iter().any(|s| s.meta.name == parsed.suite.name) {
            return Err(fail(
                1,
                format!("suite '{}' is already defined", sanitize::echo(&parsed.suite.name)),
            ));
        }
        let mut seen: BTreeSet<&str> = self
            .suites
            .iter()
            .flat_map(|s| s.flows.iter().map(|f| f.id.as_str()))
            .collect();
        let lines = flow_lines(text, &parsed.flow);
        let mut pairs = 0;
        for (flow, &line) in parsed.flow.iter().map(toml::Spanned::get_ref).zip(&lines) {
            if !seen.insert(&flow.id) {
                return Err(fail(
                    line,
                    format!("flow id '{}' is already defined", sanitize::echo(&flow.id)),
                ));
            }
            self.check_flow(flow)
                .map_err(|m| fail(line, format!("flow '{}': {m}", sanitize::echo(&flow.id))))?;
            if flow.not_testable.is_none() {
                pairs += flow.hosts.len() * flow.ports.len().max(1);
            }
            if pairs > MAX_PAIRS_PER_SUITE {
                return Err(fail(
                    line,
                    format!(
                        "flow '{}': the suite's flows reach {pairs} host-port pairs here, more than the {MAX_PAIRS_PER_SUITE} a suite file may have; split it into several files",
                        sanitize::echo(&flow.id)
                    ),
                ));
            }
        }
        self.suites.push(Suite {
            meta: parsed.suite,
            origin: origin.to_string(),
            flows: parsed.flow.into_iter().map(toml::Spanned::into_inner).collect(),
        });
        Ok(())
    }

    fn check_flow(&self, flow: &FlowSpec) -> Result<(), String> {
        if !valid_id(&flow.id) {
            return Err("id must use only a-z, 0-9, '_', '-', '.'".into());
        }
        if flow.not_testable.is_some() {
            return Ok(());
        }
        if flow.hosts.is_empty() {
            return Err("needs at least one host (or a not_testable explanation)".into());
        }
        if flow.hosts_match == HostsMatch::Any && flow.hosts.len() < 2 {
            return Err("hosts_match = \"any\" needs at least two hosts (the alternatives)".into());
        }
        let pairs = flow.hosts.len() * flow.ports.len().max(1);
        if pairs > MAX_PAIRS_PER_FLOW {
            return Err(format!(
                "lists {} host(s) × {} port(s) = {pairs} probes, more than the {MAX_PAIRS_PER_FLOW} a flow may have; split it into several flows or list fewer ports",
                flow.hosts.len(),
                flow.ports.len()
            ));
        }
        if flow.ports.contains(&0) {
            return Err("port 0 is not a port".into());
        }
        // Sets, so a flow with many ports is checked in linear time.
        let ports: BTreeSet<u16> = flow.ports.iter().copied().collect();
        let layered = [
            ("tls_ports", flow.tls_ports()),
            ("http_ports", flow.http_ports()),
            ("smb_ports", flow.smb_ports()),
        ];
        let sets: Vec<BTreeSet<u16>> = layered.iter().map(|(_, p)| p.iter().copied().collect()).collect();
        for (i, (field, listed)) in layered.iter().enumerate() {
            if let Some(p) = listed.iter().find(|p| !ports.contains(p)) {
                return Err(format!("{field} lists {p}, which is not in ports"));
            }
            if flow.protocol == Protocol::Udp && !listed.is_empty() {
                return Err(format!("a udp flow cannot have {field}"));
            }
            if let Some(((other, _), _)) = layered[i + 1..]
                .iter()
                .zip(&sets[i + 1..])
                .find(|(_, o)| !o.is_disjoint(&sets[i]))
            {
                return Err(format!("a port cannot be in both {field} and {other}"));
            }
        }
        for cloud in Cloud::ALL.into_iter().filter(|c| flow.applies_to(*c)) {
            let Some(values) = self.clouds.get(&cloud) else {
                return Err(format!("probes/clouds.toml has no [{}] table", cloud.as_str()));
            };
            let hosts = flow.hosts.iter().map(|h| (h, true));
            let others = flow.private_dns_zone.iter().chain([&flow.service_tag]);
            for (t, is_host) in hosts.chain(others.map(|z| (z, false))) {
                let lookup = |name: &str| {
                    // A variable that only overrides a cloud's value must exist for the cloud.
                    if values::variables().any(|v| v.name == name && !v.overrides_cloud) {
                        // Context values are validated names: one DNS label stands in for each.
                        Lookup::Value("x".into())
                    } else {
                        values.get(name).map_or(Lookup::Unknown, |v| Lookup::Value(v.clone()))
                    }
                };
                match template::render(t, lookup) {
                    Ok(host) if is_host => {
                        if let Some(problem) = host_problem(&host) {
                            return Err(format!("host '{}' {problem}", sanitize::echo(t)));
                        }
                    }
                    Ok(_) => {}
                    Err(errors) => {
                        return Err(match &errors[0] {
                            TemplateError::Unknown(v) => format!(
                                "'{}' uses {{{}}}, which is neither a context value nor defined for cloud '{}'",
                                sanitize::echo(t),
                                sanitize::echo(v),
                                cloud.as_str()
                            ),
                            TemplateError::Malformed(_) | TemplateError::Missing(_) => {
                                format!("'{}' is not a valid template", sanitize::echo(t))
                            }
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Suites selected by `--suite`; when `names` is empty, every suite whose `default` is true
    /// and every suite that runs under some facts (`when`), which `plan::applicable` keeps only
    /// when the facts hold. Unknown names are an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Suite>, String> {
        if names.is_empty() {
            return Ok(self
                .suites
                .iter()
                .filter(|s| s.meta.default || !s.meta.when.is_empty())
                .collect());
        }
        names
            .iter()
            .map(|n| {
                self.suites.iter().find(|s| &s.meta.name == n).ok_or_else(|| {
                    let known: Vec<&str> = self.suites.iter().map(|s| s.meta.name.as_str()).collect();
                    format!(
                        "--suite: no suite named '{n}' (known: {})",
                        known.join(", "),
                        n = sanitize::echo(n)
                    )
                })
            })
            .collect()
    }
}

/// Why a rendered suite host cannot be probed as a DNS name, if it can't: every flow starts with
/// a lookup, so IPs, URLs and malformed names would only fail later, as a blocked flow.
fn host_problem(host: &str) -> Option<&'static str> {
    let bare = host.strip_suffix('.').unwrap_or(host);
    let unbracketed = bare.trim_start_matches('[').trim_end_matches(']');
    if host.trim().is_empty() {
        Some("is empty")
    } else if host.contains("://") || host.contains('/') {
        Some("is a URL; give the host name only (and its port in ports)")
    } else if host.chars().any(char::is_whitespace) {
        Some("contains a space")
    } else if unbracketed.parse::<IpAddr>().is_ok() {
        Some("is an IP address; suites list names, which the probe resolves")
    } else if host.contains(':') {
        Some("has a port; list ports in ports")
    } else if !bare
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("has characters a host name cannot have (letters, digits, '-', '_' and '.')")
    } else if bare.len() > 253 || bare.split('.').any(|l| l.is_empty() || l.len() > 63) {
        Some("is not a DNS name (an empty label, or a label over 63 characters)")
    } else {
        None
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

/// Reason hints, keyed by a reason code, and root-cause texts, by kind of cause and reason.
type Hints = (
    BTreeMap<ReasonCode, ReasonHint>,
    BTreeMap<(CauseKind, ReasonCode), CauseHint>,
);

fn parse_hints(file: &str, text: &str) -> Result<Hints, SuiteError> {
    let parsed: HintsFile = parse_toml(file, text)?;
    let invalid = |table: &str, message: String| SuiteError::Invalid {
        file: file.to_string(),
        line: text.find(&format!("[{table}")).map_or(1, |o| line_of(text, o)),
        message,
    };
    let code = |table: &str, name: &str| {
        ReasonCode::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| invalid(table, format!("'{}' is not a reason code", sanitize::echo(name))))
    };
    let mut hints = BTreeMap::new();
    for (name, hint) in parsed.reason {
        hints.insert(code(&format!("reason.{name}]"), &name)?, hint);
    }
    let mut causes = BTreeMap::new();
    for (kind_name, by_reason) in parsed.cause {
        let kind = CauseKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_name && *k != CauseKind::Observation)
            .ok_or_else(|| {
                invalid(
                    &format!("cause.{kind_name}."),
                    format!(
                        "'{}' is not a kind of root cause with texts of its own",
                        sanitize::echo(&kind_name)
                    ),
                )
            })?;
        for (name, cause) in by_reason {
            causes.insert((kind, code(&format!("cause.{kind_name}.{name}]"), &name)?), cause);
        }
    }
    Ok((hints, causes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::builtin().expect("built-in catalog loads")
    }

    /// A suite of `flows` flows, each with `hosts` hosts and ports 1..=`ports`.
    fn wide_suite(flows: usize, hosts: usize, ports: u16) -> String {
        let hosts: Vec<String> = (0..hosts).map(|h| format!("\"h{h}.example\"")).collect();
        let ports: Vec<String> = (1..=ports).map(|p| p.to_string()).collect();
        let mut text = String::from("[suite]\nname = \"wide\"\ntitle = \"wide\"\n");
        for f in 0..flows {
            text.push_str(&format!(
                "\n[[flow]]\nid = \"wide.f{f}\"\ntitle = \"f\"\ndirection = \"outbound\"\nservice_tag = \"X\"\nrequired = true\nscenario = \"s\"\nsource = \"s\"\nhosts = [{}]\nports = [{}]\n",
                hosts.join(", "),
                ports.join(", ")
            ));
        }
        text
    }

    /// The issue's 448 KB file: 10 hosts × 65,535 ports took 77 s to run; it is refused at
    /// load, naming the flow and its line.
    #[test]
    fn a_flow_that_expands_past_the_cap_is_refused_at_load() {
        let e = catalog()
            .add_suite("wide.toml", "wide.toml", &wide_suite(1, 10, 65_535))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "wide.toml:6: flow 'wide.f0': lists 10 host(s) × 65535 port(s) = 655350 probes, more than the 1024 a flow may have; split it into several flows or list fewer ports"
        );
        assert!(
            catalog().add_suite("w.toml", "w.toml", &wide_suite(1, 4, 256)).is_ok(),
            "exactly the cap"
        );
        let e = catalog()
            .add_suite("w.toml", "w.toml", &wide_suite(1, 1, 1025))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("w.toml:6: flow 'wide.f0': lists 1 host(s) × 1025 port(s)"),
            "{e}"
        );
        // Many flows under the cap each still add up: the file as a whole is bounded too.
        let e = catalog()
            .add_suite("w.toml", "w.toml", &wide_suite(65, 1, 1024))
            .unwrap_err();
        let line = 6 + 64 * 11;
        assert!(
            e.to_string().starts_with(&format!(
                "w.toml:{line}: flow 'wide.f64': the suite's flows reach 66560 host-port pairs"
            )),
            "{e}"
        );
    }

    #[test]
    fn every_reason_code_has_a_hint() {
        let c = catalog();
        for code in ReasonCode::ALL {
            assert!(c.hints.contains_key(&code), "probes/hints.toml lacks [reason.{code}]");
        }
    }

    #[test]
    fn docs_sources_lists_every_flow_with_its_source() {
        // docs/sources.md is where a reader checks a flow against Microsoft's pages: it must say
        // what the suites say, word for word.
        let doc = include_str!("../../docs/sources.md");
        let mut checked = 0;
        for flow in catalog().suites.iter().flat_map(|s| &s.flows) {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", flow.id)))
                .unwrap_or_else(|| panic!("docs/sources.md has no row for {}", flow.id));
            let cell = row.trim_end_matches('|').rsplit(" | ").next().unwrap().trim();
            assert_eq!(
                cell.replace("\\|", "|"),
                flow.source,
                "{}: docs/sources.md differs",
                flow.id
            );
            checked += 1;
        }
        assert!(checked > 100, "{checked} flows");
    }

    #[test]
    fn every_cloud_has_values() {
        let c = catalog();
        for cloud in Cloud::ALL {
            assert!(c.clouds.contains_key(&cloud), "clouds.toml lacks [{}]", cloud.as_str());
        }
    }

    const GOOD: &str = r#"
[suite]
name = "mine"
title = "My flows"

[[flow]]
id = "mine.mirror"
title = "Package mirror"
direction = "outbound"
service_tag = "VirtualNetwork"
required = true
scenario = "pip install"
source = "ops runbook"
hosts = ["pypi.{region}.corp.example"]
ports = [443]
"#;

    #[test]
    fn user_suite_loads_and_defaults_apply() {
        let mut c = catalog();
        c.add_suite("mine.toml", "mine.toml", GOOD).unwrap();
        let flow = &c.suites.last().unwrap().flows[0];
        assert_eq!(flow.tls_ports(), vec![443]);
        assert_eq!(flow.protocol, Protocol::Tcp);
        assert_eq!(flow.expect, Expectation::Any);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let bad = GOOD.replace("ports = [443]", "ports = [443");
        let err = catalog()
            .add_suite("mine.toml", "mine.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mine.toml:15:") || err.starts_with("mine.toml:16:"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let bad = GOOD.replace("ports = [443]", "ports = [443]\nprot = \"tcp\"");
        let err = catalog()
            .add_suite("mine.toml", "mine.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mine.toml:16") && err.contains("prot"), "{err}");
    }

    #[test]
    fn unknown_template_variable_is_rejected() {
        let bad = GOOD.replace("{region}", "{regoin}");
        let err = catalog()
            .add_suite("mine.toml", "mine.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mine.toml:7") && err.contains("regoin"), "{err}");
    }

    #[test]
    fn schema_errors_are_caught() {
        let cases = [
            (
                GOOD.replace("ports = [443]", "ports = [443]\ntls_ports = [8443]"),
                "tls_ports",
            ),
            (
                GOOD.replace("ports = [443]", "ports = [53]\nprotocol = \"udp\"\ntls_ports = [53]"),
                "udp",
            ),
            (
                GOOD.replace("hosts = [\"pypi.{region}.corp.example\"]", "hosts = []"),
                "host",
            ),
            (GOOD.replace("mine.mirror", "Mine Mirror"), "id"),
            (
                GOOD.replace("direction = \"outbound\"", "direction = \"sideways\""),
                "sideways",
            ),
        ];
        for (text, needle) in cases {
            let err = catalog()
                .add_suite("mine.toml", "mine.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn a_suite_of_twenty_thousand_flows_loads() {
        // Finding each flow's line by searching the whole file made this quadratic (minutes).
        let (head, flow) = GOOD.split_once("[[flow]]").unwrap();
        let mut text = head.to_string();
        for i in 0..20_000 {
            text.push_str(&format!(
                "[[flow]]{}",
                flow.replace("mine.mirror", &format!("mine.f{i}"))
            ));
        }
        let mut c = catalog();
        c.add_suite("big.toml", "big.toml", &text).unwrap();
        assert_eq!(c.suites.last().unwrap().flows.len(), 20_000);
    }

    #[test]
    fn errors_name_the_line_of_the_flow_they_are_about() {
        let second = GOOD
            .split_once("[[flow]]")
            .unwrap()
            .1
            .replace("mine.mirror", "mine.second");
        let text = format!("{GOOD}\n[[flow]]{}", second.replace("{region}", "{regoin}"));
        let err = catalog()
            .add_suite("mine.toml", "mine.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("mine.toml:18:") && err.contains("mine.second"), "{err}");
        let twice = format!("{GOOD}\n[[flow]]{}", GOOD.split_once("[[flow]]").unwrap().1);
        let err = catalog()
            .add_suite("mine.toml", "mine.toml", &twice)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mine.toml:18:") && err.contains("already defined"),
            "{err}"
        );
    }

    #[test]
    fn hosts_that_are_not_dns_names_are_rejected_with_the_flow_line() {
        let with_host = |h: &str| GOOD.replace("pypi.{region}.corp.example", h);
        for (host, why) in [
            ("", "is empty"),
            ("10.0.0.5", "IP address"),
            ("fd00::1", "IP address"),
            ("[fd00::1]", "IP address"),
            ("https://pypi.corp.example", "URL"),
            ("pypi.corp.example/simple", "URL"),
            ("pypi corp.example", "space"),
            ("pypi.corp.example:8443", "port"),
            ("pypi.{region}..corp", "DNS name"),
            ("py*pi.corp.example", "characters"),
            ("pypi.{region}.corp\\u001b[2J", "characters"),
        ] {
            let err = catalog()
                .add_suite("mine.toml", "mine.toml", &with_host(host))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("mine.toml:7: flow 'mine.mirror': host "),
                "{host}: {err}"
            );
            assert!(err.contains(why), "{host}: {err}");
            assert!(!err.contains('\x1b'), "{err}");
        }
        for good in [
            "{compute_instance}-22.{region}.x.example",
            "login.example.",
            "_sip._tcp.example",
        ] {
            catalog().add_suite("mine.toml", "mine.toml", &with_host(good)).unwrap();
        }
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let mut c = catalog();
        c.add_suite("a.toml", "a.toml", GOOD).unwrap();
        let again = GOOD.replace("name = \"mine\"", "name = \"other\"");
        let err = c.add_suite("b.toml", "b.toml", &again).unwrap_err().to_string();
        assert!(err.contains("already defined"), "{err}");
    }

    #[test]
    fn optional_suites_run_only_when_named() {
        let mut c = catalog();
        c.add_suite(
            "mine.toml",
            "mine.toml",
            &GOOD.replace("title = \"My flows\"", "title = \"My flows\"\ndefault = false"),
        )
        .unwrap();
        let names = |v: Vec<&Suite>| v.iter().map(|s| s.meta.name.clone()).collect::<Vec<_>>();
        let default = names(c.select(&[]).unwrap());
        for optional in ["arc", "aks-training", "mine"] {
            assert!(!default.iter().any(|n| n == optional), "{optional} in {default:?}");
        }
        assert!(default.iter().any(|n| n == "compute"), "{default:?}");
        assert_eq!(names(c.select(&["arc".to_string()]).unwrap()), vec!["arc"]);
        assert_eq!(names(c.select(&["mine".to_string()]).unwrap()), vec!["mine"]);
    }
}
