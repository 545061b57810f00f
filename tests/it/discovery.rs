//! Workspace discovery through the real binary against a fake ARM and a fake Entra ID token
//! endpoint: TLS servers on 127.0.0.1 with a test CA, answering with the REST examples' shapes
//! (tests/fixtures/arm). Nothing leaves loopback: IMDS is off or on a loopback port, and the
//! probed names are DNS-only flows answered by a loopback DNS server.

use crate::support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use support::{Dns, Leaf, Pki};

const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.planted-arm-token-7f3a.c2lnbmF0dXJl";
const SUB: &str = "/subscriptions/00000000-1111-2222-3333-444444444444";
const WS_ID: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

fn workspace_id() -> String {
    format!("{SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlws01")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/arm")
            .join(name),
    )
    .unwrap()
}

/// Requests a fake server saw (head and body).
type Seen = Arc<Mutex<Vec<String>>>;

/// An HTTPS server on 127.0.0.1 whose answers `route` picks from each request.
fn https_server(pki: &Pki, route: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> (u16, Seen) {
    let config = pki.server_config("127.0.0.1", Leaf::Good);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let route = Arc::new(route);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, log, route) = (config.clone(), log.clone(), route.clone());
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
                let mut raw = Vec::new();
                let mut byte = [0u8; 1];
                while !raw.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    raw.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&raw).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                tls.read_exact(&mut body).unwrap();
                let request = head + &String::from_utf8_lossy(&body);
                let (status, reply) = route(&request);
                log.lock().unwrap().push(request);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nx-ms-request-id: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, seen)
}

/// How the fake ARM behaves.
#[derive(Clone, Copy)]
enum Arm {
    /// Answers the fixtures to requests bearing `TOKEN`.
    Fixtures,
    /// 403 AuthorizationFailed to everything.
    Forbidden,
}

