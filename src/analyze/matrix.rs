//! `amlprobe merge`: many nodes' reports as one node × flow matrix. Nodes with identical results
//! form a group, so a thousand-node fleet with two behaviours shows as two columns.

use crate::analyze::saved::{SavedCause, SavedReport};
use crate::model::outcome::FlowStatus;
use crate::sanitize::terminal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A flow's result on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Status.
    pub status: FlowStatus,
    /// Reason code.
    pub reason: Option<String>,
}

/// One node (one report).
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Host name, with the file name when two reports share one.
    pub name: String,
    /// The report file.
    pub file: String,
    /// When its run started.
    pub started_at: String,
    /// The group it belongs to.
    pub group: String,
}

/// Nodes whose results are identical.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// `A`, `B`, … largest first.
    pub label: String,
    /// Member node names.
    pub nodes: Vec<String>,
    /// The root causes its members report, matched by reason and subject.
    pub causes: Vec<GroupCause>,
}

/// A root cause as seen by the nodes of one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCause {
    /// Reason code.
    pub reason: String,
    /// The shared thing (DNS server, zone, issuer, proxy, port and service tag, host).
    pub subject: String,
    /// What is wrong, in the first member's words.
    pub summary: String,
    /// How many of the group's nodes report it.
    pub nodes: usize,
}

/// The causes of `members`, in the order first seen, each with how many members report it.
fn group_causes(reports: &[SavedReport], members: &[usize]) -> Vec<GroupCause> {
    let mut seen: Vec<(&SavedCause, usize)> = Vec::new();
    for &m in members {
        for c in &reports[m].root_causes {
            match seen.iter_mut().find(|(s, _)| s.same_as(c)) {
                Some((_, n)) => *n += 1,
                None => seen.push((c, 1)),
            }
        }
    }
    seen.into_iter()
        .map(|(c, nodes)| GroupCause {
            reason: c.reason.clone(),
            subject: c.subject.clone(),
            summary: c.summary.clone(),
            nodes,
        })
        .collect()
}

/// One flow across the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Flow id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Whether the flow is required.
    pub required: bool,
    /// Whether nodes disagree on it.
    pub differs: bool,
    /// Result per node name (absent when the node's report lacks the flow).
    pub nodes: BTreeMap<String, Cell>,
    /// Result per group label (the same for every member).
    #[serde(skip)]
    pub groups: Vec<Option<Cell>>,
}

/// The merged view.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Nodes grouped by identical results.
    pub groups: Vec<Group>,
    /// Every flow, in the order first seen.
    pub flows: Vec<Row>,
}

fn group_label(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if i < 26 {
        (letters[i] as char).to_string()
    } else {
        format!("G{}", i + 1)
    }
}

