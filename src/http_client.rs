//! A small HTTP/1.1 client for discovery's few requests (ARM, Entra ID, managed identity
//! endpoints): one request per connection, certificates verified (Mozilla's roots, the OS store
//! and `--ca-file`). `https://` goes through the run's proxy like the probes do (ARM may be
//! reachable no other way); plain `http://` (IMDS, the local `MSI_ENDPOINT`) never does.
//! Errors say what failed, never what was sent, so a bearer token in a header cannot end up in one.

use crate::engine::probe::dns::DnsProber;
use crate::model::duration::FlagDuration;
use crate::model::proxy::ProxySettings;
use crate::wire::http1::{self, HeadError};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// Bodies larger than this are cut off: a workspace or endpoint document is a few KiB.
const MAX_BODY: u64 = 2 * 1024 * 1024;

/// An `http://` or `https://` URL, split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https`?
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http[s]://host[:port][/path]`; user info and fragments are refused.
    pub fn parse(url: &str) -> Result<Url, String> {
        let url = url.trim();
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https:// or http://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains('#') {
            return Err("must not carry user info or a fragment".into());
        }
        if path.chars().any(unsendable) {
            return Err("has a control character or a space in its path".into());
        }
        let (host, port) = crate::model::netaddr::split_host_port(authority, if tls { 443 } else { 80 })?;
        let host_ok = !host.is_empty()
            && (host.parse::<IpAddr>().is_ok()
                || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
        if !host_ok {
            return Err("has no valid host".into());
        }
        Ok(Url {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_string(),
        })
    }

    /// The same origin with `path` (which starts with `/`) after this URL's path.
    #[must_use]
    pub fn join(&self, path: &str) -> Url {
        Url {
            path: format!("{}{path}", self.path.trim_end_matches('/')),
            ..self.clone()
        }
    }

    /// `scheme://host[:port]`, for messages.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Whether `c` may not stand in a request line: a CR or LF would end the line early and start a
/// header or a second request of the sender's choosing; other controls and spaces are no more
/// valid there.
fn unsendable(c: char) -> bool {
    c.is_control() || c.is_whitespace()
}

/// `path` as a request target: refused when it holds a character [`unsendable`] names (ARM ids
/// and `nextLink`s are the peer's text), other non-ASCII characters percent-encoded as UTF-8.
fn request_target(path: &str) -> Result<String, &'static str> {
    if path.chars().any(unsendable) {
        return Err("refused to send a request whose path holds a control character or a space");
    }
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// Percent-encodes `value` for a query string or a form body.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header lines, names lower-cased (ARM's long-running operations answer with `Location`
    /// and `Retry-After`).
    pub headers: http1::Headers,
    /// The body, de-chunked.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request.
pub struct Request<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Where.
    pub url: &'a Url,
    /// Extra headers (secrets allowed: they are never echoed).
    pub headers: Vec<(&'static str, String)>,
    /// Form body for `POST`.
    pub body: Option<String>,
}

/// Connection settings shared by every discovery request.
pub struct Client {
    /// `None`: plain HTTP only (IMDS), so no trust store is loaded for it.
    tls: Option<TlsConnector>,
    dns_server: Option<SocketAddr>,
    proxies: ProxySettings,
}

