//! ARM access tokens, from the first source that has one, in azure-identity's
//! `DefaultAzureCredential` order: a given token, workload identity, Azure ML compute's
//! `MSI_ENDPOINT`, IMDS, then the Azure CLI. Tokens live in memory only: [`ArmToken`] never
//! prints its value, and no error carries a response body that could hold one.

use crate::http_client::{Client, Request, Response, Url, encode};
use crate::model::duration::FlagDuration;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bearer token for ARM. Debug output is redacted; the value is only read to build the
/// `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct ArmToken(String);

impl ArmToken {
    /// Wraps a token: one line of printable ASCII without spaces.
    pub fn new(value: &str) -> Result<ArmToken, String> {
        let v = value.trim();
        if v.is_empty() {
            return Err("holds no token".into());
        }
        if v.len() > 16 * 1024 || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be one line of printable ASCII without spaces".into());
        }
        Ok(ArmToken(v.to_string()))
    }

    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for ArmToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArmToken(<redacted>)")
    }
}

/// Where a token came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `AMLPROBE_ARM_TOKEN` or `--arm-token-file`.
    Given,
    /// AKS workload identity.
    WorkloadIdentity,
    /// Azure ML compute's `MSI_ENDPOINT`.
    AzureMl,
    /// The VM's managed identity through IMDS.
    Imds,
    /// `az account get-access-token`.
    AzureCli,
}

impl Source {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Source::Given => "AMLPROBE_ARM_TOKEN/--arm-token-file",
            Source::WorkloadIdentity => "workload identity",
            Source::AzureMl => "Azure ML compute identity (MSI_ENDPOINT)",
            Source::Imds => "managed identity (IMDS)",
            Source::AzureCli => "Azure CLI",
        }
    }
}

/// What the token sources need to know.
pub struct TokenInputs<'a> {
    /// `AMLPROBE_ARM_TOKEN` or `--arm-token-file`, read at validation.
    pub given: Option<&'a ArmToken>,
    /// The ARM audience, e.g. `https://management.azure.com` (no trailing slash).
    pub audience: &'a str,
    /// The cloud's Entra ID authority, when `AZURE_AUTHORITY_HOST` is not set.
    pub authority: &'a str,
    /// IMDS, when amlprobe may ask it (an Azure VM, or `--imds-endpoint`).
    pub imds: Option<&'a crate::http_client::Url>,
    /// `--identity-client-id`: a user-assigned identity.
    pub client_id: Option<&'a str>,
    /// The environment (a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The outcome of one source.
enum Attempt {
    /// The source is not set up here; the string says what was missing.
    Absent(String),
    /// It was tried and failed.
    Failed(String),
    /// A token.
    Got(ArmToken),
}

/// The first token any source gives, or one line naming every source tried and why each gave none.
pub async fn acquire(
    inputs: &TokenInputs<'_>,
    client: &Client,
    deadline: Instant,
) -> Result<(ArmToken, Source), String> {
    let mut tried = Vec::new();
    for source in [
        Source::Given,
        Source::WorkloadIdentity,
        Source::AzureMl,
        Source::Imds,
        Source::AzureCli,
    ] {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tried.push(format!("{}: not tried, out of time", source.label()));
            continue;
        }
        let attempt = match source {
            Source::Given => match inputs.given {
                Some(t) => Attempt::Got(t.clone()),
                None => Attempt::Absent("not set".into()),
            },
            Source::WorkloadIdentity => workload_identity(inputs, client, left).await,
            Source::AzureMl => azure_ml(inputs, client, left).await,
            Source::Imds => imds(inputs, client, left).await,
            Source::AzureCli => azure_cli(inputs, left).await,
        };
        match attempt {
            Attempt::Got(token) => return Ok((token, source)),
            Attempt::Absent(why) | Attempt::Failed(why) => tried.push(format!("{}: {why}", source.label())),
        }
    }
    Err(format!(
        "no Azure identity to read the workspace with ({})",
        tried.join("; ")
    ))
}

/// Reads `access_token` from a token endpoint's answer; failures name the status and, when
/// present, the endpoint's `error` code (never the body, which could hold a token).
fn token_from(what: &str, response: Result<Response, String>) -> Attempt {
    let response = match response {
        Ok(r) => r,
        Err(e) => return Attempt::Failed(e),
    };
    let json: Option<Value> = serde_json::from_str(&response.body).ok();
    if response.status != 200 {
        let code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str().or_else(|| e.get("code").and_then(Value::as_str)))
            .map(|c| format!(" ({})", crate::sanitize::echo(c)))
            .unwrap_or_default();
        return Attempt::Failed(format!("{what} answered HTTP {}{code}", response.status));
    }
    match json
        .as_ref()
        .and_then(|j| j.get("access_token"))
        .and_then(Value::as_str)
        .map(ArmToken::new)
    {
        Some(Ok(token)) => Attempt::Got(token),
        _ => Attempt::Failed(format!("{what} answered without an access_token")),
    }
}

