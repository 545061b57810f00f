//! Loopback servers for the integration tests: a DNS server, TLS, raw TCP, UDP and an HTTP
//! CONNECT proxy, each on 127.0.0.1 with an ephemeral port, on plain threads. They exist so every
//! reason code is produced by a real exchange, not by a mock inside the engine.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The address every test name resolves to unless a test says otherwise.
pub const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How the DNS server answers a name.
#[derive(Clone)]
pub enum Dns {
    /// A records.
    A(Vec<Ipv4Addr>),
    /// A CNAME to `target`, which has these A records.
    Cname(&'static str, Vec<Ipv4Addr>),
    /// NXDOMAIN.
    NxDomain,
    /// NOERROR without answers.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// No answer at all.
    Silent,
    /// A records, and no answer at all to AAAA queries.
    DropAaaa(Vec<Ipv4Addr>),
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// The query's name (lower case), type and the end offset of the question section.
fn parse_question(q: &[u8]) -> Option<(String, u16, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

fn record(name: Option<&str>, rtype: u16, data: &[u8], out: &mut Vec<u8>) {
    match name {
        Some(n) => encode_name(n, out),
        None => out.extend_from_slice(&[0xc0, 0x0c]), // pointer to the question name
    }
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&60u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn answer(query: &[u8], zone: &HashMap<String, Dns>) -> Option<Vec<u8>> {
    let (name, qtype, end) = parse_question(query)?;
    let behaviour = zone.get(&name).cloned().unwrap_or(Dns::NxDomain);
    let rcode = match behaviour {
        Dns::Silent => return None,
        Dns::DropAaaa(_) if qtype == 28 => return None,
        Dns::NxDomain => 3,
        Dns::ServFail => 2,
        Dns::Refused => 5,
        _ => 0,
    };
    let mut answers = Vec::new();
    let mut count = 0u16;
    let addresses = |out: &mut Vec<u8>, owner: Option<&str>, ips: &[Ipv4Addr], count: &mut u16| {
        if qtype == 1 {
            for ip in ips {
                record(owner, 1, &ip.octets(), out);
                *count += 1;
            }
        }
    };
    match &behaviour {
        Dns::A(ips) | Dns::DropAaaa(ips) => addresses(&mut answers, None, ips, &mut count),
        Dns::Cname(target, ips) => {
            let mut data = Vec::new();
            encode_name(target, &mut data);
            record(None, 5, &data, &mut answers);
            count += 1;
            addresses(&mut answers, Some(target), ips, &mut count);
        }
        _ => {}
    }
    let mut reply = query[..2].to_vec();
    reply.extend_from_slice(&(0x8180u16 | rcode).to_be_bytes());
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&count.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..end]);
    reply.extend_from_slice(&answers);
    Some(reply)
}

/// Starts a UDP DNS server for `zone` (unknown names: NXDOMAIN); returns its address.
pub fn dns_server(zone: &[(&str, Dns)]) -> SocketAddr {
    let zone: HashMap<String, Dns> = zone.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if let Some(reply) = answer(&buf[..n], &zone) {
                let _ = socket.send_to(&reply, peer);
            }
        }
    });
    addr
}

/// A DNS server answering each of `names` with 127.0.0.1 (unknown names: NXDOMAIN).
pub fn loopback_dns(names: &[&str]) -> SocketAddr {
    let zone: Vec<(&str, Dns)> = names.iter().map(|n| (*n, Dns::A(vec![LOCAL]))).collect();
    dns_server(&zone)
}

/// Test certificates: a trusted root (passed with --ca-file) and an "inspection" CA that is not.
pub struct Pki {
    dir: tempfile::TempDir,
    root: CertifiedIssuer<'static, KeyPair>,
    inspection: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Which CA signs a leaf, and how the leaf is wrong.
pub enum Leaf {
    /// Signed by the trusted root, valid for the name.
    Good,
    /// Signed by the inspection CA.
    Inspected,
    /// Trusted root, but for another name.
    WrongName,
    /// Trusted root, expired.
    Expired,
}

impl Pki {
    /// Generates both CAs and writes their PEM files.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (root, inspection) = (ca("amlprobe test root"), ca("Contoso TLS Inspection CA"));
        std::fs::write(dir.path().join("root.pem"), root.pem()).unwrap();
        std::fs::write(dir.path().join("inspection.pem"), inspection.pem()).unwrap();
        Pki { dir, root, inspection }
    }