fn fake_arm(pki: &Pki, mode: Arm, token: &'static str) -> (u16, Seen) {
    https_server(pki, move |request| {
        if matches!(mode, Arm::Forbidden) {
            return (
                403,
                r#"{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization to perform action"}}"#
                    .into(),
            );
        }
        if !request.contains(&format!("\r\nAuthorization: Bearer {token}\r\n")) {
            return (401, r#"{"error":{"code":"InvalidAuthenticationToken"}}"#.into());
        }
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let rg = |group: &str, rest: &str| format!("{SUB}/resourceGroups/{group}/providers/{rest}");
        let routes = [
            (format!("{}?api-version=2024-04-01", workspace_id()), "workspace.json"),
            (
                rg(
                    "rg-net",
                    "Microsoft.Network/privateEndpoints/ws-pe?api-version=2024-05-01",
                ),
                "ws-pe.json",
            ),
            (
                rg(
                    "rg-ml",
                    "Microsoft.Storage/storageAccounts/mlwsstorage01/privateEndpointConnections?api-version=2023-05-01",
                ),
                "storage-pe-connections.json",
            ),
            (
                rg(
                    "rg-ml",
                    "Microsoft.KeyVault/vaults/mlws-kv-01/privateEndpointConnections?api-version=2023-07-01",
                ),
                "keyvault-pe-connections.json",
            ),
            (
                rg(
                    "rg-ml",
                    "Microsoft.ContainerRegistry/registries/mlwsacr01?api-version=2023-07-01",
                ),
                "registry.json",
            ),
            (
                rg(
                    "rg-net",
                    "Microsoft.Network/privateEndpoints/sa-blob-pe?api-version=2024-05-01",
                ),
                "sa-blob-pe.json",
            ),
        ];
        match routes.iter().find(|(p, _)| p == path) {
            Some((_, file)) => (200, fixture(file)),
            None => (404, r#"{"error":{"code":"ResourceNotFound"}}"#.into()),
        }
    })
}

/// The suite: names templated from the context, DNS-only, expected private.
fn suite(dir: &Path) -> std::path::PathBuf {
    let private = "expect = \"private\"";
    support::suite_file(
        dir,
        &[
            (
                "api",
                &format!("hosts = [\"{{workspace_id}}.workspace.{{region}}.api.azureml.ms\"]\n{private}"),
            ),
            (
                "cert",
                &format!("hosts = [\"{{workspace_id}}.workspace.{{region}}.cert.api.azureml.ms\"]\n{private}"),
            ),
            (
                "nb",
                &format!("hosts = [\"{{notebook_label}}.{{region}}.notebooks.azure.net\"]\n{private}"),
            ),
            (
                "sa",
                &format!("hosts = [\"{{storage_account}}.blob.core.windows.net\"]\n{private}"),
            ),
        ],
    )
}

fn dns() -> String {
    let ip = |d| vec![Ipv4Addr::new(10, 1, 0, d)];
    support::dns_server(&[
        // customDnsConfigs says 10.1.0.5: this resolver gives another address.
        (&*format!("{WS_ID}.workspace.eastus.api.azureml.ms"), Dns::A(ip(9))),
        (&*format!("{WS_ID}.workspace.eastus.cert.api.azureml.ms"), Dns::A(ip(5))),
        (
            &*format!("ml-mlws01-eastus-{WS_ID}.eastus.notebooks.azure.net"),
            Dns::A(ip(6)),
        ),
        // The storage account's own endpoint lists 10.1.0.20.
        ("mlwsstorage01.blob.core.windows.net", Dns::A(ip(21))),
        ("flagstorage01.blob.core.windows.net", Dns::A(ip(21))),
    ])
    .to_string()
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    report: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    fn everything(&self) -> String {
        format!("{}{}{}", self.stdout, self.stderr, self.report)
    }
}

/// Runs `amlprobe run` with a clean environment (only `env`), JSON on stdout and a --report file.
fn run(pki: &Pki, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    run_in(&tempfile::tempdir().unwrap(), pki, extra, env)
}

/// [`run`] in working directory `dir`.
fn run_in(dir: &tempfile::TempDir, pki: &Pki, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let suite = suite(dir.path());
    let report = dir.path().join("report.json");
    let dns = dns();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_amlprobe"));
    cmd.env_clear().current_dir(dir.path()).args([
        "run",
        "--format",
        "json",
        "--timeout",
        "1",
        "--private-cidr",
        "127.0.0.0/8",
        "--dns-server",
        &dns,
        "--suite-file",
        suite.to_str().unwrap(),
        "--suite",
        "t",
        "--ca-file",
        pki.root_pem().to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    if !extra.contains(&"--imds-endpoint") {
        cmd.arg("--no-imds");
    }
    if !extra.contains(&"--proxy") {
        cmd.arg("--no-proxy");
    }
    cmd.args(extra);
    // No az, and no identity of this machine: only what the test gives.
    cmd.env("PATH", dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read_to_string(&report).unwrap_or_default(),
    }
}

fn flow<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == format!("t.{id}"))
        .unwrap_or_else(|| panic!("no flow t.{id} in {report:#}"))
}

fn check(report: &Value, id: &str, status: &str, reason: Option<&str>) {
    let f = flow(report, id);
    assert_eq!(
        (f["status"].as_str().unwrap(), f["reason"].as_str()),
        (status, reason),
        "flow {id}: {f:#}"
    );
}

fn warnings(report: &Value) -> String {
    report["context"]["warnings"].to_string()
}

#[test]
fn a_token_in_the_environment_discovers_the_whole_context() {
    let pki = Pki::new();
    let (port, seen) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let bundle_dir = tempfile::tempdir().unwrap();
    let bundle = bundle_dir.path().join("support.tar.gz");
    let out = run(
        &pki,
        &[
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--bundle",
            bundle.to_str().unwrap(),
        ],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    let report = out.json();
    let ctx = &report["context"];
    assert_eq!(ctx["workspace_id"], WS_ID, "{ctx:#}");
    assert_eq!(ctx["region"], "eastus");
    assert_eq!(ctx["workspace_name"], "mlws01");
    assert_eq!(ctx["storage_account"], "mlwsstorage01");
    assert_eq!(ctx["key_vault"], "mlws-kv-01");
    assert_eq!(ctx["container_registry"], "mlwsacr01");
    assert_eq!(ctx["notebook_label"], format!("ml-mlws01-eastus-{WS_ID}"));
    for key in [
        "region",
        "workspace_id",
        "storage_account",
        "notebook_label",
        "expected_ips",
    ] {
        assert_eq!(ctx["sources"][key], "arm", "{key}: {ctx:#}");
    }
    // customDnsConfigs pins the API name to 10.1.0.5; the resolver says 10.1.0.9.
    check(&report, "api", "blocked", Some("dns_wrong_ip"));
    let message = flow(&report, "api")["message"].as_str().unwrap();
    assert!(
        message.contains("10.1.0.9") && message.contains("10.1.0.5"),
        "{message}"
    );
    check(&report, "cert", "works", None);
    check(&report, "nb", "works", None);
    check(&report, "sa", "blocked", Some("dns_wrong_ip"));
    let w = warnings(&report);
    assert!(
        w.contains("spoke-pe-conn") && w.contains("Pending, not Approved"),
        "{w}"
    );
    assert!(
        w.contains("key vault mlws-kv-01's private endpoint connection kv-conn"),
        "{w}"
    );
    // The workspace, its three dependencies and the two approved endpoints; not the pending ones.
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 6, "{requests:#?}");
    assert!(!requests.iter().any(|r| r.contains("spoke-pe?") || r.contains("kv-pe?")));
    assert!(
        !out.everything().contains("planted-arm-token"),
        "token leaked:\n{}",
        out.everything()
    );
    assert!(!out.report.is_empty());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&bundle).unwrap()));
    let mut packed = String::new();
    for entry in archive.entries().unwrap() {
        entry.unwrap().read_to_string(&mut packed).unwrap();
    }
    assert!(packed.contains("AMLPROBE_ARM_TOKEN"), "the bundle lists the variable");
    assert!(
        !packed.contains("planted-arm-token"),
        "token leaked into the bundle:\n{packed}"
    );
}

