//! Every reason code produced by a real exchange with a loopback server, through the real
//! binary and its JSON report. (tcp_timeout and tcp_unreachable need a firewall: the network
//! namespace testbed in tests/vnet covers them with nftables.)

use crate::support;

use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use support::{
    AZURE_REPLY, Amlprobe, BLOCK_PAGE, Dns, LOCAL, Leaf, Pki, Proxy, Raw, check, dns_only, flow, on_port, probe,
};

/// A JSON run of suite `t` made of `flows` against `dns`, on loopback only.
fn run(dns: SocketAddr, flows: &[(impl AsRef<str>, impl AsRef<str>)]) -> Amlprobe {
    Amlprobe::offline("run", dns).format("json").flows(flows)
}

#[test]
fn dns_outcomes() {
    let dns = support::dns_server(&[
        ("ws.api.test", Dns::Cname("ws.privatelink.api.test", vec![LOCAL])),
        ("nodata.test", Dns::NoData),
        ("servfail.test", Dns::ServFail),
        ("refused.test", Dns::Refused),
        ("silent.test", Dns::Silent),
        ("public.test", Dns::A(vec![Ipv4Addr::new(203, 0, 113, 7)])),
        ("pe.test", Dns::A(vec![Ipv4Addr::new(127, 0, 0, 2)])),
        ("pinned.test", Dns::A(vec![LOCAL])),
    ]);
    let private = "expect = \"private\"";
    let flows = [
        ("chain", dns_only("ws.api.test", private)),
        ("nx", dns_only("nx.test", "")),
        ("nodata", dns_only("nodata.test", "")),
        ("servfail", dns_only("servfail.test", "")),
        ("refused", dns_only("refused.test", "")),
        ("silent", dns_only("silent.test", "")),
        ("public", dns_only("public.test", private)),
        (
            "relaxed",
            dns_only("public.test", "expect = \"private\"\nresource = \"storage\""),
        ),
        ("wrong", dns_only("pe.test", private)),
        ("pinned", dns_only("pinned.test", private)),
    ];
    let r = run(dns, &flows)
        .args(["--expect-ip", "pe.test=127.0.0.9", "--public-resource", "storage"])
        .output();
    let report = r.json();
    check(&report, "chain", "works", None);
    let chain = probe(&report, "chain", "dns");
    assert_eq!(chain["cname_chain"][0]["target"], "ws.privatelink.api.test");
    assert_eq!(chain["addresses"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        chain.get("warning"),
        None,
        "a privatelink chain is not fragile: {chain:#}"
    );
    check(&report, "nx", "blocked", Some("dns_nxdomain"));
    check(&report, "nodata", "blocked", Some("dns_no_records"));
    check(&report, "servfail", "blocked", Some("dns_servfail"));
    check(&report, "refused", "blocked", Some("dns_refused"));
    check(&report, "silent", "blocked", Some("dns_timeout"));
    check(&report, "public", "blocked", Some("dns_public_ip"));
    assert!(
        flow(&report, "public")["message"]
            .as_str()
            .unwrap()
            .contains("203.0.113.7")
    );
    assert!(
        flow(&report, "public")["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(answered by {dns} (--dns-server))")),
        "the wrong answer names the resolver that gave it"
    );
    check(&report, "relaxed", "works", None);
    check(&report, "wrong", "blocked", Some("dns_wrong_ip"));
    let wrong = flow(&report, "wrong")["message"].as_str().unwrap();
    assert!(
        wrong.contains("127.0.0.2") && wrong.contains("127.0.0.9") && wrong.contains(&format!("answered by {dns}")),
        "{wrong}"
    );
    check(&report, "pinned", "works", None);
    assert!(
        probe(&report, "pinned", "dns")["warning"]
            .as_str()
            .unwrap()
            .contains("privatelink")
    );
    for f in report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "blocked")
    {
        assert!(
            f["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "blocked flows carry a fix: {f:#}"
        );
    }
    assert_eq!(r.code, 1);
}

#[test]
fn a_sinkholed_name_is_blocked_even_when_something_listens_there() {
    let dns = support::dns_server(&[
        ("sink.test", Dns::A(vec![LOCAL])),
        ("zero.test", Dns::A(vec![Ipv4Addr::UNSPECIFIED])),
        ("imds.test", Dns::A(vec![Ipv4Addr::new(169, 254, 169, 254)])),
    ]);
    let listening = support::tcp_server(Raw::Silent);
    let flows = [
        ("sink", on_port("sink.test", listening, "")),
        ("zero", dns_only("zero.test", "")),
        ("imds", dns_only("imds.test", "expect = \"private\"")),
    ];
    // Loopback is not declared private here, as on a real VM.
    let report = run(dns, &flows).flag("--private-cidr", "192.0.2.0/24").output().json();
    check(&report, "sink", "blocked", Some("dns_sinkhole"));
    let message = flow(&report, "sink")["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1 (loopback)"), "{message}");
    // The connect still ran and reached the local listener; it just doesn't count.
    assert_eq!(probe(&report, "sink", "tcp")["status"], "pass");
    check(&report, "zero", "blocked", Some("dns_sinkhole"));
    check(&report, "imds", "blocked", Some("dns_sinkhole"));
    assert!(
        flow(&report, "imds")["message"]
            .as_str()
            .unwrap()
            .contains("Azure instance metadata")
    );
}

/// `count` CNAME hops `{prefix}0.test → {prefix}1.test → …`, the last name holding 127.0.0.1.
fn cname_hops(prefix: &str, count: usize) -> Vec<(&'static str, Dns)> {
    let name = |i: usize| -> &'static str { Box::leak(format!("{prefix}{i}.test").into_boxed_str()) };
    let mut zone: Vec<(&str, Dns)> = (0..count).map(|i| (name(i), Dns::Cname(name(i + 1), vec![]))).collect();
    zone.push((name(count), Dns::A(vec![LOCAL])));
    zone
}

