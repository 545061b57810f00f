//! The human table: the root causes with their fixes, then flows grouped by suite, one line
//! each with the reason of every flow that is not working and its cause, then a summary line.

use crate::model::context::ValueSource;
use crate::model::outcome::FlowStatus;
use crate::model::suite::Protocol;
use crate::report::{FlowReport, ProbeKind, Report};
use crate::sanitize::terminal;
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

/// A status's label and its terminal colour.
fn status_word(s: FlowStatus) -> (&'static str, &'static str) {
    let color = match s {
        FlowStatus::Works => "32",
        FlowStatus::Blocked => "1;31",
        FlowStatus::Inconclusive => "33",
        FlowStatus::Skipped | FlowStatus::NotTestable => "2",
    };
    (s.label(), color)
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
    let host = flow.hosts.first().map_or(flow.service_tag.as_str(), String::as_str);
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
    let from = |key: &str| match ctx.sources.get(key) {
        Some(ValueSource::Imds) => " (from IMDS)",
        Some(ValueSource::Arm) => " (from ARM)",
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
    // Warnings quote ARM's resource names, IMDS and resolvers: escaped like every other line.
    for warning in ctx.warnings.iter().chain(&report.host.dns_warnings) {
        let _ = writeln!(out, "{} {}", paint.wrap("33", "warning:"), terminal(warning));
    }
    out.push_str(&causes_block(report, &paint));
    let mut suite = "";
    for flow in &report.flows {
        if flow.suite != suite {
            suite = &flow.suite;
            let _ = writeln!(out, "\n{}", paint.wrap("1", &terminal(suite)));
        }
        let (word, code) = status_word(flow.status);
        let reason = flow.reason.map_or("", |r| r.as_str());
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
            // The fix of a flow with a root cause is spelled out once, in the causes block.
            let cause = flow.cause.map(|n| format!(" (cause {n})")).unwrap_or_default();
            let _ = writeln!(out, "      {} [{}]{cause}", terminal(&flow.message), terminal(&flow.id));
            if let (None, Some(hint)) = (flow.cause, &flow.hint) {
                let _ = writeln!(out, "      {} {}", paint.wrap("36", "fix:"), terminal(hint));
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

/// The root causes, numbered, each with its fix and the flows it explains; empty when every
/// flow works.
fn causes_block(report: &Report, paint: &Paint) -> String {
    let mut out = String::new();
    if report.root_causes.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n{}", paint.wrap("1", "root causes"));
    for c in &report.root_causes {
        let optional = if c.required { "" } else { " (optional flows)" };
        let _ = writeln!(
            out,
            "  {} {} {}{optional}",
            paint.wrap("1", &format!("{}.", c.id)),
            c.reason.as_str(),
            terminal(&c.summary)
        );
        let _ = writeln!(out, "     {} {}", paint.wrap("36", "fix:"), terminal(&c.fix));
        let flows: Vec<String> = c.flows.iter().map(|f| terminal(f).into_owned()).collect();
        let _ = writeln!(out, "     flows: {}", flows.join(", "));
    }
    out
}

/// What `--quiet` prints: the root causes, if any, then the summary line.
pub fn quiet(report: &Report, color: bool) -> String {
    let causes = causes_block(report, &Paint { on: color });
    format!("{}{}\n", causes.trim_start(), summary_line(report))
}

/// ` (N root causes)` for the causes whose flows have `status`; empty when there are none.
fn causes_of(report: &Report, status: FlowStatus) -> String {
    let n = report
        .root_causes
        .iter()
        .filter(|c| {
            let statuses = || {
                c.flows
                    .iter()
                    .filter_map(|id| report.flows.iter().find(|f| &f.id == id).map(|f| f.status))
            };
            // A cause counts where its worst flow does: blocked if any of its flows is.
            let worst = if statuses().any(|s| s == FlowStatus::Blocked) {
                FlowStatus::Blocked
            } else {
                FlowStatus::Inconclusive
            };
            worst == status
        })
        .count();
    match n {
        0 => String::new(),
        1 => " (1 root cause)".into(),
        n => format!(" ({n} root causes)"),
    }
}

/// One line: counts, duration and exit code.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let blocked: Vec<String> = report
        .flows
        .iter()
        .filter(|f| f.status == FlowStatus::Blocked && f.required)
        .map(|f| format!("{} ({})", terminal(&f.id), f.reason.map_or("?", |r| r.as_str())))
        .collect();
    let mut line = format!(
        "amlprobe: {} flows: {} works, {} blocked{}, {} inconclusive{}, {} skipped, {} not testable in {:.1} s; exit {}",
        s.flows,
        s.works,
        s.blocked,
        causes_of(report, FlowStatus::Blocked),
        s.inconclusive,
        causes_of(report, FlowStatus::Inconclusive),
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
    use crate::model::outcome::ReasonCode;
    use crate::report::DirectPath;
    use crate::report::test_support::sample_report;

    /// The sample with a second flow blocked by the same cause.
    fn two_flows_one_cause() -> Report {
        let mut report = sample_report();
        let mut second = report.flows[1].clone();
        second.id = "w.file".into();
        report.flows.push(second);
        report.summary = crate::report::Summary::of(&report.flows);
        report.root_causes[0].flows.push("w.file".into());
        report
    }

    #[test]
    fn root_causes_come_first_and_flows_refer_to_them() {
        let report = two_flows_one_cause();
        let table = render(&report, false);
        let fix = &report.root_causes[0].fix;
        assert_eq!(
            table.matches(fix.as_str()).count(),
            1,
            "the fix is spelled out once:\n{table}"
        );
        let block = table.find("root causes").expect("a root causes block");
        assert!(
            block < table.find("\nw\n").unwrap(),
            "before the per-flow table:\n{table}"
        );
        assert!(
            table.contains("  1. tcp_timeout TCP 443 to Storage is silently dropped\n     fix: Allow TCP 443 to Storage in the NSG.\n     flows: w.blob, w.file\n"),
            "{table}"
        );
        assert!(
            table.contains("[w.blob] (cause 1)") && table.contains("[w.file] (cause 1)"),
            "{table}"
        );
        assert!(!table.contains("fix: as above"), "{table}");
        assert!(
            table.contains(" 2 blocked (1 root cause), 0 inconclusive, "),
            "the summary line counts causes:\n{table}"
        );
    }

    #[test]
    fn quiet_prints_the_causes_and_the_summary_line_only() {
        let report = two_flows_one_cause();
        assert_eq!(
            quiet(&report, false),
            format!(
                "root causes\n  1. tcp_timeout TCP 443 to Storage is silently dropped\n     fix: Allow TCP 443 to Storage in the NSG.\n     flows: w.blob, w.file\n{}\n",
                summary_line(&report)
            )
        );
        let mut healthy = sample_report();
        healthy.flows.truncate(1);
        healthy.root_causes.clear();
        healthy.summary = crate::report::Summary::of(&healthy.flows);
        assert_eq!(quiet(&healthy, false).lines().count(), 1);
    }

    #[test]
    fn a_flow_without_a_cause_keeps_its_own_fix() {
        let mut report = sample_report();
        report.flows[1].status = FlowStatus::Skipped;
        report.flows[1].cause = None;
        report.flows[1].hint = Some("pass --storage-account to probe this flow".into());
        report.root_causes.clear();
        let table = render(&report, false);
        assert!(
            table.contains("      fix: pass --storage-account to probe this flow\n"),
            "{table}"
        );
        assert!(!table.contains("root causes"), "{table}");
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

    /// Names ARM chose (a storage account, a private endpoint) reach the warnings: escape
    /// sequences in them are shown, never sent to the terminal.
    #[test]
    fn warnings_are_shown_inert() {
        let mut report = sample_report();
        let hostile = "pe\x1b]0;pwned\x07\u{202e}\u{9b}2J";
        report.context.warnings = vec![format!("private endpoint {hostile}: refused")];
        report.host.dns_warnings = vec![format!("10.0.0.4{hostile}")];
        for color in [false, true] {
            let table = render(&report, color);
            for raw in ['\x07', '\u{202e}', '\u{9b}'] {
                assert!(!table.contains(raw), "U+{:04X} raw in:\n{table}", raw as u32);
            }
            assert!(!table.contains("\x1b]0;"), "{table}");
            assert!(
                table.contains("private endpoint pe\\x1b]0;pwned\\x07\\u{202e}\\u{009b}2J: refused"),
                "{table}"
            );
        }
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
