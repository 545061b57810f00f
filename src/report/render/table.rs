//! The human table. By default one screen, what a person over SSH needs: the header, the
//! summary line, the causes of required flows (what, the fix, the command, how many flows and
//! the first few), one line for the causes that touch optional flows only, then the required
//! flows that do not work. `--all` adds every flow, grouped by suite; the support bundle keeps
//! that whole view.

use crate::model::context::ValueSource;
use crate::model::outcome::FlowStatus;
use crate::model::suite::Protocol;
use crate::report::azure::blocker;
use crate::report::schema::RootCause;
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

/// The header: tool, context and resolver, then the warnings.
fn header(report: &Report, paint: &Paint) -> String {
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
    out
}

/// One flow's line: status, title, target, latency, reason.
fn flow_line(flow: &FlowReport, paint: &Paint) -> String {
    let (word, code) = status_word(flow.status);
    let reason = flow.reason.map_or("", |r| r.as_str());
    let optional = if flow.required { "" } else { " (optional)" };
    format!(
        "  {} {:<TITLE_WIDTH$} {:<TARGET_WIDTH$} {:>8}  {}\n",
        paint.wrap(code, &format!("{word:<12}")),
        clip(&format!("{}{optional}", terminal(&flow.title)), TITLE_WIDTH),
        clip(&target(flow), TARGET_WIDTH),
        latency(flow),
        reason
    )
}

/// The detail under a flow that is not working: its message, id and causes, and its own fix
/// when no root cause spells one out.
fn flow_detail(flow: &FlowReport, paint: &Paint) -> String {
    let mut out = String::new();
    let causes = match flow.causes.as_slice() {
        [] => flow.cause.map(|n| format!(" (cause {n})")).unwrap_or_default(),
        [one] => format!(" (cause {one})"),
        many => format!(
            " (causes {})",
            many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let _ = writeln!(
        out,
        "      {} [{}]{causes}",
        terminal(&flow.message),
        terminal(&flow.id)
    );
    if let (None, Some(hint)) = (flow.cause, &flow.hint) {
        let _ = writeln!(out, "      {} {}", paint.wrap("36", "fix:"), terminal(hint));
    }
    out
}

/// The report on one screen: header, summary line, the causes of required flows, one line for
/// the causes of optional flows only, and the required flows that do not work.
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let mut out = header(report, &paint);
    let _ = writeln!(out, "{}", summary_line(report));
    out.push_str(&causes_block(report, &paint, Detail::Screen));
    let failing: Vec<&FlowReport> = report
        .flows
        .iter()
        .filter(|f| f.required && matches!(f.status, FlowStatus::Blocked | FlowStatus::Inconclusive))
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\n{}", paint.wrap("1", "required flows that do not work"));
        for flow in failing {
            out.push_str(&flow_line(flow, &paint));
            if flow.cause.is_none() {
                out.push_str(&flow_detail(flow, &paint));
            }
        }
    }
    let hidden = report.flows.len();
    let _ = writeln!(
        out,
        "\n{}",
        paint.wrap(
            "2",
            &format!("every flow ({hidden}), each with its probes: amlprobe run --all, or --format json|html")
        )
    );
    out
}