#[test]
fn cname_loops_and_long_chains_are_named_with_their_chain() {
    let mut zone = vec![
        ("loop1.test", Dns::Cname("loop2.test", vec![])),
        ("loop2.test", Dns::Cname("loop3.test", vec![])),
        ("loop3.test", Dns::Cname("loop1.test", vec![])),
        ("dangling.test", Dns::Cname("nodata.test", vec![])),
        ("nodata.test", Dns::NoData),
    ];
    zone.extend(cname_hops("short", 7));
    zone.extend(cname_hops("long", 8));
    let dns = support::dns_server(&zone);
    let flows = [
        ("loop", dns_only("loop1.test", "")),
        ("short", dns_only("short0.test", "")),
        ("long", dns_only("long0.test", "")),
        ("dangling", dns_only("dangling.test", "")),
    ];
    let report = run(dns, &flows).output().json();
    check(&report, "loop", "blocked", Some("dns_cname_loop"));
    let message = flow(&report, "loop")["message"].as_str().unwrap();
    assert!(
        message.contains("loop1.test → loop2.test → loop3.test → loop1.test"),
        "{message}"
    );
    let chain = &probe(&report, "loop", "dns")["cname_chain"];
    assert_eq!(chain.as_array().unwrap().len(), 3, "{chain:#}");
    assert_eq!(chain[2]["target"], "loop1.test");

    // Seven hops is as far as the resolver follows; eight is too long.
    check(&report, "short", "works", None);
    check(&report, "long", "blocked", Some("dns_chain_too_long"));
    let chain = probe(&report, "long", "dns")["cname_chain"].as_array().unwrap().clone();
    assert_eq!(chain.len(), 8, "{chain:?}");
    assert_eq!(chain[7]["target"], "long8.test");

    // A chain that ends without an address is still no records, and keeps its chain.
    check(&report, "dangling", "blocked", Some("dns_no_records"));
    assert_eq!(
        probe(&report, "dangling", "dns")["cname_chain"][0]["target"],
        "nodata.test"
    );
}

#[test]
fn tls_outcomes() {
    let pki = Pki::new();
    let names = [
        "good.test",
        "inspected.test",
        "wrongname.test",
        "expired.test",
        "silent.test",
        "closes.test",
        "nohttp.test",
    ];
    let dns = support::loopback_dns(&names);
    let tls = |host: &str, leaf: Leaf, reply| support::tls_server(pki.server_config(host, leaf), reply);
    let ports = [
        ("good", "good.test", tls("good.test", Leaf::Good, Some(AZURE_REPLY))),
        (
            "inspected",
            "inspected.test",
            tls("inspected.test", Leaf::Inspected, Some(AZURE_REPLY)),
        ),
        (
            "wrongname",
            "wrongname.test",
            tls("wrongname.test", Leaf::WrongName, Some(AZURE_REPLY)),
        ),
        (
            "expired",
            "expired.test",
            tls("expired.test", Leaf::Expired, Some(AZURE_REPLY)),
        ),
        ("silent", "silent.test", support::tcp_server(Raw::Silent)),
        ("closes", "closes.test", support::tcp_server(Raw::Close)),
        ("nohttp", "nohttp.test", tls("nohttp.test", Leaf::Good, None)),
    ];
    let flows: Vec<(&str, String)> = ports
        .iter()
        .map(|(id, host, port)| (*id, on_port(host, *port, &format!("tls_ports = [{port}]"))))
        .collect();
    let report = run(dns, &flows).ca(&pki).output().json();
    check(&report, "good", "works", None);
    let good = probe(&report, "good", "tls");
    assert!(
        good["tls"]["version"].as_str().unwrap().starts_with("TLSv1."),
        "{good:#}"
    );
    assert!(good["tls"]["issuer"].as_str().unwrap().contains("amlprobe test root"));
    assert_eq!(good["tls"]["sans"], serde_json::json!(["good.test"]));
    assert_eq!(good["tls"]["trusted_public"], true);
    assert_eq!(probe(&report, "good", "http")["http"]["status"], 404);
    check(&report, "inspected", "blocked", Some("tls_untrusted_issuer"));
    assert!(
        flow(&report, "inspected")["message"]
            .as_str()
            .unwrap()
            .contains("Contoso TLS Inspection CA")
    );
    check(&report, "wrongname", "blocked", Some("tls_name_mismatch"));
    check(&report, "expired", "blocked", Some("tls_expired"));
    check(&report, "silent", "blocked", Some("tls_timeout"));
    // Closed before a byte of TLS came back: what a firewall denying the name does.
    check(&report, "closes", "blocked", Some("tls_closed_after_hello"));
    check(&report, "nohttp", "blocked", Some("http_error"));

    // The same interception, with its CA pushed to this machine's OS store.
    let inspection = pki.inspection_pem();
    let report = run(dns, &flows[1..2])
        .ca(&pki)
        .env("SSL_CERT_FILE", &inspection)
        .output()
        .json();
    check(&report, "inspected", "blocked", Some("tls_inspected"));
    assert_eq!(probe(&report, "inspected", "tls")["tls"]["trusted_system"], true);
}

#[test]
fn a_chain_deeper_than_verifiers_follow_is_not_an_untrusted_issuer() {
    let pki = Pki::new();
    let dns = support::loopback_dns(&["six.test", "seven.test"]);
    let six = support::tls_server(pki.deep_chain_config("six.test", 6), Some(AZURE_REPLY));
    let seven = support::tls_server(pki.deep_chain_config("seven.test", 7), Some(AZURE_REPLY));
    let flows = [
        ("six", on_port("six.test", six, &format!("tls_ports = [{six}]"))),
        ("seven", on_port("seven.test", seven, &format!("tls_ports = [{seven}]"))),
    ];
    let report = run(dns, &flows).ca(&pki).output().json();
    // Six intermediates under the trusted root is as deep as rustls goes; seven is too deep.
    check(&report, "six", "works", None);
    check(&report, "seven", "blocked", Some("tls_chain_too_long"));
    let f = flow(&report, "seven");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("more intermediate CAs than verifiers follow")
            && message.contains("amlprobe test intermediate 6"),
        "{message}"
    );
    assert!(
        !f["hint"].as_str().unwrap().contains("inspection CA"),
        "the hint does not blame an inspection CA: {f:#}"
    );
}

