//! The HTML pages from real runs of the binary against loopback servers: `run --format html`,
//! `--report FILE.html`, `merge --format html`, a certificate and `Server` header carrying
//! markup, and every built-in flow against a dead resolver. Each page is also written to
//! `target/tmp/html-pages/` with what the browser check (tests/html/check.sh) must find in it.

use crate::support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::{AZURE_REPLY, Amlprobe, Dns, LOCAL, Leaf, Pki, Run};
const SCRIPT: &str = "<script>window.__pwned=1</script>";
const IMG: &str = "\"><img src=x onerror=\"window.__pwned=1\">";
/// An HTTP answer whose `Server` header carries both payloads.
const HOSTILE_REPLY: &str = "HTTP/1.1 200 OK\r\nServer: <script>window.__pwned=1</script>\"><img src=x onerror=\"window.__pwned=1\">\r\nContent-Length: 0\r\n\r\n";

fn pages() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-pages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `name.html` and `name.expect.json` for the browser check: every flow id in `ids`,
/// the flows in `open` readable without a click, those in `closed` collapsed.
fn publish(name: &str, html: &str, ids: &[String], open: &[String], closed: &[String]) {
    let dir = pages();
    std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
    let expect = json!({ "ids": ids, "open": open, "closed": closed });
    std::fs::write(dir.join(format!("{name}.expect.json")), expect.to_string()).unwrap();
}

/// Flow ids of a JSON report: all of them, the failing ones (open) and the working ones.
fn flow_ids(report: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let flows = report["flows"].as_array().unwrap();
    let ids = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        flows
            .iter()
            .filter(|f| keep(f["status"].as_str().unwrap()))
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect()
    };
    (
        ids(&|_| true),
        ids(&|s| matches!(s, "blocked" | "inconclusive" | "skipped")),
        ids(&|s| s == "works"),
    )
}

/// The opening `<details …>` tag of a flow's section.
fn details_tag<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"flow-{id}\""))
        .unwrap_or_else(|| panic!("no section for {id}"));
    let start = html[..at].rfind("<details").unwrap();
    &html[start..=(start + html[start..].find('>').unwrap())]
}

/// A page loads nothing and runs nothing.
fn assert_inert(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..html.len().min(200)]);
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"));
    for forbidden in ["<script", "<img", "src=\"", "onerror=\"", "http://"] {
        assert!(!html.contains(forbidden), "{forbidden} in the page");
    }
}

/// Runs `cmd`, which must finish with a verdict (exit 0 or 1).
fn run(cmd: Amlprobe) -> Run {
    let r = cmd.output();
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    r
}