impl Client {
    /// Trusts Mozilla's roots, the OS store and `ca_files`; resolves names through `dns_server`
    /// (or resolv.conf); tunnels `https://` through `proxies`.
    pub fn new(ca_files: &[PathBuf], dns_server: Option<SocketAddr>, proxies: ProxySettings) -> Result<Client, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        for file in ca_files {
            let anchors = crate::engine::probe::tls::read_anchors(file).map_err(|e| e.to_string())?;
            roots.add_parsable_certificates(anchors);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            tls: Some(TlsConnector::from(Arc::new(config))),
            dns_server,
            proxies,
        })
    }

    /// A client for plain `http://` to an address, never proxied (IMDS): it loads no trust
    /// store, which a run repeated by `serve` would otherwise read every time.
    pub fn plain() -> Client {
        Client {
            tls: None,
            dns_server: None,
            proxies: ProxySettings::default(),
        }
    }

    /// Sends `request` and reads the whole answer within `timeout`.
    pub async fn send(&self, request: Request<'_>, timeout: Duration) -> Result<Response, String> {
        let url = request.url;
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.exchange(&request, deadline)).await {
            Err(_) | Ok(Err(Failure::Late)) => Err(format!(
                "{} did not answer within {}",
                url.origin(),
                FlagDuration(timeout)
            )),
            Ok(Err(Failure::Said(e))) => Err(format!("{}: {e}", url.origin())),
            Ok(Ok(r)) => Ok(r),
        }
    }

    async fn exchange(&self, request: &Request<'_>, deadline: Instant) -> Result<Response, Failure> {
        let url = request.url;
        // Checked before connecting: no line of the request ends where the peer's text says.
        let target = request_target(&url.path)?;
        if request
            .headers
            .iter()
            .any(|(_, value)| value.chars().any(|c| c.is_control() && c != '\t'))
        {
            return Err("refused to send a header value that holds a control character".into());
        }
        let proxy = if url.tls {
            self.proxies.for_host(&url.host, true)
        } else {
            None
        };
        let (host, port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (url.host.as_str(), url.port),
        };
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => self.resolve(host).await?,
        };
        let mut tcp = TcpStream::connect(SocketAddr::new(ip, port))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(proxy) = proxy {
            // The outer deadline in `send` bounds the whole exchange; this one only has to be long enough.
            let tunnel = crate::engine::probe::proxy::connect_tunnel(
                &mut tcp,
                proxy,
                &url.host,
                url.port,
                Duration::from_secs(30),
            )
            .await;
            if !tunnel.opened() {
                return Err(
                    crate::verdict::proxy::classify_tunnel(proxy, &url.host, url.port, &tunnel)
                        .message
                        .into(),
                );
            }
        }
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: amlprobe/{}\r\nAccept: application/json\r\nConnection: close\r\n",
            request.method,
            target,
            url.authority(),
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &request.body {
            Some(body) => head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )),
            // A POST without a body still says so: front ends may answer 411 otherwise.
            None if request.method == "POST" => head.push_str("Content-Length: 0\r\n"),
            None => {}
        }
        head.push_str("\r\n");
        head.push_str(request.body.as_deref().unwrap_or_default());
        if url.tls {
            let name = ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?;
            let connector = self.tls.as_ref().ok_or("this client speaks plain HTTP only")?;
            let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
            roundtrip(&mut tls, head.as_bytes(), deadline).await
        } else {
            let mut tcp = tcp;
            roundtrip(&mut tcp, head.as_bytes(), deadline).await
        }
    }

    async fn resolve(&self, host: &str) -> Result<IpAddr, String> {
        let prober = DnsProber::new(self.dns_server, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        match prober.resolve_chain(host).await.result {
            Ok(answer) => answer
                .addresses
                .first()
                .copied()
                .ok_or_else(|| format!("{host} resolved to no address")),
            Err(failure) => Err(failure.detail),
        }
    }
}