/// An SMB2 NEGOTIATE response as a server frames it ([MS-SMB2] 2.2.1.2 and 2.2.4): status 0,
/// command NEGOTIATE, the response flag, StructureSize 65 and dialect 3.0.2.
const SMB2_NEGOTIATE_RESPONSE: &[u8] = &{
    let mut r = [0u8; 4 + 64 + 65];
    r[3] = 64 + 65;
    (r[4], r[5], r[6], r[7]) = (0xfe, b'S', b'M', b'B');
    r[8] = 64; // header StructureSize
    r[4 + 14] = 1; // credits
    r[4 + 16] = 1; // SMB2_FLAGS_SERVER_TO_REDIR
    r[4 + 64] = 65; // body StructureSize
    r[4 + 66] = 1; // SecurityMode
    (r[4 + 68], r[4 + 69]) = (0x02, 0x03); // DialectRevision 0x0302
    r
};

#[test]
fn tcp_http_smb_and_udp_outcomes() {
    let names = [
        "refused.test",
        "block.test",
        "azure.test",
        "smb.test",
        "notsmb.test",
        "mute.test",
        "udp.test",
    ];
    let mut zone: Vec<(&str, Dns)> = names.iter().map(|n| (*n, Dns::A(vec![LOCAL]))).collect();
    zone.push(("two.test", Dns::A(vec![LOCAL, Ipv4Addr::new(127, 0, 0, 2)])));
    let dns = support::dns_server(&zone);
    let http = |port: u16| format!("http_ports = [{port}]\nhttp = \"azure\"");
    let smb = |port: u16| format!("smb_ports = [{port}]");
    let udp = "protocol = \"udp\"";
    let (block, azure) = (
        support::tcp_server(Raw::Reply(BLOCK_PAGE.as_bytes())),
        support::tcp_server(Raw::Reply(AZURE_REPLY.as_bytes())),
    );
    let smb_ok = support::tcp_server(Raw::Reply(SMB2_NEGOTIATE_RESPONSE));
    let smb_echo = support::tcp_server(Raw::Echo);
    let not_smb = support::tcp_server(Raw::Reply(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    let mute = support::tcp_server(Raw::Silent);
    let (echo, silent, closed) = (
        support::udp_server(true),
        support::udp_server(false),
        support::closed_port(),
    );
    let listening = support::tcp_server(Raw::Silent);
    let flows = [
        ("refused", on_port("refused.test", support::closed_port(), "")),
        ("block", on_port("block.test", block, &http(block))),
        ("azure", on_port("azure.test", azure, &http(azure))),
        ("smb", on_port("smb.test", smb_ok, &smb(smb_ok))),
        ("notsmb", on_port("notsmb.test", not_smb, &smb(not_smb))),
        ("smbecho", on_port("smb.test", smb_echo, &smb(smb_echo))),
        ("mute", on_port("mute.test", mute, &smb(mute))),
        ("echo", on_port("udp.test", echo, udp)),
        ("silentudp", on_port("udp.test", silent, udp)),
        ("closedudp", on_port("udp.test", closed, udp)),
        ("two", on_port("two.test", listening, "")),
    ];
    let report = run(dns, &flows).output().json();
    check(&report, "refused", "blocked", Some("tcp_refused"));
    check(&report, "block", "blocked", Some("http_not_azure"));
    assert!(
        flow(&report, "block")["message"]
            .as_str()
            .unwrap()
            .contains("FortiGate")
    );
    check(&report, "azure", "works", None);
    check(&report, "smb", "works", None);
    check(&report, "notsmb", "blocked", Some("smb_not_smb"));
    // A middlebox that sends amlprobe's own NEGOTIATE back is not Azure Files.
    check(&report, "smbecho", "blocked", Some("smb_not_smb"));
    let echo = flow(&report, "smbecho")["message"].as_str().unwrap();
    assert!(echo.contains("an echo of amlprobe's own NEGOTIATE"), "{echo}");
    check(&report, "mute", "blocked", Some("smb_no_response"));
    check(&report, "echo", "works", None);
    check(&report, "silentudp", "inconclusive", Some("udp_no_reply"));
    check(&report, "closedudp", "blocked", Some("udp_refused"));
    // One dead address among two is a blocked flow, and both addresses are reported.
    check(&report, "two", "blocked", Some("tcp_refused"));
    let two = flow(&report, "two");
    assert!(two["message"].as_str().unwrap().contains("1 of 2"), "{two:#}");
    let tcp_addresses: Vec<&str> = two["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "tcp")
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(tcp_addresses.len(), 2);
}

#[test]
fn proxy_outcomes() {
    let pki = Pki::new();
    let dns = support::loopback_dns(&["via.test"]);
    let origin = support::tls_server(pki.server_config("via.test", Leaf::Good), Some(AZURE_REPLY));
    // The flow's port has no listener, so the direct path is refused while the proxy tunnels
    // to the origin: what forced tunnelling looks like.
    let port = support::closed_port();
    let flows = [("via", on_port("via.test", port, &format!("tls_ports = [{port}]")))];
    let through = |proxy: u16| {
        let url = format!("http://ghp_UserTok3n:s3cret@127.0.0.1:{proxy}");
        run(dns, &flows).ca(&pki).proxy(&url)
    };
    let ok = through(support::proxy_server(Proxy::TunnelTo(origin)))
        .args(["--compare-direct"])
        .output();
    assert!(
        !ok.stdout.contains("s3cret") && !ok.stdout.contains("ghp_UserTok3n"),
        "no part of the proxy userinfo reaches the report"
    );
    let report = ok.json();
    let shown = probe(&report, "via", "proxy")["proxy"].as_str().unwrap();
    assert!(shown.ends_with(" (with credentials)"), "{shown}");
    // The human forms name the proxy the same way.
    let denied = support::proxy_server(Proxy::Refuse("HTTP/1.1 403 Forbidden"));
    for format in ["table", "junit"] {
        let r = through(denied).format(format).args(["--all"]).output();
        assert_eq!(r.code, 1, "{format}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!(
                "proxy http://127.0.0.1:{denied} (with credentials) answered 403"
            )),
            "{format}: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("ghp_UserTok3n") && !r.stdout.contains("s3cret"),
            "{}",
            r.stdout
        );
    }
    check(&report, "via", "works", None);
    let f = flow(&report, "via");
    assert_eq!(f["path"], "proxy");
    assert_eq!(f["direct_path"]["status"], "blocked");
    assert_eq!(f["direct_path"]["reason"], "tcp_refused");
    assert_eq!(probe(&report, "via", "proxy")["status"], "pass");
    let cases = [
        (Proxy::Refuse("HTTP/1.1 403 Forbidden"), "proxy_denied"),
        (
            Proxy::Refuse("HTTP/1.1 407 Proxy Authentication Required"),
            "proxy_auth_required",
        ),
        (Proxy::Refuse("HTTP/1.1 502 Bad Gateway"), "proxy_upstream_failed"),
        (Proxy::CloseAfterOk, "proxy_tunnel_closed"),
        (Proxy::ResetAfterOk, "proxy_tunnel_closed"),
        (Proxy::Garbage, "proxy_error"),
    ];
    for (mode, reason) in cases {
        check(
            &through(support::proxy_server(mode)).output().json(),
            "via",
            "blocked",
            Some(reason),
        );
    }
    check(
        &through(support::closed_port()).output().json(),
        "via",
        "blocked",
        Some("proxy_unreachable"),
    );
}

/// Proxy choice is per scheme, as curl does: plain HTTP uses http_proxy, TLS https_proxy,
/// all_proxy either. A port whose scheme has no proxy goes direct, and that path decides.
#[test]
fn each_port_is_judged_on_the_path_its_scheme_takes() {
    let pki = Pki::new();
    let dns = support::loopback_dns(&["web.test"]);
    let origin = support::tls_server(pki.server_config("web.test", Leaf::Good), Some(AZURE_REPLY));
    let proxy = format!("http://127.0.0.1:{}", support::proxy_server(Proxy::TunnelTo(origin)));
    // Nothing listens on either port directly: the direct path is refused.
    let (http, tls) = (support::closed_port(), support::closed_port());
    let flows = [(
        "web",
        format!("hosts = [\"web.test\"]\nports = [{http}, {tls}]\nhttp_ports = [{http}]\ntls_ports = [{tls}]"),
    )];
    let with_env = |vars: &[&str]| {
        let cmd = run(dns, &flows).ca(&pki).without("--no-proxy");
        vars.iter().fold(cmd, |cmd, var| cmd.env(var, &proxy)).output().json()
    };
    let port_probe = |report: &Value, port: u16| -> Value {
        flow(report, "web")["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port && p["kind"] == "tcp")
            .cloned()
            .unwrap_or_else(|| panic!("no tcp probe on {port}: {report:#}"))
    };

    let https_only = with_env(&["HTTPS_PROXY"]);
    check(&https_only, "web", "blocked", Some("tcp_refused"));
    let p80 = port_probe(&https_only, http);
    assert_eq!(
        (p80["path"].as_str(), p80["reason"].as_str()),
        (Some("direct"), Some("tcp_refused"))
    );

    let http_only = with_env(&["http_proxy"]);
    check(&http_only, "web", "blocked", Some("tcp_refused"));
    let p443 = port_probe(&http_only, tls);
    assert_eq!(
        (p443["path"].as_str(), p443["reason"].as_str()),
        (Some("direct"), Some("tcp_refused"))
    );

    for both in [&["https_proxy", "HTTP_PROXY"][..], &["all_proxy"]] {
        let report = with_env(both);
        check(&report, "web", "works", None);
        assert_eq!(flow(&report, "web")["path"], "proxy", "{both:?}");
    }
}

#[test]
fn a_web_server_at_the_proxy_address_is_not_a_proxy() {
    let dns = support::loopback_dns(&["via.test"]);
    let port = support::closed_port();
    let flows = [("via", on_port("via.test", port, &format!("tls_ports = [{port}]")))];
    let pages = [
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 18\r\n\r\n<html>hello</html>",
        // No header gives it away, but the page follows the head before any tunnel traffic.
        "HTTP/1.0 200 OK\r\n\r\n<html>hello</html>",
    ];
    for page in pages {
        let proxy = support::proxy_server(Proxy::WebPage(page));
        let url = format!("http://127.0.0.1:{proxy}");
        let report = run(dns, &flows).proxy(&url).output().json();
        check(&report, "via", "blocked", Some("proxy_error"));
        let message = flow(&report, "via")["message"].as_str().unwrap();
        assert!(
            message.contains("like a web server") && message.contains("not an HTTP proxy"),
            "{message}"
        );
    }
}

#[test]
fn an_endless_response_head_is_named_as_such() {
    let dns = support::loopback_dns(&["endless.test"]);
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    while head.len() < 9 * 1024 {
        head.push_str("X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let endless = support::tcp_server(Raw::Reply(Box::leak(head.into_bytes().into_boxed_slice())));
    let flows = [(
        "endless",
        on_port("endless.test", endless, &format!("http_ports = [{endless}]")),
    )];
    let report = run(dns, &flows).output().json();
    check(&report, "endless", "blocked", Some("http_error"));
    let message = flow(&report, "endless")["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 200 response whose head did not end within 8 KiB"),
        "{message}"
    );
}

#[test]
fn exit_codes_and_output_forms() {
    let dns = support::loopback_dns(&["up.test", "udp.test"]);
    let works = [("up", on_port("up.test", support::tcp_server(Raw::Silent), ""))];
    let ok = run(dns, &works).output();
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let report = ok.json();
    for key in [
        "schema_version",
        "tool",
        "started_at",
        "duration_ms",
        "host",
        "context",
        "settings",
        "summary",
        "flows",
    ] {
        assert!(!report[key].is_null(), "report lacks {key}");
    }
    assert_eq!(report["summary"]["works"], 1);
    let p = probe(&report, "up", "tcp");
    for key in [
        "kind",
        "host",
        "port",
        "address",
        "status",
        "reason",
        "message",
        "hint",
        "elapsed_ms",
    ] {
        assert!(p.get(key).is_some(), "probe lacks {key}: {p:#}");
    }

    let quiet = run(dns, &works).args(["--quiet"]).output();
    assert_eq!(quiet.stdout.lines().count(), 1, "{}", quiet.stdout);

    let silent = [(
        "udp",
        on_port("udp.test", support::udp_server(false), "protocol = \"udp\""),
    )];
    assert_eq!(
        run(dns, &silent).output().code,
        0,
        "inconclusive is not a failure by default"
    );
    assert_eq!(
        run(dns, &silent).args(["--strict"]).output().code,
        1,
        "--strict makes it one"
    );

    let dir = tempfile::tempdir().unwrap();
    let blocked = [("down", on_port("up.test", support::closed_port(), ""))];
    let report_file = dir.path().join("report.json");
    let table = Amlprobe::offline("run", dns)
        .flows(&blocked)
        .flag("--report", &report_file)
        .output();
    assert_eq!(table.code, 1);
    assert!(table.stdout.contains("BLOCKED") && table.stdout.contains("tcp_refused") && table.stdout.contains("down"));
    assert!(
        !table.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let written = support::read_json(&report_file);
    assert_eq!(written["flows"][0]["reason"], "tcp_refused");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let bad = Amlprobe::new(["run", "--workspace-id", "nope"]).output();
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.starts_with("amlprobe: --workspace-id:"), "{}", bad.stderr);

    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("broken.toml");
    std::fs::write(
        &suite,
        "[suite]\nname = \"b\"\ntitle = \"b\"\n\n[[flow]]\nid = \"b.x\"\nports = [443\n",
    )
    .unwrap();
    let broken = Amlprobe::new(["run", "--no-imds"])
        .flag("--suite-file", &suite)
        .output();
    assert_eq!(broken.code, 2);
    assert!(broken.stderr.contains("broken.toml:"), "{}", broken.stderr);
}

#[test]
fn bad_values_are_echoed_short_escaped_and_without_secrets() {
    let key = "c2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkwYWJjZGVm/+xyz==";
    let conn =
        format!("DefaultEndpointsProtocol=https;AccountName=sa;AccountKey={key};EndpointSuffix=core.windows.net");
    let long = "a".repeat(70_000);
    for (value, must_not_contain) in [
        (conn.as_str(), "c2VjcmV0"),
        (
            long.as_str(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        ("bad\nname\x1b[2J\u{202e}", "\x1b"),
    ] {
        let r = Amlprobe::new(["suites", "--storage-account", value]).output();
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.starts_with("amlprobe: --storage-account: "), "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
        assert!(r.stderr.len() < 300, "short: {} bytes", r.stderr.len());
        assert!(!r.stderr.contains(must_not_contain), "{}", r.stderr);
        assert!(!r.stderr.contains('\u{202e}'), "{}", r.stderr);
    }
    let r = Amlprobe::new(["suites", "--storage-account", &long]).output();
    assert!(r.stderr.contains("…(70000 bytes)"), "{}", r.stderr);
    let r = Amlprobe::new(["suites", "--storage-account", "bad\nname\x1b[2J"]).output();
    assert!(r.stderr.contains("bad\\nname\\x1b[2J"), "{}", r.stderr);
    // Values clap itself rejects are quoted the same way.
    let r = Amlprobe::new(["run", "--timeout", &long]).output();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.len() < 400 && r.stderr.contains("…(70000 bytes)"),
        "{}",
        r.stderr
    );
    let r = Amlprobe::new(["run", "--timeout", "1\n\x07\u{202e}"]).output();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("'1\\n\\x07\\u{202e}'"), "{}", r.stderr);
}

#[test]
fn suite_hosts_that_are_not_names_are_refused_at_load_time() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["127.0.0.1", "https://x.test/", "two words.test", ""] {
        let (ok, bad) = (dns_only("ok.test", ""), dns_only(host, ""));
        let suite = support::suite_file(dir.path(), &[("ok", ok.as_str()), ("bad", bad.as_str())]);
        let r = Amlprobe::new(["suites"]).flag("--suite-file", &suite).output();
        assert_eq!(r.code, 2, "{host}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("suite.toml:17: flow 't.bad': host"),
            "{host}: {}",
            r.stderr
        );
    }
}

#[test]
fn missing_context_names_the_flag_and_sends_nothing() {
    // A resolver that refuses everything: no name would resolve even if one were asked.
    let dns = support::dns_server(&[]);
    let r = Amlprobe::offline("run", dns)
        .flag("--suite", "workspace")
        .format("json")
        .output();
    let report = r.json();
    let flows = report["flows"].as_array().unwrap();
    let api = flows.iter().find(|f| f["id"] == "workspace.api").unwrap();
    assert_eq!(
        (api["status"].as_str(), api["reason"].as_str()),
        (Some("skipped"), Some("missing_context"))
    );
    assert!(api["message"].as_str().unwrap().contains("--workspace-id"), "{api:#}");
    assert!(
        flows.iter().all(|f| f["probes"].as_array().unwrap().is_empty()),
        "nothing probed without context"
    );
    assert_eq!(r.code, 0, "skipped flows don't fail the run without --strict");
}

#[test]
fn suites_listing_renders_every_cloud() {
    for cloud in ["public", "usgov", "china"] {
        let r = Amlprobe::new(["suites", "--format", "json", "--cloud", cloud])
            .args(support::CONTEXT)
            .output();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let doc = r.json();
        let hosts: Vec<&str> = doc["suites"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["flows"].as_array().unwrap())
            .filter_map(|f| f["plan"]["targets"].as_array())
            .flatten()
            .map(|t| t["host"].as_str().unwrap())
            .collect();
        assert!(hosts.len() > 20, "{cloud}: {}", hosts.len());
        assert!(
            hosts.iter().all(|h| !h.contains('{')),
            "{cloud}: unrendered template in {hosts:?}"
        );
    }
    let bare = Amlprobe::new(["suites", "--format", "json"]).output().json();
    let text = bare.to_string();
    assert!(text.contains("\"missing_context\""), "flows lacking context are marked");
}

#[test]
fn a_dns_server_that_is_down_is_named_without_waiting_for_the_deadline() {
    let down = std::net::UdpSocket::bind((LOCAL, 0)).unwrap().local_addr().unwrap();
    let flows = [("a", dns_only("a.test", "")), ("b", on_port("b.test", 443, ""))];
    let report = run(down, &flows).timeout("20").output().json();
    for id in ["a", "b"] {
        check(&report, id, "blocked", Some("dns_unreachable"));
        let message = probe(&report, id, "dns")["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("{down} answered ICMP port unreachable")),
            "{message}"
        );
    }
    // hickory alone would wait out the 20 s deadline; the server check ends it at once.
    let took = report["duration_ms"].as_u64().unwrap();
    assert!(took < 10_000, "took {took} ms");
}

#[test]
fn a_resolver_that_drops_aaaa_costs_no_timeout_and_is_named_once() {
    let dns = support::dns_server(&[
        ("one.test", Dns::DropAaaa(vec![LOCAL])),
        ("two.test", Dns::DropAaaa(vec![LOCAL])),
    ]);
    let flows = [("one", dns_only("one.test", "")), ("two", dns_only("two.test", ""))];
    let started = std::time::Instant::now();
    let report = run(dns, &flows).timeout("8").output().json();
    let took = started.elapsed();
    check(&report, "one", "works", None);
    check(&report, "two", "works", None);
    // Waiting out the AAAA deadline would take 8 s; a behavioural bound, not a benchmark.
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
    let warnings = report["host"]["dns_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "one warning per resolver: {warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains(&dns.to_string()) && warning.contains("2 name(s)") && warning.contains("drop AAAA"),
        "{warning}"
    );
}

#[test]
fn imds_supplies_region_and_cloud_and_is_never_proxied() {
    const METADATA: &str = r#"{"compute":{"azEnvironment":"AzureUSGovernmentCloud","location":"USGovVirginia",
        "name":"vm1","vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6","vmSize":"Standard_D4s_v5","resourceId":"/subscriptions/x"},
        "network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.1.2.4"}],"subnet":[{"address":"10.1.2.0","prefix":"24"}]}}]}}"#;
    let (imds, requests) = support::imds_server(METADATA, "unused-token");
    // Only a name built from the IMDS region resolves.
    let dns = support::loopback_dns(&["svc.usgovvirginia.test"]);
    let endpoint = format!("http://127.0.0.1:{imds}");
    // A dead proxy in the environment: IMDS must be asked directly anyway.
    let proxy = format!("http://127.0.0.1:{}", support::closed_port());
    let on_vm = || run(dns, &[("svc", "hosts = [\"svc.{region}.test\"]")]).imds(&endpoint);
    let report = on_vm()
        .without("--no-proxy")
        .env("https_proxy", &proxy)
        .env("http_proxy", &proxy)
        .output()
        .json();
    assert_eq!(report["context"]["region"], "usgovvirginia", "{report:#}");
    assert_eq!(report["context"]["sources"]["region"], "imds");
    assert_eq!(report["context"]["cloud"], "usgov");
    assert_eq!(report["context"]["sources"]["cloud"], "imds");
    assert_eq!(report["host"]["imds"]["vm_size"], "Standard_D4s_v5");
    assert_eq!(report["host"]["imds"]["subnets"], serde_json::json!(["10.1.2.0/24"]));
    check(&report, "svc", "works", None);
    let request = requests.lock().unwrap()[0].clone();
    assert!(request.starts_with("GET /metadata/instance"), "{request}");
    assert!(request.contains("Metadata: true"), "{request}");

    // Flags win over IMDS, and the report says where each value came from.
    let report = on_vm()
        .args(["--region", "eastus", "--cloud", "public"])
        .output()
        .json();
    assert_eq!(report["context"]["region"], "eastus");
    assert_eq!(report["context"]["sources"]["region"], "flag_or_env");
    assert_eq!(report["context"]["cloud"], "public");
    assert_eq!(report["context"]["sources"]["cloud"], "flag_or_env");
    check(&report, "svc", "blocked", Some("dns_nxdomain"));
}