    /// The trusted root's PEM file.
    pub fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The inspection CA's PEM file.
    pub fn inspection_pem(&self) -> PathBuf {
        self.dir.path().join("inspection.pem")
    }

    /// A server config presenting a leaf for `host` under `depth` intermediate CAs, the first
    /// signed by the trusted root.
    pub fn deep_chain_config(&self, host: &str, depth: usize) -> Arc<rustls::ServerConfig> {
        let mut intermediates: Vec<CertifiedIssuer<'static, KeyPair>> = Vec::new();
        for i in 0..depth {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, format!("amlprobe test intermediate {i}"));
            let key = KeyPair::generate().unwrap();
            let issuer = match intermediates.last() {
                Some(parent) => CertifiedIssuer::signed_by(params, key, parent),
                None => CertifiedIssuer::signed_by(params, key, &self.root),
            };
            intermediates.push(issuer.unwrap());
        }
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        let key = KeyPair::generate().unwrap();
        let leaf = match intermediates.last() {
            Some(parent) => params.signed_by(&key, parent),
            None => params.signed_by(&key, &self.root),
        }
        .unwrap();
        let mut chain = vec![leaf.der().clone()];
        chain.extend(intermediates.iter().rev().map(|c| c.der().clone()));
        config_for(chain, &key)
    }

    /// A server config presenting a leaf for `host`, signed by the trusted root, whose subject
    /// carries `common_name` and `organization` (whatever they contain).
    pub fn server_config_with_subject(
        &self,
        host: &str,
        common_name: &str,
        organization: &str,
    ) -> Arc<rustls::ServerConfig> {
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, organization);
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.root).unwrap();
        config_for(vec![leaf.der().clone()], &key)
    }

    /// A server config presenting a leaf for `host`.
    pub fn server_config(&self, host: &str, kind: Leaf) -> Arc<rustls::ServerConfig> {
        let name = match kind {
            Leaf::WrongName => "somewhere-else.test".to_string(),
            _ => host.to_string(),
        };
        let mut params = CertificateParams::new(vec![name.clone()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if matches!(kind, Leaf::Expired) {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer: &rcgen::Issuer<'_, KeyPair> = if matches!(kind, Leaf::Inspected) {
            &self.inspection
        } else {
            &self.root
        };
        let leaf = params.signed_by(&key, issuer).unwrap();
        config_for(vec![leaf.der().clone()], &key)
    }
}

fn config_for(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Arc<rustls::ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// Reads an HTTP request or response head (up to the blank line, at most 8 KiB).
pub fn read_head(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 8192 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// An Azure-looking HTTP answer.
pub const AZURE_REPLY: &str = "HTTP/1.1 404 Not Found\r\nx-ms-request-id: test\r\nContent-Length: 0\r\n\r\n";
/// A firewall block page.
pub const BLOCK_PAGE: &str = "HTTP/1.1 200 OK\r\nServer: FortiGate\r\nContent-Length: 0\r\n\r\n";

fn serve(listener: TcpListener, handle: impl Fn(TcpStream) + Send + Sync + 'static) {
    let handle = Arc::new(handle);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = handle.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                handle(stream);
            });
        }
    });
}

/// A TLS server that answers HTTP requests with `reply` (or closes without answering when `None`).
pub fn tls_server(config: Arc<rustls::ServerConfig>, reply: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    serve(listener, move |tcp| {
        let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config.clone()).unwrap(), tcp);
        if read_head(&mut tls).is_some()
            && let Some(r) = reply
        {
            let _ = tls.write_all(r.as_bytes());
            let _ = tls.flush();
        }
    });
    port
}

/// What a raw TCP server does with a connection.
pub enum Raw {
    /// Keep it open and say nothing.
    Silent,
    /// Close it at once.
    Close,
    /// Read a little, then send these bytes.
    Reply(&'static [u8]),
    /// Send back what it read (a middlebox that echoes).
    Echo,
}

/// A raw TCP server.
pub fn tcp_server(mode: Raw) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    serve(listener, move |mut s| match mode {
        Raw::Silent => thread::sleep(Duration::from_secs(20)),
        Raw::Close => drop(s),
        Raw::Reply(bytes) => {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(bytes);
            thread::sleep(Duration::from_millis(200));
        }
        Raw::Echo => {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(&buf[..n]);
            thread::sleep(Duration::from_millis(200));
        }
    });
    port
}

/// A port nothing listens on (TCP and UDP).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// A UDP server that echoes (`echo = true`) or stays silent.
pub fn udp_server(echo: bool) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if echo {
                let _ = socket.send_to(&buf[..n], peer);
            }
        }
    });
    port
}

