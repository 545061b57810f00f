//! The report: the stable JSON contract (schema_version 1) and the data every renderer reads.

pub mod azure;
pub mod render;
pub mod schema;
pub mod store;

pub use schema::{
    DirectPath, FlowReport, HostInfo, ProbeKind, ProbeReport, ReasonText, Report, SCHEMA_VERSION, Settings, Summary,
    Tool,
};

use crate::model::exit;
use crate::model::outcome::ReasonCode;
use crate::model::suite::ReasonHint;
use std::collections::BTreeMap;

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

/// The explanations of every reason code `flows` use, on the flow, a probe or the direct path.
pub fn glossary(flows: &[FlowReport], hints: &BTreeMap<ReasonCode, ReasonHint>) -> BTreeMap<ReasonCode, ReasonText> {
    let used = flows.iter().flat_map(|f| {
        f.probes
            .iter()
            .map(|p| p.reason)
            .chain([f.reason, f.direct_path.as_ref().and_then(|d| d.reason)])
            .flatten()
    });
    used.filter_map(|code| {
        let h = hints.get(&code)?;
        let text = ReasonText {
            summary: h.summary.clone(),
            cause: h.cause.clone(),
            learn: h.learn.clone(),
        };
        Some((code, text))
    })
    .collect()
}

impl Report {
    /// Whether `flow` makes the run fail ([`exit::fails_run`]).
    pub fn fails_run(&self, flow: &FlowReport) -> bool {
        exit::fails_run(flow.required, flow.status, self.settings.strict)
    }

    /// The exit code this report calls for ([`exit::of_run`]).
    pub fn exit_code(&self) -> u8 {
        exit::of_run(self.flows.iter().map(|f| (f.required, f.status)), self.settings.strict)
    }

    /// Pretty JSON; text from peers keeps its value, its C1 and bidi controls written as
    /// `\uXXXX` escapes (see `sanitize::json`).
    pub fn to_json(&self) -> String {
        crate::sanitize::json(self)
    }

    /// A saved report, whole, when this version wrote its contract (`schema_version`), so it
    /// can be rendered again; `Err` says why not (then only the lenient reading of
    /// `analyze::saved` applies).
    pub fn from_json(text: &str) -> Result<Report, String> {
        let report: Report = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a whole report: {}",
                crate::sanitize::parser_message(&e.to_string())
            )
        })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "written for report schema {}, this amlprobe renders {SCHEMA_VERSION}",
                report.schema_version
            ));
        }
        Ok(report)
    }
}