/// Flows that share a target share its observation: the same host and port is connected to
/// once per run, however many flows (or suites) list it.
#[test]
fn a_target_shared_by_flows_is_probed_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind((LOCAL, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let dns = support::loopback_dns(&["shared.test"]);
    let flows = [
        ("first", on_port("shared.test", port, "")),
        ("second", on_port("shared.test", port, "")),
        ("third", on_port("shared.test", port, "")),
    ];
    let report = run(dns, &flows).output().json();
    for id in ["first", "second", "third"] {
        check(&report, id, "works", None);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "three flows, one connection");
}

fn causes(report: &Value) -> &Vec<Value> {
    report["root_causes"].as_array().expect("root_causes is a list")
}

/// Every blocked or inconclusive flow is in exactly one cause, and its `cause` says which.
fn assert_one_cause_each(report: &Value) {
    for f in report["flows"].as_array().unwrap() {
        let holding: Vec<&Value> = causes(report)
            .iter()
            .filter(|c| c["flows"].as_array().unwrap().contains(&f["id"]))
            .collect();
        let failing = f["status"] == "blocked" || f["status"] == "inconclusive";
        assert_eq!(holding.len(), usize::from(failing), "{f:#}");
        if failing {
            assert_eq!(f["cause"], holding[0]["id"], "{f:#}");
        }
    }
}

#[test]
fn a_dns_server_that_is_down_is_one_root_cause() {
    let down = std::net::UdpSocket::bind((LOCAL, 0)).unwrap().local_addr().unwrap();
    let flows = [
        ("a", dns_only("a.test", "")),
        ("b", on_port("b.test", 443, "")),
        ("c", on_port("c.test", 445, "")),
    ];
    let report = run(down, &flows).output().json();
    assert_one_cause_each(&report);
    let all = causes(&report);
    assert_eq!(all.len(), 1, "{all:#?}");
    let c = &all[0];
    assert_eq!(c["id"], 1);
    assert_eq!(c["reason"], "dns_unreachable");
    assert_eq!(c["kind"], "dns_server");
    assert_eq!(c["required"], true);
    assert_eq!(c["flows"], serde_json::json!(["t.a", "t.b", "t.c"]));
    assert_eq!(c["probes"], 3);
    let server = format!("{down} (--dns-server)");
    assert_eq!(c["subject"], server.as_str());
    assert!(c["summary"].as_str().unwrap().contains(&server), "{c:#}");
    assert!(c["fix"].as_str().unwrap().contains(&server), "{c:#}");

    // The table and --quiet lead with that one cause; the flows refer to it.
    let screen = Amlprobe::offline("run", down).flows(&flows).output().stdout;
    let head = format!("root causes of required flows\n  1. dns_unreachable DNS server {server} is unreachable");
    assert!(screen.contains(&head), "{screen}");
    let table = Amlprobe::offline("run", down)
        .flows(&flows)
        .args(["--all"])
        .output()
        .stdout;
    let head = format!("root causes\n  1. dns_unreachable DNS server {server} is unreachable");
    assert!(table.contains(&head), "{table}");
    assert!(
        table.find("root causes").unwrap() < table.find("\nt\n").unwrap(),
        "{table}"
    );
    assert_eq!(table.matches("(cause 1)").count(), 3, "{table}");
    assert!(!table.contains("      fix:"), "no flow repeats the fix: {table}");
    assert!(table.contains(" 3 blocked (1 root cause), "), "{table}");
    let quiet = Amlprobe::offline("run", down)
        .flows(&flows)
        .args(["--quiet"])
        .output()
        .stdout;
    assert!(
        quiet.starts_with(&format!(
            "root causes of required flows\n  1. dns_unreachable DNS server {server} is unreachable"
        )),
        "{quiet}"
    );
    assert_eq!(
        quiet.lines().count(),
        5,
        "the heading, the cause (3 lines) and the summary line: {quiet}"
    );
    assert!(
        quiet.lines().last().unwrap().starts_with("amlprobe: 3 flows:"),
        "{quiet}"
    );
}

#[test]
fn a_proxy_denying_several_hosts_is_one_cause_listing_them() {
    let dns = support::dns_server(&[]);
    let denied = support::proxy_server(Proxy::Refuse("HTTP/1.1 403 Forbidden"));
    let port = support::closed_port();
    let tls = format!("tls_ports = [{port}]");
    let flows = [
        ("one", on_port("one.test", port, &tls)),
        ("two", on_port("two.test", port, &tls)),
        ("three", on_port("three.test", port, &tls)),
    ];
    let proxy = format!("http://127.0.0.1:{denied}");
    let report = run(dns, &flows).proxy(&proxy).output().json();
    assert_one_cause_each(&report);
    let all = causes(&report);
    assert_eq!(all.len(), 1, "{all:#?}");
    let c = &all[0];
    assert_eq!(
        (c["reason"].as_str(), c["kind"].as_str()),
        (Some("proxy_denied"), Some("proxy"))
    );
    assert_eq!(c["subject"], proxy.as_str());
    assert_eq!(c["flows"].as_array().unwrap().len(), 3);
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("allow-list of {proxy}: one.test, two.test, three.test")),
        "the fix lists every host for the allow-list: {fix}"
    );
}

