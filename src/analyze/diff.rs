//! `amlprobe diff`: which flows changed state between two reports (before and after a firewall
//! change, or node A against node B).

use crate::analyze::saved::{SavedCause, SavedFlow, SavedReport};
use crate::model::outcome::FlowStatus;
use crate::sanitize::terminal;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

/// How a flow changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It got worse: works → inconclusive/blocked, or inconclusive → blocked.
    Regressed,
    /// It got better.
    Improved,
    /// Different status or reason, neither better nor worse (e.g. now skipped for missing context).
    Changed,
    /// Only in the new report.
    Added,
    /// Only in the old report.
    Removed,
    /// Same status and reason.
    Unchanged,
}

/// A flow's state in one report.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    /// Status.
    pub status: FlowStatus,
    /// Reason code.
    pub reason: Option<String>,
}

/// One flow's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct FlowChange {
    /// Flow id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Whether the flow is required (in the new report, else the old).
    pub required: bool,
    /// How it changed.
    pub change: Change,
    /// Before.
    pub old: Option<State>,
    /// After.
    pub new: Option<State>,
    /// The new message, for a regressed flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What to change, for a regressed flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The file.
    pub file: String,
    /// Host name.
    pub hostname: String,
    /// Start time.
    pub started_at: String,
}

/// How a root cause changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseChange {
    /// Only in the new report.
    Appeared,
    /// Only in the old report.
    Disappeared,
    /// In both (same reason and subject).
    Persists,
}

/// One root cause's comparison, matched by reason and subject.
#[derive(Debug, Clone, Serialize)]
pub struct CauseDiff {
    /// How it changed.
    pub change: CauseChange,
    /// Reason code.
    pub reason: String,
    /// The shared thing (DNS server, zone, issuer, proxy, port and service tag, host).
    pub subject: String,
    /// Its id in the old report.
    pub old: Option<u32>,
    /// Its id in the new report.
    pub new: Option<u32>,
    /// What is wrong (the newer report's words).
    pub summary: String,
    /// What to change, for a cause that appeared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The flows it explains (in the newer report that has it).
    pub flows: Vec<String>,
}

/// The comparison of two reports.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The earlier report.
    pub old: Side,
    /// The later report.
    pub new: Side,
    /// Flows that regressed.
    pub regressed: usize,
    /// Every flow, most important change first.
    pub flows: Vec<FlowChange>,
    /// Every root cause: appeared, then disappeared, then persisting.
    pub causes: Vec<CauseDiff>,
}

fn cause_diff(change: CauseChange, old: Option<&SavedCause>, new: Option<&SavedCause>) -> Option<CauseDiff> {
    let latest = new.or(old)?;
    Some(CauseDiff {
        change,
        reason: latest.reason.clone(),
        subject: latest.subject.clone(),
        old: old.map(|c| c.id),
        new: new.map(|c| c.id),
        summary: latest.summary.clone(),
        fix: (change == CauseChange::Appeared).then(|| latest.fix.clone()),
        flows: latest.flows.clone(),
    })
}

/// The first cause of each [`SavedCause::key`], by that key.
fn causes_by_key(causes: &[SavedCause]) -> HashMap<(&str, &str), &SavedCause> {
    let mut map = HashMap::with_capacity(causes.len());
    for c in causes {
        map.entry(c.key()).or_insert(c);
    }
    map
}

/// Root causes of `old` and `new`, matched by reason and subject.
fn compare_causes(old: &SavedReport, new: &SavedReport) -> Vec<CauseDiff> {
    let (old_causes, new_causes) = (causes_by_key(&old.root_causes), causes_by_key(&new.root_causes));
    let mut out: Vec<CauseDiff> = new
        .root_causes
        .iter()
        .filter_map(|n| {
            let o = old_causes.get(&n.key()).copied();
            let change = if o.is_some() {
                CauseChange::Persists
            } else {
                CauseChange::Appeared
            };
            cause_diff(change, o, Some(n))
        })
        .collect();
    out.extend(
        old.root_causes
            .iter()
            .filter(|o| !new_causes.contains_key(&o.key()))
            .filter_map(|o| cause_diff(CauseChange::Disappeared, Some(o), None)),
    );
    out.sort_by_key(|c| c.change);
    out
}