async fn workload_identity(inputs: &TokenInputs<'_>, client: &Client, left: Duration) -> Attempt {
    let env = inputs.env;
    let (Some(file), Some(client_id), Some(tenant)) = (
        env("AZURE_FEDERATED_TOKEN_FILE"),
        env("AZURE_CLIENT_ID"),
        env("AZURE_TENANT_ID"),
    ) else {
        return Attempt::Absent("AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID not all set".into());
    };
    let assertion = match crate::files::read_text(Path::new(&file)) {
        Ok(a) if !a.trim().is_empty() => a.trim().to_string(),
        Ok(_) => return Attempt::Failed(format!("{file} is empty")),
        Err(e) => return Attempt::Failed(format!("{file}: {e}")),
    };
    let authority = env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| inputs.authority.to_string());
    let base = match Url::parse(&authority) {
        Ok(u) if u.tls => u,
        _ => return Attempt::Failed("AZURE_AUTHORITY_HOST is not an https:// URL".into()),
    };
    let url = base.join(&format!("/{}/oauth2/v2.0/token", encode(tenant.trim())));
    let body = format!(
        "client_assertion={}&client_assertion_type={}&client_id={}&grant_type=client_credentials&scope={}",
        encode(&assertion),
        encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        encode(client_id.trim()),
        encode(&format!("{}/.default", inputs.audience))
    );
    let request = Request {
        method: "POST",
        url: &url,
        headers: vec![],
        body: Some(body),
    };
    token_from("Entra ID", client.send(request, left).await)
}

async fn azure_ml(inputs: &TokenInputs<'_>, client: &Client, left: Duration) -> Attempt {
    let env = inputs.env;
    let (Some(endpoint), Some(secret)) = (env("MSI_ENDPOINT"), env("MSI_SECRET")) else {
        return Attempt::Absent("MSI_ENDPOINT and MSI_SECRET not both set".into());
    };
    let Ok(base) = Url::parse(&endpoint) else {
        return Attempt::Failed("MSI_ENDPOINT is not a URL".into());
    };
    let mut query = format!(
        "api-version=2017-09-01&resource={}",
        encode(&format!("{}/", inputs.audience))
    );
    if let Some(id) = inputs
        .client_id
        .map(str::to_string)
        .or_else(|| env("DEFAULT_IDENTITY_CLIENT_ID"))
    {
        query.push_str(&format!("&clientid={}", encode(id.trim())));
    }
    let separator = if base.path.contains('?') { '&' } else { '?' };
    let url = Url {
        path: format!("{}{separator}{query}", base.path),
        ..base
    };
    let request = Request {
        method: "GET",
        url: &url,
        headers: vec![("secret", secret)],
        body: None,
    };
    token_from("MSI_ENDPOINT", client.send(request, left).await)
}

async fn imds(inputs: &TokenInputs<'_>, client: &Client, left: Duration) -> Attempt {
    let Some(endpoint) = inputs.imds else {
        return Attempt::Absent("not an Azure VM (or --no-imds)".into());
    };
    let mut path = format!(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        encode(&format!("{}/", inputs.audience))
    );
    if let Some(id) = inputs.client_id {
        path.push_str(&format!("&client_id={}", encode(id)));
    }
    let url = endpoint.join(&path);
    let request = Request {
        method: "GET",
        url: &url,
        headers: vec![("Metadata", "true".into())],
        body: None,
    };
    // IMDS answers at once when it is there; the rest of the budget is for ARM.
    token_from("IMDS", client.send(request, left.min(Duration::from_secs(2))).await)
}