/// Builds the matrix from reports (at least one).
pub fn merge(reports: &[SavedReport]) -> Matrix {
    let mut names: Vec<String> = Vec::new();
    for r in reports {
        let shared = reports.iter().filter(|o| o.host.hostname == r.host.hostname).count() > 1;
        names.push(if shared {
            format!("{} ({})", r.host.hostname, r.origin)
        } else {
            r.host.hostname.clone()
        });
    }
    let mut ids: Vec<(String, String, bool)> = Vec::new();
    for r in reports {
        for f in &r.flows {
            if !ids.iter().any(|(id, ..)| *id == f.id) {
                ids.push((f.id.clone(), f.title.clone(), f.required));
            }
        }
    }
    let cell = |r: &SavedReport, id: &str| {
        r.flows.iter().find(|f| f.id == id).map(|f| Cell {
            status: f.status,
            reason: f.reason.clone(),
        })
    };
    // Nodes with the same cell in every row share a group.
    let fingerprints: Vec<Vec<Option<Cell>>> = reports
        .iter()
        .map(|r| ids.iter().map(|(id, ..)| cell(r, id)).collect())
        .collect();
    let mut distinct: Vec<(Vec<Option<Cell>>, Vec<usize>)> = Vec::new();
    for (i, fp) in fingerprints.iter().enumerate() {
        match distinct.iter_mut().find(|(d, _)| d == fp) {
            Some((_, members)) => members.push(i),
            None => distinct.push((fp.clone(), vec![i])),
        }
    }
    distinct.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
    let mut group_of = vec![String::new(); reports.len()];
    let groups: Vec<Group> = distinct
        .iter()
        .enumerate()
        .map(|(g, (_, members))| {
            for &m in members {
                group_of[m] = group_label(g);
            }
            Group {
                label: group_label(g),
                nodes: members.iter().map(|&m| names[m].clone()).collect(),
                causes: group_causes(reports, members),
            }
        })
        .collect();
    let flows = ids
        .iter()
        .enumerate()
        .map(|(row, (id, title, required))| {
            let per_group: Vec<Option<Cell>> = distinct.iter().map(|(fp, _)| fp[row].clone()).collect();
            Row {
                id: id.clone(),
                title: title.clone(),
                required: *required,
                differs: per_group.windows(2).any(|w| w[0] != w[1]),
                nodes: names
                    .iter()
                    .zip(&fingerprints)
                    .filter_map(|(n, fp)| fp[row].clone().map(|c| (n.clone(), c)))
                    .collect(),
                groups: per_group,
            }
        })
        .collect();
    let nodes = reports
        .iter()
        .enumerate()
        .map(|(i, r)| Node {
            name: names[i].clone(),
            file: r.origin.clone(),
            started_at: r.started_at.clone(),
            group: group_of[i].clone(),
        })
        .collect();
    Matrix { nodes, groups, flows }
}

