//! Workspace discovery through the real binary against a fake ARM and a fake Entra ID token
//! endpoint: TLS servers on 127.0.0.1 with a test CA, answering with the REST examples' shapes
//! (tests/fixtures/arm). Nothing leaves loopback: IMDS is off or on a loopback port, and the
//! probed names are DNS-only flows answered by a loopback DNS server.

use crate::support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use support::{Amlprobe, Dns, Leaf, Pki, Run, Seen, check, dns_only, flow};

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
                let Some(head) = support::read_head(&mut tls) else {
                    return;
                };
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
    /// The fixtures, but the key vault's connections come in two pages: the first links to the
    /// second on this server (`true`) or on another host (`false`); the second approves `kv-pe`.
    PagedKeyVault(bool),
    /// The fixtures with hostile text: a storage account name carrying terminal escapes, an
    /// approved private endpoint id and a key vault `nextLink` carrying CR/LF and a second
    /// request.
    Hostile,
}

/// Terminal escapes ARM might hand over in a name (JSON-escaped): retitle, bell, RLO, 8-bit CSI.
const HOSTILE_NAME: &str = r"evil\u001b]0;pwned\u0007\u202e\u009b2J";
/// CR/LF in an id that becomes a request path (JSON-escaped).
const INJECTION: &str = r"?api-version=2024-05-01 HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /injected";

/// The key vault's second page of private endpoint connections.
const KV_PAGE_2: &str = "&$skipToken=page2";

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
        let kv_list = rg(
            "rg-ml",
            "Microsoft.KeyVault/vaults/mlws-kv-01/privateEndpointConnections?api-version=2023-07-01",
        );
        if let Arm::PagedKeyVault(same_origin) = mode {
            let host = request
                .lines()
                .find_map(|l| l.strip_prefix("Host: "))
                .unwrap_or_default();
            let origin = if same_origin {
                format!("https://{host}")
            } else {
                "https://elsewhere.test".to_string()
            };
            if path == kv_list {
                let first = fixture("keyvault-pe-connections.json").replace(
                    "\"nextLink\": null",
                    &format!("\"nextLink\": \"{origin}{kv_list}{KV_PAGE_2}\""),
                );
                return (200, first);
            }
            if path == format!("{kv_list}{KV_PAGE_2}") {
                let second = fixture("keyvault-pe-connections.json")
                    .replace("Pending", "Approved")
                    .replace("kv-conn", "kv-conn-2");
                return (200, second);
            }
        }
        if matches!(mode, Arm::Hostile) {
            if path == format!("{}?api-version=2024-04-01", workspace_id()) {
                let hostile = fixture("workspace.json")
                    .replace(
                        "storageAccounts/mlwsstorage01",
                        &format!("storageAccounts/{HOSTILE_NAME}"),
                    )
                    .replace(
                        "privateEndpoints/ws-pe\"",
                        &format!("privateEndpoints/ws-pe{INJECTION}\""),
                    );
                return (200, hostile);
            }
            if path == kv_list {
                let host = request
                    .lines()
                    .find_map(|l| l.strip_prefix("Host: "))
                    .unwrap_or_default();
                let next = format!(r"https://{host}{kv_list}\r\nX-Injected: 2");
                let page = fixture("keyvault-pe-connections.json")
                    .replace("\"nextLink\": null", &format!("\"nextLink\": \"{next}\""));
                return (200, page);
            }
        }
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

/// The suite's flows: names templated from the context, DNS-only, expected private.
fn flows() -> Vec<(&'static str, String)> {
    let private = "expect = \"private\"";
    [
        ("api", "{workspace_id}.workspace.{region}.api.azureml.ms"),
        ("cert", "{workspace_id}.workspace.{region}.cert.api.azureml.ms"),
        ("nb", "{notebook_label}.{region}.notebooks.azure.net"),
        ("sa", "{storage_account}.blob.core.windows.net"),
    ]
    .into_iter()
    .map(|(id, host)| (id, dns_only(host, private)))
    .collect()
}