#[test]
fn one_inspection_ca_on_several_hosts_is_one_cause_naming_it() {
    let pki = Pki::new();
    let names = ["mcr.test", "data.mcr.test", "good.test"];
    let dns = support::loopback_dns(&names);
    let serve = |host: &str, leaf| {
        let port = support::tls_server(pki.server_config(host, leaf), Some(AZURE_REPLY));
        on_port(host, port, &format!("tls_ports = [{port}]"))
    };
    let flows = [
        ("mcr", serve("mcr.test", Leaf::Inspected)),
        ("data", serve("data.mcr.test", Leaf::Inspected)),
        ("good", serve("good.test", Leaf::Good)),
        ("expired", serve("good.test", Leaf::Expired)),
    ];
    let report = run(dns, &flows).ca(&pki).output().json();
    check(&report, "good", "works", None);
    assert_one_cause_each(&report);
    let all = causes(&report);
    assert_eq!(all.len(), 2, "the inspection CA and the expired certificate: {all:#?}");
    let c = &all[0];
    assert_eq!(
        (c["reason"].as_str(), c["kind"].as_str()),
        (Some("tls_untrusted_issuer"), Some("tls_issuer"))
    );
    assert_eq!(c["flows"], serde_json::json!(["t.mcr", "t.data"]));
    assert!(
        c["subject"].as_str().unwrap().contains("Contoso TLS Inspection CA"),
        "{c:#}"
    );
    assert!(
        c["summary"].as_str().unwrap().contains("Contoso TLS Inspection CA"),
        "{c:#}"
    );
    assert!(c["fix"].as_str().unwrap().contains("mcr.test, data.mcr.test"), "{c:#}");
    assert_eq!(all[1]["reason"], "tls_expired");
    assert_eq!(all[1]["kind"], "observation");
}

