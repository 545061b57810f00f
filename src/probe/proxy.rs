//! Through an HTTP proxy: open a CONNECT tunnel (for TLS) and classify the proxy's answer.

use super::Observation;
use super::http::{self, ResponseHead};
use crate::outcome::ReasonCode;
use crate::proxy::ProxyUrl;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Maps a proxy's own error status to a reason, or `None` for success (2xx).
pub fn classify_status(head: &ResponseHead) -> Option<ReasonCode> {
    match head.status {
        200..=299 => None,
        407 => Some(ReasonCode::ProxyAuthRequired),
        502..=504 => Some(ReasonCode::ProxyUpstreamFailed),
        400..=499 => Some(ReasonCode::ProxyDenied),
        _ => Some(ReasonCode::ProxyError),
    }
}

/// Describes a proxy's refusal, naming squid's error code when it sends one.
pub fn describe_refusal(proxy: &ProxyUrl, head: &ResponseHead, what: &str) -> String {
    let detail = head
        .header("x-squid-error")
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let creds = if head.status == 407 && proxy.credentials.is_some() {
        "; the credentials in the proxy URL were rejected"
    } else {
        ""
    };
    format!("proxy {proxy} answered {} to {what}{detail}{creds}", head.status)
}

/// Asks the proxy for a tunnel to `host:port` over an already connected `stream`.
pub async fn connect_tunnel(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Observation {
    let start = Instant::now();
    let auth = proxy
        .authorization()
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: amlprobe/{}\r\n{auth}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let io = async {
        use tokio::io::AsyncWriteExt;
        stream.write_all(request.as_bytes()).await?;
        http::read_head(stream).await
    };
    let what = format!("CONNECT {host}:{port}");
    match tokio::time::timeout(timeout, io).await {
        Err(_) => Observation::fail(
            ReasonCode::ProxyError,
            format!("proxy {proxy} did not answer {what} within {timeout:?}"),
            start.elapsed(),
        ),
        Ok(Err(e)) => Observation::fail(
            ReasonCode::ProxyError,
            format!("proxy {proxy} gave no valid answer to {what}: {e}"),
            start.elapsed(),
        ),
        Ok(Ok(head)) => match classify_status(&head) {
            None if answers_like_a_web_server(&head, stream) => Observation::fail(
                ReasonCode::ProxyError,
                format!(
                    "proxy {proxy} answered {what} like a web server (HTTP {} with a page{}), not with a tunnel: it is not an HTTP proxy; check the proxy URL's host and port",
                    head.status,
                    head.header("server")
                        .map(|s| format!(", server '{s}'"))
                        .unwrap_or_default()
                ),
                start.elapsed(),
            ),
            None => Observation::pass(
                format!("proxy {proxy} opened a tunnel to {host}:{port}"),
                start.elapsed(),
            ),
            Some(reason) => Observation::fail(reason, describe_refusal(proxy, &head, &what), start.elapsed()),
        },
    }
}

/// Whether a 2xx answer to CONNECT is a web page rather than a tunnel. A proxy's tunnel answer
/// has no content (RFC 9110 forbids Content-Length and Transfer-Encoding on it) and is silent
/// until the client speaks, TLS clients speaking first; a web server that took CONNECT for a
/// page request labels and sends a body.
fn answers_like_a_web_server(head: &ResponseHead, stream: &TcpStream) -> bool {
    // Bytes already waiting after the head are a body; a real tunnel has nothing to say yet.
    announces_a_body(head) || stream.try_read(&mut [0u8; 1]).is_ok_and(|n| n > 0)
}

/// Whether a head announces content. `Content-Length: 0` does not: some proxies send it.
fn announces_a_body(head: &ResponseHead) -> bool {
    head.header("content-length")
        .is_some_and(|n| n.parse::<u64>().map_or(true, |n| n > 0))
        || head.header("transfer-encoding").is_some()
        || head.header("content-type").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let head = |s: u16| ResponseHead {
            status: s,
            headers: vec![],
        };
        assert_eq!(classify_status(&head(200)), None);
        assert_eq!(classify_status(&head(403)), Some(ReasonCode::ProxyDenied));
        assert_eq!(classify_status(&head(407)), Some(ReasonCode::ProxyAuthRequired));
        assert_eq!(classify_status(&head(503)), Some(ReasonCode::ProxyUpstreamFailed));
        assert_eq!(classify_status(&head(500)), Some(ReasonCode::ProxyError));
    }

    #[test]
    fn a_page_is_not_a_tunnel() {
        let with = |headers: &[(&str, &str)]| ResponseHead {
            status: 200,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        };
        assert!(!announces_a_body(&with(&[])));
        assert!(!announces_a_body(&with(&[
            ("content-length", "0"),
            ("proxy-agent", "x")
        ])));
        assert!(announces_a_body(&with(&[("content-length", "18")])));
        assert!(announces_a_body(&with(&[("transfer-encoding", "chunked")])));
        assert!(announces_a_body(&with(&[("content-type", "text/html")])));
    }
}
