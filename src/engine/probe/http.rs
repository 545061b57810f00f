//! HTTP: one small request after the connection is up, to see who answers. A firewall's block
//! page or a captive portal answers HTTP too, but without the headers Azure front ends add;
//! `verdict::http` decides what an answer means.

use serde::Serialize;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Response heads larger than this are cut off: we only need the status and headers.
const MAX_HEAD: usize = 8 * 1024;

/// Whether an HTTP answer must come from an Azure front end.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HttpCheck {
    /// Any valid HTTP response will do.
    #[default]
    Any,
    /// The response must carry Azure's headers.
    Azure,
    /// Send no HTTP request.
    None,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether the response carries a header that Azure front ends add (request ids, Front Door
    /// references, Microsoft server names).
    pub fn looks_like_azure(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.starts_with("x-ms-")
                || n.starts_with("x-azure-")
                || n.starts_with("x-msedge-")
                || n == "request-id"
                || n == "ms-cv"
                || (n == "server"
                    && ["microsoft", "azure", "windows-azure"]
                        .iter()
                        .any(|m| v.to_ascii_lowercase().contains(m)))
        })
    }
}

/// A response head that did not end within 8 KiB: what was seen, carried inside the
/// `io::Error` so the verdict can say it rather than "no valid response".
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum HeadTooLarge {
    /// The status line was valid; the headers never ended.
    #[error("an HTTP {0} response whose head did not end within 8 KiB (endless or oversized headers)")]
    Headers(u16),
    /// Not even a status line.
    #[error("8 KiB without an HTTP status line")]
    NoStatus,
}

/// The status code of `raw`'s first line, when it is a valid HTTP/1.x status line.
fn status_of(raw: &[u8]) -> Option<u16> {
    let line = raw.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
}

/// Reads a response head (status line and headers) without reading past it, so a CONNECT
/// tunnel's first TLS bytes stay in the stream.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<ResponseHead> {
    let mut buf = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            let seen = status_of(&buf).map_or(HeadTooLarge::NoStatus, HeadTooLarge::Headers);
            return Err(io::Error::new(io::ErrorKind::InvalidData, seen));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete HTTP response",
            ));
        }
        buf.push(byte[0]);
    }
    parse_head(&buf)
}

/// Parses `HTTP/1.x NNN reason` plus headers.
pub fn parse_head(raw: &[u8]) -> io::Result<ResponseHead> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x response"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad("no status code"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(ResponseHead { status, headers })
}

/// Why no usable response head came back.
#[derive(Debug, Clone)]
pub enum ExchangeError {
    /// The head did not end within 8 KiB.
    TooLarge(HeadTooLarge),
    /// Anything else: timeout, closed connection, not HTTP.
    Other(String),
}

/// What one HTTP exchange observed: the response head, or why there is none, and its duration.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The head.
    pub response: Result<ResponseHead, ExchangeError>,
    /// Time taken.
    pub elapsed: Duration,
}

/// Sends `HEAD <target>` and reads the response head within `timeout`.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request_target: &str,
    host: &str,
    extra_headers: &str,
    timeout: Duration,
) -> Exchange {
    let started = Instant::now();
    let request = format!(
        "HEAD {request_target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: amlprobe/{}\r\nAccept: */*\r\n{extra_headers}Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let io = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        read_head(stream).await
    };
    let response = match tokio::time::timeout(timeout, io).await {
        Err(_) => Err(ExchangeError::Other("no HTTP response in time".into())),
        Ok(Ok(head)) => Ok(head),
        Ok(Err(e)) => Err(into_exchange_error(&e)),
    };
    Exchange {
        response,
        elapsed: started.elapsed(),
    }
}

fn into_exchange_error(e: &io::Error) -> ExchangeError {
    match e.get_ref().and_then(|i| i.downcast_ref::<HeadTooLarge>()) {
        Some(too_large) => ExchangeError::TooLarge(*too_large),
        None => ExchangeError::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_spots_azure() {
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nServer: Microsoft-HTTPAPI/2.0\r\nx-ms-request-id: 1\r\n\r\n")
            .unwrap();
        assert_eq!(h.status, 404);
        assert!(h.looks_like_azure());
        let block =
            parse_head(b"HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n")
                .unwrap();
        assert!(!block.looks_like_azure());
        assert_eq!(block.header("x-squid-error"), Some("ERR_ACCESS_DENIED 0"));
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn an_endless_head_is_told_apart() {
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.resize(MAX_HEAD + 100, b'a');
        let e = read_head(&mut endless.as_slice()).await.unwrap_err();
        assert!(matches!(
            into_exchange_error(&e),
            ExchangeError::TooLarge(HeadTooLarge::Headers(200))
        ));
        let garbage = vec![b'x'; MAX_HEAD + 100];
        let e = read_head(&mut garbage.as_slice()).await.unwrap_err();
        assert!(matches!(
            into_exchange_error(&e),
            ExchangeError::TooLarge(HeadTooLarge::NoStatus)
        ));
    }
}