impl Matrix {
    /// 1 when a required flow is blocked on some node, else 0.
    pub fn exit_code(&self) -> u8 {
        let blocked = self
            .flows
            .iter()
            .any(|r| r.required && r.groups.iter().flatten().any(|c| c.status == FlowStatus::Blocked));
        if blocked {
            crate::model::exit::BLOCKED
        } else {
            crate::model::exit::OK
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the matrix serializes")
    }

    fn rows(&self, only_differences: bool) -> impl Iterator<Item = &Row> {
        self.flows.iter().filter(move |r| !only_differences || r.differs)
    }
}

/// A node group's column header: its label and node (or node count).
fn header(g: &Group) -> String {
    match g.nodes.len() {
        1 => format!("{}: {}", g.label, terminal(&g.nodes[0])),
        n => format!("{}: {} nodes", g.label, n),
    }
}

/// A cell as shown; reasons come from saved files, so they are escaped.
fn cell_text(c: Option<&Cell>) -> String {
    let text = match c {
        None => "-".into(),
        Some(Cell {
            status: FlowStatus::Works,
            ..
        }) => "works".into(),
        Some(Cell {
            status: FlowStatus::Blocked,
            reason,
        }) => format!("BLOCKED {}", reason.as_deref().unwrap_or("")),
        Some(Cell {
            status: FlowStatus::Inconclusive,
            reason,
        }) => format!("? {}", reason.as_deref().unwrap_or("")),
        Some(Cell {
            status: status @ (FlowStatus::Skipped | FlowStatus::NotTestable),
            ..
        }) => status.label().into(),
    };
    terminal(text.trim()).into_owned()
}

/// `reason summary`, with how many of the group's nodes report it when not all do.
fn cause_text(g: &Group, c: &GroupCause) -> String {
    let share = if c.nodes == g.nodes.len() {
        String::new()
    } else {
        format!(" ({} of {} nodes)", c.nodes, g.nodes.len())
    };
    format!("{} {}{share}", terminal(&c.reason), terminal(&c.summary))
}

fn legend(m: &Matrix) -> String {
    let mut out = String::new();
    for g in &m.groups {
        let _ = writeln!(
            out,
            "{} ({} node{}): {}",
            g.label,
            g.nodes.len(),
            if g.nodes.len() == 1 { "" } else { "s" },
            terminal(&g.nodes.join(", "))
        );
        for c in &g.causes {
            let _ = writeln!(out, "   root cause: {}", cause_text(g, c));
        }
    }
    out
}

fn footer(m: &Matrix, shown: usize) -> String {
    let differing = m.flows.iter().filter(|r| r.differs).count();
    format!(
        "{} nodes in {} group{}; {} flows, {} differ between nodes ({} shown); exit {}\n",
        m.nodes.len(),
        m.groups.len(),
        if m.groups.len() == 1 { "" } else { "s" },
        m.flows.len(),
        differing,
        shown,
        m.exit_code()
    )
}

/// The terminal table: one column per group, `≠` on rows where nodes disagree.
pub fn to_text(m: &Matrix, only_differences: bool) -> String {
    const MAX: usize = 30;
    let clip = |s: String| {
        if s.chars().count() > MAX {
            s.chars().take(MAX - 1).collect::<String>() + "…"
        } else {
            s
        }
    };
    let rows: Vec<&Row> = m.rows(only_differences).collect();
    let id_width = rows.iter().map(|r| terminal(&r.id).len()).max().unwrap_or(4).max(4);
    let headers: Vec<String> = m.groups.iter().map(|g| clip(header(g))).collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(g, h)| {
            rows.iter()
                .map(|r| clip(cell_text(r.groups[g].as_ref())).chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("  {:<id_width$}", "FLOW");
    for (h, w) in headers.iter().zip(&widths) {
        let _ = write!(out, "  {h:<w$}");
    }
    out = out.trim_end().to_string() + "\n";
    for r in &rows {
        let mut line = format!("{} {:<id_width$}", if r.differs { '≠' } else { ' ' }, terminal(&r.id));
        for (g, w) in widths.iter().enumerate() {
            let _ = write!(line, "  {:<w$}", clip(cell_text(r.groups[g].as_ref())));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    format!("{out}\n{}{}", legend(m), footer(m, rows.len()))
}

/// Text from report files as inline Markdown that renders as exactly that text: controls
/// escaped as the terminal shows them, then every ASCII punctuation character backslash-escaped
/// (CommonMark allows it for each), so no link, image, HTML, emphasis, code span or table cell
/// boundary can form, and GFM's autolinks (`https:`, `www.`, `@`) never start.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in terminal(s).chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as a Markdown code span, shown literally: fenced by more backticks than any run inside
/// it (padded when it starts or ends with one), and `|` escaped, which GFM tables need even in
/// code.
fn md_code(s: &str) -> String {
    let s = terminal(s).replace('|', "\\|");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.is_empty() || s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A Markdown table for a ticket, with the group legend. Everything from the report files
/// (node names, flow ids, reasons, root causes) is inert text.
pub fn to_markdown(m: &Matrix, only_differences: bool) -> String {
    let esc = md_text;
    let rows: Vec<&Row> = m.rows(only_differences).collect();
    let mut out = String::from("| flow | differs |");
    for g in &m.groups {
        let header = match g.nodes.len() {
            1 => format!("{}: {}", g.label, esc(&g.nodes[0])),
            n => format!("{}: {n} nodes", g.label),
        };
        let _ = write!(out, " {header} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(m.groups.len()));
    out.push('\n');
    for r in &rows {
        let _ = write!(
            out,
            "| {} | {} |",
            md_code(&r.id),
            if r.differs { "**yes**" } else { "" }
        );
        for c in &r.groups {
            let text = esc(&cell_text(c.as_ref()));
            if c.as_ref().is_some_and(|c| c.status == FlowStatus::Blocked) {
                let _ = write!(out, " **{text}** |");
            } else {
                let _ = write!(out, " {text} |");
            }
        }
        out.push('\n');
    }
    out.push('\n');
    for g in &m.groups {
        let _ = writeln!(
            out,
            "- **{}** ({}): {}",
            g.label,
            g.nodes.len(),
            esc(&g.nodes.join(", "))
        );
        for c in &g.causes {
            let _ = writeln!(out, "  - root cause: {}", esc(&cause_text(g, c)));
        }
    }
    out.push('\n');
    out.push_str(&footer(m, rows.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::saved::{SavedFlow, SavedHost};

    fn report(host: &str, blob: FlowStatus) -> SavedReport {
        let flow = |id: &str, status, reason: Option<&str>| SavedFlow {
            id: id.into(),
            title: id.into(),
            required: true,
            status,
            reason: reason.map(Into::into),
            message: String::new(),
            hint: None,
        };
        SavedReport {
            schema_version: 1,
            started_at: "t".into(),
            host: SavedHost { hostname: host.into() },
            flows: vec![
                flow("w.api", FlowStatus::Works, None),
                flow("w.blob", blob, (blob == FlowStatus::Blocked).then_some("tcp_timeout")),
            ],
            root_causes: match blob {
                FlowStatus::Blocked => vec![SavedCause {
                    id: 1,
                    reason: "tcp_timeout".into(),
                    subject: "TCP 443 to Storage".into(),
                    summary: format!("TCP 443 to Storage is silently dropped on {host}"),
                    fix: "Allow TCP 443 to Storage.".into(),
                    flows: vec!["w.blob".into()],
                }],
                _ => vec![],
            },
            origin: format!("{host}.json"),
        }
    }

    #[test]
    fn each_group_lists_the_root_causes_of_its_nodes() {
        let reports = vec![
            report("node-a", FlowStatus::Works),
            report("node-b", FlowStatus::Blocked),
            report("node-c", FlowStatus::Blocked),
        ];
        let m = merge(&reports);
        assert_eq!(m.groups[0].nodes, ["node-b", "node-c"]);
        let causes = &m.groups[0].causes;
        assert_eq!(causes.len(), 1, "the same reason and subject on two nodes is one cause");
        assert_eq!((causes[0].subject.as_str(), causes[0].nodes), ("TCP 443 to Storage", 2));
        assert!(m.groups[1].causes.is_empty());
        let text = to_text(&m, false);
        assert!(
            text.contains("A (2 nodes): node-b, node-c\n   root cause: tcp_timeout TCP 443 to Storage is silently dropped on node-b\nB (1 node): node-a\n"),
            "{text}"
        );
        assert!(
            to_markdown(&m, false)
                .contains("  - root cause: tcp\\_timeout TCP 443 to Storage is silently dropped on node\\-b\n"),
            "{}",
            to_markdown(&m, false)
        );
    }

    #[test]
    fn identical_nodes_share_a_group_and_differences_are_marked() {
        let reports = vec![
            report("node-a", FlowStatus::Works),
            report("node-b", FlowStatus::Blocked),
            report("node-c", FlowStatus::Works),
        ];
        let m = merge(&reports);
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.groups[0].nodes, vec!["node-a", "node-c"]);
        assert_eq!(m.groups[1].nodes, vec!["node-b"]);
        assert_eq!(m.nodes[1].group, "B");
        assert!(!m.flows[0].differs);
        assert!(m.flows[1].differs);
        assert_eq!(m.flows[1].nodes["node-b"].reason.as_deref(), Some("tcp_timeout"));
        assert_eq!(m.exit_code(), 1);
        let text = to_text(&m, false);
        assert!(text.contains("≠ w.blob"), "{text}");
        assert!(text.contains("BLOCKED tcp_timeout"));
        assert!(text.contains("A (2 nodes): node-a, node-c"));
        assert!(!to_text(&m, true).contains("w.api"));
        let md = to_markdown(&m, false);
        assert!(
            md.contains("| `w.blob` | **yes** | works | **BLOCKED tcp\\_timeout** |"),
            "{md}"
        );
    }

    #[test]
    fn same_hostname_twice_is_told_apart_by_file() {
        let mut second = report("node-a", FlowStatus::Works);
        second.origin = "later.json".into();
        let m = merge(&[report("node-a", FlowStatus::Works), second]);
        assert_eq!(m.nodes[1].name, "node-a (later.json)");
        assert_eq!(m.groups.len(), 1);
        assert_eq!(m.exit_code(), 0);
    }

    /// What a report file can carry to turn a ticket's Markdown into links, images or HTML.
    const PAYLOADS: [&str; 9] = [
        "[click](javascript:alert(1))",
        "![x](https://evil.example/t.png)",
        "<img src=x onerror=alert(1)>",
        "a`b` | c",
        "https://evil.example/p www.evil.example x@evil.example",
        "<https://evil.example>",
        "*em* _u_ ~~s~~ **b** \\",
        "&lt;script&gt; &#106;avascript:",
        "[ref]: https://evil.example",
    ];

    /// The Markdown as GitHub renders it (CommonMark + GFM tables, autolinks, strikethrough):
    /// every link, image, inline or block HTML node, and the text of the document.
    fn rendered(markdown: &str) -> (Vec<String>, String) {
        use comrak::nodes::NodeValue;
        let mut options = comrak::Options::default();
        options.extension.table = true;
        options.extension.autolink = true;
        options.extension.strikethrough = true;
        let arena = comrak::Arena::new();
        let root = comrak::parse_document(&arena, markdown, &options);
        let mut active = Vec::new();
        let mut text = String::new();
        for node in root.descendants() {
            match &node.data.borrow().value {
                NodeValue::Link(l) => active.push(format!("link {}", l.url)),
                NodeValue::Image(l) => active.push(format!("image {}", l.url)),
                NodeValue::HtmlInline(h) => active.push(format!("html {h}")),
                NodeValue::HtmlBlock(h) => active.push(format!("html block {}", h.literal)),
                NodeValue::Text(t) => text.push_str(t),
                NodeValue::Code(c) => text.push_str(&c.literal),
                _ => {}
            }
        }
        (active, text)
    }

    #[test]
    fn markdown_shows_report_text_inert() {
        let mut reports = vec![
            report("node-a", FlowStatus::Works),
            report("node-b", FlowStatus::Blocked),
        ];
        for (i, payload) in PAYLOADS.iter().enumerate() {
            let hostile = |r: &mut SavedReport| {
                r.flows[1].id = format!("w.{payload}");
                r.flows[1].reason = Some(format!("tcp_{payload}"));
                for c in &mut r.root_causes {
                    c.reason = format!("r{payload}");
                    c.summary = format!("summary {payload}");
                }
            };
            hostile(&mut reports[1]);
            reports[0].host.hostname = format!("node-{i}{payload}");
            reports[0].flows[1].id = format!("w.{payload}");
            let md = to_markdown(&merge(&reports), false);
            let (active, text) = rendered(&md);
            assert!(active.is_empty(), "{payload}: {active:?}\n{md}");
            // Every cell stays where it is: the rows keep their column count.
            for line in md.lines().filter(|l| l.starts_with('|')) {
                let cells = line.replace("\\|", "").matches('|').count();
                assert_eq!(cells, 2 + 2 + 1, "{payload}: {line}");
            }
            // And shows the text as it was.
            assert!(text.contains(&format!("node-{i}{payload}")), "{payload}: {text}");
            assert!(text.contains(&format!("summary {payload}")), "{payload}: {text}");
            assert!(text.contains(&format!("w.{payload}")), "{payload}: {text}");
        }
    }

    #[test]
    fn code_spans_hold_any_backticks() {
        assert_eq!(md_code("w.blob"), "`w.blob`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`a``"), "``` `a`` ```");
        assert_eq!(md_code("a|b"), "`a\\|b`");
        assert_eq!(md_code(""), "`  `");
    }
}