#[test]
fn flags_win_over_discovered_values() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let pinned = format!("{WS_ID}.workspace.eastus.api.azureml.ms=10.1.0.9");
    let out = run(
        &pki,
        &[
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--storage-account",
            "flagstorage01",
            "--expect-ip",
            &pinned,
        ],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    let report = out.json();
    assert_eq!(report["context"]["storage_account"], "flagstorage01");
    assert!(report["context"]["sources"].get("storage_account").is_none());
    check(&report, "api", "works", None);
    check(&report, "sa", "works", None);
}

#[test]
fn a_refusal_names_the_reader_role_and_the_run_goes_on() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Forbidden, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let out = run(
        &pki,
        &[
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--region",
            "eastus",
            "--storage-account",
            "mlwsstorage01",
        ],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    let report = out.json();
    let w = warnings(&report);
    assert!(
        w.contains("HTTP 403 (AuthorizationFailed)") && w.contains("Reader role"),
        "{w}"
    );
    check(&report, "sa", "works", None);
    assert!(report["context"]["workspace_id"].is_null());
    assert!(!out.everything().contains("planted-arm-token"));
}

#[test]
fn a_token_arm_rejects_is_said_to_be_expired_or_for_another_audience() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, "some-other-token");
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let out = run(
        &pki,
        &["--workspace-resource-id", &id, "--arm-endpoint", &arm],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    let w = warnings(&out.json());
    assert!(
        w.contains("HTTP 401 (InvalidAuthenticationToken)") && w.contains("expired"),
        "{w}"
    );
    assert!(!out.everything().contains("planted-arm-token"));
}

#[test]
fn without_any_identity_one_line_says_which_sources_were_tried() {
    let pki = Pki::new();
    let id = workspace_id();
    let out = run(
        &pki,
        &["--workspace-resource-id", &id, "--arm-endpoint", "https://127.0.0.1:9"],
        &[],
    );
    let report = out.json();
    let w: Vec<String> = serde_json::from_value(report["context"]["warnings"].clone()).unwrap();
    let line = w
        .iter()
        .find(|l| l.contains("no Azure identity"))
        .unwrap_or_else(|| panic!("{w:?}"));
    for source in [
        "AMLPROBE_ARM_TOKEN",
        "workload identity",
        "MSI_ENDPOINT",
        "IMDS",
        "az not on PATH",
    ] {
        assert!(line.contains(source), "{source}: {line}");
    }
}

#[test]
fn workload_identity_exchanges_the_federated_token_at_entra_id() {
    let pki = Pki::new();
    let (login, logins) = https_server(&pki, |request| {
        if request.starts_with("POST /tenant-1/oauth2/v2.0/token ") {
            (
                200,
                format!("{{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"{TOKEN}\"}}"),
            )
        } else {
            (400, r#"{"error":"invalid_request"}"#.into())
        }
    });
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let federated = dir.path().join("token");
    std::fs::write(&federated, "federated.service-account.jwt\n").unwrap();
    let arm = format!("https://127.0.0.1:{port}");
    let authority = format!("https://127.0.0.1:{login}");
    let id = workspace_id();
    let out = run(
        &pki,
        &["--workspace-resource-id", &id, "--arm-endpoint", &arm],
        &[
            ("AZURE_FEDERATED_TOKEN_FILE", federated.to_str().unwrap()),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_AUTHORITY_HOST", &authority),
        ],
    );
    let report = out.json();
    assert_eq!(report["context"]["workspace_id"], WS_ID, "{}", out.stderr);
    assert_eq!(report["context"]["token_source"], "workload identity");
    let form = logins.lock().unwrap()[0].clone();
    let body = form.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        body,
        "client_assertion=federated.service-account.jwt&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=client-1&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
    );
    assert!(!out.everything().contains("planted-arm-token"));
}

const SDK_CONFIG: &str = r#"{"subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "rg-ml", "workspace_name": "mlws01"}"#;

#[test]
fn the_sdk_config_found_above_the_working_directory_names_the_workspace() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".azureml")).unwrap();
    std::fs::write(dir.path().join(".azureml/config.json"), SDK_CONFIG).unwrap();
    let nested = tempfile::tempdir_in(dir.path()).unwrap();
    let out = run_in(
        &nested,
        &pki,
        &["--arm-endpoint", &arm],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    assert_eq!(out.json()["context"]["workspace_id"], WS_ID, "{}", out.stderr);
}