/// Every flow, grouped by suite, after the header, every root cause and the summary line: the
/// whole report as text (`--all`, and the support bundle).
pub fn render_all(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let mut out = header(report, &paint);
    out.push_str(&causes_block(report, &paint, Detail::All));
    let mut suite = "";
    for flow in &report.flows {
        if flow.suite != suite {
            suite = &flow.suite;
            let _ = writeln!(out, "\n{}", paint.wrap("1", &terminal(suite)));
        }
        out.push_str(&flow_line(flow, &paint));
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
            out.push_str(&flow_detail(flow, &paint));
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

/// How much of each cause to show.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// One screen: required causes in full, the others in one line; flow lists shortened.
    Screen,
    /// `--quiet`: like `Screen`, without the one line of optional causes' names.
    Quiet,
    /// Every cause in full, every flow listed.
    All,
}

/// At most this many flow ids after a cause on one screen.
const FLOW_IDS: usize = 3;

/// `N flows: a, b, c and M more` (every id with `Detail::All`).
fn flow_list(flows: &[String], detail: Detail) -> String {
    let ids: Vec<String> = flows.iter().map(|f| terminal(f).into_owned()).collect();
    let noun = if ids.len() == 1 { "flow" } else { "flows" };
    if detail == Detail::All || ids.len() <= FLOW_IDS {
        return format!("{} {noun}: {}", ids.len(), ids.join(", "));
    }
    format!(
        "{} {noun}: {}, … and {} more",
        ids.len(),
        ids[..FLOW_IDS].join(", "),
        ids.len() - FLOW_IDS
    )
}

/// The root causes, numbered, each with its fix, its commands and the flows it explains;
/// empty when every flow works. On one screen the causes of optional flows only are one line.
fn causes_block(report: &Report, paint: &Paint, detail: Detail) -> String {
    let mut out = String::new();
    if report.root_causes.is_empty() {
        return out;
    }
    let (shown, folded): (Vec<&RootCause>, Vec<&RootCause>) = report
        .root_causes
        .iter()
        .partition(|c| detail == Detail::All || c.required);
    if !shown.is_empty() {
        let title = if detail == Detail::All {
            "root causes"
        } else {
            "root causes of required flows"
        };
        let _ = writeln!(out, "\n{}", paint.wrap("1", title));
    }
    for c in shown {
        let optional = if c.required { "" } else { " (optional flows)" };
        let _ = writeln!(
            out,
            "  {} {} {}{optional}",
            paint.wrap("1", &format!("{}.", c.id)),
            c.reason.as_str(),
            terminal(&c.summary)
        );
        if let Some(f) = blocker(&c.azure) {
            let _ = writeln!(
                out,
                "     {} {} {}: {} ({})",
                paint.wrap("31", "blocked by:"),
                f.kind.label(),
                terminal(&f.name),
                terminal(&f.verdict.says),
                f.basis.label()
            );
        }
        let _ = writeln!(out, "     {} {}", paint.wrap("36", "fix:"), terminal(&c.fix));
        // The change written from what ARM showed replaces the one with placeholders.
        let written: Vec<&str> = c.change.as_ref().map(|ch| ch.az.lines().collect()).unwrap_or_default();
        let commands: Vec<&str> = if written.is_empty() {
            c.commands.iter().map(String::as_str).collect()
        } else {
            written
        };
        for command in commands {
            let _ = writeln!(out, "     {} {}", paint.wrap("36", "$"), terminal(command));
        }
        if detail == Detail::All {
            for note in &c.azure_notes {
                let _ = writeln!(out, "     {} {}", paint.wrap("2", "azure:"), terminal(note));
            }
        }
        let _ = writeln!(out, "     {}", flow_list(&c.flows, detail));
    }
    if !folded.is_empty() && detail == Detail::Screen {
        let subjects: Vec<String> = folded
            .iter()
            .map(|c| format!("{}. {}", c.id, terminal(&c.subject)))
            .collect();
        let _ = writeln!(
            out,
            "  {} {} more cause(s) touch optional flows only: {}",
            paint.wrap("2", "+"),
            folded.len(),
            clip(&subjects.join("; "), 160)
        );
    }
    out
}

/// What `--quiet` prints: the root causes of required flows (flow lists shortened), if any,
/// then the summary line.
pub fn quiet(report: &Report, color: bool) -> String {
    let causes = causes_block(report, &Paint { on: color }, Detail::Quiet);
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
    match blocked.len() {
        0 => {}
        n if n <= FLOW_IDS => line.push_str(&format!("; required flows blocked: {}", blocked.join(", "))),
        n => line.push_str(&format!(
            "; required flows blocked: {}, … and {} more",
            blocked[..FLOW_IDS].join(", "),
            n - FLOW_IDS
        )),
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
        let table = render_all(&report, false);
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
            table.contains("  1. tcp_timeout TCP 443 to Storage is silently dropped\n     fix: Allow TCP 443 to Storage in the NSG.\n     2 flows: w.blob, w.file\n"),
            "{table}"
        );
        assert!(
            table.contains("[w.blob] (cause 1)") && table.contains("[w.file] (cause 1)"),
            "{table}"
        );
        assert!(
            table.contains(" 2 blocked (1 root cause), 0 inconclusive, "),
            "the summary line counts causes:\n{table}"
        );
    }

    #[test]
    fn one_screen_is_the_summary_the_required_causes_and_the_failing_required_flows() {
        let mut report = two_flows_one_cause();
        report.root_causes[0].commands = vec!["az network nsg rule create -g <resource-group>".into()];
        let mut optional = report.root_causes[0].clone();
        optional.id = 2;
        optional.required = false;
        optional.subject = "pypi.org:443".into();
        optional.flows = vec!["optional.pypi".into()];
        report.root_causes.push(optional);
        let table = render(&report, false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("amlprobe: 3 flows: 1 works, 2 blocked"), "{table}");
        assert!(
            table.contains("\nroot causes of required flows\n  1. tcp_timeout TCP 443 to Storage is silently dropped\n     fix: Allow TCP 443 to Storage in the NSG.\n     $ az network nsg rule create -g <resource-group>\n     2 flows: w.blob, w.file\n"),
            "{table}"
        );
        assert!(
            table.contains("  + 1 more cause(s) touch optional flows only: 2. pypi.org:443\n"),
            "the optional causes in one line:\n{table}"
        );
        assert!(
            table.contains("\nrequired flows that do not work\n  BLOCKED "),
            "{table}"
        );
        assert!(!table.contains("\nw\n"), "no per-suite listing on one screen:\n{table}");
        assert!(!table.contains("w.api"), "working flows are not listed:\n{table}");
        assert!(
            table.trim_end().ends_with("amlprobe run --all, or --format json|html"),
            "{table}"
        );
    }

    #[test]
    fn long_flow_lists_are_shortened_on_one_screen_and_whole_with_all() {
        let ids: Vec<String> = (1..=40).map(|i| format!("compute.f{i}")).collect();
        assert_eq!(
            flow_list(&ids, Detail::Screen),
            "40 flows: compute.f1, compute.f2, compute.f3, … and 37 more"
        );
        assert_eq!(flow_list(&ids, Detail::All).matches("compute.f").count(), 40);
        assert_eq!(flow_list(&ids[..1], Detail::Screen), "1 flow: compute.f1");
    }

    #[test]
    fn quiet_prints_the_causes_and_the_summary_line_only() {
        let report = two_flows_one_cause();
        assert_eq!(
            quiet(&report, false),
            format!(
                "root causes of required flows\n  1. tcp_timeout TCP 443 to Storage is silently dropped\n     fix: Allow TCP 443 to Storage in the NSG.\n     2 flows: w.blob, w.file\n{}\n",
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
        let table = render_all(&report, false);
        assert!(
            table.contains("      fix: pass --storage-account to probe this flow\n"),
            "{table}"
        );
        assert!(!table.contains("root causes"), "{table}");
        report.flows[1].status = FlowStatus::Blocked;
        let screen = render(&report, false);
        assert!(
            screen.contains("      fix: pass --storage-account to probe this flow\n"),
            "a failing required flow without a cause keeps its fix on one screen too:\n{screen}"
        );
    }

    #[test]
    fn warnings_are_shown_under_the_header_inert() {
        let mut report = sample_report();
        report.host.dns_warnings = vec!["10.0.0.4 answered A but never AAAA".into()];
        report.context.warnings = vec!["endpoint \x1b[2Jpe1 is Pending".into()];
        for table in [render(&report, false), render_all(&report, false)] {
            assert_eq!(
                table.lines().nth(1),
                Some("warning: endpoint \\x1b[2Jpe1 is Pending"),
                "{table}"
            );
            assert_eq!(
                table.lines().nth(2),
                Some("warning: 10.0.0.4 answered A but never AAAA"),
                "{table}"
            );
        }
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
        let plain = render_all(&report, false);
        assert!(
            !plain.contains(&format!("[{id}]")),
            "no detail line without a direct path:\n{plain}"
        );
        report.flows.iter_mut().find(|f| f.id == id).unwrap().direct_path = Some(DirectPath {
            status: FlowStatus::Blocked,
            reason: Some(ReasonCode::TcpTimeout),
        });
        let table = render_all(&report, false);
        assert!(
            table.contains(&format!("direct path blocked (tcp_timeout)] [{id}]")),
            "{table}"
        );
    }
}