/// A small report with one working and one blocked flow, for renderer tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::model::context::WorkspaceContext;
    use crate::model::outcome::{FlowStatus, ProbeStatus, ReasonCode};
    use crate::plan::Route;
    use crate::report::schema::{ResolverSetup, RootCause};

    fn probe(
        kind: ProbeKind,
        host: &str,
        port: Option<u16>,
        status: ProbeStatus,
        reason: Option<ReasonCode>,
    ) -> ProbeReport {
        let address = port.map(|_| "10.0.0.5".parse().unwrap());
        ProbeReport {
            reason,
            message: format!("{} {}", kind.as_str(), status.as_str()),
            elapsed_ms: 12,
            ..ProbeReport::new(kind, host, port, address, status, Route::Direct)
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
        let probes = vec![
            probe(ProbeKind::Dns, host, None, ProbeStatus::Pass, None),
            probe(ProbeKind::Tcp, host, Some(443), tcp_status, reason),
        ];
        FlowReport {
            suite: "w".into(),
            title: format!("Title of {id} & <co>"),
            scenario: "always".into(),
            source: "seed".into(),
            status,
            reason,
            message: reason.map_or("works".into(), |r| format!("{host}:443 {r}")),
            hint,
            cause: reason.map(|_| 1),
            ..FlowReport::sample(id, probes)
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
                proxy_source: None,
            },
            summary: Summary::of(&flows),
            root_causes: vec![RootCause {
                id: 1,
                kind: crate::report::schema::CauseKind::Destination,
                reason: ReasonCode::TcpTimeout,
                subject: "TCP 443 to Storage".into(),
                summary: "TCP 443 to Storage is silently dropped".into(),
                fix: "Allow TCP 443 to Storage in the NSG.".into(),
                commands: vec![],
                destinations: vec![],
                resolver: None,
                service_tag: None,
                azure: vec![],
                change: None,
                azure_notes: vec![],
                required: true,
                required_flows: 1,
                flows: vec!["w.blob".into()],
                probes: 1,
            }],
            reasons: glossary(&flows, &crate::model::suite::Catalog::builtin().unwrap().hints),
            flows,
            resolver_comparison: None,
        }
    }

    #[test]
    fn a_saved_report_reads_back_whole() {
        let report = sample_report();
        let json = report.to_json();
        assert_eq!(Report::from_json(&json).unwrap().to_json(), json);
        let older = json.replacen("\"schema_version\": 2", "\"schema_version\": 0", 1);
        assert!(Report::from_json(&older).unwrap_err().contains("schema 0"));
        assert!(
            Report::from_json("{\"flows\": []}")
                .unwrap_err()
                .contains("not a whole report")
        );
        let mut before_glossary: serde_json::Value = serde_json::from_str(&json).unwrap();
        before_glossary.as_object_mut().unwrap().remove("reasons");
        assert!(
            Report::from_json(&before_glossary.to_string())
                .unwrap()
                .reasons
                .is_empty()
        );
        // Every kind of field a renderer reads survives the trip (TLS, HTTP, proxies, causes).
        let hostile = crate::report::render::html::tests::hostile_report("<b>x</b>");
        let json = hostile.to_json();
        assert_eq!(Report::from_json(&json).unwrap().to_json(), json);
    }

    /// A certificate subject or Server header with U+009B (8-bit CSI) or U+202E (RLO) was
    /// written raw into the JSON: `cat report.json` acted on it. Now it is a \u escape, and the
    /// value reads back as the peer sent it.
    #[test]
    fn the_json_report_carries_peer_text_escaped_and_exact() {
        let mut report = crate::report::render::html::tests::hostile_report("\u{9b}2J\u{202e}evil\u{2028}");
        report.flows[0].message = "Server: \u{9b}31m\u{202e}\u{85}".into();
        let json = report.to_json();
        for raw in ['\u{9b}', '\u{202e}', '\u{2028}', '\u{85}'] {
            assert!(!json.contains(raw), "U+{:04X} raw in the JSON report", raw as u32);
        }
        assert!(json.contains(r#""message": "Server: \u009b31m\u202e\u0085""#), "{json}");
        let back = Report::from_json(&json).unwrap();
        assert_eq!(back.flows[0].message, report.flows[0].message);
        assert_eq!(back.to_json(), json);
    }

    #[test]
    fn the_glossary_explains_each_code_the_report_uses_and_no_other() {
        let hints = crate::model::suite::Catalog::builtin().unwrap().hints;
        let mut flows = sample_report().flows;
        flows[0].direct_path = Some(DirectPath {
            status: FlowStatus::Blocked,
            reason: Some(ReasonCode::ProxyDenied),
        });
        flows[1].probes[0].reason = Some(ReasonCode::DnsWrongIp);
        let glossary = glossary(&flows, &hints);
        let codes: Vec<ReasonCode> = glossary.keys().copied().collect();
        assert_eq!(
            codes,
            [ReasonCode::DnsWrongIp, ReasonCode::TcpTimeout, ReasonCode::ProxyDenied]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        let tcp = &glossary[&ReasonCode::TcpTimeout];
        assert_eq!(tcp.summary, hints[&ReasonCode::TcpTimeout].summary);
        assert_eq!(tcp.cause, hints[&ReasonCode::TcpTimeout].cause);
        assert!(!tcp.cause.is_empty());
    }
}
