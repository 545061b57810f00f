//! `merge --format html`: the fleet as a heatmap, one row per flow and one column per group of
//! nodes with identical results, rows where nodes disagree first. Node names, reasons and
//! titles come from report files, so all of it is escaped.

use crate::analyze::matrix::{Cell, Matrix, Row};
use crate::report::render::html::{escape, page};
use std::fmt::Write;

fn cell(c: Option<&Cell>) -> String {
    match c {
        None => "<td class=\"cell s-missing\" title=\"not in this group's reports\">absent</td>".into(),
        Some(c) => {
            let reason = c.reason.as_deref().map(escape).unwrap_or_default();
            let text = format!("{} {reason}", c.status.label());
            format!(
                "<td class=\"cell s-{}\" title=\"{}\">{}</td>",
                c.status.as_str(),
                escape(&format!(
                    "{}{}",
                    c.status.as_str(),
                    c.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                )),
                text.trim_end()
            )
        }
    }
}

fn header(m: &Matrix, g: usize) -> String {
    let group = &m.groups[g];
    let members = match group.nodes.len() {
        1 => escape(&group.nodes[0]),
        n => format!("{n} nodes"),
    };
    format!(
        "<th title=\"{}\">{}<br><span class=\"reason\">{members}</span></th>",
        escape(&group.nodes.join(", ")),
        escape(&group.label)
    )
}

/// The heatmap page; `only_differences` keeps the rows where nodes disagree.
pub fn render(m: &Matrix, only_differences: bool) -> String {
    let mut rows: Vec<&Row> = m.flows.iter().filter(|r| !only_differences || r.differs).collect();
    // Stable: within "differs" and "agrees", rows keep the order the reports list them in.
    rows.sort_by_key(|r| !r.differs);
    let differing = m.flows.iter().filter(|r| r.differs).count();
    let mut body = String::with_capacity(16 * 1024 + rows.len() * 256 * m.groups.len().max(1));
    let _ = writeln!(
        body,
        "<header>\n<h1>amlprobe fleet: {} node{} in {} group{}</h1>\n<p><b>Exit {}</b>: {} flows, {differing} differ between nodes ({} shown).</p>\n</header>",
        m.nodes.len(),
        if m.nodes.len() == 1 { "" } else { "s" },
        m.groups.len(),
        if m.groups.len() == 1 { "" } else { "s" },
        m.exit_code(),
        m.flows.len(),
        rows.len()
    );
    body.push_str("<section id=\"heatmap\">\n<h2>Flows × node groups</h2>\n<table class=\"heat\">\n<tr><th>flow</th>");
    for g in 0..m.groups.len() {
        body.push_str(&header(m, g));
    }
    body.push_str("</tr>\n");
    for r in &rows {
        let _ = write!(
            body,
            "<tr data-flow=\"{}\"{}><th><code>{}</code>{} <span class=\"reason\">{}{}</span></th>",
            escape(&r.id),
            if r.differs { " class=\"differs\"" } else { "" },
            escape(&r.id),
            if r.differs { " <b>≠</b>" } else { "" },
            escape(&r.title),
            if r.required { "" } else { " (optional)" }
        );
        for c in &r.groups {
            body.push_str(&cell(c.as_ref()));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n</section>\n<section id=\"groups\">\n<h2>Groups</h2>\n<table>\n<tr><th>group</th><th>nodes</th></tr>\n");
    for g in &m.groups {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(&g.label),
            escape(&g.nodes.join(", "))
        );
    }
    body.push_str(
        "</table>\n<h2>Reports</h2>\n<table>\n<tr><th>node</th><th>group</th><th>started</th><th>file</th></tr>\n",
    );
    for n in &m.nodes {
        let _ = writeln!(
            body,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(&n.name),
            escape(&n.group),
            escape(&n.started_at),
            escape(&n.file)
        );
    }
    body.push_str("</table>\n</section>\n<footer>amlprobe merge · a self-contained page: it loads nothing</footer>\n");
    page(&format!("amlprobe fleet: {} nodes", m.nodes.len()), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::saved::SavedReport;
    use crate::model::outcome::FlowStatus;
    use crate::report::render::html::tests::{XSS, assert_self_contained, attributes, tags};
    use crate::report::test_support::sample_report;

    fn saved(host: &str, blob: FlowStatus) -> SavedReport {
        let mut r: SavedReport = serde_json::from_str(&sample_report().to_json()).unwrap();
        r.host.hostname = host.into();
        r.origin = format!("{host}.json");
        let f = r.flows.iter_mut().find(|f| f.id == "w.blob").unwrap();
        f.status = blob;
        f.reason = (blob == FlowStatus::Blocked).then(|| "tcp_timeout".into());
        r
    }

    #[test]
    fn disagreeing_flows_come_first_with_one_column_per_group() {
        let mut reports = vec![
            saved("node-a", FlowStatus::Works),
            saved("node-b", FlowStatus::Blocked),
            saved("node-c", FlowStatus::Works),
        ];
        // w.blob is listed last in every report: the heatmap lifts it above w.api.
        for r in &mut reports {
            r.flows.sort_by_key(|f| f.id != "w.api");
        }
        let m = crate::analyze::matrix::merge(&reports);
        let html = render(&m, false);
        assert_self_contained(&html);
        let rows = attributes(&html, "data-flow");
        assert_eq!(rows, ["w.blob", "w.api"]);
        assert_eq!(tags(&html, "tr data-flow=\"w.blob\" class=\"differs\"").len(), 1);
        assert!(html.contains("<th title=\"node-a, node-c\">A<br><span class=\"reason\">2 nodes</span></th>"));
        assert!(html.contains("<th title=\"node-b\">B<br><span class=\"reason\">node-b</span></th>"));
        let blob = &html[html.find("data-flow=\"w.blob\"").unwrap()..];
        let blob = &blob[..blob.find("</tr>").unwrap()];
        assert!(
            blob.contains("<td class=\"cell s-works\" title=\"works\">works</td>"),
            "{blob}"
        );
        assert!(
            blob.contains("<td class=\"cell s-blocked\" title=\"blocked: tcp_timeout\">BLOCKED tcp_timeout</td>"),
            "{blob}"
        );
        assert_eq!(attributes(&render(&m, true), "data-flow"), ["w.blob"]);
    }

    #[test]
    fn node_names_and_reasons_from_files_are_escaped() {
        for bad in XSS {
            let mut a = saved(&format!("node{bad}"), FlowStatus::Blocked);
            a.flows[1].reason = Some(bad.into());
            a.flows[1].title = bad.into();
            a.flows[1].id = bad.into();
            a.started_at = bad.into();
            let m = crate::analyze::matrix::merge(&[a, saved("node-b", FlowStatus::Works)]);
            let html = render(&m, false);
            assert_self_contained(&html);
            assert!(!html.contains(bad), "raw {bad}");
        }
    }
}