/// `az` on `PATH`, as the shell would find it.
fn find_on_path(env: &dyn Fn(&str) -> Option<String>, program: &str) -> Option<PathBuf> {
    std::env::split_paths(&env("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The Azure CLI's launcher: a batch file on Windows (`…\CLI2\wbin\az.cmd`), which std runs
/// through cmd.exe with its arguments escaped.
const AZ: &str = if cfg!(windows) { "az.cmd" } else { "az" };

async fn azure_cli(inputs: &TokenInputs<'_>, left: Duration) -> Attempt {
    let Some(az) = find_on_path(inputs.env, AZ) else {
        return Attempt::Absent("az not on PATH".into());
    };
    let child = std::process::Command::new(&az)
        .args([
            "account",
            "get-access-token",
            "--resource",
            &format!("{}/", inputs.audience),
            "--query",
            "accessToken",
            "-o",
            "tsv",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Attempt::Failed(format!("cannot run {}: {e}", az.display())),
    };
    let started = Instant::now();
    // Polled rather than awaited so a hung `az` is killed at the deadline, not left behind.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < left => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Attempt::Failed(format!("az did not answer within {}", FlagDuration(left)));
            }
            Err(e) => return Attempt::Failed(e.to_string()),
        }
    };
    if !status.success() {
        return Attempt::Failed(format!("az account get-access-token failed ({status}; run az login?)"));
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    match ArmToken::new(&out) {
        Ok(t) => Attempt::Got(t),
        Err(_) => Attempt::Failed("az printed no token".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.planted-arm-token.sig";

    /// A loopback HTTP server answering each connection with `reply`; returns its port and the
    /// requests it saw.
    async fn server(reply: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, task)
    }

    fn ok_reply() -> &'static str {
        let body = format!("{{\"access_token\":\"{TOKEN}\",\"expires_in\":\"3599\",\"token_type\":\"Bearer\"}}");
        Box::leak(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_boxed_str())
    }

    fn inputs<'a>(env: &'a dyn Fn(&str) -> Option<String>, imds: Option<&'a Url>) -> TokenInputs<'a> {
        TokenInputs {
            given: None,
            audience: "https://management.azure.com",
            authority: "https://login.microsoftonline.com",
            imds,
            client_id: None,
            env,
        }
    }

    fn env_of(pairs: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.get(k).cloned()
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(3)
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = ArmToken::new(&format!(" {TOKEN}\n")).unwrap();
        assert_eq!(format!("{t:?}"), "ArmToken(<redacted>)");
        assert!(!format!("{:?}", Some(&t)).contains("planted"));
        assert!(ArmToken::new("two words").is_err());
        assert!(ArmToken::new("  ").is_err());
    }

    #[tokio::test]
    async fn a_given_token_comes_first() {
        let given = ArmToken::new(TOKEN).unwrap();
        let env = env_of(HashMap::new());
        let mut i = inputs(&env, None);
        i.given = Some(&given);
        let (t, source) = acquire(
            &i,
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!((t, source), (given, Source::Given));
    }

    #[tokio::test]
    async fn azure_ml_compute_sends_the_secret_header_and_client_id() {
        let (port, seen) = server(ok_reply()).await;
        let env = env_of(HashMap::from([
            ("MSI_ENDPOINT", format!("http://127.0.0.1:{port}/msi/token")),
            ("MSI_SECRET", "msi-secret-value".to_string()),
            (
                "DEFAULT_IDENTITY_CLIENT_ID",
                "11111111-2222-3333-4444-555555555555".to_string(),
            ),
        ]));
        let (t, source) = acquire(
            &inputs(&env, None),
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!((t.bearer(), source), (format!("Bearer {TOKEN}"), Source::AzureMl));
        let request = seen.await.unwrap();
        assert!(
            request.starts_with(
                "GET /msi/token?api-version=2017-09-01&resource=https%3A%2F%2Fmanagement.azure.com%2F&clientid=11111111-2222-3333-4444-555555555555 "
            ),
            "{request}"
        );
        assert!(request.contains("\r\nsecret: msi-secret-value\r\n"), "{request}");
    }

    #[tokio::test]
    async fn imds_is_asked_with_the_metadata_header() {
        let (port, seen) = server(ok_reply()).await;
        let env = env_of(HashMap::new());
        let endpoint = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut i = inputs(&env, Some(&endpoint));
        i.client_id = Some("uami-client");
        let (_, source) = acquire(
            &i,
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(source, Source::Imds);
        let request = seen.await.unwrap();
        assert!(
            request.starts_with(
                "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F&client_id=uami-client "
            ),
            "{request}"
        );
        assert!(request.contains("\r\nMetadata: true\r\n"), "{request}");
    }

    #[tokio::test]
    async fn refusals_name_the_status_and_code_but_never_the_body() {
        let (port, _) = server(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 73\r\n\r\n{\"error\":\"invalid_request\",\"error_description\":\"echo planted-arm-token\"}",
        )
        .await;
        let env = env_of(HashMap::new());
        let endpoint = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = acquire(
            &inputs(&env, Some(&endpoint)),
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
        assert!(e.contains("IMDS answered HTTP 400 (invalid_request)"), "{e}");
        assert!(!e.contains("planted"), "{e}");
    }

    #[tokio::test]
    async fn no_source_says_what_was_tried() {
        let env = env_of(HashMap::from([("PATH", "/nonexistent".to_string())]));
        let e = acquire(
            &inputs(&env, None),
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
        for source in [
            "AMLPROBE_ARM_TOKEN/--arm-token-file: not set",
            "workload identity: AZURE_FEDERATED_TOKEN_FILE",
            "MSI_ENDPOINT and MSI_SECRET not both set",
            "managed identity (IMDS): not an Azure VM",
            "Azure CLI: az not on PATH",
        ] {
            assert!(e.contains(source), "{source}: {e}");
        }
        assert!(!e.contains('\n'));
    }

    #[tokio::test]
    async fn the_azure_cli_is_the_last_resort() {
        let dir = tempfile::tempdir().unwrap();
        let az = dir.path().join(AZ);
        #[cfg(unix)]
        {
            std::fs::write(
                &az,
                format!("#!/bin/sh\n[ \"$4\" = \"https://management.azure.com/\" ] && echo {TOKEN}\n"),
            )
            .unwrap();
            std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        #[cfg(windows)]
        std::fs::write(
            &az,
            format!("@if \"%4\"==\"https://management.azure.com/\" echo {TOKEN}\r\n"),
        )
        .unwrap();
        let env = env_of(HashMap::from([("PATH", dir.path().display().to_string())]));
        let (t, source) = acquire(
            &inputs(&env, None),
            &Client::new(&[], None, crate::model::proxy::ProxySettings::default()).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!((t.bearer(), source), (format!("Bearer {TOKEN}"), Source::AzureCli));
    }
}