/// What the CONNECT proxy does.
pub enum Proxy {
    /// Tunnel every CONNECT to this local port.
    TunnelTo(u16),
    /// Answer with this status line and headers.
    Refuse(&'static str),
    /// Say 200, read the client's first bytes, then close the tunnel (FIN).
    CloseAfterOk,
    /// Say 200, read the client's first bytes, then reset the tunnel (RST).
    ResetAfterOk,
    /// Answer with something that is not HTTP.
    Garbage,
    /// A web server: answer CONNECT with this whole response (a page), then answer whatever
    /// comes next with 400, as a web server does.
    WebPage(&'static str),
}

/// A minimal HTTP CONNECT proxy.
pub fn proxy_server(mode: Proxy) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    serve(listener, move |mut client| {
        let Some(head) = read_head(&mut client) else {
            return;
        };
        if head.starts_with("GET http://") {
            // A forwarding proxy answers plain-HTTP requests itself: as if from an Azure origin
            // when it tunnels, else as it would answer CONNECT.
            let reply = match &mode {
                Proxy::TunnelTo(_) => AZURE_REPLY.to_string(),
                Proxy::Refuse(status) => format!("{status}\r\nServer: squid\r\nContent-Length: 0\r\n\r\n"),
                _ => "garbage\r\n\r\n".to_string(),
            };
            let _ = client.write_all(reply.as_bytes());
            return;
        }
        match &mode {
            Proxy::Refuse(status) => {
                let _ = client.write_all(format!("{status}\r\nServer: squid\r\nContent-Length: 0\r\n\r\n").as_bytes());
            }
            Proxy::CloseAfterOk | Proxy::ResetAfterOk => {
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                // Reading the ClientHello first makes the close a plain FIN: closing with
                // unread data would turn it into a reset.
                let _ = client.read(&mut [0u8; 4096]);
                if matches!(mode, Proxy::ResetAfterOk) {
                    let _ = socket2::SockRef::from(&client).set_linger(Some(std::time::Duration::ZERO));
                } else {
                    let _ = client.shutdown(std::net::Shutdown::Write);
                    let _ = client.read(&mut [0u8; 4096]);
                }
            }
            Proxy::Garbage => {
                let _ = client.write_all(b"hello there\r\n\r\n");
            }
            Proxy::WebPage(page) => {
                let _ = client.write_all(page.as_bytes());
                if client.read(&mut [0u8; 4096]).is_ok_and(|n| n > 0) {
                    let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                }
            }
            Proxy::TunnelTo(upstream) => {
                let Ok(server) = TcpStream::connect(("127.0.0.1", *upstream)) else {
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c1, mut s1) = (client, server);
                let up = thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                });
                let _ = std::io::copy(&mut s1, &mut c1);
                let _ = c1.shutdown(std::net::Shutdown::Both);
                let _ = up.join();
            }
        }
    });
    port
}

/// Requests a fake server saw (head, then body if any).
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A plain-HTTP fake IMDS on 127.0.0.1: `metadata` for the instance metadata and a managed
/// identity token `token`, each only to requests with `Metadata: true` (others get 400).
pub fn imds_server(metadata: &'static str, token: &'static str) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    serve(listener, move |mut s| {
        let request = read_head(&mut s).unwrap_or_default();
        let body = if !request.contains("\r\nMetadata: true\r\n") {
            None
        } else if request.starts_with("GET /metadata/identity/oauth2/token?") {
            Some(format!(
                "{{\"access_token\":\"{token}\",\"expires_in\":\"86399\",\"resource\":\"https://management.azure.com/\",\"token_type\":\"Bearer\"}}"
            ))
        } else if request.starts_with("GET /metadata/instance?") {
            Some(metadata.to_string())
        } else {
            None
        };
        log.lock().unwrap().push(request);
        let reply = match body {
            Some(b) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ),
            None => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_string(),
        };
        let _ = s.write_all(reply.as_bytes());
    });
    (port, seen)
}

/// Context flags that render every built-in flow (a workspace in eastus with all its
/// dependencies and a compute instance).
pub const CONTEXT: &[&str] = &[
    "--region",
    "eastus",
    "--workspace-id",
    "fb7e20a0-8891-458b-b969-55ddb3382f51",
    "--workspace-name",
    "myws",
    "--storage-account",
    "mystorage",
    "--key-vault",
    "mykv",
    "--container-registry",
    "myacr01",
    "--compute-instance",
    "ci-alice",
];