fn dns() -> std::net::SocketAddr {
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
}

/// A run's output and the report it wrote through `--report`, if it wrote one.
struct Outcome {
    run: Run,
    report: Option<String>,
}

impl Outcome {
    fn json(&self) -> Value {
        self.run.json()
    }

    /// Stdout, stderr and the written report, for leak checks: a run that wrote no report
    /// would pass them for the wrong reason.
    fn everything(&self) -> String {
        let report = self.report.as_deref().expect("the run wrote its --report");
        format!("{}{}{report}", self.run.stdout, self.run.stderr)
    }
}

/// Runs `amlprobe run` with discovery on, JSON on stdout and a --report file, after
/// `with` adds the test's own flags and variables.
fn run(pki: &Pki, with: impl FnOnce(Amlprobe) -> Amlprobe) -> Outcome {
    run_in(tempfile::tempdir().unwrap().path(), pki, with)
}

/// [`run`] in working directory `dir`.
fn run_in(dir: &Path, pki: &Pki, with: impl FnOnce(Amlprobe) -> Amlprobe) -> Outcome {
    let report = dir.join("report.json");
    let cmd = Amlprobe::offline("run", dns())
        .without("--no-discovery")
        .format("json")
        .flows(&flows())
        .ca(pki)
        .flag("--report", &report)
        .dir(dir)
        // No az: only what the test gives.
        .env("PATH", dir);
    let run = with(cmd).output();
    Outcome {
        run,
        report: std::fs::read_to_string(&report).ok(),
    }
}

