//! The operational front ends through the real binary against loopback servers: JUnit and
//! Prometheus output, rotated report directories, `diff`, `merge`, `bundle` (no secret leaks)
//! and `serve` (endpoints scraped, hostile clients, memory flat over many runs).

use crate::support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
#[cfg(unix)]
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Amlprobe, Raw, on_port, unpack};

/// A world of two flows: `t.api` (a listening port) and `t.blob` (`blob_port`).
struct World {
    dir: tempfile::TempDir,
    dns: SocketAddr,
    suite: PathBuf,
}

impl World {
    fn new(blob_port: u16) -> World {
        let dir = tempfile::tempdir().unwrap();
        let dns = support::loopback_dns(&["api.test", "blob.test"]);
        let api = support::tcp_server(Raw::Close);
        let flows = [
            ("api", on_port("api.test", api, "")),
            ("blob", on_port("blob.test", blob_port, "")),
        ];
        let suite = support::suite_file(dir.path(), &flows);
        World { dir, dns, suite }
    }

    /// `amlprobe <command>` on this world's suite, on loopback only.
    fn cmd(&self, command: &str) -> Amlprobe {
        Amlprobe::offline(command, self.dns).suite(&self.suite)
    }

    fn run(&self, extra: &[&str]) -> support::Run {
        self.cmd("run").args(extra).output()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn healthy_and_broken() -> (World, World) {
    (
        World::new(support::tcp_server(Raw::Close)),
        World::new(support::closed_port()),
    )
}

#[test]
fn junit_and_prometheus_formats() {
    let (_, broken) = healthy_and_broken();
    let junit = broken.run(&["--format", "junit"]);
    assert_eq!(junit.code, 1, "{}", junit.stderr);
    assert!(junit.stdout.starts_with("<?xml"), "{}", junit.stdout);
    assert!(junit.stdout.contains("tests=\"2\" failures=\"1\""), "{}", junit.stdout);
    assert!(junit.stdout.contains("<failure message=\"blocked: ") && junit.stdout.contains("type=\"tcp_refused\""));
    let prom = broken.run(&["--format", "prometheus"]);
    assert_eq!(prom.code, 1);
    assert!(
        prom.stdout
            .contains("amlprobe_flow_up{flow=\"t.api\",suite=\"t\",required=\"true\"} 1\n"),
        "{}",
        prom.stdout
    );
    assert!(
        prom.stdout
            .contains("amlprobe_flow_reason{flow=\"t.blob\",reason=\"tcp_refused\",cause=\"1\"} 1\n")
    );
    assert!(
        prom.stdout.contains(
            "amlprobe_root_cause{cause=\"1\",reason=\"tcp_refused\",kind=\"destination\",required=\"true\"} 1\n"
        ),
        "{}",
        prom.stdout
    );
    assert!(
        junit.stdout.contains("(cause 1)\" type=\"tcp_refused\""),
        "{}",
        junit.stdout
    );
    assert!(prom.stdout.contains("amlprobe_exit_code 1\n"));
}

#[test]
fn report_dir_keeps_the_newest_reports() {
    let (healthy, _) = healthy_and_broken();
    let dir = healthy.path("reports");
    let dir_s = dir.to_str().unwrap();
    for _ in 0..3 {
        let r = healthy.run(&[
            "--quiet",
            "--report-dir",
            dir_s,
            "--keep-reports",
            "2",
            "--host-name",
            "aks-node-7",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with("amlprobe: 2 flows: 2 works"), "{}", r.stdout);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "two reports and latest.json: {names:?}");
    assert_eq!(names[2], "latest.json");
    let latest = support::read_json(&dir.join("latest.json"));
    assert_eq!(latest["summary"]["works"], 2);
    assert_eq!(latest["host"]["hostname"], "aks-node-7");
    let bad = healthy.run(&["--report-dir", dir_s, "--keep-reports", "0"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.starts_with("amlprobe: --keep-reports: "), "{}", bad.stderr);
}

#[test]
fn diff_names_regressions_and_merge_groups_nodes() {
    let (healthy, broken) = healthy_and_broken();
    let before = healthy.path("before.json");
    let after = healthy.path("after.json");
    assert_eq!(healthy.run(&["--quiet", "--report", before.to_str().unwrap()]).code, 0);
    assert_eq!(broken.run(&["--quiet", "--report", after.to_str().unwrap()]).code, 1);
    let (b, a) = (before.to_str().unwrap(), after.to_str().unwrap());

    let worse = Amlprobe::new(["diff", b, a]).output();
    assert_eq!(worse.code, 1, "{}{}", worse.stdout, worse.stderr);
    assert!(worse.stdout.contains("REGRESSED  t.blob"), "{}", worse.stdout);
    assert!(worse.stdout.contains("blocked (tcp_refused)"));
    assert!(
        worse.stdout.contains("fix: "),
        "a regression carries its fix: {}",
        worse.stdout
    );
    let better = Amlprobe::new(["diff", a, b, "--format", "json"]).output();
    assert_eq!(better.code, 0);
    let json = better.json();
    assert_eq!(json["regressed"], 0);
    assert_eq!(json["flows"][0]["change"], "improved");
    assert_eq!(json["causes"][0]["change"], "disappeared", "{json:#}");
    assert_eq!(json["causes"][0]["reason"], "tcp_refused");
    assert!(
        worse.stdout.contains("APPEARED     1. tcp_refused "),
        "the new root cause is named: {}",
        worse.stdout
    );
    let same = Amlprobe::new(["diff", b, b]).output();
    assert_eq!(same.code, 0);
    assert!(same.stdout.contains("no flow changed state"));

    // Three nodes: two healthy, one broken. Hostnames are equal here, so files tell them apart.
    let nodes = healthy.path("nodes");
    std::fs::create_dir(&nodes).unwrap();
    let mut healthy_report = support::read_json(&before);
    let mut broken_report = support::read_json(&after);
    for (name, report) in [("node-a", &mut healthy_report), ("node-c", &mut broken_report)] {
        report["host"]["hostname"] = name.into();
        std::fs::write(nodes.join(format!("{name}.json")), report.to_string()).unwrap();
    }
    healthy_report["host"]["hostname"] = "node-b".into();
    std::fs::write(nodes.join("node-b.json"), healthy_report.to_string()).unwrap();
    let nodes_s = nodes.to_str().unwrap();
    let table = Amlprobe::new(["merge", nodes_s]).output();
    assert_eq!(table.code, 1, "a required flow is blocked on node-c: {}", table.stdout);
    assert!(table.stdout.contains("≠ t.blob"), "{}", table.stdout);
    assert!(table.stdout.contains("A (2 nodes): node-a, node-b"));
    assert!(table.stdout.contains("B (1 node): node-c"));
    let only = Amlprobe::new(["merge", nodes_s, "--differences"]).output();
    assert_eq!(only.code, 1, "{}", only.stderr);
    assert!(
        only.stdout.contains("≠ t.blob") && !only.stdout.contains("t.api"),
        "only the flow the nodes disagree on: {}",
        only.stdout
    );
    let md = Amlprobe::new(["merge", nodes_s, "--format", "markdown"]).output();
    assert!(
        md.stdout
            .contains("| `t.blob` | **yes** | works | **BLOCKED tcp\\_refused** |"),
        "{}",
        md.stdout
    );
    let json = Amlprobe::new(["merge", nodes_s, "--format", "json"]).output().json();
    assert_eq!(json["flows"][1]["nodes"]["node-c"]["reason"], "tcp_refused");
    assert_eq!(json["nodes"][2]["group"], "B");

    let not_a_report = healthy.path("junk.json");
    std::fs::write(&not_a_report, "{\"hello\": 1}").unwrap();
    let bad = Amlprobe::new(["diff", b, not_a_report.to_str().unwrap()]).output();
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("junk.json: not an amlprobe report"),
        "{}",
        bad.stderr
    );
}

#[test]
fn bundle_redacts_secrets_from_environment_arguments_and_reports() {
    let (healthy, _) = healthy_and_broken();
    let proxy = support::proxy_server(support::Proxy::Refuse("HTTP/1.1 403 Forbidden\r\n\r\n"));
    let proxy_url = format!("http://ops:ArgvPr0xyPass@127.0.0.1:{proxy}");
    let out = healthy.path("support.tar.gz");
    let status = healthy
        .cmd("bundle")
        .args([&out])
        .proxy(&proxy_url)
        .env("HTTPS_PROXY", "http://svc:EnvHttpsSecret9@proxy.corp:3128")
        .env(
            "no_proxy",
            "x.test,https://a.blob.core.windows.net/c?sv=1&sig=EnvSasSig123",
        )
        .env("AMLPROBE_REPORT_TOKEN_NOTE", "token=EnvTokenValue77")
        .env("PROXY_PASS", "EnvPlainPass")
        .env("HTTP_PROXY_AUTHORIZATION", "Basic RW52QmFzaWNBdXRo")
        .env("https_proxy_backup", "http://EnvProxyUser:pa/ss@w0rd@proxy.corp:3128")
        .output();
    assert!(status.code == 0 || status.code == 1, "{}", status.stderr);
    let files = unpack(&out);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "report.json",
        "report.txt",
        "report.html",
        "proxy-env.txt",
        "routes.txt",
        "version.txt",
    ] {
        assert!(names.iter().any(|n| n.ends_with(want)), "{want} not in {names:?}");
    }
    let everything: String = files.iter().map(|(_, t)| t.as_str()).collect();
    for secret in [
        "ArgvPr0xyPass",
        "EnvHttpsSecret9",
        "EnvSasSig123",
        "EnvTokenValue77",
        "EnvPlainPass",
        "RW52QmFzaWNBdXRo",
        "EnvProxyUser",
        "w0rd",
        "svc",
        "ops:",
    ] {
        assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
    }
    assert!(
        everything.contains("HTTPS_PROXY=http://***@proxy.corp:3128"),
        "{everything}"
    );
    assert!(everything.contains("--proxy http://***@127.0.0.1"), "{everything}");

    // `run --bundle`: the usual output on stdout, the same archive beside it.
    let out3 = healthy.path("run-bundle.tar.gz");
    let r = healthy.run(&["--format", "json", "--bundle", out3.to_str().unwrap()]);
    assert!(r.json()["flows"].is_array(), "stdout is still the JSON report");
    assert!(r.stderr.contains("run-bundle.tar.gz"), "{}", r.stderr);
    let names: Vec<String> = unpack(&out3).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.ends_with("report.json")), "{names:?}");
    let clash = Amlprobe::new(["bundle"]).args([&out]).flag("--bundle", &out3).output();
    assert_eq!(clash.code, 2, "{}", clash.stderr);
    // A destination that can't be written is refused before anything is probed.
    let nowhere = healthy.run(&["--bundle", "/nonexistent-dir/x.tar.gz"]);
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(
        nowhere.stdout.is_empty() && nowhere.stderr.contains("--bundle: /nonexistent-dir is not a directory"),
        "{}",
        nowhere.stderr
    );
    let nowhere = healthy.run(&["--report", "/nonexistent-dir/r.json"]);
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(nowhere.stdout.is_empty() && nowhere.stderr.contains("--report: /nonexistent-dir is not a directory"));