/// Works < inconclusive < blocked; skipped and not-testable flows are not on this scale.
fn badness(status: FlowStatus) -> Option<u8> {
    match status {
        FlowStatus::Works => Some(0),
        FlowStatus::Inconclusive => Some(1),
        FlowStatus::Blocked => Some(2),
        FlowStatus::Skipped | FlowStatus::NotTestable => None,
    }
}

fn classify(old: &SavedFlow, new: &SavedFlow) -> Change {
    if old.status == new.status {
        return if old.reason == new.reason {
            Change::Unchanged
        } else {
            Change::Changed
        };
    }
    match (badness(old.status), badness(new.status)) {
        (Some(a), Some(b)) if b > a => Change::Regressed,
        (Some(_), Some(_)) => Change::Improved,
        _ => Change::Changed,
    }
}

fn state(f: &SavedFlow) -> State {
    State {
        status: f.status,
        reason: f.reason.clone(),
    }
}

fn side(r: &SavedReport) -> Side {
    Side {
        file: r.origin.clone(),
        hostname: r.host.hostname.clone(),
        started_at: r.started_at.clone(),
    }
}

/// The first flow of each id in `flows`, by id.
fn flows_by_id(flows: &[SavedFlow]) -> HashMap<&str, &SavedFlow> {
    let mut map = HashMap::with_capacity(flows.len());
    for f in flows {
        map.entry(f.id.as_str()).or_insert(f);
    }
    map
}

/// Compares every flow of `old` and `new`, matched by id through maps: linear in the flows.
pub fn compare(old: &SavedReport, new: &SavedReport) -> Diff {
    let (old_flows, new_flows) = (flows_by_id(&old.flows), flows_by_id(&new.flows));
    let mut flows = Vec::new();
    for n in &new.flows {
        let o = old_flows.get(n.id.as_str()).copied();
        let change = o.map_or(Change::Added, |o| classify(o, n));
        let regressed = change == Change::Regressed;
        flows.push(FlowChange {
            id: n.id.clone(),
            title: n.title.clone(),
            required: n.required,
            change,
            old: o.map(state),
            new: Some(state(n)),
            message: regressed.then(|| n.message.clone()),
            hint: if regressed { n.hint.clone() } else { None },
        });
    }
    for o in old.flows.iter().filter(|o| !new_flows.contains_key(o.id.as_str())) {
        flows.push(FlowChange {
            id: o.id.clone(),
            title: o.title.clone(),
            required: o.required,
            change: Change::Removed,
            old: Some(state(o)),
            new: None,
            message: None,
            hint: None,
        });
    }
    // Stable: within a kind of change, flows keep suite order.
    flows.sort_by_key(|f| f.change);
    Diff {
        old: side(old),
        new: side(new),
        regressed: flows.iter().filter(|f| f.change == Change::Regressed).count(),
        flows,
        causes: compare_causes(old, new),
    }
}

impl Diff {
    /// 1 when a flow regressed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.regressed > 0 {
            crate::model::exit::BLOCKED
        } else {
            crate::model::exit::OK
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        crate::sanitize::json(self)
    }
}

fn show(s: Option<&State>) -> String {
    match s {
        None => "-".into(),
        Some(State {
            status,
            reason: Some(r),
        }) if *status != FlowStatus::Works => format!("{} ({})", status.as_str(), terminal(r)),
        Some(State { status, .. }) => status.as_str().into(),
    }
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::Regressed => "REGRESSED",
        Change::Improved => "improved",
        Change::Changed => "changed",
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Unchanged => "unchanged",
    }
}

