//! Prometheus text exposition (format 0.0.4) of a report: what `--format prometheus` writes for
//! node-exporter's textfile collector and what `serve` answers on `/metrics`.
//!
//! Label values come from closed sets (flow ids, statuses, reason codes, probe kinds) or from the
//! suites' own host names, so series counts stay bounded by the suites.

use crate::model::outcome::{FlowStatus, ProbeStatus};
use crate::report::{FlowReport, ProbeReport, Report};
use crate::sanitize;
use std::collections::HashSet;
use std::fmt::Write;

/// Accumulates samples, one `# HELP`/`# TYPE` header per metric family.
#[derive(Default)]
pub struct Exposition {
    text: String,
    families: HashSet<&'static str>,
    series: HashSet<String>,
}

/// Escapes a label value: backslash, double quote and newline as the format says; other
/// control and bidi characters as visible escapes, so `curl /metrics` cannot act on a terminal.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => match sanitize::escaped(c) {
                Some(e) => out.push_str(&e.replace('\\', "\\\\")),
                None => out.push(c),
            },
        }
    }
    out
}

impl Exposition {
    /// Adds one sample of `name` (a gauge unless it ends in `_total`). A label set already
    /// written is skipped: Prometheus rejects duplicate series.
    pub fn sample(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{labels}}}")
        };
        if !self.series.insert(series.clone()) {
            return;
        }
        if self.families.insert(name) {
            let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
            let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        let _ = writeln!(self.text, "{series} {value}");
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        self.text
    }
}

