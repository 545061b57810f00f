//! HTTP: one small request after the connection is up, to see who answers. A firewall's block
//! page or a captive portal answers HTTP too, but without the headers Azure front ends add, and
//! a firewall's denial says so in its body; `verdict::http` decides what an answer means.

pub use crate::wire::http1::ResponseHead;
use crate::wire::http1::{self, HeadError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

// Which headers mark Azure is this probe's knowledge, not the wire format's.
impl ResponseHead {
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

/// A response head that did not end within 8 KiB (`wire::http1::MAX_HEAD_BYTES`): what was
/// seen, so the verdict can say it rather than "no valid response".
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum HeadTooLarge {
    /// The status line was valid; the headers never ended.
    #[error("an HTTP {0} response whose head did not end within 8 KiB (endless or oversized headers)")]
    Headers(u16),
    /// Not even a status line.
    #[error("8 KiB without an HTTP status line")]
    NoStatus,
}

impl HeadTooLarge {
    /// From the status code of the head's first line, when it was a status line.
    pub fn seen(status: Option<u16>) -> HeadTooLarge {
        status.map_or(HeadTooLarge::NoStatus, HeadTooLarge::Headers)
    }
}

/// Why no usable response head came back.
#[derive(Debug, Clone)]
pub enum ExchangeError {
    /// The head did not end within 8 KiB.
    TooLarge(HeadTooLarge),
    /// The peer hung up right after the request without a byte of answer (`reset`: with a TCP
    /// reset), as a firewall denying the name it read in the request does.
    HungUp {
        /// A reset rather than a close.
        reset: bool,
    },
    /// Anything else: timeout, closed connection, not HTTP.
    Other(String),
}

impl From<HeadError> for ExchangeError {
    fn from(e: HeadError) -> ExchangeError {
        match e {
            HeadError::TooLarge { status } => ExchangeError::TooLarge(HeadTooLarge::seen(status)),
            HeadError::TimedOut => ExchangeError::Other("no HTTP response in time".into()),
            HeadError::HungUp { reset } => ExchangeError::HungUp { reset },
            e => ExchangeError::Other(e.to_string()),
        }
    }
}

/// What one HTTP exchange observed: the response head, or why there is none, the first bytes of
/// the body, and its duration.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The head.
    pub response: Result<ResponseHead, ExchangeError>,
    /// Up to [`BODY_SNIPPET`] bytes of the body (raw: chunk sizes stay in), whatever arrived
    /// within [`BODY_WAIT`] of the head.
    pub body: Vec<u8>,
    /// Time taken.
    pub elapsed: Duration,
}

/// How much of a body is read: enough for a firewall's deny text or a block page's title,
/// which is what the verdict looks for; the rest of a body says nothing about the network.
pub const BODY_SNIPPET: usize = 2048;
/// How long the body may take after the head: an origin sends it at once, and a verdict is
/// never held up by a slow body.
pub const BODY_WAIT: Duration = Duration::from_millis(300);

/// Sends `GET <target>` and reads the response head within `timeout`, then the start of the
/// body (GET rather than HEAD: a firewall's deny page names the policy and rule in its body).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request_target: &str,
    host: &str,
    extra_headers: &str,
    timeout: Duration,
) -> Exchange {
    let started = Instant::now();
    let deadline = started + timeout;
    let request = format!(
        "GET {request_target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: amlprobe/{}\r\nAccept: */*\r\n{extra_headers}Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let io = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        http1::read_response(stream, deadline).await
    };
    let response = tokio::time::timeout_at(deadline, io)
        .await
        .unwrap_or(Err(HeadError::TimedOut))
        .map_err(ExchangeError::from);
    let body = match &response {
        Ok(head) => read_snippet(stream, head, deadline.min(Instant::now() + BODY_WAIT)).await,
        Err(_) => Vec::new(),
    };
    Exchange {
        response,
        body,
        elapsed: started.elapsed(),
    }
}

/// The first bytes of the body: up to [`BODY_SNIPPET`], `Content-Length` and `deadline`, stopping
/// at the end of the stream; a read error ends it with what came so far.
async fn read_snippet<S: AsyncRead + Unpin>(stream: &mut S, head: &ResponseHead, deadline: Instant) -> Vec<u8> {
    let declared = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let want = declared.min(BODY_SNIPPET);
    let mut body = vec![0; want];
    let mut got = 0;
    while got < want {
        match tokio::time::timeout_at(deadline, stream.read(&mut body[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
    }
    body.truncate(got);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spots_azure() {
        let h = http1::parse_response(
            b"HTTP/1.1 404 Not Found\r\nServer: Microsoft-HTTPAPI/2.0\r\nx-ms-request-id: 1\r\n\r\n",
        )
        .unwrap();
        assert!(h.looks_like_azure());
        let block = http1::parse_response(
            b"HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
        )
        .unwrap();
        assert!(!block.looks_like_azure());
    }

    #[tokio::test]
    async fn an_endless_head_is_told_apart() {
        let mut stream = tokio::io::duplex(64 * 1024);
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.resize(http1::MAX_HEAD_BYTES + 100, b'a');
        tokio::io::AsyncWriteExt::write_all(&mut stream.1, &endless)
            .await
            .unwrap();
        let e = exchange(&mut stream.0, "/", "h", "", Duration::from_secs(2)).await;
        assert!(matches!(
            e.response,
            Err(ExchangeError::TooLarge(HeadTooLarge::Headers(200)))
        ));
        let mut stream = tokio::io::duplex(64 * 1024);
        let garbage = vec![b'x'; http1::MAX_HEAD_BYTES + 100];
        tokio::io::AsyncWriteExt::write_all(&mut stream.1, &garbage)
            .await
            .unwrap();
        let e = exchange(&mut stream.0, "/", "h", "", Duration::from_secs(2)).await;
        assert!(matches!(
            e.response,
            Err(ExchangeError::TooLarge(HeadTooLarge::NoStatus))
        ));
    }

    #[tokio::test]
    async fn the_body_is_read_up_to_its_length_the_snippet_or_a_short_wait() {
        let answer = |raw: &'static [u8]| async move {
            let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
            theirs.write_all(raw).await.unwrap();
            // The peer keeps the connection open: only the length or the wait ends the read.
            let e = exchange(&mut ours, "/", "h", "", Duration::from_secs(5)).await;
            drop(theirs);
            e
        };
        let started = Instant::now();
        let e = answer(b"HTTP/1.1 470 x\r\nContent-Length: 12\r\n\r\nAction: Deny and more").await;
        assert_eq!(e.body, b"Action: Deny");
        assert!(started.elapsed() < BODY_WAIT, "the length ends the read at once");
        let e = answer(b"HTTP/1.1 200 OK\r\n\r\npartial").await;
        assert_eq!(e.body, b"partial");
        assert!(e.elapsed < Duration::from_secs(1), "{:?}: the wait is short", e.elapsed);
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + 10_000, b'x');
        let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs.write_all(&big).await.unwrap();
        let e = exchange(&mut ours, "/", "h", "", Duration::from_secs(5)).await;
        assert_eq!(e.body.len(), BODY_SNIPPET);
    }

    #[tokio::test]
    async fn a_silent_server_is_out_of_time() {
        let (mut ours, _theirs) = tokio::io::duplex(1024);
        let e = exchange(&mut ours, "/", "h", "", Duration::from_millis(50)).await;
        assert!(
            matches!(&e.response, Err(ExchangeError::Other(m)) if m == "no HTTP response in time"),
            "{:?}",
            e.response
        );
    }
}
