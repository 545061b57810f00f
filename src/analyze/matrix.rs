//! `amlprobe merge`: many nodes' reports as one node × flow matrix. Nodes with identical results
//! form a group, so a thousand-node fleet with two behaviours shows as two columns.

use crate::analyze::saved::{SavedCause, SavedReport};
use crate::model::exit;
use crate::model::outcome::FlowStatus;
use crate::sanitize::terminal;
use serde::Serialize;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
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

/// The causes the members of a group report (one list per member), in the order first seen,
/// each with how many members report it.
fn group_causes<'a>(members: impl Iterator<Item = &'a Vec<SavedCause>>) -> Vec<GroupCause> {
    let mut seen: Vec<(&SavedCause, usize)> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for c in members.flatten() {
        match index.entry(c.key()) {
            Entry::Occupied(at) => seen[*at.get()].1 += 1,
            Entry::Vacant(slot) => {
                slot.insert(seen.len());
                seen.push((c, 1));
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

/// One flow across the fleet. Its JSON also holds `nodes`: the result per node name (absent
/// when the node's report lacks the flow), written from the groups (every member of a group has
/// the same results), so memory grows with groups, not with nodes × flows.
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
    /// Result per group label (the same for every member).
    #[serde(skip)]
    pub groups: Vec<Option<Cell>>,
}

/// The merged view.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Nodes grouped by identical results.
    pub groups: Vec<Group>,
    /// Every flow, in the order first seen.
    pub flows: Vec<Row>,
    /// Each node's group (index into `groups`), by node index.
    node_groups: Vec<usize>,
    /// Node indexes in the order of their names, as the JSON lists each row's nodes.
    by_name: Vec<usize>,
    /// The worst exit code of the merged runs, each judged with its own `--strict`.
    exit_code: u8,
}

impl Serialize for Matrix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
        /// A row as the JSON shows it: its fields and `nodes`.
        struct RowView<'a>(&'a Matrix, &'a Row);
        /// A row's cells by node name.
        struct Cells<'a>(&'a Matrix, &'a Row);
        /// Every row.
        struct Rows<'a>(&'a Matrix);
        impl Serialize for Cells<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Cells(m, row) = self;
                let mut map = serializer.serialize_map(None)?;
                for &n in &m.by_name {
                    if let Some(cell) = &row.groups[m.node_groups[n]] {
                        map.serialize_entry(&m.nodes[n].name, cell)?;
                    }
                }
                map.end()
            }
        }
        impl Serialize for RowView<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let RowView(m, row) = self;
                let mut s = serializer.serialize_struct("Row", 5)?;
                s.serialize_field("id", &row.id)?;
                s.serialize_field("title", &row.title)?;
                s.serialize_field("required", &row.required)?;
                s.serialize_field("differs", &row.differs)?;
                s.serialize_field("nodes", &Cells(m, row))?;
                s.end()
            }
        }
        impl Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(self.0.flows.len()))?;
                for row in &self.0.flows {
                    seq.serialize_element(&RowView(self.0, row))?;
                }
                seq.end()
            }
        }
        let mut s = serializer.serialize_struct("Matrix", 3)?;
        s.serialize_field("nodes", &self.nodes)?;
        s.serialize_field("groups", &self.groups)?;
        s.serialize_field("flows", &Rows(self))?;
        s.end()
    }
}

fn group_label(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if i < 26 {
        (letters[i] as char).to_string()
    } else {
        format!("G{}", i + 1)
    }
}

/// Marks a flow a node's report lacks, in a fingerprint.
const ABSENT: u32 = u32::MAX;

/// What a merge keeps of one node's report.
struct NodeSeen {
    hostname: String,
    origin: String,
    started_at: String,
    causes: Vec<SavedCause>,
}