/// Every built-in suite, for `--suite`.
pub const ALL_SUITES: &str = "workspace,compute,images,studio,aks,aks-training,arc,optional";

/// The body of a DNS-only flow on `host`, then `extra` TOML lines.
pub fn dns_only(host: &str, extra: &str) -> String {
    format!("hosts = [\"{host}\"]\n{extra}")
}

/// The body of a flow on `host`:`port`, then `extra` TOML lines.
pub fn on_port(host: &str, port: u16, extra: &str) -> String {
    format!("hosts = [\"{host}\"]\nports = [{port}]\n{extra}")
}

/// Writes `dir/suite.toml`: suite `t` with one flow `t.<id>` per entry of `flows` (TOML bodies
/// after the common keys).
pub fn suite_file(dir: &Path, flows: &[(impl AsRef<str>, impl AsRef<str>)]) -> PathBuf {
    let mut text = String::from("[suite]\nname = \"t\"\ntitle = \"test\"\n");
    for (id, body) in flows {
        let (id, body) = (id.as_ref(), body.as_ref());
        text.push_str(&format!(
            "\n[[flow]]\nid = \"t.{id}\"\ntitle = \"{id}\"\ndirection = \"outbound\"\nservice_tag = \"Test\"\nrequired = true\nscenario = \"test\"\nsource = \"test\"\n{body}\n"
        ));
    }
    let path = dir.join("suite.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Flow `t.<id>` of a JSON report.
pub fn flow<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["flows"]
        .as_array()
        .unwrap_or_else(|| panic!("no flows in {report:#}"))
        .iter()
        .find(|f| f["id"] == format!("t.{id}"))
        .unwrap_or_else(|| panic!("no flow t.{id} in {report:#}"))
}

/// Asserts flow `t.<id>`'s status and reason, showing the flow when they differ.
pub fn check(report: &Value, id: &str, status: &str, reason: Option<&str>) {
    let f = flow(report, id);
    assert_eq!(
        (f["status"].as_str(), f["reason"].as_str()),
        (Some(status), reason),
        "flow {id}: {f:#}"
    );
}

/// The first `kind` probe of flow `t.<id>`.
pub fn probe<'a>(report: &'a Value, id: &str, kind: &str) -> &'a Value {
    let f = flow(report, id);
    f["probes"]
        .as_array()
        .unwrap_or_else(|| panic!("no probes in {f:#}"))
        .iter()
        .find(|p| p["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} probe in {f:#}"))
}

/// A JSON file (a saved report).
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", path.display()));
    check_if_report(&v);
    v
}

/// Whether `v` is a run report (`run --format json`, `--report`, `serve`'s `/report`), not a
/// diff, a merge or a listing.
pub fn is_report(v: &Value) -> bool {
    ["schema_version", "tool", "settings", "flows", "root_causes"]
        .iter()
        .all(|key| v.get(key).is_some())
}

/// Panics with the first few violations when `v` does not match `docs/report.schema.json`.
pub fn assert_valid_report(v: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).expect("docs/report.schema.json is a valid JSON schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(v)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not match docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}

/// Every run report a test reads is held against the published schema.
fn check_if_report(v: &Value) {
    if is_report(v) {
        assert_valid_report(v);
    }
}

/// Every (name, text) entry of a `.tar.gz` support bundle.
pub fn unpack(path: &Path) -> Vec<(String, String)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    tar::Archive::new(gz)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            (name, text)
        })
        .collect()
}

/// What a run of the binary gave.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        let v = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr));
        check_if_report(&v);
        v
    }
}

/// One command line of the real binary: every test builds its arguments, environment and
/// working directory here. A flag set through [`Amlprobe::flag`] (or a shorthand built on it)
/// holds one value, and setting it again replaces that value, so a test starts from a preset
/// and states only what differs; [`Amlprobe::args`] appends words as they are. The binary starts
/// from an empty environment plus what the test sets: the `AMLPROBE_*`, proxy, Azure ML compute
/// and identity variables of the machine running the tests never reach it.
pub struct Amlprobe {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    /// Holds the suite written by [`Amlprobe::flows`] until the run is over.
    suite_dir: Option<tempfile::TempDir>,
    /// Shell commands run before the binary replaces the shell (limits, signal dispositions).
    shell_prefix: Option<String>,
}