#[test]
fn a_silent_udp_port_costs_the_udp_wait_not_the_timeout() {
    let dns = support::loopback_dns(&["udp.test"]);
    let silent = support::udp_server(false);
    let flows = [("silentudp", on_port("udp.test", silent, "protocol = \"udp\""))];
    let started = std::time::Instant::now();
    let report = run(dns, &flows).timeout("10").output().json();
    let took = started.elapsed();
    check(&report, "silentudp", "inconclusive", Some("udp_no_reply"));
    // The UDP wait defaults to 1 s; waiting out --timeout would take 10 s.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let message = probe(&report, "silentudp", "udp")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("within 1s (--udp-timeout)"), "{message}");

    let report = run(dns, &flows)
        .timeout("10")
        .flag("--udp-timeout", "0.2")
        .output()
        .json();
    let message = probe(&report, "silentudp", "udp")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("within 200ms (--udp-timeout)"), "{message}");
}

/// `count` flows, each on a silent UDP port of its own at 127.0.0.1.
fn silent_udp_flows(count: usize) -> (SocketAddr, Vec<(String, String)>) {
    let dns = support::loopback_dns(&["udp.test"]);
    let flows = (0..count)
        .map(|i| {
            let port = support::udp_server(false);
            (format!("s{i}"), on_port("udp.test", port, "protocol = \"udp\""))
        })
        .collect();
    (dns, flows)
}