/// Builds a [`Matrix`] one report at a time, in time linear in the flows: flows are found by id
/// through a map, each node's results are a fingerprint of small cell numbers (the distinct
/// status and reason pairs are few), and nodes with the same fingerprint share a group found
/// by hashing it. Only what the matrix shows is kept, so a report can be dropped once added.
#[derive(Default)]
pub struct Merger {
    /// Each flow id (in the order first seen) and its row.
    row_of: HashMap<String, usize>,
    /// Title and `required` of each row, from the first report that had the flow.
    rows: Vec<(String, bool)>,
    cells: Vec<Cell>,
    cell_of: HashMap<(FlowStatus, Option<String>), u32>,
    /// Each distinct fingerprint (trailing absent flows cut, so reports added before a flow was
    /// first seen compare equal) and its group.
    group_of: HashMap<Vec<u32>, usize>,
    /// Each group's members, by node index.
    members: Vec<Vec<usize>>,
    nodes: Vec<NodeSeen>,
    /// The worst exit code of the reports added, each by its own rule ([`exit::of_run`]).
    exit_code: u8,
}

impl Merger {
    /// Adds one node's report; a report's first flow with an id is its result.
    pub fn add(&mut self, report: &SavedReport) {
        let flows = report.flows.iter().map(|f| (f.required, f.status));
        self.exit_code = self.exit_code.max(exit::of_run(flows, report.settings.strict));
        let mut fingerprint: Vec<u32> = Vec::with_capacity(self.rows.len());
        for f in &report.flows {
            let row = match self.row_of.get(f.id.as_str()) {
                Some(&row) => row,
                None => {
                    self.row_of.insert(f.id.clone(), self.rows.len());
                    self.rows.push((f.title.clone(), f.required));
                    self.rows.len() - 1
                }
            };
            if fingerprint.len() <= row {
                fingerprint.resize(row + 1, ABSENT);
            }
            if fingerprint[row] == ABSENT {
                let key = (f.status, f.reason.clone());
                fingerprint[row] = match self.cell_of.get(&key) {
                    Some(&n) => n,
                    None => {
                        self.cells.push(Cell {
                            status: f.status,
                            reason: f.reason.clone(),
                        });
                        let n = (self.cells.len() - 1) as u32;
                        self.cell_of.insert(key, n);
                        n
                    }
                };
            }
        }
        while fingerprint.last() == Some(&ABSENT) {
            fingerprint.pop();
        }
        let node = self.nodes.len();
        match self.group_of.entry(fingerprint) {
            Entry::Occupied(g) => self.members[*g.get()].push(node),
            Entry::Vacant(slot) => {
                slot.insert(self.members.len());
                self.members.push(vec![node]);
            }
        }
        self.nodes.push(NodeSeen {
            hostname: report.host.hostname.clone(),
            origin: report.origin.clone(),
            started_at: report.started_at.clone(),
            causes: report.root_causes.clone(),
        });
    }

    /// The matrix of every report added (at least one).
    pub fn finish(self) -> Matrix {
        let mut per_hostname: HashMap<&str, usize> = HashMap::new();
        for n in &self.nodes {
            *per_hostname.entry(&n.hostname).or_default() += 1;
        }
        let names: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                if per_hostname[n.hostname.as_str()] > 1 {
                    format!("{} ({})", n.hostname, n.origin)
                } else {
                    n.hostname.clone()
                }
            })
            .collect();
        let mut fingerprints = vec![Vec::new(); self.members.len()];
        for (fingerprint, g) in self.group_of {
            fingerprints[g] = fingerprint;
        }
        let mut distinct: Vec<(Vec<u32>, Vec<usize>)> = fingerprints.into_iter().zip(self.members).collect();
        // Largest first; groups of one size keep the order first seen.
        distinct.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
        let mut node_groups = vec![0; self.nodes.len()];
        let groups: Vec<Group> = distinct
            .iter()
            .enumerate()
            .map(|(g, (_, members))| {
                for &m in members {
                    node_groups[m] = g;
                }
                Group {
                    label: group_label(g),
                    nodes: members.iter().map(|&m| names[m].clone()).collect(),
                    causes: group_causes(members.iter().map(|&m| &self.nodes[m].causes)),
                }
            })
            .collect();
        let cell_at = |fp: &[u32], row: usize| fp.get(row).copied().unwrap_or(ABSENT);
        let mut ids = vec![String::new(); self.rows.len()];
        for (id, row) in self.row_of {
            ids[row] = id;
        }
        let flows = ids
            .into_iter()
            .zip(self.rows)
            .enumerate()
            .map(|(row, (id, (title, required)))| Row {
                id,
                title,
                required,
                differs: distinct
                    .windows(2)
                    .any(|w| cell_at(&w[0].0, row) != cell_at(&w[1].0, row)),
                groups: distinct
                    .iter()
                    .map(|(fp, _)| {
                        let n = cell_at(fp, row);
                        (n != ABSENT).then(|| self.cells[n as usize].clone())
                    })
                    .collect(),
            })
            .collect();
        let nodes: Vec<Node> = self
            .nodes
            .into_iter()
            .zip(names)
            .enumerate()
            .map(|(i, (n, name))| Node {
                name,
                file: n.origin,
                started_at: n.started_at,
                group: group_label(node_groups[i]),
            })
            .collect();
        let mut by_name: Vec<usize> = (0..nodes.len()).collect();
        by_name.sort_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name));
        // Two nodes never share a name (a shared host name gets its file); as keys of a JSON
        // map, the first of equal names would stand for both anyway.
        by_name.dedup_by(|a, b| nodes[*a].name == nodes[*b].name);
        Matrix {
            nodes,
            groups,
            flows,
            node_groups,
            by_name,
            exit_code: self.exit_code,
        }
    }
}

