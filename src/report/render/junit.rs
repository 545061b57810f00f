//! JUnit XML (`--format junit`): one test suite per amlprobe suite, one test case per flow, so CI
//! systems show each flow as a test. Failures are exactly the flows that fail the exit code;
//! other flows that are not working are reported as skipped, with their reason.

use crate::model::outcome::FlowStatus;
use crate::report::{FlowReport, Report};
use crate::sanitize::{self, terminal};
use std::fmt::Write;

/// Unicode's non-characters (U+FDD0..U+FDEF and the last two code points of every plane):
/// XML 1.0's `Char` production excludes U+FFFE and U+FFFF and discourages the others, and a
/// strict parser (`xmllint`, a CI system's) drops the whole report over one of them.
fn noncharacter(c: char) -> bool {
    let n = c as u32;
    (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE
}

/// Escapes text for XML attributes and content. Control characters (which XML 1.0 forbids or
/// a terminal would act on), non-characters and bidi controls are written as visible escapes.
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
            c if noncharacter(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
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
pub(crate) mod tests {
    use super::*;
    use crate::report::test_support::sample_report;
    use proptest::prelude::*;

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

    /// Text a hostile peer or suite can put in any field the JUnit output shows: controls,
    /// the non-characters XML 1.0 forbids, markup, bidi controls, ordinary text.
    fn hostile_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("\u{fffe}".to_string()),
            Just("\u{ffff}".to_string()),
            Just("\u{fdd0}\u{1fffe}\u{10ffff}".to_string()),
            Just("\u{0}\u{1}\u{b}\u{c}\u{1b}[2J\u{7f}\u{85}\u{9b}".to_string()),
            Just("<![CDATA[ ]]> </testcase> &amp; &#0; \"'".to_string()),
            Just("\u{202e}\u{2028}\t\r\n".to_string()),
            "\\PC{0,8}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
    }

    /// `text` as roxmltree reads it: a strict XML 1.0 parser, as a CI system uses.
    pub(crate) fn assert_well_formed(text: &str, flows: usize) {
        let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML ({e}):\n{text}"));
        let cases = doc.descendants().filter(|n| n.has_tag_name("testcase")).count();
        assert_eq!(cases, flows, "{text}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Certificate subjects, Server headers, proxy errors, suite titles and host names end
        /// up in the JUnit output: whatever they hold, the document stays well-formed XML.
        #[test]
        fn any_text_from_peers_or_suites_is_well_formed_xml(
            texts in proptest::collection::vec(hostile_text(), 8),
        ) {
            let mut report = sample_report();
            report.host.hostname = texts[0].clone();
            report.started_at = texts[1].clone();
            for flow in &mut report.flows {
                flow.suite = texts[2].clone();
                flow.title = texts[3].clone();
                flow.message = texts[4].clone();
                flow.hint = Some(texts[5].clone());
                for probe in &mut flow.probes {
                    probe.host = texts[6].clone();
                    probe.message = texts[7].clone();
                }
            }
            report.root_causes[0].summary = texts[7].clone();
            assert_well_formed(&render(&report), report.flows.len());
        }
    }

    #[test]
    fn non_characters_xml_forbids_are_escaped() {
        assert_eq!(xml("a\u{fffe}b\u{ffff}c"), "a\\u{fffe}b\\u{ffff}c");
        assert_eq!(xml("\u{fdd0}\u{1fffe}\u{10ffff}"), "\\u{fdd0}\\u{1fffe}\\u{10ffff}");
        let mut report = sample_report();
        report.flows[1].message = "Server: evil\u{ffff}\u{fffe}".into();
        report.flows[1].title = "T\u{fffe}".into();
        assert_well_formed(&render(&report), 2);
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(
            xml("a\u{1}b\u{1b}[31mc\"'\u{202e}"),
            "a\\x01b\\x1b[31mc&quot;&apos;\\u{202e}"
        );
    }
}