    // A saved report with secrets in it is redacted too.
    let planted = healthy.path("planted.json");
    let mut report = healthy.run(&["--format", "json"]).json();
    report["flows"][0]["message"] =
        "GET https://x.blob.core.windows.net/?sig=ReportSig42 Authorization: Bearer ReportBearer42".into();
    std::fs::write(&planted, report.to_string()).unwrap();
    let out2 = healthy.path("from-report.tar.gz");
    let r = Amlprobe::new(["bundle"])
        .args([&out2])
        .flag("--from-report", &planted)
        .output();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = unpack(&out2);
    let text: String = files.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        !text.contains("ReportSig42") && !text.contains("ReportBearer42"),
        "{text}"
    );
    // A report this version wrote is rendered again: the table and the page come with it.
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n.ends_with(name))
            .map_or_else(|| panic!("no {name} in the bundle"), |(_, t)| t.clone())
    };
    let flow_id = report["flows"][0]["id"].as_str().unwrap();
    assert!(file("report.html").contains(flow_id) && file("report.html").starts_with("<!DOCTYPE html>"));
    let host = report["flows"][0]["hosts"][0].as_str().unwrap();
    assert!(file("report.txt").contains(host), "{}", file("report.txt"));
    // One this version can't read whole (here: written before `settings` existed) is packed
    // with a summary line instead.
    report.as_object_mut().unwrap().remove("settings");
    std::fs::write(&planted, report.to_string()).unwrap();
    let out4 = healthy.path("old-report.tar.gz");
    let r = Amlprobe::new(["bundle"])
        .args([&out4])
        .flag("--from-report", &planted)
        .output();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = unpack(&out4);
    assert!(files.iter().all(|(n, _)| !n.ends_with("report.html")));
    let summary = files.iter().find(|(n, _)| n.ends_with("report.txt")).unwrap();
    assert!(summary.1.starts_with("report of "), "{}", summary.1);
}