impl Amlprobe {
    /// `amlprobe <words…>`.
    pub fn new(words: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Amlprobe {
        Amlprobe {
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            suite_dir: None,
            shell_prefix: None,
        }
        .args(words)
    }

    /// `amlprobe <command>` that talks to loopback only: no IMDS, no proxy, no workspace
    /// discovery, the resolver at `dns`, a 1 s timeout, and 127.0.0.0/8 private (test names
    /// answer loopback, which is a sinkhole unless declared private).
    pub fn offline(command: &str, dns: impl Display) -> Amlprobe {
        Amlprobe::new([command, "--no-imds", "--no-proxy", "--no-discovery"])
            .flag("--dns-server", dns.to_string())
            .timeout("1")
            .flag("--private-cidr", "127.0.0.0/8")
    }

    /// Appends `words` as they are (repeatable flags, positional arguments).
    pub fn args(mut self, words: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Amlprobe {
        self.args.extend(words.into_iter().map(|w| w.as_ref().to_os_string()));
        self
    }

    /// Sets `flag` to `value`, replacing the value it already has.
    pub fn flag(mut self, flag: &str, value: impl AsRef<OsStr>) -> Amlprobe {
        let value = value.as_ref().to_os_string();
        match self.args.iter().position(|a| a == flag) {
            Some(at) => self.args[at + 1] = value,
            None => self.args.extend([flag.into(), value]),
        }
        self
    }

    /// Drops the switch `flag` (one without a value), e.g. a preset's `--no-proxy`.
    pub fn without(mut self, flag: &str) -> Amlprobe {
        self.args.retain(|a| a != flag);
        self
    }

    /// `--timeout <seconds>`.
    pub fn timeout(self, seconds: &str) -> Amlprobe {
        self.flag("--timeout", seconds)
    }

    /// `--format <format>`.
    pub fn format(self, format: &str) -> Amlprobe {
        self.flag("--format", format)
    }

    /// Trusts the test root: `--ca-file <root.pem>`.
    pub fn ca(self, pki: &Pki) -> Amlprobe {
        self.flag("--ca-file", pki.root_pem())
    }

    /// Probes through `url` (`--proxy`), instead of a preset's `--no-proxy`.
    pub fn proxy(self, url: &str) -> Amlprobe {
        self.without("--no-proxy").flag("--proxy", url)
    }

    /// Asks the IMDS at `endpoint` (`--imds-endpoint`), instead of a preset's `--no-imds`.
    pub fn imds(self, endpoint: &str) -> Amlprobe {
        self.without("--no-imds").flag("--imds-endpoint", endpoint)
    }

    /// Runs suite `t` of `file` alone.
    pub fn suite(self, file: &Path) -> Amlprobe {
        self.flag("--suite-file", file).flag("--suite", "t")
    }

    /// Runs suite `t` made of `flows` (see [`suite_file`]) alone.
    pub fn flows(mut self, flows: &[(impl AsRef<str>, impl AsRef<str>)]) -> Amlprobe {
        let dir = tempfile::tempdir().unwrap();
        let file = suite_file(dir.path(), flows);
        self.suite_dir = Some(dir);
        self.suite(&file)
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Amlprobe {
        self.env.push((name.into(), value.as_ref().to_os_string()));
        self
    }

    /// Runs in working directory `dir`.
    pub fn dir(mut self, dir: &Path) -> Amlprobe {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Runs `prefix` in `sh` first, which then becomes the binary (`exec`): for limits the
    /// binary inherits, e.g. `ulimit -f 2` (a file-size limit: writes past it fail like a full
    /// disk) with `trap '' XFSZ` so that failing write is an error, not a signal.
    pub fn under_shell(mut self, prefix: &str) -> Amlprobe {
        self.shell_prefix = Some(prefix.to_string());
        self
    }

    fn command(&self) -> Command {
        let bin = env!("CARGO_BIN_EXE_amlprobe");
        let mut cmd = match &self.shell_prefix {
            Some(prefix) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("{prefix}; exec \"$0\" \"$@\""), bin]);
                sh
            }
            None => Command::new(bin),
        };
        cmd.args(&self.args);
        // Not even PATH or HOME: the binary needs neither (the Azure CLI is looked for on PATH
        // only to read ARM, and a test that wants it sets PATH itself).
        cmd.env_clear();
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs to the end.
    pub fn output(self) -> Run {
        let out = self.command().output().expect("run amlprobe");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts it without waiting (for `serve`): its stdout lines arrive on the channel, its
    /// stderr is dropped.
    pub fn spawn(self) -> (Child, std::sync::mpsc::Receiver<String>) {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start amlprobe");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, lines)
    }
}