/// The table; unchanged flows only when `all`.
pub fn to_text(diff: &Diff, all: bool) -> String {
    // Saved reports are files from anywhere: every text field is escaped before it is shown.
    let describe = |s: &Side| {
        format!(
            "{} ({}, {})",
            terminal(&s.file),
            terminal(&s.hostname),
            terminal(&s.started_at)
        )
    };
    let mut out = format!("old: {}\nnew: {}\n\n", describe(&diff.old), describe(&diff.new));
    let shown: Vec<&FlowChange> = diff
        .flows
        .iter()
        .filter(|f| all || f.change != Change::Unchanged)
        .collect();
    if shown.is_empty() {
        out.push_str("no flow changed state\n");
    } else {
        let id_width = shown.iter().map(|f| terminal(&f.id).len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "{:<10} {:<id_width$} {:<34} NEW", "CHANGE", "FLOW", "OLD");
        for f in &shown {
            let req = if f.required { "" } else { " (optional)" };
            let _ = writeln!(
                out,
                "{:<10} {:<id_width$} {:<34} {}{req}",
                change_word(f.change),
                terminal(&f.id),
                show(f.old.as_ref()),
                show(f.new.as_ref())
            );
            if let Some(m) = &f.message {
                let _ = writeln!(out, "{:<10} {:<id_width$}   now: {}", "", "", terminal(m));
            }
            if let Some(h) = &f.hint {
                let _ = writeln!(out, "{:<10} {:<id_width$}   fix: {}", "", "", terminal(h));
            }
        }
    }
    let causes: Vec<&CauseDiff> = diff
        .causes
        .iter()
        .filter(|c| all || c.change != CauseChange::Persists)
        .collect();
    if !causes.is_empty() {
        out.push_str("\nroot causes\n");
    }
    for c in causes {
        let (word, id) = match c.change {
            CauseChange::Appeared => ("APPEARED", c.new),
            CauseChange::Disappeared => ("disappeared", c.old),
            CauseChange::Persists => ("persists", c.new),
        };
        let id = id.map(|n| format!("{n}.")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{word:<12} {id} {} {} ({} flow(s))",
            terminal(&c.reason),
            terminal(&c.summary),
            c.flows.len()
        );
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "{:<12} fix: {}", "", terminal(fix));
        }
    }
    let count = |c: Change| diff.flows.iter().filter(|f| f.change == c).count();
    let causes = |c: CauseChange| diff.causes.iter().filter(|x| x.change == c).count();
    let _ = writeln!(
        out,
        "\n{} regressed, {} improved, {} changed, {} added, {} removed, {} unchanged; {} root cause(s) appeared, {} disappeared; exit {}",
        count(Change::Regressed),
        count(Change::Improved),
        count(Change::Changed),
        count(Change::Added),
        count(Change::Removed),
        count(Change::Unchanged),
        causes(CauseChange::Appeared),
        causes(CauseChange::Disappeared),
        diff.exit_code()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::saved::SavedHost;

    fn flow(id: &str, status: FlowStatus, reason: Option<&str>) -> SavedFlow {
        SavedFlow {
            id: id.into(),
            title: id.into(),
            required: true,
            status,
            reason: reason.map(Into::into),
            message: format!("{id} message"),
            hint: reason.map(|r| format!("fix {r}")),
        }
    }

    fn report(flows: Vec<SavedFlow>) -> SavedReport {
        SavedReport {
            schema_version: 1,
            started_at: "t".into(),
            host: SavedHost { hostname: "h".into() },
            flows,
            root_causes: vec![],
            settings: crate::analyze::saved::SavedSettings::default(),
            origin: "f.json".into(),
        }
    }

    fn cause(id: u32, reason: &str, subject: &str, flows: &[&str]) -> SavedCause {
        SavedCause {
            id,
            reason: reason.into(),
            subject: subject.into(),
            summary: format!("{subject} {reason}"),
            fix: format!("fix {subject}"),
            flows: flows.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn causes_that_appeared_and_disappeared_are_listed() {
        let mut old = report(vec![flow("a", FlowStatus::Blocked, Some("dns_timeout"))]);
        old.root_causes = vec![
            cause(1, "dns_timeout", "10.0.0.4 (resolv.conf)", &["a"]),
            cause(2, "tcp_timeout", "TCP 445 to Storage", &["b"]),
        ];
        let mut new = report(vec![flow("a", FlowStatus::Blocked, Some("dns_timeout"))]);
        new.root_causes = vec![
            cause(1, "proxy_denied", "http://proxy:3128", &["c", "d"]),
            // Same reason and subject, another id and more flows: the same cause.
            cause(2, "dns_timeout", "10.0.0.4 (resolv.conf)", &["a", "e"]),
            // Same subject, another reason: another cause.
            cause(3, "tcp_refused", "TCP 445 to Storage", &["b"]),
        ];
        let diff = compare(&old, &new);
        let got: Vec<(CauseChange, &str, Option<u32>, Option<u32>)> = diff
            .causes
            .iter()
            .map(|c| (c.change, c.reason.as_str(), c.old, c.new))
            .collect();
        assert_eq!(
            got,
            vec![
                (CauseChange::Appeared, "proxy_denied", None, Some(1)),
                (CauseChange::Appeared, "tcp_refused", None, Some(3)),
                (CauseChange::Disappeared, "tcp_timeout", Some(2), None),
                (CauseChange::Persists, "dns_timeout", Some(1), Some(2)),
            ]
        );
        assert_eq!(diff.causes[0].fix.as_deref(), Some("fix http://proxy:3128"));
        let text = to_text(&diff, false);
        assert!(
            text.contains("APPEARED     1. proxy_denied http://proxy:3128 proxy_denied (2 flow(s))\n             fix: fix http://proxy:3128\n"),
            "{text}"
        );
        assert!(text.contains("disappeared  2. tcp_timeout"), "{text}");
        assert!(!text.contains("persists"), "{text}");
        assert!(to_text(&diff, true).contains("persists     2. dns_timeout"));
        assert!(
            text.contains("; 2 root cause(s) appeared, 1 disappeared; exit 0"),
            "{text}"
        );
    }

    #[test]
    fn classifies_every_kind_of_change() {
        use FlowStatus::*;
        let old = report(vec![
            flow("a", Works, None),
            flow("b", Blocked, Some("tcp_timeout")),
            flow("c", Blocked, Some("tcp_timeout")),
            flow("d", Works, None),
            flow("e", Inconclusive, Some("udp_no_reply")),
            flow("f", Works, None),
            flow("gone", Works, None),
        ]);
        let new = report(vec![
            flow("a", Blocked, Some("dns_public_ip")),
            flow("b", Works, None),
            flow("c", Blocked, Some("tcp_refused")),
            flow("d", Skipped, Some("missing_context")),
            flow("e", Blocked, Some("udp_refused")),
            flow("f", Works, None),
            flow("new", Works, None),
        ]);
        let diff = compare(&old, &new);
        let got: Vec<(&str, Change)> = diff.flows.iter().map(|f| (f.id.as_str(), f.change)).collect();
        assert_eq!(
            got,
            vec![
                ("a", Change::Regressed),
                ("e", Change::Regressed),
                ("b", Change::Improved),
                ("c", Change::Changed),
                ("d", Change::Changed),
                ("new", Change::Added),
                ("gone", Change::Removed),
                ("f", Change::Unchanged),
            ]
        );
        assert_eq!(diff.regressed, 2);
        assert_eq!(diff.exit_code(), 1);
        assert_eq!(diff.flows[0].hint.as_deref(), Some("fix dns_public_ip"));
        let text = to_text(&diff, false);
        assert!(text.contains("REGRESSED  a "), "{text}");
        assert!(text.contains("blocked (dns_public_ip)"));
        assert!(!text.contains("unchanged  f"));
        assert!(to_text(&diff, true).contains("unchanged  f"));
    }

    #[test]
    fn identical_reports_exit_zero() {
        let r = report(vec![flow("a", FlowStatus::Works, None)]);
        let diff = compare(&r, &r);
        assert_eq!(diff.exit_code(), 0);
        assert!(to_text(&diff, false).contains("no flow changed state"));
    }
}