/// A running `amlprobe serve` and its stdout lines.
struct Server {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    address: SocketAddr,
}

impl Server {
    fn start(world: &World, interval: &str, jitter: &str) -> Server {
        Server::start_with(world, interval, jitter, &[])
    }

    fn start_with(world: &World, interval: &str, jitter: &str, extra: &[&str]) -> Server {
        let (child, lines) = world
            .cmd("serve")
            .flag("--listen", "127.0.0.1:0")
            .flag("--interval", interval)
            .flag("--jitter", jitter)
            .args(extra)
            .spawn();
        let first: Value = serde_json::from_str(&lines.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
        assert_eq!(first["event"], "listening");
        let address = first["address"].as_str().unwrap().parse().unwrap();
        Server { child, lines, address }
    }

    fn next_line(&self) -> Value {
        serde_json::from_str(&self.lines.recv_timeout(Duration::from_secs(10)).expect("a log line")).unwrap()
    }

    /// Sends `request` raw and returns (status, body).
    fn raw(&self, request: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(self.address).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        let status = response.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
    }

    /// Like [`Server::raw`], and how long the answer took.
    fn timed(&self, request: &[u8]) -> ((u16, String), Duration) {
        let started = Instant::now();
        let answer = self.raw(request);
        (answer, started.elapsed())
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_metrics_health_and_report() {
    let world = World::new(support::closed_port());
    let server = Server::start(&world, "1s", "50ms");
    let run = server.next_line();
    assert_eq!(run["event"], "run", "{run}");
    assert_eq!(run["exit_code"], 1);
    assert_eq!(run["failing"][0]["id"], "t.blob");
    assert_eq!(run["failing"][0]["reason"], "tcp_refused");
    assert_eq!(
        run["failing"][0]["cause"], 1,
        "the log line names the root cause: {run}"
    );
    let second = server.next_line();
    assert_eq!(second["run"], 2, "it runs again on the interval: {second}");

    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("amlprobe_flow_up{flow=\"t.api\",suite=\"t\",required=\"true\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("amlprobe_flow_reason{flow=\"t.blob\",reason=\"tcp_refused\",cause=\"1\"} 1\n"));
    assert!(metrics.contains("amlprobe_probe_duration_seconds{flow=\"t.api\",kind=\"tcp\""));
    assert!(metrics.contains("# TYPE amlprobe_runs_total counter\n"));
    assert!(metrics.contains("amlprobe_last_run_timestamp_seconds "));
    let (status, health) = server.get("/healthz");
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    let (status, report) = server.get("/report?pretty=1");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["flows"][1]["reason"], "tcp_refused");
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("<details class=\"flow s-blocked\" id=\"flow-t.blob\" open>"),
        "{page}"
    );
    assert_eq!(server.get("/nope").0, 404);
    assert_eq!(server.raw(b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(server.raw(b"\x16\x03\x01\x00\xff garbage\r\n\r\n").0, 400);
    assert_eq!(server.raw(&vec![b'A'; 20_000]).0, 431);
    // A client that connects and says nothing does not block others.
    let _idle = TcpStream::connect(server.address).unwrap();
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn serve_rejects_bad_settings_with_exit_2() {
    let world = World::new(support::closed_port());
    for (flag, value) in [
        ("--interval", "soon"),
        ("--interval", "1ms"),
        ("--listen", "localhost"),
        ("--jitter", "a bit"),
        ("--allow-host", "evil.example:80"),
    ] {
        let r = world.cmd("serve").flag(flag, value).output();
        assert_eq!(r.code, 2, "{flag} {value}: {}", r.stderr);
        assert!(r.stderr.starts_with(&format!("amlprobe: {flag}: ")), "{}", r.stderr);
    }
}

/// 80 idle connections (more than the server's 64 slots, all from one address) don't keep
/// `/healthz` from answering within a second, and a bare-LF request gets 400 at once.
#[test]
fn serve_is_not_starved_by_idle_connections() {
    let world = World::new(support::closed_port());
    let server = Server::start(&world, "1h", "0");
    let idle: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(server.address).unwrap()).collect();
    // One byte short of a request head: slow clients, not just silent ones.
    for s in idle.iter().step_by(2) {
        (&*s)
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
    }
    for _ in 0..10 {
        let ((status, body), took) = server.timed(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        assert_eq!((status, body.as_str()), (200, "ok\n"), "after {took:?}");
        assert!(
            took < Duration::from_secs(1),
            "/healthz took {took:?} with 80 idle connections"
        );
    }
    let ((status, _), took) = server.timed(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(
        status == 200 && took < Duration::from_secs(1),
        "{status} after {took:?}"
    );
    for request in [
        &b"GET /healthz HTTP/1.1\n\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\n\n",
    ] {
        let ((status, _), took) = server.timed(request);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(request));
        assert!(took < Duration::from_secs(1), "a bare LF took {took:?}");
    }
    // The idle connections were closed by the server, within the 2 s request deadline at most.
    let started = Instant::now();
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "idle clients held on for {:?}",
        started.elapsed()
    );
    drop(world);
}

/// A web page whose name a browser resolved to 127.0.0.1 (DNS rebinding) sends its own name as
/// `Host`: every endpoint answers it 421 with no body, while IP addresses, `localhost` and the
/// names given with `--allow-host` are served.
#[test]
fn serve_refuses_a_rebound_host_name() {
    let world = World::new(support::closed_port());
    let server = Server::start_with(&world, "1h", "0", &["--allow-host", "amlprobe.internal"]);
    assert_eq!(server.next_line()["event"], "run");
    let port = server.address.port();
    for path in ["/report", "/", "/metrics", "/healthz"] {
        let rebound = format!(
            "GET {path} HTTP/1.1\r\nHost: attacker.example:{port}\r\nOrigin: http://attacker.example:{port}\r\n\r\n"
        );
        let mut s = TcpStream::connect(server.address).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(rebound.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        assert!(
            response.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
            "{path}: {response}"
        );
        assert!(
            response.contains("\r\nContent-Length: 0\r\n") && response.ends_with("\r\n\r\n"),
            "{response}"
        );
        assert!(
            !response.contains("t.blob") && !response.contains("amlprobe_"),
            "{response}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("amlprobe.internal:{port}"),
    ] {
        let (status, body) = server.raw(format!("GET /report HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(status, 200, "{host}");
        assert!(body.contains("t.blob"), "{host}: {body}");
    }
}

/// Clients that reconnect as fast as the server closes them, 64 or 300 from the prober's own
/// address or 300 from 200 addresses (300 is more than the server's 256 slots, so it sheds
/// them all the while), never keep `/healthz` from answering within a second.
#[test]
fn serve_answers_health_under_a_reconnect_storm() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let world = World::new(support::closed_port());
    let server = Server::start(&world, "1h", "0");
    for (clients, addresses) in [(64, 0), (300, 0), (300, 200)] {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let storm: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, connections, to) = (stop.clone(), connections.clone(), server.address);
                // 0: the prober's own address; else one of 127.0.1.1 to 127.0.1.<addresses>.
                let from = (addresses > 0).then(|| SocketAddr::from(([127, 0, 1, (i % addresses + 1) as u8], 0)));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
                        if let Some(from) = from {
                            socket.bind(&from.into()).unwrap();
                        }
                        if socket.connect_timeout(&to.into(), Duration::from_secs(2)).is_err() {
                            continue;
                        }
                        connections.fetch_add(1, Ordering::Relaxed);
                        let mut s = TcpStream::from(socket);
                        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                        // Silent until the server closes the connection (shed, or its deadline).
                        let _ = s.read(&mut [0u8; 16]);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let ((status, body), took) = server.timed(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            assert_eq!(
                (status, body.as_str()),
                (200, "ok\n"),
                "{clients} clients: after {took:?}"
            );
            slowest = slowest.max(took);
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        for t in storm {
            t.join().unwrap();
        }
        let made = connections.load(Ordering::Relaxed);
        eprintln!("{clients} clients from {addresses} address(es): {made} connections, slowest /healthz {slowest:?}");
        assert!(
            slowest < Duration::from_secs(1),
            "{clients} clients: /healthz took {slowest:?}"
        );
        assert!(made > clients, "the storm reconnected: {made} connections");
    }
}

/// `--metrics-only` turns `/report` off; `--report-token-file` puts it behind a bearer token
/// that never shows in the logs; `--jitter 0` is accepted.
#[test]
fn serve_report_can_be_turned_off_or_need_a_token() {
    let world = World::new(support::closed_port());
    let off = Server::start_with(&world, "1h", "0", &["--metrics-only"]);
    assert_eq!(off.next_line()["event"], "run");
    assert_eq!(off.get("/report").0, 404);
    assert_eq!(off.get("/metrics").0, 200);
    assert_eq!(off.get("/healthz").0, 200);

    let token = "Tok3n-9f8e7d6c5b4a";
    let file = world.path("report.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let guarded = Server::start_with(&world, "1h", "0", &["--report-token-file", file.to_str().unwrap()]);
    let run = guarded.next_line();
    assert_eq!(run["event"], "run", "{run}");
    let (status, body) = guarded.get("/report");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(token));
    let wrong = guarded.raw(b"GET /report HTTP/1.1\r\nAuthorization: Bearer Tok3n-9f8e7d6c5b4\r\n\r\n");
    assert_eq!(wrong.0, 401);
    let (status, body) =
        guarded.raw(format!("GET /report HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["flows"][1]["reason"],
        "tcp_refused"
    );
    assert_eq!(guarded.get("/metrics").0, 200);
    drop(guarded);

    let bad = |extra: &[&str]| world.cmd("serve").flag("--listen", "127.0.0.1:0").args(extra).output();
    let both = bad(&["--metrics-only", "--report-token-file", file.to_str().unwrap()]);
    assert_eq!(both.code, 2, "{}", both.stderr);
    let empty = world.path("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let r = bad(&["--report-token-file", empty.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("amlprobe: --report-token-file: ") && r.stderr.contains("holds no token"),
        "{}",
        r.stderr
    );
    let spaced = world.path("spaced.token");
    std::fs::write(&spaced, format!("{token} {token}")).unwrap();
    let r = bad(&["--report-token-file", spaced.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("amlprobe: --report-token-file: ") && !r.stderr.contains(token),
        "the file is named, the token is never printed: {}",
        r.stderr
    );
}

/// Output paths that are not regular files (a symlink, even to a device, a FIFO, a directory)
/// are refused before probing, and left as they were.
#[cfg(unix)]
#[test]
fn outputs_that_are_not_regular_files_are_refused() {
    use std::os::unix::fs::{FileTypeExt, symlink};
    let (healthy, _) = healthy_and_broken();
    let kept = healthy.path("kept.json");
    std::fs::write(&kept, "keep me").unwrap();
    let to_file = healthy.path("to-file.json");
    symlink(&kept, &to_file).unwrap();
    let to_device = healthy.path("to-device.tar.gz");
    symlink("/dev/null", &to_device).unwrap();
    let fifo = healthy.path("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let dir = healthy.path("a-dir");
    std::fs::create_dir(&dir).unwrap();
    let reports = healthy.path("reports");
    std::fs::create_dir(&reports).unwrap();
    symlink(&kept, reports.join("latest.json")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec!["--report".into(), s(&to_file)], "--report", "a symbolic link"),
        (vec!["--report".into(), s(&fifo)], "--report", "a FIFO"),
        (vec!["--report".into(), s(&dir)], "--report", "a directory"),
        (
            vec!["--report-dir".into(), s(&reports)],
            "--report-dir",
            "a symbolic link",
        ),
        (vec!["--report-dir".into(), s(&kept)], "--report-dir", "not a directory"),
        (vec!["--bundle".into(), s(&to_device)], "--bundle", "a symbolic link"),
        (vec!["--bundle".into(), s(&fifo)], "--bundle", "a FIFO"),
        (vec!["--bundle".into(), s(&to_file)], "--bundle", "a symbolic link"),
    ];
    for (extra, flag, what) in &cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let started = Instant::now();
        let r = healthy.run(&extra);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "refused before probing: {}", r.stdout);
        assert!(
            r.stderr.starts_with(&format!("amlprobe: {flag}: "))
                && r.stderr.contains(what)
                && r.stderr.lines().count() == 1,
            "{extra:?}: {}",
            r.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    for (out, what) in [
        (&to_device, "a symbolic link"),
        (&fifo, "a FIFO"),
        (&dir, "a directory"),
    ] {
        let r = Amlprobe::new(["bundle"])
            .args([out])
            .flag("--from-report", "/nonexistent.json")
            .output();
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains(what) && r.stderr.contains("refused"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "keep me");
    for link in [&to_file, &to_device, &reports.join("latest.json")] {
        assert!(
            std::fs::symlink_metadata(link).unwrap().file_type().is_symlink(),
            "{link:?}"
        );
    }
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(dir.is_dir() && std::fs::read_dir(&dir).unwrap().next().is_none());

    // A regular file is replaced whole, and nothing but it is left in the directory.
    let out = healthy.path("out");
    std::fs::create_dir(&out).unwrap();
    let report = out.join("r.json");
    std::fs::write(&report, "old").unwrap();
    let bundle = out.join("b.tar.gz");
    let r = healthy.run(&[
        "--quiet",
        "--report",
        report.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(serde_json::from_str::<Value>(&std::fs::read_to_string(&report).unwrap()).is_ok());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b.tar.gz", "r.json"]);
}

/// An endless input file (`/dev/zero`) is read up to 16 MiB and refused with exit 2, naming the
/// flag, wherever amlprobe takes a file.
#[cfg(unix)]
#[test]
fn endless_input_files_are_refused_quickly() {
    let (healthy, _) = healthy_and_broken();
    let zero = "/dev/zero";
    for flag in ["--config", "--suite-file", "--ca-file", "--private-endpoints"] {
        // --suite-file is repeatable: the test suite loads, then /dev/zero is refused.
        let started = Instant::now();
        let r = healthy.run(&[flag, zero]);
        let took = started.elapsed();
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.starts_with(&format!("amlprobe: {flag}")) && r.stderr.contains("larger than 16 MiB"),
            "{flag}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(took < Duration::from_secs(10), "{flag} took {took:?}");
    }
    let report = healthy.path("r.json");
    assert_eq!(healthy.run(&["--quiet", "--report", report.to_str().unwrap()]).code, 0);
    let r_s = report.to_str().unwrap();
    let bundle = healthy.path("b.tar.gz");
    let b_s = bundle.to_str().unwrap();
    let others: [(&[&str], &str); 5] = [
        (&["diff", zero, r_s], zero),
        (&["diff", r_s, zero], zero),
        (&["merge", r_s, zero], zero),
        (&["bundle", b_s, "--from-report", zero], "--from-report"),
        (
            &["serve", "--listen", "127.0.0.1:0", "--report-token-file", zero],
            "--report-token-file",
        ),
    ];
    for (args, named) in others {
        let started = Instant::now();
        let r = Amlprobe::new(args).output();
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(named) && r.stderr.contains("larger than 16 MiB"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert!(!bundle.exists());
}

/// Memory stays flat over many runs: the resident set after 1500 runs is within a small margin
/// of the one after 300 (nothing accumulates per run).
#[test]
#[ignore = "a soak test (about 40 s): cargo test -- --ignored, or benches/soak.sh for 5,000 runs"]
fn serve_memory_stays_flat_over_many_runs() {
    let world = World::new(support::tcp_server(Raw::Close));
    let server = Server::start_with(&world, "1ms", "1ms", &["--no-interval-floor"]);
    let wait_for_run = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let line = server.next_line();
            if line["run"].as_u64().is_some_and(|r| r >= n) {
                return;
            }
            assert!(Instant::now() < deadline, "too slow to reach run {n}");
        }
    };
    wait_for_run(300);
    let early = server.rss_kib();
    server.get("/metrics");
    wait_for_run(1500);
    let late = server.rss_kib();
    eprintln!("serve RSS: {early} KiB after 300 runs, {late} KiB after 1500 runs");
    assert!(late <= early + 2048, "RSS grew from {early} KiB to {late} KiB");
}

/// Every error path that quotes a value from a config, suite or report file quotes it the way
/// flags are quoted: secrets masked (an AccountKey, a SAS `sig`, a proxy password) and a 1 MB
/// value cut to a short line.
#[test]
fn parse_errors_quote_values_redacted_and_short() {
    const KEY: &str = "c2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkwQUJDREVGR0hJSktMTU5PUFFSU1RVVldY==";
    const SIG: &str = "Zm9vYmFyYmF6cXV4c2VjcmV0c2lnbmF0dXJlMTIzNDU2Nzg5MA";
    const PASSWORD: &str = "Pa55w0rdSecret";
    let (healthy, _) = healthy_and_broken();
    let long = "L".repeat(1 << 20);
    let planted = [
        format!("AccountKey={KEY}"),
        format!("https://sa.blob.core.windows.net/c?sv=2022-11-02&sig={SIG}"),
        format!("http://alice:{PASSWORD}@proxy.corp:3128"),
        long.clone(),
    ];
    let suite_head = "[suite]\nname = \"t\"\ntitle = \"t\"\n\n[[flow]]\nid = \"t.a\"\ntitle = \"a\"\n";
    let suite_rest = "service_tag = \"X\"\nrequired = true\nscenario = \"s\"\nsource = \"s\"\nhosts = [\"h.test\"]\n";
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    for (i, value) in planted.iter().enumerate() {
        let config = healthy.path(&format!("config{i}.toml"));
        std::fs::write(&config, format!("timeout = \"{value}\"\n")).unwrap();
        cases.push((
            "config".into(),
            vec!["run".into(), "--config".into(), config.display().to_string()],
        ));
        let suite = healthy.path(&format!("suite{i}.toml"));
        std::fs::write(&suite, format!("{suite_head}direction = \"{value}\"\n{suite_rest}")).unwrap();
        cases.push((
            "suite".into(),
            vec!["suites".into(), "--suite-file".into(), suite.display().to_string()],
        ));
        let named = healthy.path(&format!("named{i}.toml"));
        std::fs::write(&named, format!("[suite]\nname = \"{value}\"\ntitle = \"t\"\n")).unwrap();
        cases.push((
            "suite name".into(),
            vec!["suites".into(), "--suite-file".into(), named.display().to_string()],
        ));
        let report = healthy.path(&format!("report{i}.json"));
        let json =
            serde_json::json!({"schema_version": value, "started_at": "t", "host": {"hostname": "h"}, "flows": []});
        std::fs::write(&report, json.to_string()).unwrap();
        let r = report.display().to_string();
        cases.push(("diff".into(), vec!["diff".into(), r.clone(), r.clone()]));
        cases.push(("merge".into(), vec!["merge".into(), r.clone()]));
        let bundle = healthy.path(&format!("b{i}.tar.gz")).display().to_string();
        cases.push((
            "bundle".into(),
            vec!["bundle".into(), bundle, "--from-report".into(), r],
        ));
    }
    for (what, argv) in cases {
        let r = support::Amlprobe::new(&argv).output();
        assert_eq!(
            r.code,
            2,
            "{what} {argv:?}: {}",
            r.stderr.chars().take(300).collect::<String>()
        );
        let e = &r.stderr;
        assert_eq!(
            e.lines().count(),
            1,
            "{what}: {}",
            e.chars().take(300).collect::<String>()
        );
        assert!(
            e.len() < 600,
            "{what}: a {} byte message: {}",
            e.len(),
            e.chars().take(300).collect::<String>()
        );
        for secret in [KEY, SIG, PASSWORD, &long[..200]] {
            assert!(!e.contains(secret), "{what} shows a secret: {e}");
        }
    }
}

/// A disk that fills up while the report or the bundle is written (a file-size limit makes
/// every write past 1 KiB fail): both are I/O failures after a complete run, exit 3, and leave
/// no partial file and no temporary beside it.
#[test]
fn a_full_disk_fails_the_report_and_the_bundle_alike() {
    let (healthy, _) = healthy_and_broken();
    let full = "trap '' XFSZ; ulimit -f 2";
    let report = healthy.path("full.json");
    let r = healthy.cmd("run").flag("--report", &report).under_shell(full).output();
    assert_eq!(r.code, 3, "--report: {}", r.stderr);
    let bundle = healthy.path("full.tar.gz");
    let r = healthy.cmd("run").flag("--bundle", &bundle).under_shell(full).output();
    assert_eq!(r.code, 3, "--bundle: {}", r.stderr);
    assert!(r.stderr.starts_with("amlprobe: --bundle "), "{}", r.stderr);
    let left: Vec<String> = std::fs::read_dir(healthy.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("full") || n.starts_with(".full"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A run stopped while its report was being written (SIGTERM or SIGKILL during the fsync)
/// leaves its temporary file: the next write of that report removes it.
#[test]
fn the_next_report_removes_a_temporary_a_stopped_run_left() {
    let (healthy, _) = healthy_and_broken();
    let report = healthy.path("r.json");
    // What the stopped run left: `.r.json.<its pid>.<n>.tmp`, its process long gone.
    let stale = healthy.path(".r.json.4194304.0.tmp");
    std::fs::write(&stale, "half a report").unwrap();
    let foreign = healthy.path(".r.json.notours.tmp");
    std::fs::write(&foreign, "someone else's").unwrap();
    let r = healthy.run(&["--quiet", "--report", report.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(report.exists());
    assert!(!stale.exists(), "the stale temporary is gone");
    assert!(foreign.exists(), "a name amlprobe does not write is left alone");
}