/// A run that names the workspace by its id and carries `TOKEN` in the environment, against a
/// fake ARM in `mode` that accepts `arm_token`; with the requests ARM saw.
fn discover(pki: &Pki, mode: Arm, arm_token: &'static str) -> (Outcome, Seen) {
    let (port, seen) = fake_arm(pki, mode, arm_token);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let out = run(pki, |cmd| {
        cmd.args(["--workspace-resource-id", &id, "--arm-endpoint", &arm])
            .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    (out, seen)
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
    let out = run(&pki, |cmd| {
        cmd.args([
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--bundle",
            bundle.to_str().unwrap(),
        ])
        .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
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
    // The workspace, its three dependencies (the storage account and key vault twice: the
    // resource for its region and network rules, then its connection list) and the two approved
    // endpoints; not the pending ones.
    let mut asked: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.split(['?', ' '])
                .nth(1)
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            "mlws-kv-01",
            "mlws01",
            "mlwsacr01",
            "mlwsstorage01",
            "privateEndpointConnections",
            "privateEndpointConnections",
            "sa-blob-pe",
            "ws-pe"
        ],
        "{:#?}",
        seen.lock().unwrap()
    );
    assert!(
        !out.everything().contains("planted-arm-token"),
        "token leaked:\n{}",
        out.everything()
    );
    let written: Value = serde_json::from_str(out.report.as_deref().unwrap()).unwrap();
    assert_eq!(written["context"]["workspace_id"], WS_ID, "--report holds this run");
    let packed: String = support::unpack(&bundle).into_iter().map(|(_, text)| text).collect();
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
    let out = run(&pki, |cmd| {
        cmd.args([
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--storage-account",
            "flagstorage01",
            "--expect-ip",
            &pinned,
        ])
        .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    let report = out.json();
    assert_eq!(report["context"]["storage_account"], "flagstorage01");
    // Discovery ran and recorded what it set; the flag's value is recorded as the flag's.
    let sources = report["context"]["sources"].as_object().expect("context.sources");
    assert_eq!(sources.get("region"), Some(&Value::from("arm")), "{sources:#?}");
    assert_eq!(
        sources.get("storage_account"),
        Some(&Value::from("flag_or_env")),
        "{sources:#?}"
    );
    check(&report, "api", "works", None);
    check(&report, "sa", "works", None);
}

#[test]
fn a_refusal_names_the_reader_role_and_the_run_goes_on() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Forbidden, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let out = run(&pki, |cmd| {
        cmd.args([
            "--workspace-resource-id",
            &id,
            "--arm-endpoint",
            &arm,
            "--region",
            "eastus",
            "--storage-account",
            "mlwsstorage01",
        ])
        .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    let report = out.json();
    let w = warnings(&report);
    assert!(
        w.contains("HTTP 403 (AuthorizationFailed)") && w.contains("Reader role"),
        "{w}"
    );
    check(&report, "sa", "works", None);
    assert_eq!(report["context"].get("workspace_id"), Some(&Value::Null), "{report:#}");
    assert!(!out.everything().contains("planted-arm-token"));
}

#[test]
fn a_token_arm_rejects_is_said_to_be_expired_or_for_another_audience() {
    let pki = Pki::new();
    let (out, _) = discover(&pki, Arm::Fixtures, "some-other-token");
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
    let out = run(&pki, |cmd| {
        cmd.args(["--workspace-resource-id", &id, "--arm-endpoint", "https://127.0.0.1:9"])
    });
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
    let out = run(&pki, |cmd| {
        cmd.args(["--workspace-resource-id", &id, "--arm-endpoint", &arm])
            .env("AZURE_FEDERATED_TOKEN_FILE", federated.to_str().unwrap())
            .env("AZURE_CLIENT_ID", "client-1")
            .env("AZURE_TENANT_ID", "tenant-1")
            .env("AZURE_AUTHORITY_HOST", &authority)
    });
    let report = out.json();
    assert_eq!(report["context"]["workspace_id"], WS_ID, "{}", out.run.stderr);
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
    let out = run_in(nested.path(), &pki, |cmd| {
        cmd.args(["--arm-endpoint", &arm]).env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    assert_eq!(out.json()["context"]["workspace_id"], WS_ID, "{}", out.run.stderr);
}

#[test]
fn on_a_compute_instance_the_tracking_uri_names_the_workspace() {
    let pki = Pki::new();
    let (port, seen) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let tracking_uri = format!("azureml://eastus.api.azureml.ms/mlflow/v1.0{}", workspace_id());
    let out = run(&pki, |cmd| {
        cmd.args(["--arm-endpoint", &arm])
            .env("AMLPROBE_ARM_TOKEN", TOKEN)
            .env("MLFLOW_TRACKING_URI", &tracking_uri)
            .env("CI_RESOURCE_GROUP", "rg-ml")
            .env("CI_WORKSPACE", "mlws01")
            // A job's variables set only in part: passed over with one line, not an error.
            .env("AZUREML_ARM_SUBSCRIPTION", "00000000-1111-2222-3333-444444444444")
    });
    let report = out.json();
    let ctx = &report["context"];
    assert_eq!(ctx["workspace_id"], WS_ID, "{}", out.run.stderr);
    assert_eq!(ctx["workspace_name"], "mlws01");
    assert_eq!(ctx["sources"]["workspace_name"], "azure_ml_env", "{ctx:#}");
    assert_eq!(ctx["sources"]["workspace_id"], "arm");
    let warnings = warnings(&report);
    assert!(
        warnings.contains("AZUREML_ARM_RESOURCEGROUP and AZUREML_ARM_WORKSPACE_NAME not set"),
        "{warnings}"
    );
    assert!(
        seen.lock().unwrap().iter().any(|r| r.contains("/workspaces/mlws01?")),
        "ARM was asked for the workspace the variables named"
    );
}

#[test]
fn workspace_config_names_the_workspace_and_no_discovery_turns_it_off() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ws.json");
    std::fs::write(&config, SDK_CONFIG).unwrap();
    let arm = format!("https://127.0.0.1:{port}");
    let out = run(&pki, |cmd| {
        cmd.args(["--workspace-config", config.to_str().unwrap(), "--arm-endpoint", &arm])
            .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    assert_eq!(out.json()["context"]["workspace_id"], WS_ID);
    let off = run(&pki, |cmd| {
        cmd.args([
            "--workspace-config",
            config.to_str().unwrap(),
            "--arm-endpoint",
            &arm,
            "--no-discovery",
        ])
        .env("AMLPROBE_ARM_TOKEN", TOKEN)
    });
    assert_eq!(off.json()["context"].get("workspace_id"), Some(&Value::Null));
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
        let out = run(&pki, |cmd| cmd.args(argv));
        assert_eq!(out.run.code, 2, "{argv:?}: {}", out.run.stderr);
        assert!(
            out.run.stderr.starts_with(&format!("amlprobe: {prefix}")),
            "{argv:?}: {}",
            out.run.stderr
        );
        assert_eq!(out.run.stderr.lines().count(), 1, "{}", out.run.stderr);
    }
}

/// The instance metadata of a compute instance in eastus.
const METADATA: &str = r#"{"compute":{"azEnvironment":"AzurePublicCloud","location":"eastus","name":"ci-1","vmId":"v"},"network":{"interface":[]}}"#;

#[test]
fn on_a_vm_the_managed_identity_and_the_sdk_config_are_enough() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let (imds, imds_requests) = support::imds_server(METADATA, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let imds = format!("http://127.0.0.1:{imds}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), SDK_CONFIG).unwrap();
    let out = run_in(dir.path(), &pki, |cmd| cmd.imds(&imds).flag("--arm-endpoint", &arm));
    let report = out.json();
    assert_eq!(report["context"]["workspace_id"], WS_ID, "{}", out.run.stderr);
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

/// The instance metadata of a jump box in westus2.
const METADATA_WESTUS2: &str = r#"{"compute":{"azEnvironment":"AzurePublicCloud","location":"westus2","name":"jump-1","vmId":"v"},"network":{"interface":[]}}"#;

#[test]
fn the_workspace_region_is_arms_not_this_machines() {
    // A hub jump box in westus2 whose workspace (ARM: eastus) lives elsewhere: the workspace's
    // names carry eastus; IMDS's region is this machine's own.
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let (imds, _) = support::imds_server(METADATA_WESTUS2, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let imds = format!("http://127.0.0.1:{imds}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), SDK_CONFIG).unwrap();
    let out = run_in(dir.path(), &pki, |cmd| cmd.imds(&imds).flag("--arm-endpoint", &arm));
    let ctx = out.json()["context"].clone();
    assert_eq!(
        (&ctx["region"], &ctx["sources"]["region"]),
        (&"eastus".into(), &"arm".into()),
        "{ctx:#}"
    );
    assert_eq!(ctx["machine_region"], "westus2");
    assert_eq!(ctx["sources"]["machine_region"], "imds");
    assert!(!warnings(&out.json()).contains("this machine's region"), "{ctx:#}");
    assert!(
        flows_of(&out.json()).iter().any(|h| h.contains(".workspace.eastus.")),
        "the workspace's names follow its own region"
    );
    // Without ARM, this machine's region stands in, and the report says so.
    let out = run_in(dir.path(), &pki, |cmd| cmd.imds(&imds).args(["--no-discovery"]));
    let report = out.json();
    assert_eq!(report["context"]["region"], "westus2");
    assert_eq!(report["context"]["sources"]["region"], "imds");
    assert!(
        warnings(&report).contains("taken to be this machine's region (westus2, from IMDS)"),
        "{}",
        warnings(&report)
    );
}

/// Every host the report's flows probed.
fn flows_of(report: &Value) -> Vec<String> {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn arm_is_reached_through_the_proxy_and_imds_never_is() {
    let pki = Pki::new();
    let (port, _) = fake_arm(&pki, Arm::Fixtures, TOKEN);
    let (imds, _) = support::imds_server(METADATA, TOKEN);
    let proxy = support::proxy_server(support::Proxy::TunnelTo(port));
    // Nothing listens on the ARM endpoint itself: only the proxy's tunnel reaches the fake ARM.
    let arm = format!("https://127.0.0.1:{}", support::closed_port());
    let imds = format!("http://127.0.0.1:{imds}");
    let proxy = format!("http://127.0.0.1:{proxy}");
    let id = workspace_id();
    let out = run(&pki, |cmd| {
        cmd.args(["--workspace-resource-id", &id, "--arm-endpoint", &arm])
            .imds(&imds)
            .proxy(&proxy)
    });
    let report = out.json();
    // The token came from IMDS directly (the proxy would have answered its GET itself).
    assert_eq!(
        report["context"]["token_source"], "managed identity (IMDS)",
        "{:#}",
        report["context"]
    );
    assert_eq!(report["context"]["workspace_id"], WS_ID);
}

/// Key Vault lists its private endpoint connections in pages (`nextLink`): the next page is
/// read from ARM, and a next page anywhere else is refused, since the token would go with it.
#[test]
fn paged_connection_lists_are_followed_on_arm_and_nowhere_else() {
    let pki = Pki::new();
    let (out, seen) = discover(&pki, Arm::PagedKeyVault(true), TOKEN);
    let w = warnings(&out.json());
    let asked = seen.lock().unwrap().join("\n");
    assert!(asked.contains(KV_PAGE_2), "the second page was asked for:\n{asked}");
    // The second page approves kv-pe, which the fake ARM does not have: amlprobe asked for it.
    assert!(asked.contains("privateEndpoints/kv-pe?"), "{asked}");
    assert!(w.contains("private endpoint kv-pe: ARM answered HTTP 404"), "{w}");

    let (out, seen) = discover(&pki, Arm::PagedKeyVault(false), TOKEN);
    let w = warnings(&out.json());
    assert!(
        w.contains("key vault mlws-kv-01: a nextLink outside") && w.contains("not followed"),
        "{w}"
    );
    assert!(!seen.lock().unwrap().join("\n").contains(KV_PAGE_2));
}

/// Hostile text from ARM: names with terminal escapes reach the table's warnings only escaped,
/// and ids or a `nextLink` with CR/LF never reach a request line (no injected header, no second
/// request carrying the token).
#[test]
fn hostile_arm_text_neither_reaches_the_terminal_nor_splits_a_request() {
    let pki = Pki::new();
    let (port, seen) = fake_arm(&pki, Arm::Hostile, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let out = run(&pki, |cmd| {
        cmd.args(["--workspace-resource-id", &id, "--arm-endpoint", &arm])
            .env("AMLPROBE_ARM_TOKEN", TOKEN)
            .format("table")
    });
    let table = &out.run.stdout;
    for raw in ['\x1b', '\x07', '\u{202e}', '\u{9b}', '\r'] {
        assert!(!table.contains(raw), "U+{:04X} raw in the table:\n{table}", raw as u32);
        assert!(!out.run.stderr.contains(raw), "{}", out.run.stderr);
    }
    assert!(
        table.contains("warning: storage account evil\\x1b]0;pwned\\x07\\u{202e}\\u{009b}2J: "),
        "{table}"
    );
    let report: Value = serde_json::from_str(out.report.as_deref().expect("a --report")).unwrap();
    let w = warnings(&report);
    assert!(
        w.contains("private endpoint injected: https://127.0.0.1:")
            && w.matches("refused to send a request whose path holds a control character")
                .count()
                == 3,
        "the storage account, its list and the private endpoint were not asked for: {w}"
    );
    assert!(
        w.contains("key vault mlws-kv-01: a nextLink") && w.contains("not followed"),
        "{w}"
    );
    let asked = seen.lock().unwrap().join("\n");
    assert!(!asked.contains("X-Injected") && !asked.contains("/injected"), "{asked}");
    assert!(!asked.contains('\x1b'), "{asked}");
}

/// A hostile IMDS location (escape bytes and extra labels) never becomes the region: it is
/// ignored with one warning, and no probed name carries it.
#[test]
fn a_hostile_imds_location_is_ignored_with_a_warning() {
    const HOSTILE: &str = r#"{"compute":{"azEnvironment":"AzurePublicCloud","location":"eastus\u001b]0;pwned\u0007.evil.example","name":"ci-1","vmId":"v"},"network":{"interface":[]}}"#;
    let pki = Pki::new();
    let (imds, _) = support::imds_server(HOSTILE, TOKEN);
    let imds = format!("http://127.0.0.1:{imds}");
    let out = run(&pki, |cmd| {
        cmd.imds(&imds)
            .flows(&[("region", dns_only("x.{region}.test", ""))])
            .format("table")
    });
    let table = &out.run.stdout;
    assert!(!table.contains('\x1b') && !table.contains('\x07'), "{table}");
    let report: Value = serde_json::from_str(out.report.as_deref().expect("a --report")).unwrap();
    assert!(report["context"]["region"].is_null(), "{:#}", report["context"]);
    let w = warnings(&report);
    assert!(
        w.contains("IMDS's location is not usable as the region, so it was ignored"),
        "{w}"
    );
    check(&report, "region", "skipped", Some("missing_context"));
    assert!(!report["flows"].to_string().contains("evil"), "{:#}", report["flows"]);
}

/// The requests `seen` that discovery does not make: attribution's.
fn beyond_discovery(seen: &Seen) -> Vec<String> {
    let discovery = [
        "/workspaces/mlws01?",
        "/storageAccounts/",
        "/vaults/",
        "/registries/",
        "/privateEndpoints/",
    ];
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.lines().next().map(str::to_string))
        .filter(|line| !discovery.iter().any(|d| line.contains(d)))
        .collect()
}

/// A run whose `api` flow names its private DNS zone (so a wrong answer raises a zone question
/// for attribution), against a fake ARM in `mode`, with `extra` flags; the report and ARM's log.
fn zoned_run(pki: &Pki, mode: Arm, extra: &[&str]) -> (Value, Seen) {
    let mut flows = flows();
    flows[0]
        .1
        .push_str("\nprivate_dns_zone = \"privatelink.api.azureml.ms\"");
    let (port, seen) = fake_arm(pki, mode, TOKEN);
    let arm = format!("https://127.0.0.1:{port}");
    let id = workspace_id();
    let dir = tempfile::tempdir().unwrap();
    let report = Amlprobe::offline("run", dns())
        .without("--no-discovery")
        .format("json")
        .flows(&flows)
        .ca(pki)
        .dir(dir.path())
        .env("PATH", dir.path())
        .env("AMLPROBE_ARM_TOKEN", TOKEN)
        .args(["--workspace-resource-id", &id, "--arm-endpoint", &arm])
        .args(extra)
        .output()
        .json();
    (report, seen)
}

#[test]
fn a_wrong_private_endpoint_answer_reads_its_zone_unless_attribution_is_off() {
    let pki = Pki::new();
    let (report, seen) = zoned_run(&pki, Arm::Fixtures, &[]);
    check(&report, "api", "blocked", Some("dns_wrong_ip"));
    let asked = beyond_discovery(&seen);
    assert!(
        asked
            .iter()
            .any(|r| r.contains("privateDnsZones") || r.starts_with("GET /subscriptions?")),
        "the zone behind the wrong answer is looked for: {asked:#?}"
    );
    let (report, seen) = zoned_run(&pki, Arm::Fixtures, &["--no-attribution"]);
    check(&report, "api", "blocked", Some("dns_wrong_ip"));
    let asked = beyond_discovery(&seen);
    assert!(asked.is_empty(), "--no-attribution reads nothing more: {asked:#?}");
}

#[test]
fn without_discovery_s_token_attribution_points_at_discovery_s_warning() {
    let pki = Pki::new();
    // The workspace is named, but ARM refuses it: discovery keeps no access to reuse.
    let pinned = format!("{WS_ID}.workspace.eastus.api.azureml.ms=10.1.0.5");
    let (report, _) = zoned_run(
        &pki,
        Arm::Forbidden,
        &["--region", "eastus", "--workspace-id", WS_ID, "--expect-ip", &pinned],
    );
    check(&report, "api", "blocked", Some("dns_wrong_ip"));
    let w = warnings(&report);
    assert!(w.contains("workspace discovery got none: see its warning"), "{w}");
    assert!(!w.contains("name the workspace"), "it was named: {w}");
}
