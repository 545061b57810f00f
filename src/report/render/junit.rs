//! JUnit XML (`--format junit`): one test suite per amlprobe suite, one test case per flow, so CI
//! systems show each flow as a test. Failures are exactly the flows that fail the exit code;
//! other flows that are not working are reported as skipped, with their reason.

use crate::model::outcome::FlowStatus;
use crate::report::{FlowReport, Report};
use crate::sanitize::{self, terminal};
use std::fmt::Write;

/// Escapes text for XML attributes and content. Control characters (which XML 1.0 forbids or
/// a terminal would act on) and bidi controls are written as visible escapes.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c => match sanitize::escaped(c) {
                Some(e) => out.push_str(&e),
                None => out.push(c),
            },
        }
    }
    out
}

/// ` (cause N)` for a flow with a root cause.
fn cause_tag(flow: &FlowReport) -> String {
    flow.cause.map(|n| format!(" (cause {n})")).unwrap_or_default()
}

fn details(report: &Report, flow: &FlowReport) -> String {
    // Fields are escaped one by one: the newlines between them are the document's own.
    let mut text = terminal(&flow.message).into_owned();
    if let Some(c) = flow.cause.and_then(|n| report.root_causes.iter().find(|c| c.id == n)) {
        let _ = write!(
            text,
            "\nRoot cause {} ({} flow(s)): {}",
            c.id,
            c.flows.len(),
            terminal(&c.summary)
        );
    }
    if let Some(hint) = &flow.hint {
        text.push_str("\nFix: ");
        text.push_str(&terminal(hint));
    }
    for p in &flow.probes {
        let port = p.port.map(|p| format!(":{p}")).unwrap_or_default();
        let address = p.address.map(|a| format!(" ({a})")).unwrap_or_default();
        let _ = write!(
            text,
            "\n{} {}{port}{address} {}: {}",
            p.kind.as_str(),
            terminal(&p.host),
            p.status.as_str(),
            terminal(&p.message)
        );
    }
    text
}

fn seconds(flow: &FlowReport) -> f64 {
    flow.probes.iter().map(|p| p.elapsed_ms).max().unwrap_or(0) as f64 / 1000.0
}

fn testcase(report: &Report, flow: &FlowReport) -> String {
    let reason = flow.reason.map_or("", |r| r.as_str());
    let open = format!(
        "    <testcase name=\"{}\" classname=\"amlprobe.{}\" time=\"{:.3}\">",
        xml(&format!("{}: {}", flow.id, flow.title)),
        xml(&flow.suite),
        seconds(flow)
    );
    let body = if report.fails_run(flow) {
        format!(
            "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
            xml(&format!(
                "{}: {}{}",
                flow.status.as_str(),
                flow.message,
                cause_tag(flow)
            )),
            xml(reason),
            xml(&details(report, flow))
        )
    } else if flow.status == FlowStatus::Works {
        String::new()
    } else {
        let why = if flow.required { "" } else { "optional flow " };
        format!(
            "\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    ",
            xml(&format!(
                "{why}{} ({reason}): {}{}",
                flow.status.as_str(),
                flow.message,
                cause_tag(flow)
            )),
            xml(&details(report, flow))
        )
    };
    format!("{open}{body}</testcase>\n")
}

/// The whole document.
pub fn render(report: &Report) -> String {
    let failures = |flows: &[&FlowReport]| flows.iter().filter(|f| report.fails_run(f)).count();
    let skipped = |flows: &[&FlowReport]| {
        flows
            .iter()
            .filter(|f| !report.fails_run(f) && f.status != FlowStatus::Works)
            .count()
    };
    let all: Vec<&FlowReport> = report.flows.iter().collect();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"amlprobe\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        all.len(),
        failures(&all),
        skipped(&all),
        report.duration_ms as f64 / 1000.0
    );
    let mut suites: Vec<&str> = Vec::new();
    for f in &report.flows {
        if !suites.contains(&f.suite.as_str()) {
            suites.push(&f.suite);
        }
    }
    for suite in suites {
        let flows: Vec<&FlowReport> = report.flows.iter().filter(|f| f.suite == suite).collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
            xml(suite),
            flows.len(),
            failures(&flows),
            skipped(&flows),
            xml(&report.started_at),
            xml(&report.host.hostname)
        );
        for f in flows {
            out.push_str(&testcase(report, f));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::sample_report;

    #[test]
    fn blocked_required_flows_fail_and_others_pass() {
        let text = render(&sample_report());
        assert!(text.starts_with("<?xml"));
        assert!(text.contains("<testsuites name=\"amlprobe\" tests=\"2\" failures=\"1\" skipped=\"0\""));
        assert!(
            text.contains("name=\"w.api: Title of w.api &amp; &lt;co&gt;\""),
            "{text}"
        );
        assert!(
            text.contains(
                "<failure message=\"blocked: sa.blob.core.windows.net:443 tcp_timeout (cause 1)\" type=\"tcp_timeout\">"
            ),
            "{text}"
        );
        assert!(
            text.contains("tcp_timeout\nRoot cause 1 (1 flow(s)): TCP 443 to Storage is silently dropped\nFix: "),
            "{text}"
        );
        assert!(text.contains("Fix: Allow TCP 443 to Storage in the NSG."));
        assert_eq!(text.matches("<failure").count(), 1);
    }

    #[test]
    fn optional_blocked_flows_are_skipped_not_failed() {
        let mut report = sample_report();
        report.flows[1].required = false;
        let text = render(&report);
        assert!(text.contains("failures=\"0\" skipped=\"1\""), "{text}");
        assert!(text.contains("<skipped message=\"optional flow blocked (tcp_timeout): sa.blob.core.windows.net:443 tcp_timeout (cause 1)\"/>"), "{text}");
        assert!(!text.contains("<failure"));
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(
            xml("a\u{1}b\u{1b}[31mc\"'\u{202e}"),
            "a\\x01b\\x1b[31mc&quot;&apos;\\u{202e}"
        );
    }
}