#[test]
fn waits_are_not_limited_by_concurrency_but_one_address_is_by_per_destination() {
    let (dns, flows) = silent_udp_flows(8);
    // Eight silent waits with --concurrency 1 overlap: about one wait, not eight.
    let started = std::time::Instant::now();
    let report = run(dns, &flows)
        .flag("--udp-timeout", "0.5")
        .flag("--concurrency", "1")
        .output()
        .json();
    let took = started.elapsed();
    check(&report, "s7", "inconclusive", Some("udp_no_reply"));
    assert!(took < std::time::Duration::from_millis(2500), "took {took:?}");
    // One connection at a time to 127.0.0.1: the eight waits queue.
    let started = std::time::Instant::now();
    run(dns, &flows)
        .flag("--udp-timeout", "0.5")
        .flag("--per-destination", "1")
        .output();
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(3500), "took {took:?}");
}

/// A name with many addresses costs at most 16 connections, and the report says how many were
/// left out (a hostile resolver answering thousands must not hold the run for rounds).
#[test]
fn addresses_past_the_cap_are_named_not_probed() {
    let many: Vec<Ipv4Addr> = (1..=40).map(|i| Ipv4Addr::new(127, 0, 1, i)).collect();
    let dns = support::dns_server(&[("many.test", Dns::A(many))]);
    let flows = [("many", on_port("many.test", support::closed_port(), ""))];
    let report = run(dns, &flows).output().json();
    check(&report, "many", "blocked", Some("tcp_refused"));
    let f = flow(&report, "many");
    let tcp = f["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "tcp")
        .count();
    assert_eq!(tcp, 16, "{f:#}");
    let dns = probe(&report, "many", "dns");
    let warning = dns["warning"].as_str().unwrap_or_else(|| panic!("no warning: {dns:#}"));
    assert!(
        warning.contains("has 40 addresses; the first 16 were probed, 24 were not"),
        "{warning}"
    );
}

/// A run ends at its deadline (8 timeouts + 10 s) with what it has: here 200 names share one
/// address that takes every TCP connection and never answers TLS, and `--per-destination 1`
/// queues them, so finishing would take about 20 s. The rest is not_observed, and said.
#[test]
fn a_run_that_cannot_finish_ends_at_its_deadline() {
    let names: Vec<String> = (0..200).map(|i| format!("slow{i}.test")).collect();
    let dns = support::loopback_dns(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let port = support::tcp_server(Raw::Silent);
    let flows: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("f{i}"), on_port(n, port, &format!("tls_ports = [{port}]"))))
        .collect();
    let started = std::time::Instant::now();
    let report = run(dns, &flows)
        .timeout("0.1")
        .flag("--per-destination", "1")
        .output()
        .json();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(16), "took {took:?}");
    let not_observed = report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["reason"] == "not_observed")
        .count();
    assert!(not_observed > 0, "some flows were cut off by the deadline");
    let warnings = report["context"]["warnings"].to_string();
    assert!(warnings.contains("reached its deadline"), "{warnings}");
}

/// Reports are checked against docs/report.schema.json wherever a test reads one; this pins
/// that the check is live: a real report with failures, causes and a glossary passes, and the
/// same report with a field of the wrong type or an unknown field does not.
#[test]
fn reports_match_the_published_schema_and_a_broken_one_does_not() {
    let dns = support::dns_server(&[("public.test", Dns::A(vec![Ipv4Addr::new(203, 0, 113, 7)]))]);
    let flows = [
        ("public", dns_only("public.test", "expect = \"private\"")),
        ("nx", dns_only("nx.test", "")),
    ];
    let report = run(dns, &flows).output().json();
    assert!(support::is_report(&report));
    assert!(report["root_causes"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(
        report["reasons"]["dns_nxdomain"]["cause"].is_string(),
        "{:#}",
        report["reasons"]
    );
    support::assert_valid_report(&report);
    for broken in [
        serde_json::json!({"summary": {"flows": "two"}}),
        serde_json::json!({"surprise": true}),
    ] {
        let mut bad = report.clone();
        for (k, v) in broken.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let caught = std::panic::catch_unwind(|| support::assert_valid_report(&bad));
        assert!(caught.is_err(), "the schema let {broken} through");
    }
}