fn epoch_seconds(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

fn probe_samples(out: &mut Exposition, flow: &FlowReport, probe: &ProbeReport) {
    let port = probe.port.map(|p| p.to_string()).unwrap_or_default();
    let address = probe.address.map(|a| a.to_string()).unwrap_or_default();
    let labels = [
        ("flow", flow.id.as_str()),
        ("kind", probe.kind.as_str()),
        ("host", probe.host.as_str()),
        ("port", port.as_str()),
        ("address", address.as_str()),
        ("path", probe.path.as_str()),
    ];
    let pass = if probe.status == ProbeStatus::Pass { 1.0 } else { 0.0 };
    out.sample(
        "amlprobe_probe_success",
        "1 when the probe step passed, 0 otherwise.",
        &labels,
        pass,
    );
    out.sample(
        "amlprobe_probe_duration_seconds",
        "How long the probe step took.",
        &labels,
        probe.elapsed_ms as f64 / 1000.0,
    );
    if let Some(reason) = probe.reason {
        let mut with_reason = labels.to_vec();
        with_reason.push(("reason", reason.as_str()));
        out.sample(
            "amlprobe_probe_reason",
            "The reason code of a probe step that did not pass (always 1).",
            &with_reason,
            1.0,
        );
    }
}

/// Appends every flow, probe and run metric of `report`.
pub fn add_report(out: &mut Exposition, report: &Report) {
    for flow in &report.flows {
        let required = if flow.required { "true" } else { "false" };
        let base = [
            ("flow", flow.id.as_str()),
            ("suite", flow.suite.as_str()),
            ("required", required),
        ];
        // Only probed flows have an up/down answer: a not_testable or skipped flow is neither,
        // and a 0 for it would make `flow_up == 0` alerts fire on healthy VNets.
        if matches!(
            flow.status,
            FlowStatus::Works | FlowStatus::Blocked | FlowStatus::Inconclusive
        ) {
            out.sample(
                "amlprobe_flow_up",
                "1 when the probed flow works, 0 when it is blocked or inconclusive; absent for flows not probed.",
                &base,
                if flow.status == FlowStatus::Works { 1.0 } else { 0.0 },
            );
        }
        if flow.status == FlowStatus::Blocked {
            let reason = flow.reason.map_or("", |r| r.as_str());
            let mut labels = base.to_vec();
            labels.push(("reason", reason));
            out.sample(
                "amlprobe_flow_blocked",
                "1 for each flow observed blocked, with its reason; absent for every other flow.",
                &labels,
                1.0,
            );
        }
        for status in FlowStatus::ALL {
            out.sample(
                "amlprobe_flow_status",
                "1 for the flow's current status, 0 for the others.",
                &[("flow", flow.id.as_str()), ("status", status.as_str())],
                if flow.status == status { 1.0 } else { 0.0 },
            );
        }
        if let Some(reason) = flow.reason {
            let cause = flow.cause.map(|n| n.to_string()).unwrap_or_default();
            out.sample(
                "amlprobe_flow_reason",
                "The reason code of a flow that is not working, and the id of its root cause (always 1).",
                &[
                    ("flow", flow.id.as_str()),
                    ("reason", reason.as_str()),
                    ("cause", cause.as_str()),
                ],
                1.0,
            );
        }
        for probe in &flow.probes {
            probe_samples(out, flow, probe);
        }
    }
    // One series per cause: ids run 1..n over failing flows, kinds and reasons are closed sets.
    for c in &report.root_causes {
        let id = c.id.to_string();
        out.sample(
            "amlprobe_root_cause",
            "Flows a root cause of the last run explains, by cause id, reason and kind.",
            &[
                ("cause", id.as_str()),
                ("reason", c.reason.as_str()),
                ("kind", c.kind.as_str()),
                ("required", if c.required { "true" } else { "false" }),
            ],
            c.flows.len() as f64,
        );
    }
    out.sample(
        "amlprobe_required_blocked",
        "Required flows observed blocked in the last run.",
        &[],
        report
            .flows
            .iter()
            .filter(|f| f.required && f.status == FlowStatus::Blocked)
            .count() as f64,
    );
    for status in FlowStatus::ALL {
        out.sample(
            "amlprobe_flows",
            "Flows per status in the last run.",
            &[("status", status.as_str())],
            report.flows.iter().filter(|f| f.status == status).count() as f64,
        );
    }
    out.sample(
        "amlprobe_run_duration_seconds",
        "Wall time of the last run.",
        &[],
        report.duration_ms as f64 / 1000.0,
    );
    if let Some(t) = epoch_seconds(&report.started_at) {
        out.sample(
            "amlprobe_last_run_timestamp_seconds",
            "When the last run started (Unix time).",
            &[],
            t,
        );
    }
    out.sample(
        "amlprobe_exit_code",
        "The exit code the last run calls for (0 ok, 1 a required flow blocked).",
        &[],
        f64::from(report.exit_code()),
    );
    out.sample(
        "amlprobe_build_info",
        "The amlprobe version (always 1).",
        &[("version", report.tool.version.as_str())],
        1.0,
    );
}

/// The whole exposition of one report.
pub fn render(report: &Report) -> String {
    let mut out = Exposition::default();
    add_report(&mut out, report);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::sample_report;

    #[test]
    fn flows_probes_and_reasons_become_series() {
        let text = render(&sample_report());
        assert!(text.contains("# TYPE amlprobe_flow_up gauge\n"));
        assert!(
            text.contains("amlprobe_flow_up{flow=\"w.api\",suite=\"w\",required=\"true\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("amlprobe_flow_up{flow=\"w.blob\",suite=\"w\",required=\"true\"} 0\n"));
        assert!(text.contains("amlprobe_flow_status{flow=\"w.blob\",status=\"blocked\"} 1\n"));
        assert!(text.contains("amlprobe_flow_status{flow=\"w.blob\",status=\"works\"} 0\n"));
        assert!(text.contains("amlprobe_flow_reason{flow=\"w.blob\",reason=\"tcp_timeout\",cause=\"1\"} 1\n"));
        assert!(
            text.contains(
                "amlprobe_root_cause{cause=\"1\",reason=\"tcp_timeout\",kind=\"destination\",required=\"true\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "amlprobe_probe_reason{flow=\"w.blob\",kind=\"tcp\",host=\"sa.blob.core.windows.net\",port=\"443\",address=\"10.0.0.5\",path=\"direct\",reason=\"tcp_timeout\"} 1\n"
        ));
        assert!(text.contains("amlprobe_flows{status=\"blocked\"} 1\n"));
        assert!(text.contains(
            "amlprobe_flow_blocked{flow=\"w.blob\",suite=\"w\",required=\"true\",reason=\"tcp_timeout\"} 1\n"
        ));
        assert!(!text.contains("amlprobe_flow_blocked{flow=\"w.api\""), "{text}");
        assert!(text.contains("amlprobe_required_blocked 1\n"), "{text}");
        assert!(text.contains("amlprobe_exit_code 1\n"));
        assert!(
            text.contains("amlprobe_last_run_timestamp_seconds 1795000000\n"),
            "{text}"
        );
        // One HELP per family, and no series twice.
        assert_eq!(text.matches("# HELP amlprobe_flow_status ").count(), 1);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let unique: HashSet<&str> = samples.iter().map(|l| l.rsplit_once(' ').unwrap().0).collect();
        assert_eq!(unique.len(), samples.len());
    }

    #[test]
    fn flows_that_were_not_probed_have_no_up_series() {
        let mut report = sample_report();
        report.flows[0].status = FlowStatus::NotTestable;
        report.flows[1].status = FlowStatus::Skipped;
        let text = render(&report);
        assert!(!text.contains("amlprobe_flow_up{"), "{text}");
        assert!(!text.contains("amlprobe_flow_blocked{"), "{text}");
        assert!(text.contains("amlprobe_required_blocked 0\n"), "{text}");
        assert!(text.contains("amlprobe_flow_status{flow=\"w.api\",status=\"not_testable\"} 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("amlprobe_x", "x", &[("host", "a\"b\\c\nd")], 1.0);
        assert!(out.finish().contains("amlprobe_x{host=\"a\\\"b\\\\c\\nd\"} 1\n"));
    }
}
