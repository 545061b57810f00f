//! The human table: flows grouped by suite, one line each, then the reason and the fix for
//! every flow that is not working, then a summary line.

use super::{FlowReport, ProbeKind, Report};
use crate::outcome::FlowStatus;
use crate::sanitize::terminal;
use crate::suite::Protocol;
use std::fmt::Write;

const TITLE_WIDTH: usize = 36;
const TARGET_WIDTH: usize = 46;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn status_word(s: FlowStatus) -> (&'static str, &'static str) {
    match s {
        FlowStatus::Works => ("works", "32"),
        FlowStatus::Blocked => ("BLOCKED", "1;31"),
        FlowStatus::Inconclusive => ("inconclusive", "33"),
        FlowStatus::Skipped => ("skipped", "2"),
        FlowStatus::NotTestable => ("not testable", "2"),
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let keep: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{keep}…")
}

/// `host:ports`, with `+N` when a flow has several hosts; the service tag when there is no host.
fn target(flow: &FlowReport) -> String {
    let host = flow.hosts.first().map(String::as_str).unwrap_or(&flow.service_tag);
    let ports = flow.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let host = terminal(host);
    let mut t = if ports.is_empty() {
        host.to_string()
    } else {
        format!("{host}:{ports}")
    };
    if flow.protocol == Protocol::Udp {
        t.push_str("/udp");
    }
    if flow.hosts.len() > 1 {
        t.push_str(&format!(" +{}", flow.hosts.len() - 1));
    }
    t
}

/// Slowest DNS + slowest connect + slowest handshake: the flow's critical path.
fn latency(flow: &FlowReport) -> String {
    if flow.probes.is_empty() {
        return String::new();
    }
    let slowest = |k: ProbeKind| {
        flow.probes
            .iter()
            .filter(|p| p.kind == k)
            .map(|p| p.elapsed_ms)
            .max()
            .unwrap_or(0)
    };
    let ms = slowest(ProbeKind::Dns) + slowest(ProbeKind::Tcp).max(slowest(ProbeKind::Udp)) + slowest(ProbeKind::Tls);
    format!("{ms} ms")
}

/// Renders the report as a table; `color` adds ANSI colours.
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let mut out = String::new();
    let ctx = &report.context;
    let mut facts = vec![format!("cloud {}", ctx.cloud.as_str())];
    let from = |key: &str| match ctx.sources.get(key).map(String::as_str) {
        Some("imds") => " (from IMDS)",
        _ => "",
    };
    facts[0].push_str(from("cloud"));
    facts.extend(
        ctx.region
            .as_ref()
            .map(|r| format!("region {}{}", terminal(r), from("region"))),
    );
    facts.extend(ctx.workspace_id.as_ref().map(|w| format!("workspace {}", terminal(w))));
    let _ = writeln!(
        out,
        "{} {} · {} · resolver {}",
        paint.wrap("1", &report.tool.name),
        report.tool.version,
        facts.join(", "),
        if report.host.nameservers.is_empty() {
            "none".to_string()
        } else {
            terminal(&report.host.nameservers.join(", ")).into_owned()
        }
    );
    for warning in ctx.warnings.iter().chain(&report.host.dns_warnings) {
        let _ = writeln!(out, "{} {warning}", paint.wrap("33", "warning:"));
    }
    let mut suite = "";
    // When one cause blocks many flows (DNS down, a proxy denying), its fix is spelled out once.
    let mut hints_shown = std::collections::HashSet::new();
    for flow in &report.flows {
        if flow.suite != suite {
            suite = &flow.suite;
            let _ = writeln!(out, "\n{}", paint.wrap("1", &terminal(suite)));
        }
        let (word, code) = status_word(flow.status);
        let reason = flow.reason.map(|r| r.as_str()).unwrap_or("");
        let optional = if flow.required { "" } else { " (optional)" };
        let _ = writeln!(
            out,
            "  {} {:<TITLE_WIDTH$} {:<TARGET_WIDTH$} {:>8}  {}",
            paint.wrap(code, &format!("{word:<12}")),
            clip(&format!("{}{optional}", terminal(&flow.title)), TITLE_WIDTH),
            clip(&target(flow), TARGET_WIDTH),
            latency(flow),
            reason
        );
        // A flow that works only through the proxy is news too: compute that ignores the
        // proxy settings will find it blocked (--compare-direct).
        let direct_fails = flow.direct_path.as_ref().is_some_and(|d| d.status != FlowStatus::Works);
        if direct_fails
            || matches!(
                flow.status,
                FlowStatus::Blocked | FlowStatus::Inconclusive | FlowStatus::Skipped
            )
        {
            let _ = writeln!(out, "      {} [{}]", terminal(&flow.message), terminal(&flow.id));
            if let Some(hint) = &flow.hint {
                let fix = paint.wrap("36", "fix:");
                if hints_shown.insert(hint.as_str()) {
                    let _ = writeln!(out, "      {fix} {}", terminal(hint));
                } else {
                    let _ = writeln!(out, "      {fix} as above");
                }
            }
        }
    }
    if let Some(comparison) = &report.resolver_comparison {
        let diverging: Vec<_> = comparison
            .iter()
            .filter_map(|c| c.diagnosis.as_ref().map(|d| (&c.host, d)))
            .collect();
        let _ = writeln!(
            out,
            "\n{} {} names compared, {} diverge",
            paint.wrap("1", "resolvers"),
            comparison.len(),
            diverging.len()
        );
        for (host, diagnosis) in diverging {
            let _ = writeln!(
                out,
                "  {} {}\n      {}",
                paint.wrap("1;31", "DIVERGES"),
                terminal(host),
                terminal(diagnosis)
            );
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

/// One line: counts, duration and exit code (what `--quiet` prints).
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let blocked: Vec<String> = report
        .flows
        .iter()
        .filter(|f| f.status == FlowStatus::Blocked && f.required)
        .map(|f| format!("{} ({})", terminal(&f.id), f.reason.map(|r| r.as_str()).unwrap_or("?")))
        .collect();
    let mut line = format!(
        "amlprobe: {} flows: {} works, {} blocked, {} inconclusive, {} skipped, {} not testable in {:.1} s; exit {}",
        s.flows,
        s.works,
        s.blocked,
        s.inconclusive,
        s.skipped,
        s.not_testable,
        report.duration_ms as f64 / 1000.0,
        report.exit_code()
    );
    if !blocked.is_empty() {
        line.push_str(&format!("; required flows blocked: {}", blocked.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ReasonCode;
    use crate::report::DirectPath;
    use crate::report::test_support::sample_report;

    #[test]
    fn a_fix_shared_by_several_flows_is_spelled_out_once() {
        let mut report = sample_report();
        let mut second = report
            .flows
            .iter()
            .find(|f| f.status == FlowStatus::Blocked)
            .unwrap()
            .clone();
        second.id = "w.file".into();
        report.flows.push(second);
        let hint = "Allow UDP and TCP 53 to the DNS server.".to_string();
        let failing = |f: &FlowReport| matches!(f.status, FlowStatus::Blocked | FlowStatus::Inconclusive);
        for f in report.flows.iter_mut().filter(|f| failing(f)) {
            f.hint = Some(hint.clone());
        }
        let n = report.flows.iter().filter(|f| failing(f)).count();
        assert!(n >= 2, "the sample needs two failing flows");
        let table = render(&report, false);
        assert_eq!(table.matches(hint.as_str()).count(), 1, "{table}");
        assert_eq!(table.matches("fix: as above").count(), n - 1, "{table}");
    }

    #[test]
    fn resolver_warnings_are_shown_under_the_header() {
        let mut report = sample_report();
        report.host.dns_warnings = vec!["10.0.0.4 answered A but never AAAA".into()];
        let table = render(&report, false);
        assert_eq!(
            table.lines().nth(1),
            Some("warning: 10.0.0.4 answered A but never AAAA"),
            "{table}"
        );
    }

    #[test]
    fn a_flow_that_works_only_through_the_proxy_gets_its_detail_line() {
        let mut report = sample_report();
        let works = report.flows.iter_mut().find(|f| f.status == FlowStatus::Works).unwrap();
        works.message = "1 probe(s) passed [via proxy; direct path blocked (tcp_timeout)]".into();
        let id = works.id.clone();
        let plain = render(&report, false);
        assert!(
            !plain.contains(&format!("[{id}]")),
            "no detail line without a direct path:\n{plain}"
        );
        report.flows.iter_mut().find(|f| f.id == id).unwrap().direct_path = Some(DirectPath {
            status: FlowStatus::Blocked,
            reason: Some(ReasonCode::TcpTimeout),
        });
        let table = render(&report, false);
        assert!(
            table.contains(&format!("direct path blocked (tcp_timeout)] [{id}]")),
            "{table}"
        );
    }
}