/// Builds the matrix from reports (at least one).
#[cfg(test)]
pub fn merge(reports: &[SavedReport]) -> Matrix {
    let mut merger = Merger::default();
    for r in reports {
        merger.add(r);
    }
    merger.finish()
}

impl Matrix {
    /// 1 when some node's run failed by its own rule ([`exit::fails_run`]), else 0.
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// Pretty JSON.
    #[cfg(test)]
    pub fn to_json(&self) -> String {
        crate::sanitize::json(self)
    }

    /// Pretty JSON and a newline, written to `out` as it is made: a large fleet's matrix is
    /// never held as one string.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        crate::sanitize::write_json(&mut *out, self)?;
        out.write_all(b"\n")
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
    use crate::analyze::saved::{SavedFlow, SavedHost, SavedSettings};

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
            settings: SavedSettings::default(),
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
        let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(json["flows"][1]["nodes"]["node-b"]["reason"], "tcp_timeout");
        assert_eq!(json["flows"][1]["nodes"]["node-a"]["status"], "works");
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
    fn a_strict_run_fails_the_merge_as_it_failed_its_own_run() {
        let mut strict = report("node-a", FlowStatus::Skipped);
        let lenient = report("node-b", FlowStatus::Skipped);
        assert_eq!(
            merge(std::slice::from_ref(&lenient)).exit_code(),
            0,
            "skipped is not blocked"
        );
        strict.settings.strict = true;
        assert_eq!(
            merge(&[lenient, strict]).exit_code(),
            1,
            "--strict made node-a's own run exit 1, so the merge says so too"
        );
    }

    #[test]
    fn merge_exits_as_each_saved_run_did() {
        for (blob, strict) in [
            (FlowStatus::Works, true),
            (FlowStatus::Inconclusive, false),
            (FlowStatus::Inconclusive, true),
            (FlowStatus::Blocked, false),
        ] {
            let mut run = crate::report::test_support::sample_report();
            run.flows[1].status = blob;
            run.settings.strict = strict;
            let saved = crate::analyze::saved::parse(&run.to_json(), std::path::Path::new("a.json")).unwrap();
            assert_eq!(merge(&[saved]).exit_code(), run.exit_code(), "{blob:?} strict={strict}");
        }
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

    /// A flow first seen in a later report leaves earlier nodes without it, and a node added
    /// after that with the same results as an earlier one still shares its group.
    #[test]
    fn nodes_added_before_and_after_a_new_flow_group_by_their_results() {
        let mut b = report("node-b", FlowStatus::Works);
        let mut extra = b.flows[0].clone();
        extra.id = "w.extra".into();
        b.flows.push(extra);
        let m = merge(&[
            report("node-a", FlowStatus::Works),
            b,
            report("node-c", FlowStatus::Works),
        ]);
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.groups[0].nodes, ["node-a", "node-c"]);
        assert_eq!(m.groups[1].nodes, ["node-b"]);
        assert_eq!(m.flows.len(), 3);
        assert!(m.flows[2].differs && m.flows[2].groups[0].is_none());
        let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert!(json["flows"][2]["nodes"].get("node-a").is_none(), "{json:#}");
        assert_eq!(json["flows"][2]["nodes"]["node-b"]["status"], "works");
    }
}
