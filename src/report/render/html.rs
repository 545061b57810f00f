//! `--format html`: the report as one self-contained page to attach to a ticket. No script,
//! style, font or image is loaded from anywhere (the Content-Security-Policy forbids it), the
//! status filter is plain CSS, and every piece of text the report carries passes through
//! [`escape`]: host names, DNS answers, certificate names, `Server` headers and messages come
//! from the network or the user.

use crate::model::context::ValueSource;
use crate::model::outcome::{FlowStatus, ProbeStatus};
use crate::report::schema::RootCause;
use crate::report::{FlowReport, ProbeReport, Report};
use crate::sanitize;
use std::fmt::Write;

/// No remote loads, no scripts at all (the page has none), no `<base>` or form targets.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// Styles shared by the run page and the heatmap: status colours always come with a word.
const CSS: &str = "\
:root{--works:#1a7f37;--blocked:#cf222e;--inconclusive:#9a6700;--skipped:#6e7781;--not_testable:#6e7781;--missing:#afb8c1}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;margin:0 auto;padding:1em 1.5em;max-width:1200px}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #d0d7de}h3{font-size:1em;margin:1em 0 .3em}
pre.cmd{white-space:pre-wrap;background:#f6f8fa;padding:.4em .6em;margin:.3em 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;overflow-wrap:anywhere}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.5em 0}dl.facts dt{color:#57606a}dl.facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;min-width:7.5em;padding:0 .4em;border-radius:3px;color:#fff;font-weight:600;text-align:center;font-size:.85em}
.s-works .badge,.badge.s-works{background:var(--works)}.s-blocked .badge,.badge.s-blocked{background:var(--blocked)}
.s-inconclusive .badge,.badge.s-inconclusive{background:var(--inconclusive)}.s-skipped .badge,.badge.s-skipped,.s-not_testable .badge,.badge.s-not_testable{background:var(--skipped)}
details.flow{border:1px solid #d0d7de;border-left:6px solid var(--skipped);border-radius:4px;margin:.3em 0;padding:.2em .6em}
details.s-works{border-left-color:var(--works)}details.s-blocked{border-left-color:var(--blocked)}details.s-inconclusive{border-left-color:var(--inconclusive)}
summary{cursor:pointer}summary .reason{color:#57606a}
.why{margin:.4em 0}.fix{background:#f6f8fa;padding:.3em .5em;border-radius:3px}.warn{color:#9a6700}
table{border-collapse:collapse;margin:.4em 0;width:100%}th,td{border:1px solid #d0d7de;padding:.15em .4em;text-align:left;vertical-align:top}th{background:#f6f8fa}
.probes td:nth-child(4){text-align:right}.p-fail{color:var(--blocked);font-weight:600}.p-inconclusive{color:var(--inconclusive)}
#flows>input{margin-left:.8em}
#show-works:checked~.flows .flow:not(.s-works),#show-blocked:checked~.flows .flow:not(.s-blocked),
#show-inconclusive:checked~.flows .flow:not(.s-inconclusive),#show-skipped:checked~.flows .flow:not(.s-skipped),
#show-not_testable:checked~.flows .flow:not(.s-not_testable){display:none}
#show-works:checked~.flows .suite:not(:has(.s-works)),#show-blocked:checked~.flows .suite:not(:has(.s-blocked)),
#show-inconclusive:checked~.flows .suite:not(:has(.s-inconclusive)),#show-skipped:checked~.flows .suite:not(:has(.s-skipped)),
#show-not_testable:checked~.flows .suite:not(:has(.s-not_testable)){display:none}
table.heat td.cell{color:#fff;font-weight:600;white-space:nowrap}table.heat td.s-works{background:var(--works)}table.heat td.s-blocked{background:var(--blocked)}
table.heat td.s-inconclusive{background:var(--inconclusive)}table.heat td.s-skipped,table.heat td.s-not_testable{background:var(--skipped)}table.heat td.s-missing{background:var(--missing);color:#1f2328}
tr.differs th{border-left:4px solid var(--blocked)}
footer{margin-top:2em;color:#57606a;font-size:.85em}
@media print{body{max-width:none;padding:0;font-size:11px}.filter,#flows>input,#flows>label{display:none}details.flow,tr{break-inside:avoid}summary{list-style:none}
.badge,table.heat td.cell{-webkit-print-color-adjust:exact;print-color-adjust:exact}a{color:inherit}}
";

/// `text` safe inside HTML content and quoted attribute values: `& < > " '` become entities,
/// and control and bidi characters (which could hide or reorder what a reader sees) become
/// the visible escapes of [`sanitize::escaped`].
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => match sanitize::escaped(c) {
                Some(e) => out.push_str(&e),
                None => out.push(c),
            },
        }
    }
    out
}

/// A whole page around `body`: the CSP meta tag first, so it covers everything after it.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// A fix text with its trailing `(https://learn.microsoft.com/…)` made a link; only that
/// documentation site is linked, and only a URL of plain URL characters.
fn fix(hint: &str) -> String {
    const DOCS: &str = "https://learn.microsoft.com/";
    if let Some(start) = hint.rfind(" (https://")
        && hint.ends_with(')')
    {
        let url = &hint[start + 2..hint.len() - 1];
        let plain = url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~/#?=&%+:".contains(c));
        if url.starts_with(DOCS) && plain {
            return format!(
                "{} <a href=\"{}\" rel=\"noreferrer\">documentation</a>",
                escape(&hint[..start]),
                escape(url)
            );
        }
    }
    escape(hint)
}

fn fact(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "<dt>{name}</dt><dd>{}</dd>", escape(value));
}

fn facts(report: &Report, out: &mut String) {
    let ctx = &report.context;
    let host = &report.host;
    out.push_str("<dl class=\"facts\">\n");
    fact(out, "Host", &host.hostname);
    fact(out, "OS", &host.os);
    let source = |key: &str| match ctx.sources.get(key) {
        Some(ValueSource::FlagOrEnv) | None => String::new(),
        Some(s) => format!(" (from {})", s.as_str()),
    };
    fact(out, "Cloud", &format!("{}{}", ctx.cloud.as_str(), source("cloud")));
    if let Some(region) = &ctx.region {
        fact(out, "Region", &format!("{region}{}", source("region")));
    }
    let workspace: Vec<&str> = [&ctx.workspace_name, &ctx.workspace_id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !workspace.is_empty() {
        fact(out, "Workspace", &workspace.join(" · "));
    }
    let mut resolver = if host.nameservers.is_empty() {
        "none".to_string()
    } else {
        host.nameservers.join(", ")
    };
    if !host.resolver.upstream_nameservers.is_empty() {
        let _ = write!(
            resolver,
            " (upstream {})",
            host.resolver.upstream_nameservers.join(", ")
        );
    }
    fact(out, "Resolver", &resolver);
    if !host.resolver.search_domains.is_empty() {
        fact(out, "Search domains", &host.resolver.search_domains.join(" "));
    }
    for o in &host.resolver.hosts_overrides {
        fact(out, "/etc/hosts", &format!("{} → {}", o.name, o.address));
    }
    if let Some(imds) = &host.imds {
        fact(
            out,
            "VM",
            &format!(
                "{} ({}, {}) {}",
                imds.name,
                imds.vm_size,
                imds.location,
                imds.subnets.join(", ")
            ),
        );
    }
    fact(
        out,
        "Started",
        &format!("{} ({:.1} s)", report.started_at, report.duration_ms as f64 / 1000.0),
    );
    fact(out, "Suites", &report.settings.suites.join(", "));
    fact(out, "Version", &format!("{} {}", report.tool.name, report.tool.version));
    let s = &report.summary;
    fact(
        out,
        "Exit code",
        &format!(
            "{} ({} flows: {} works, {} blocked, {} inconclusive, {} skipped, {} not testable{})",
            report.exit_code(),
            s.flows,
            s.works,
            s.blocked,
            s.inconclusive,
            s.skipped,
            s.not_testable,
            if report.settings.strict { "; --strict" } else { "" }
        ),
    );
    out.push_str("</dl>\n");
    let warnings: Vec<&String> = ctx
        .warnings
        .iter()
        .chain(&host.dns_warnings)
        .chain(&host.imds_error)
        .collect();
    for w in warnings {
        let _ = writeln!(out, "<p class=\"warn\">warning: {}</p>", escape(w));
    }
}

/// The anchor of a flow's section.
fn anchor(id: &str) -> String {
    format!("flow-{}", escape(id))
}

/// The few changes that fix everything, first: each root cause with its fix, the commands that
/// make it and the flows it explains, linked to their sections. The causes of required flows
/// come first; those that touch optional flows only are folded.
fn root_causes(report: &Report, out: &mut String) {
    if report.root_causes.is_empty() {
        return;
    }
    let (required, optional): (Vec<&RootCause>, Vec<&RootCause>) = report.root_causes.iter().partition(|c| c.required);
    out.push_str("<section id=\"causes\">\n<h2>Root causes</h2>\n");
    if !required.is_empty() {
        out.push_str("<ol>\n");
        for c in required {
            cause_item(c, out);
        }
        out.push_str("</ol>\n");
    }
    if !optional.is_empty() {
        let _ = writeln!(
            out,
            "<details class=\"optional-causes\"><summary>{} more cause(s) that touch optional flows only</summary>\n<ol>",
            optional.len()
        );
        for c in optional {
            cause_item(c, out);
        }
        out.push_str("</ol>\n</details>\n");
    }
    out.push_str("</section>\n");
}

fn cause_item(c: &RootCause, out: &mut String) {
    let flows: Vec<String> = c
        .flows
        .iter()
        .map(|id| format!("<a href=\"#{}\"><code>{}</code></a>", anchor(id), escape(id)))
        .collect();
    // The change written from what ARM showed replaces the one with placeholders.
    let commands: String = match &c.change {
        Some(change) => {
            let bicep = change
                .bicep
                .as_ref()
                .map(|b| {
                    format!(
                        "<details><summary>Bicep</summary><pre class=\"cmd\"><code>{}</code></pre></details>",
                        escape(b)
                    )
                })
                .unwrap_or_default();
            format!("<pre class=\"cmd\"><code>{}</code></pre>{bicep}", escape(&change.az))
        }
        None => c
            .commands
            .iter()
            .map(|command| format!("<pre class=\"cmd\"><code>{}</code></pre>", escape(command)))
            .collect(),
    };
    let azure: String = if c.azure.is_empty() && c.azure_notes.is_empty() {
        String::new()
    } else {
        let rows: String = c
            .azure
            .iter()
            .map(|f| {
                format!(
                    "<li><b>{}</b> <code>{}</code>: {} <span class=\"basis\">({}; <code>{}</code>)</span></li>",
                    f.kind.label(),
                    escape(&f.name),
                    escape(&f.verdict.says),
                    f.basis.label(),
                    escape(&f.resource)
                )
            })
            .chain(
                c.azure_notes
                    .iter()
                    .map(|n| format!("<li class=\"note\">{}</li>", escape(n))),
            )
            .collect();
        format!("<p><b>In Azure:</b></p><ul class=\"azure\">{rows}</ul>")
    };
    let _ = writeln!(
        out,
        "<li value=\"{}\" id=\"cause-{}\"><p><b>{}</b> <code>{}</code>{}</p>{azure}<p class=\"fix\"><b>Fix:</b> {}</p>{commands}<p>Flows: {}</p></li>",
        c.id,
        c.id,
        escape(&c.summary),
        escape(c.reason.as_str()),
        if c.required { " (required)" } else { "" },
        fix(&c.fix),
        flows.join(", ")
    );
}

fn failing(report: &Report, out: &mut String) {
    let failing: Vec<&FlowReport> = report.flows.iter().filter(|f| report.fails_run(f)).collect();
    out.push_str("<section id=\"failing\">\n<h2>Failing required flows</h2>\n");
    if failing.is_empty() {
        out.push_str("<p>None: every required flow works.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for f in failing {
            let _ = writeln!(
                out,
                "<li class=\"s-{}\"><span class=\"badge\">{}</span> <a href=\"#{}\"><code>{}</code></a> {}: {}</li>",
                f.status.as_str(),
                f.status.label(),
                anchor(&f.id),
                escape(&f.id),
                escape(&f.title),
                escape(&f.message)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// Radio buttons before the flows: CSS hides the flows of other statuses, no script needed.
fn filter(report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "<span class=\"filter\">Show:</span> <input type=\"radio\" name=\"show\" id=\"show-all\" checked><label for=\"show-all\">all ({})</label>",
        report.flows.len()
    );
    for status in FlowStatus::ALL {
        let n = report.flows.iter().filter(|f| f.status == status).count();
        if n > 0 {
            let _ = writeln!(
                out,
                "<input type=\"radio\" name=\"show\" id=\"show-{0}\"><label for=\"show-{0}\">{1} ({n})</label>",
                status.as_str(),
                status.label()
            );
        }
    }
}

fn probe_detail(report: &Report, flow: &FlowReport, p: &ProbeReport) -> String {
    let mut parts: Vec<String> = Vec::new();
    if p.message != flow.message || p.reason.is_none() {
        parts.push(escape(&p.message));
    }
    if let Some(chain) = &p.cname_chain
        && !chain.is_empty()
    {
        let mut text = escape(&chain[0].name);
        for link in chain {
            let _ = write!(text, " → {}", escape(&link.target));
        }
        parts.push(format!("CNAME <code>{text}</code>"));
    }
    if let Some(addresses) = &p.addresses {
        let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let shown = if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        };
        let expect = p
            .expect
            .as_ref()
            .map(|e| format!(" (expect {})", e.as_str()))
            .unwrap_or_default();
        parts.push(format!("addresses <code>{}</code>{}", escape(&shown), escape(&expect)));
    }
    if let Some(expected) = &p.expected_addresses {
        let list: Vec<String> = expected.iter().map(ToString::to_string).collect();
        parts.push(format!("expected <code>{}</code>", escape(&list.join(", "))));
    }
    if p.kind == crate::report::ProbeKind::Dns {
        let resolver = report
            .settings
            .dns_server
            .clone()
            .unwrap_or_else(|| report.host.nameservers.join(", "));
        parts.push(format!("resolver <code>{}</code>", escape(&resolver)));
    }
    if let Some(tls) = &p.tls {
        let mut t = Vec::new();
        if let Some(v) = &tls.version {
            t.push(format!("version {}", escape(v)));
        }
        if let Some(s) = &tls.subject {
            t.push(format!("subject <code>{}</code>", escape(s)));
        }
        if let Some(i) = &tls.issuer {
            t.push(format!("issuer <code>{}</code>", escape(i)));
        }
        if !tls.sans.is_empty() {
            t.push(format!("SANs <code>{}</code>", escape(&tls.sans.join(", "))));
        }
        if let Some(n) = &tls.not_after {
            t.push(format!("expires {}", escape(n)));
        }
        let system = match tls.trusted_system {
            Some(true) => ", trusted by the OS store",
            Some(false) => ", not trusted by the OS store",
            None => "",
        };
        t.push(format!(
            "{}{system}",
            if tls.trusted_public {
                "trusted by public roots"
            } else {
                "not trusted by public roots"
            }
        ));
        parts.push(t.join("; "));
    }
    if let Some(http) = &p.http {
        let server = http
            .server
            .as_ref()
            .map(|s| format!(", Server <code>{}</code>", escape(s)))
            .unwrap_or_default();
        parts.push(format!(
            "HTTP {}{server}{}",
            http.status,
            if http.azure { ", Azure headers" } else { "" }
        ));
    }
    if let Some(proxy) = &p.proxy {
        parts.push(format!("via proxy <code>{}</code>", escape(proxy)));
    }
    if let Some(w) = &p.warning {
        parts.push(format!("<span class=\"warn\">warning: {}</span>", escape(w)));
    }
    if let Some(h) = &p.hint
        && flow.hint.as_ref() != Some(h)
    {
        parts.push(format!("fix: {}", fix(h)));
    }
    parts.join("<br>")
}

fn probes(report: &Report, flow: &FlowReport, out: &mut String) {
    if flow.probes.is_empty() {
        return;
    }
    out.push_str(
        "<table class=\"probes\">\n<tr><th>step</th><th>target</th><th>result</th><th>ms</th><th>detail</th></tr>\n",
    );
    for p in &flow.probes {
        let target = match (p.port, p.address) {
            (Some(port), Some(a)) => format!("{}:{port} ({a})", p.host),
            (Some(port), None) => format!("{}:{port}", p.host),
            (None, _) => p.host.clone(),
        };
        let result = match p.reason {
            Some(r) => format!("{} {}", p.status.as_str(), r.as_str()),
            None => p.status.as_str().to_string(),
        };
        let class = match p.status {
            ProbeStatus::Pass => "",
            ProbeStatus::Fail => " class=\"p-fail\"",
            ProbeStatus::Inconclusive => " class=\"p-inconclusive\"",
        };
        let _ = writeln!(
            out,
            "<tr><td>{}{}</td><td class=\"mono\">{}</td><td{class}>{}</td><td>{}</td><td>{}</td></tr>",
            p.kind.as_str(),
            if p.path == crate::plan::Route::Proxy {
                " (proxy)"
            } else {
                ""
            },
            escape(&target),
            escape(&result),
            p.elapsed_ms,
            probe_detail(report, flow, p)
        );
    }
    out.push_str("</table>\n");
}

/// The first flow that showed each fix: when one cause blocks many flows (DNS down, a proxy
/// denying), its fix is spelled out once and the others point there, as the table does.
type FixesShown<'a> = std::collections::HashMap<&'a str, &'a str>;

fn flow_section<'a>(report: &Report, flow: &'a FlowReport, shown: &mut FixesShown<'a>, out: &mut String) {
    let status = flow.status.as_str();
    // Working and untestable flows need no reading; everything else is open without a click.
    let open = matches!(
        flow.status,
        FlowStatus::Blocked | FlowStatus::Inconclusive | FlowStatus::Skipped
    ) || flow.direct_path.as_ref().is_some_and(|d| d.status != FlowStatus::Works);
    let _ = writeln!(
        out,
        "<details class=\"flow s-{status}\" id=\"{}\"{}>",
        anchor(&flow.id),
        if open { " open" } else { "" }
    );
    let _ = writeln!(
        out,
        "<summary><span class=\"badge\">{}</span> <code>{}</code> {}{} <span class=\"reason\">{}</span></summary>",
        flow.status.label(),
        escape(&flow.id),
        escape(&flow.title),
        if flow.required { "" } else { " (optional)" },
        flow.reason.map_or(String::new(), |r| {
            if report.reasons.contains_key(&r) {
                format!("<a href=\"#reason-{0}\">{0}</a>", r.as_str())
            } else {
                r.as_str().to_string()
            }
        })
    );
    let _ = writeln!(out, "<p class=\"why\">{}</p>", escape(&flow.message));
    if let Some(hint) = &flow.hint {
        match shown.get(hint.as_str()) {
            Some(first) => {
                let _ = writeln!(
                    out,
                    "<p class=\"fix\"><b>Fix:</b> as for <a href=\"#{}\"><code>{}</code></a></p>",
                    anchor(first),
                    escape(first)
                );
            }
            None => {
                shown.insert(hint, &flow.id);
                let _ = writeln!(out, "<p class=\"fix\"><b>Fix:</b> {}</p>", fix(hint));
            }
        }
    }
    out.push_str("<dl class=\"facts\">\n");
    let ports: Vec<String> = flow.ports.iter().map(ToString::to_string).collect();
    fact(
        out,
        "Target",
        &format!(
            "{} {} {}/{}",
            flow.direction.as_str(),
            flow.hosts.join(", "),
            flow.protocol.as_str(),
            ports.join(",")
        ),
    );
    fact(out, "Service tag", &flow.service_tag);
    if let Some(r) = &flow.representative_of {
        fact(out, "Stands for", r);
    }
    let mut path = flow.path.as_str().to_string();
    if let Some(d) = &flow.direct_path {
        let _ = write!(
            path,
            "; direct path {}{}",
            d.status.label(),
            d.reason.map(|r| format!(" ({})", r.as_str())).unwrap_or_default()
        );
    }
    fact(out, "Path", &path);
    fact(out, "Scenario", &flow.scenario);
    fact(out, "Source", &flow.source);
    out.push_str("</dl>\n");
    probes(report, flow, out);
    out.push_str("</details>\n");
}

/// What each reason code on the page means and what usually causes it.
fn reason_glossary(report: &Report, out: &mut String) {
    if report.reasons.is_empty() {
        return;
    }
    out.push_str("<section id=\"reasons\">\n<h2>Reason codes</h2>\n<dl class=\"reasons\">\n");
    for (code, text) in &report.reasons {
        let mut meaning = format!("{} Usually: {}", text.summary, text.cause);
        if let Some(url) = &text.learn {
            meaning.push_str(&format!(" ({url})"));
        }
        let _ = writeln!(
            out,
            "<dt id=\"reason-{0}\"><code>{0}</code></dt>\n<dd>{1}</dd>",
            code.as_str(),
            fix(&meaning)
        );
    }
    out.push_str("</dl>\n</section>\n");
}

fn resolvers(report: &Report, out: &mut String) {
    let Some(comparison) = &report.resolver_comparison else {
        return;
    };
    out.push_str("<section id=\"resolvers\">\n<h2>Resolvers compared</h2>\n<table>\n<tr><th>name</th><th>verdict</th><th>answers</th></tr>\n");
    for c in comparison {
        let answers: Vec<String> = c
            .answers
            .iter()
            .map(|a| {
                let list: Vec<String> = a.addresses.iter().map(ToString::to_string).collect();
                let got = match a.reason {
                    Some(r) => r.as_str().to_string(),
                    None => list.join(", "),
                };
                format!("{}: {got}", a.resolver)
            })
            .collect();
        let verdict = match &c.diagnosis {
            Some(d) => format!("{}: {d}", c.verdict.as_str()),
            None => c.verdict.as_str().to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(&c.host),
            escape(&verdict),
            answers.iter().map(|a| escape(a)).collect::<Vec<_>>().join("<br>")
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// The run as one HTML page: facts, root causes, failing required flows, then every flow by suite.
pub fn render(report: &Report) -> String {
    let mut body = String::with_capacity(64 * 1024 + report.flows.len() * 2048);
    let blocked = report.flows.iter().filter(|f| report.fails_run(f)).count();
    let verdict = if blocked == 0 {
        "every required flow works".to_string()
    } else {
        format!("{blocked} required flow{} failing", if blocked == 1 { "" } else { "s" })
    };
    let _ = writeln!(
        body,
        "<header>\n<h1>amlprobe report: {}</h1>\n<p><b>Exit {}</b>: {verdict}.</p>",
        escape(&report.host.hostname),
        report.exit_code()
    );
    facts(report, &mut body);
    body.push_str("</header>\n");
    root_causes(report, &mut body);
    failing(report, &mut body);
    body.push_str("<section id=\"flows\">\n<h2>Flows by suite</h2>\n");
    filter(report, &mut body);
    body.push_str("<div class=\"flows\">\n");
    let mut suite: Option<&str> = None;
    let mut shown = FixesShown::new();
    for flow in &report.flows {
        if suite != Some(flow.suite.as_str()) {
            if suite.is_some() {
                body.push_str("</section>\n");
            }
            suite = Some(&flow.suite);
            let _ = writeln!(
                body,
                "<section class=\"suite\" data-suite=\"{0}\">\n<h3>{0}</h3>",
                escape(&flow.suite)
            );
        }
        flow_section(report, flow, &mut shown, &mut body);
    }
    if suite.is_some() {
        body.push_str("</section>\n");
    }
    body.push_str("</div>\n</section>\n");
    resolvers(report, &mut body);
    reason_glossary(report, &mut body);
    let _ = writeln!(
        body,
        "<footer>amlprobe {} · report schema {} · a self-contained page: it loads nothing</footer>",
        escape(&report.tool.version),
        report.schema_version
    );
    let title = format!("amlprobe {}: exit {}", report.host.hostname, report.exit_code());
    page(&title, &body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::outcome::ReasonCode;
    use crate::report::ProbeKind;
    use crate::report::schema::CnameLink;
    use crate::report::schema::HttpDetails;
    use crate::report::schema::TlsDetails;
    use crate::report::test_support::sample_report;

    /// What a hostile peer or user puts where the page shows text.
    pub const XSS: [&str; 3] = [
        "<script>window.__pwned=1</script>",
        "\"><img src=x onerror=\"window.__pwned=1\">",
        "'><svg onload=alert(1)>",
    ];

    /// The opening tags of `html` named `tag`, e.g. every `<details …>`.
    pub fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<{tag}");
        html.match_indices(&open)
            .filter(|(i, _)| {
                html[i + open.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c == '>' || c == ' ')
            })
            .map(|(i, _)| &html[i..=(i + html[i..].find('>').unwrap())])
            .collect()
    }

    /// Every `name="value"` attribute value in `html`.
    pub fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let key = format!(" {name}=\"");
        html.match_indices(&key)
            .map(|(i, _)| {
                let start = i + key.len();
                &html[start..start + html[start..].find('"').unwrap()]
            })
            .collect()
    }

    /// The checks every page passes: one CSP meta tag before anything else in the head, no
    /// script, no resource attribute, links only to the page itself or to the documentation.
    pub fn assert_self_contained(html: &str) {
        let head = &html[..html.find("</head>").unwrap()];
        let csp = head
            .find("http-equiv=\"Content-Security-Policy\"")
            .expect("a CSP meta tag");
        assert!(csp < head.find("<title>").unwrap() && csp < head.find("<style>").unwrap());
        assert!(head.contains(&format!("content=\"{CSP}\"")));
        assert!(CSP.starts_with("default-src 'none';"));
        for tag in [
            "script",
            "img",
            "link",
            "iframe",
            "object",
            "embed",
            "svg",
            "base",
            "form",
            "meta http-equiv=\"refresh\"",
        ] {
            assert!(tags(html, tag).is_empty(), "<{tag}> in the page: {:?}", tags(html, tag));
        }
        for attr in ["src", "srcset", "action", "style", "onerror", "onload"] {
            assert!(attributes(html, attr).is_empty(), "{attr}= in the page");
        }
        for href in attributes(html, "href") {
            assert!(
                href.starts_with('#') || href.starts_with("https://learn.microsoft.com/"),
                "href {href}"
            );
        }
        assert!(!html.contains("url(") && !html.contains("@import"), "CSS loads nothing");
        assert!(!html.contains("http://"));
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(escape("<script>x</script>"), "&lt;script&gt;x&lt;/script&gt;");
        assert_eq!(
            escape(XSS[1]),
            "&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"
        );
        assert_eq!(escape("a'b&c"), "a&#39;b&amp;c");
        assert_eq!(escape("x\u{202e}y\x1b[2J\n"), "x\\u{202e}y\\x1b[2J\\n");
        assert_eq!(escape("plain é ≠"), "plain é ≠");
        for x in XSS {
            assert!(!escape(x).contains(['<', '>', '"', '\'']), "{x}");
        }
    }

    /// A report where every text field the page shows carries `bad`.
    pub fn hostile_report(bad: &str) -> Report {
        let mut report = sample_report();
        report.host.hostname = format!("node{bad}");
        report.host.os = bad.into();
        report.host.nameservers.push(bad.into());
        report.host.dns_warnings.push(bad.into());
        report.context.region = Some(bad.into());
        report.context.workspace_name = Some(bad.into());
        report.started_at = bad.into();
        report.settings.suites.push(bad.into());
        for cause in &mut report.root_causes {
            cause.summary = format!("cause {bad}");
            cause.fix = format!("fix {bad}");
            cause.flows.push(bad.into());
        }
        for flow in &mut report.flows {
            flow.id.push_str(bad);
            flow.suite.push_str(bad);
            flow.title.push_str(bad);
            flow.message = format!("server {bad}");
            flow.hint = Some(format!("ask {bad} (https://learn.microsoft.com/x\"onmouseover=\"y)"));
            flow.source = bad.into();
            flow.scenario = bad.into();
            flow.service_tag = bad.into();
            flow.hosts.push(bad.into());
            for probe in &mut flow.probes {
                probe.host = format!("dns{bad}");
                probe.message = format!("Server: {bad}");
                probe.warning = Some(bad.into());
                probe.proxy = Some(bad.into());
                probe.cname_chain = Some(vec![CnameLink {
                    name: bad.into(),
                    target: bad.into(),
                }]);
                probe.addresses = Some(vec![]);
                probe.tls = Some(TlsDetails {
                    version: Some(bad.into()),
                    subject: Some(format!("CN={bad}")),
                    issuer: Some(format!("O={bad}")),
                    sans: vec![bad.into()],
                    not_after: Some(bad.into()),
                    trusted_public: false,
                    trusted_system: None,
                });
                probe.http = Some(HttpDetails {
                    status: 200,
                    server: Some(bad.into()),
                    azure: false,
                    firewall: None,
                    block_page: None,
                });
            }
        }
        report
    }

    #[test]
    fn network_and_user_text_is_escaped_everywhere() {
        for bad in XSS {
            let html = render(&hostile_report(bad));
            assert_self_contained(&html);
            assert!(!html.contains(bad), "raw {bad} in the page");
            assert!(html.contains(&escape(bad)), "the payload is shown as text");
            assert!(
                !html.contains("onmouseover=\""),
                "a doc link with odd characters is not linked"
            );
        }
    }

    #[test]
    fn the_page_shows_facts_then_failing_flows_then_suites_with_failures_open() {
        let mut report = sample_report();
        report.context.region = Some("eastus".into());
        report.context.workspace_id = Some("0f0e".into());
        let blob = report.flows.iter_mut().find(|f| f.id == "w.blob").unwrap();
        blob.hint = Some("Allow TCP 443. (https://learn.microsoft.com/azure/x#y)".into());
        blob.probes[0].cname_chain = Some(vec![CnameLink {
            name: "sa.blob.core.windows.net".into(),
            target: "sa.privatelink.blob.core.windows.net".into(),
        }]);
        blob.probes[0].addresses = Some(vec!["10.0.0.5".parse().unwrap()]);
        let html = render(&report);
        assert_self_contained(&html);
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
        assert!(at("<dt>Host</dt><dd>node-a</dd>") < at("id=\"failing\""));
        assert!(at("<dt>Region</dt><dd>eastus</dd>") < at("id=\"failing\""));
        assert!(at("<dt>Resolver</dt><dd>10.0.0.4</dd>") < at("id=\"failing\""));
        assert!(at("<dt>Exit code</dt><dd>1 (2 flows") < at("id=\"failing\""));
        assert!(at("<dt>Exit code</dt>") < at("id=\"causes\"") && at("id=\"causes\"") < at("id=\"failing\""));
        let cause = &report.root_causes[0];
        assert!(
            at(&format!(
                "<li value=\"{0}\" id=\"cause-{0}\"><p><b>{1}</b>",
                cause.id,
                escape(&cause.summary)
            )) < at("id=\"failing\"")
        );
        assert!(html.contains(&format!(
            "Flows: <a href=\"#flow-{0}\"><code>{0}</code></a>",
            cause.flows[0]
        )));
        assert!(at("href=\"#flow-w.blob\"") < at("id=\"flows\""));
        assert!(at("id=\"show-blocked\"") < at("class=\"flows\""));
        let details = tags(&html, "details");
        assert_eq!(details.len(), report.flows.len());
        for flow in &report.flows {
            let tag = details
                .iter()
                .find(|t| t.contains(&format!("id=\"flow-{}\"", flow.id)))
                .unwrap_or_else(|| panic!("{} has no section", flow.id));
            assert_eq!(tag.ends_with(" open>"), flow.status != FlowStatus::Works, "{tag}");
            assert!(tag.contains(&format!("s-{}", flow.status.as_str())));
        }
        assert!(html.contains("<span class=\"badge\">BLOCKED</span> <code>w.blob</code>"));
        assert!(html.contains("CNAME <code>sa.blob.core.windows.net → sa.privatelink.blob.core.windows.net</code>"));
        assert!(html.contains("addresses <code>10.0.0.5</code>"));
        assert!(html.contains("resolver <code>10.0.0.4</code>"));
        assert!(html.contains(
            "<b>Fix:</b> Allow TCP 443. <a href=\"https://learn.microsoft.com/azure/x#y\" rel=\"noreferrer\">documentation</a>"
        ));
        assert!(html.contains("sa.blob.core.windows.net:443 (10.0.0.5)"));
        assert!(html.contains("fail tcp_timeout</td><td>12</td>"));
        assert_eq!(tags(&html, "section class=\"suite\"").len(), 1);
    }

    #[test]
    fn required_causes_come_first_and_optional_ones_are_folded() {
        let mut report = sample_report();
        report.root_causes[0].commands = vec!["az network nsg rule create -g <resource-group>".into()];
        let mut optional = report.root_causes[0].clone();
        optional.id = 2;
        optional.required = false;
        optional.summary = "pypi.org is dropped".into();
        report.root_causes.push(optional);
        let html = render(&report);
        let folded = html
            .find("<details class=\"optional-causes\">")
            .expect("optional causes folded");
        assert!(html.find("id=\"cause-1\"").unwrap() < folded, "{html}");
        assert!(folded < html.find("id=\"cause-2\"").unwrap(), "{html}");
        assert!(
            html.contains("<pre class=\"cmd\"><code>az network nsg rule create -g &lt;resource-group&gt;</code></pre>"),
            "{html}"
        );
    }

    #[test]
    fn a_page_without_failures_says_so() {
        let mut report = sample_report();
        report.flows.retain(|f| f.status == FlowStatus::Works);
        let html = render(&report);
        assert!(html.contains("<p>None: every required flow works.</p>"));
        assert!(
            !html.contains("id=\"show-blocked\""),
            "no filter for a status nobody has"
        );
        assert!(tags(&html, "details").iter().all(|t| !t.contains(" open")));
    }

    #[test]
    fn a_failing_flow_links_its_reason_to_the_glossary() {
        let html = render(&sample_report());
        assert!(
            html.contains("<a href=\"#reason-tcp_timeout\">tcp_timeout</a>"),
            "the reason links to its explanation"
        );
        let entry = html
            .split("<dt id=\"reason-tcp_timeout\">")
            .nth(1)
            .expect("a glossary entry for tcp_timeout");
        let dd = entry.split("</dd>").next().unwrap();
        assert!(dd.contains("Usually: "), "{dd}");
        assert!(
            !html.contains("id=\"reason-dns_nxdomain\""),
            "only codes the report uses"
        );
    }

    /// Every built-in flow of every suite, each failing with the longest details a probe
    /// records: the page must stay small enough to attach to a ticket. The budget is per flow,
    /// so adding a flow to a suite (data) never needs a change here.
    #[test]
    fn every_built_in_flow_fits_in_3_kb_a_flow() {
        let catalog = crate::model::suite::Catalog::builtin().unwrap();
        let template = sample_report().flows.into_iter().find(|f| f.id == "w.blob").unwrap();
        let mut report = sample_report();
        report.flows = catalog
            .suites
            .iter()
            .flat_map(|s| s.flows.iter().map(move |f| (s, f)))
            .map(|(suite, spec)| {
                let mut flow = template.clone();
                flow.id = spec.id.clone();
                flow.suite = suite.meta.name.clone();
                flow.title = spec.title.clone();
                flow.source = spec.source.clone();
                flow.scenario = spec.scenario.clone();
                flow.hosts = spec.hosts.clone();
                flow.hint = catalog.hints[&ReasonCode::DnsPublicIp].hint.clone().into();
                flow.message = format!("{} resolved to 20.60.1.2, a public address", spec.hosts.join(", "));
                let host = spec.hosts.first().cloned().unwrap_or_default();
                let mut probes = vec![flow.probes[0].clone()];
                probes[0].host = host.clone();
                probes[0].cname_chain = Some(vec![
                    CnameLink {
                        name: host.clone(),
                        target: format!("{host}.privatelink.example.net"),
                    },
                    CnameLink {
                        name: format!("{host}.privatelink.example.net"),
                        target: "blob.bl5prdstr09a.store.core.windows.net".into(),
                    },
                ]);
                probes[0].addresses = Some(vec!["20.60.1.2".parse().unwrap()]);
                for kind in [ProbeKind::Tcp, ProbeKind::Tls, ProbeKind::Http] {
                    let mut p = flow.probes[1].clone();
                    p.kind = kind;
                    p.host = host.clone();
                    p.tls = (kind == ProbeKind::Tls).then(|| TlsDetails {
                        version: Some("TLSv1.3".into()),
                        subject: Some(format!("CN={host}, O=Microsoft Corporation, L=Redmond, ST=WA, C=US")),
                        issuer: Some("CN=Microsoft Azure RSA TLS Issuing CA 03, O=Microsoft Corporation, C=US".into()),
                        sans: vec![host.clone(), format!("*.{host}"), "*.privatelink.example.net".into()],
                        not_after: Some("2027-01-01T00:00:00Z".into()),
                        trusted_public: true,
                        trusted_system: Some(true),
                    });
                    p.http = (kind == ProbeKind::Http).then(|| HttpDetails {
                        status: 404,
                        server: Some("Microsoft-HTTPAPI/2.0".into()),
                        azure: true,
                        firewall: None,
                        block_page: None,
                    });
                    probes.push(p);
                }
                flow.probes = probes;
                flow
            })
            .collect();
        let flows = report.flows.len();
        assert!(flows > 100, "{flows} built-in flows");
        let html = render(&report);
        assert_self_contained(&html);
        assert!(html.len() < flows * 3 * 1024, "{} bytes for {flows} flows", html.len());
        for flow in &report.flows {
            assert!(
                html.contains(&format!("id=\"flow-{}\"", escape(&flow.id))),
                "{}",
                flow.id
            );
        }
    }
}