/// Why an exchange failed: its deadline passed, or anything else, in words.
enum Failure {
    Late,
    Said(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Said(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::Said(message.to_string())
    }
}

async fn roundtrip<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    deadline: Instant,
) -> Result<Response, Failure> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    // Buffered: the body is read next from the same buffer.
    let mut stream = BufReader::new(stream);
    let head = match http1::read_response(&mut stream, deadline).await {
        Ok(head) => head,
        Err(HeadError::TimedOut) => return Err(Failure::Late),
        Err(e) => return Err(e.to_string().into()),
    };
    let mut raw = Vec::new();
    match stream.take(MAX_BODY).read_to_end(&mut raw).await {
        Ok(_) => {}
        // Servers often close without TLS close_notify; what arrived is still the answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string().into()),
    }
    let body = String::from_utf8_lossy(&raw).into_owned();
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(&body)? } else { body };
    Ok(Response {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// Decodes a chunked HTTP body.
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("truncated chunked body")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| "bad chunk size in the answer")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk in the answer")?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or("truncated chunk in the answer")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies() {
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap(), "Wikipedia");
        assert!(dechunk("zz\r\n").is_err());
    }

    #[test]
    fn urls_split_into_parts() {
        let u = Url::parse("https://management.azure.com").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "management.azure.com", 443, "/")
        );
        let u = Url::parse("http://127.0.0.1:8080/msi/token?x=1").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/msi/token?x=1"));
        let u = Url::parse("https://[::1]:9443/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9443));
        assert_eq!(u.origin(), "https://[::1]:9443");
        assert_eq!(
            Url::parse("https://h/base/").unwrap().join("/subscriptions/x").path,
            "/base/subscriptions/x"
        );
        for bad in [
            "ftp://h",
            "https://",
            "https://u:p@h",
            "https://h:99999",
            "https://h h",
            "https://[::1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            encode("https://management.azure.com/.default"),
            "https%3A%2F%2Fmanagement.azure.com%2F.default"
        );
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
    }

    #[tokio::test]
    async fn reads_plain_and_chunked_answers_from_a_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            for reply in [
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
                "HTTP/1.1 202 Accepted\r\nLocation: https://arm.test/op/1\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                requests.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(reply.as_bytes()).await.unwrap();
            }
            requests
        });
        let client = Client::new(&[], None, ProxySettings::default()).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/x?y=1")).unwrap();
        let get = Request {
            method: "GET",
            url: &url,
            headers: vec![("Metadata", "true".into())],
            body: None,
        };
        let r = client.send(get, Duration::from_secs(2)).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let post = Request {
            method: "POST",
            url: &url,
            headers: vec![],
            body: Some("a=b".into()),
        };
        let r = client.send(post, Duration::from_secs(2)).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (403, "{\"a\":1}"));
        let bodiless = Request {
            method: "POST",
            url: &url,
            headers: vec![],
            body: None,
        };
        let r = client.send(bodiless, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            (r.status, r.header("LOCATION"), r.header("retry-after")),
            (202, Some("https://arm.test/op/1"), Some("3"))
        );
        let requests = server.await.unwrap();
        assert!(requests[0].starts_with("GET /x?y=1 HTTP/1.1\r\n") && requests[0].contains("Metadata: true"));
        assert!(requests[1].contains("Content-Length: 3") && requests[1].ends_with("\r\n\r\na=b"));
        assert!(
            requests[2].starts_with("POST ") && requests[2].ends_with("Content-Length: 0\r\n\r\n"),
            "{}",
            requests[2]
        );
        assert!(!requests[0].contains("Content-Length"), "a GET says nothing of a body");
    }

    fn get<'a>(url: &'a Url, headers: Vec<(&'static str, String)>) -> Request<'a> {
        Request {
            method: "GET",
            url,
            headers,
            body: None,
        }
    }

    /// An ARM id or `nextLink` with CR/LF would end the request line where the peer says and
    /// smuggle headers and a second request (with the bearer token) onto the connection.
    #[tokio::test]
    async fn a_path_or_header_that_would_split_the_request_is_never_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            while let Ok(Ok((mut s, _))) = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                requests.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
            }
            requests
        });
        let client = Client::plain();
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        for hostile in [
            "/x?api-version=1 HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /second",
            "/x\ny",
            "/x y",
            "/x\u{1b}[2J",
            "/x\u{85}",
        ] {
            let url = base.join(hostile);
            let e = client
                .send(get(&url, vec![]), Duration::from_secs(2))
                .await
                .unwrap_err();
            assert!(e.contains("refused to send"), "{hostile:?}: {e}");
        }
        let url = base.join("/x");
        let e = client
            .send(
                get(&url, vec![("Authorization", "Bearer t\r\nX-Injected: 1".into())]),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(e.contains("refused to send a header"), "{e}");
        let url = base.join("/rg-\u{e9}t\u{e9}/x");
        let r = client.send(get(&url, vec![]), Duration::from_secs(2)).await.unwrap();
        assert_eq!(r.status, 200);
        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 1, "only the clean request was sent: {requests:?}");
        assert!(
            requests[0].starts_with("GET /rg-%C3%A9t%C3%A9/x HTTP/1.1\r\n"),
            "{requests:?}"
        );
        for bad in ["https://h/a b", "https://h/a\r\nb", "https://h/\u{7f}"] {
            assert!(Url::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_endless_or_stalled_head_ends_the_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _server = tokio::spawn(async move {
            let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
            endless.resize(http1::MAX_HEAD_BYTES + 1, b'a');
            for reply in [endless, b"HTTP/1.1 200 OK\r\n".to_vec()] {
                let (mut s, _) = listener.accept().await.unwrap();
                assert!(s.read(&mut [0u8; 4096]).await.unwrap() > 0);
                s.write_all(&reply).await.unwrap();
                // Held open: only the head's own limits can end the request.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(s);
                });
            }
        });
        let client = Client::plain();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let get = || Request {
            method: "GET",
            url: &url,
            headers: vec![],
            body: None,
        };
        let e = client.send(get(), Duration::from_secs(2)).await.unwrap_err();
        assert!(e.ends_with("the HTTP head did not end within 8192 bytes"), "{e}");
        let e = client.send(get(), Duration::from_millis(200)).await.unwrap_err();
        assert!(e.ends_with("did not answer within 200ms"), "{e}");
    }
}