#[test]
fn workspace_config_names_the_workspace_and_no_discovery_turns_it_off() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ws.json");
    std::fs::write(&config, SDK_CONFIG).unwrap();
    let arm = format!("https://127.0.0.1:{port}");
    let out = run(
        &pki,
        &["--workspace-config", config.to_str().unwrap(), "--arm-endpoint", &arm],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    assert_eq!(out.json()["context"]["workspace_id"], WS_ID);
    let off = run(
        &pki,
        &[
            "--workspace-config",
            config.to_str().unwrap(),
            "--arm-endpoint",
            &arm,
            "--no-discovery",
        ],
        &[("AMLPROBE_ARM_TOKEN", TOKEN)],
    );
    assert!(off.json()["context"]["workspace_id"].is_null());
}

#[test]
fn bad_discovery_values_name_their_flag() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let id = workspace_id();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--workspace-resource-id", "/subscriptions/x/resourceGroups/rg"],
            "--workspace-resource-id: ",
        ),
        (
            &["--workspace-resource-id", &id, "--arm-endpoint", "http://127.0.0.1:1"],
            "--arm-endpoint: ",
        ),
        (&["--identity-client-id", "not-a-guid"], "--identity-client-id: "),
        (
            &["--workspace-config", "/nonexistent/config.json"],
            "--workspace-config: ",
        ),
        (&["--arm-token-file", empty.to_str().unwrap()], "--arm-token-file: "),
    ];
    for (argv, prefix) in cases {
        let out = run(&pki, argv, &[]);
        assert_eq!(out.code, 2, "{argv:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("amlprobe: {prefix}")),
            "{argv:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

/// A plain-HTTP fake IMDS on 127.0.0.1: instance metadata, and a managed identity token for
/// requests with `Metadata: true`.
fn fake_imds() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut raw = Vec::new();
            let mut byte = [0u8; 1];
            while !raw.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                raw.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&raw).into_owned();
            let body = if !request.contains("\r\nMetadata: true\r\n") {
                None
            } else if request.starts_with("GET /metadata/identity/oauth2/token?") {
                Some(format!(
                    "{{\"access_token\":\"{TOKEN}\",\"expires_in\":\"86399\",\"resource\":\"https://management.azure.com/\",\"token_type\":\"Bearer\"}}"
                ))
            } else if request.starts_with("GET /metadata/instance?") {
                Some(r#"{"compute":{"azEnvironment":"AzurePublicCloud","location":"eastus","name":"ci-1","vmId":"v"},"network":{"interface":[]}}"#.to_string())
            } else {
                None
            };
            log.lock().unwrap().push(request);
            let reply = match body {
                Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
                None => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_string(),
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (port, seen)
}

#[test]
fn on_a_vm_the_managed_identity_and_the_sdk_config_are_enough() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let (imds, imds_requests) = fake_imds();
    let arm = format!("https://127.0.0.1:{port}");
    let imds = format!("http://127.0.0.1:{imds}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), SDK_CONFIG).unwrap();
    let out = run_in(&dir, &pki, &["--imds-endpoint", &imds, "--arm-endpoint", &arm], &[]);
    let report = out.json();
    assert_eq!(report["context"]["workspace_id"], WS_ID, "{}", out.stderr);
    assert_eq!(report["context"]["token_source"], "managed identity (IMDS)");
    check(&report, "api", "blocked", Some("dns_wrong_ip"));
    let asked = imds_requests.lock().unwrap().join("\n");
    assert!(
        asked.contains(
            "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F "
        ),
        "{asked}"
    );
    assert!(!out.everything().contains("planted-arm-token"));
}

#[test]
fn arm_is_reached_through_the_proxy_and_imds_never_is() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let (imds, _) = fake_imds();
    let proxy = support::proxy_server(support::Proxy::TunnelTo(port));
    // Nothing listens on the ARM endpoint itself: only the proxy's tunnel reaches the fake ARM.
    let arm = format!("https://127.0.0.1:{}", support::closed_port());
    let imds = format!("http://127.0.0.1:{imds}");
    let proxy = format!("http://127.0.0.1:{proxy}");
    let id = workspace_id();
    let out = run(
        &pki,
        &[
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--imds-endpoint",
            &imds,
            "--proxy",
            &proxy,
        ],
        &[],
    );
    let report = out.json();
    // The token came from IMDS directly (the proxy would have answered its GET itself).
    assert_eq!(
        report["context"]["token_source"], "managed identity (IMDS)",
        "{:#}",
        report["context"]
    );
    assert_eq!(report["context"]["workspace_id"], WS_ID);
}