#[test]
fn a_loopback_run_and_a_fleet_render_as_pages() {
    let pki = Pki::new();
    let api = support::tls_server(pki.server_config("api.contoso.test", Leaf::Good), Some(AZURE_REPLY));
    let closed = support::closed_port();
    let zone = [
        (
            "api.contoso.test",
            Dns::Cname("api.privatelink.contoso.test", vec![LOCAL]),
        ),
        ("blob.contoso.test", Dns::A(vec![LOCAL])),
    ];
    let node_a_dns = support::dns_server(&zone).to_string();
    let node_b_dns = support::dns_server(&zone[..1]).to_string();
    let dir = tempfile::tempdir().unwrap();
    let suite = support::suite_file(
        dir.path(),
        &[
            (
                "api",
                support::on_port("api.contoso.test", api, &format!("tls_ports = [{api}]")),
            ),
            ("blob", support::on_port("blob.contoso.test", closed, "")),
            ("vault", support::on_port("vault.contoso.test", 443, "")),
        ],
    );
    let node = |dns: &str, host: &str| {
        Amlprobe::offline("run", dns)
            .timeout("2")
            .suite(&suite)
            .ca(&pki)
            .flag("--host-name", host)
    };

    // Node A: JSON on stdout, the page through --report FILE.html.
    let page_a = dir.path().join("node-a.html");
    let report_a = run(node(&node_a_dns, "node-a").format("json").flag("--report", &page_a)).json();
    let json_a = dir.path().join("node-a.json");
    std::fs::write(&json_a, report_a.to_string()).unwrap();
    let html = std::fs::read_to_string(&page_a).unwrap();
    assert_inert(&html);
    let (ids, open, closed_ids) = flow_ids(&report_a);
    assert_eq!(open, ["t.blob", "t.vault"], "{report_a:#}");
    assert_eq!(closed_ids, ["t.api"]);
    for id in &open {
        assert!(details_tag(&html, id).ends_with(" open>"), "{id}");
    }
    assert!(!details_tag(&html, "t.api").contains(" open"));
    assert!(
        html.contains("api.contoso.test → api.privatelink.contoso.test"),
        "the CNAME chain"
    );
    assert!(
        html.contains("issuer <code>CN=amlprobe test root</code>"),
        "the certificate"
    );
    assert!(html.contains("SANs <code>api.contoso.test</code>"));
    assert!(html.contains(&format!("resolver <code>{node_a_dns}</code>")));
    assert!(html.contains("fail tcp_refused"));
    assert!(html.contains("fail dns_nxdomain"));
    publish("run", &html, &ids, &open, &closed_ids);

    // Node B: the page on stdout (--format html), JSON through --report.
    let json_b = dir.path().join("node-b.json");
    let page_b = run(node(&node_b_dns, "node-b").format("html").flag("--report", &json_b)).stdout;
    assert_inert(&page_b);
    assert!(page_b.contains("<h1>amlprobe report: node-b</h1>"));
    let report_b = support::read_json(&json_b);
    assert_eq!(flow_ids(&report_b).1, ["t.blob", "t.vault"]);

    let merged = run(Amlprobe::new(["merge", "--format", "html"]).args([&json_a, &json_b]));
    assert_eq!(merged.code, 1, "a required flow is blocked somewhere");
    let heatmap = merged.stdout;
    assert_inert(&heatmap);
    let rows: Vec<&str> = heatmap
        .match_indices("<tr data-flow=\"")
        .map(|(i, m)| {
            let rest = &heatmap[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(rows, ["t.blob", "t.api", "t.vault"], "the row nodes disagree on first");
    assert!(heatmap.contains("BLOCKED tcp_refused") && heatmap.contains("BLOCKED dns_nxdomain"));
    publish("heatmap", &heatmap, &ids, &[], &[]);
}

#[test]
fn markup_from_a_certificate_a_server_header_and_the_user_stays_text() {
    let pki = Pki::new();
    let port = support::tls_server(
        pki.server_config_with_subject("evil.test", SCRIPT, IMG),
        Some(HOSTILE_REPLY),
    );
    let dns = support::loopback_dns(&["evil.test"]);
    let dir = tempfile::tempdir().unwrap();
    let title = SCRIPT.replace('"', "\\\"") + &IMG.replace('"', "\\\"");
    let suite = dir.path().join("evil.toml");
    std::fs::write(
        &suite,
        format!(
            "[suite]\nname = \"t\"\ntitle = \"t\"\n\n[[flow]]\nid = \"t.evil\"\ntitle = \"{title}\"\n\
             direction = \"outbound\"\nservice_tag = \"{title}\"\nrequired = true\nscenario = \"s\"\n\
             source = \"{title}\"\nhosts = [\"evil.test\"]\nports = [{port}]\ntls_ports = [{port}]\n"
        ),
    )
    .unwrap();
    let r = run(Amlprobe::offline("run", dns)
        .timeout("2")
        .suite(&suite)
        .ca(&pki)
        .flag("--host-name", SCRIPT)
        .format("html"));
    let html = r.stdout;
    assert_inert(&html);
    // The payloads did reach the page, as text: from the certificate, the header and the user.
    assert!(
        html.contains("subject <code>CN=&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("Server <code>&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;</code>"));
    assert!(html.contains("<h1>amlprobe report: &lt;script&gt;window.__pwned=1&lt;/script&gt;</h1>"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"));
    let ids = vec!["t.evil".to_string()];
    publish("xss", &html, &ids, &[], &[]);
}

#[test]
fn every_built_in_flow_against_a_dead_resolver_fits_in_300_kb() {
    let dead = format!("127.0.0.1:{}", support::closed_port());
    let r = run(Amlprobe::offline("run", dead)
        .flag("--suite", support::ALL_SUITES)
        .args(support::CONTEXT)
        .format("html"));
    let html = r.stdout;
    assert_inert(&html);
    assert!(html.len() < 300 * 1024, "{} bytes", html.len());
    let blocked = html.matches("<details class=\"flow s-blocked\"").count();
    assert!(blocked > 50, "{blocked} blocked flows");
    assert_eq!(
        html.matches(" open>").count(),
        blocked,
        "every blocked flow is open, nothing else"
    );
    let ids: Vec<String> = html
        .match_indices("<details class=\"flow ")
        .map(|(i, _)| {
            let rest = &html[i..];
            let start = rest.find("id=\"flow-").unwrap() + "id=\"flow-".len();
            rest[start..start + rest[start..].find('"').unwrap()].to_string()
        })
        .collect();
    assert!(ids.len() > 100, "{} flows", ids.len());
    assert!(ids.contains(&"workspace.api".to_string()));
    let open: Vec<String> = ids
        .iter()
        .filter(|id| details_tag(&html, id).ends_with(" open>"))
        .cloned()
        .collect();
    publish("builtin", &html, &ids, &open, &[]);
}
