//! Through an HTTP proxy: open a CONNECT tunnel and record the proxy's answer; what the answer
//! means is decided in `verdict::proxy`.

use super::http::{HeadTooLarge, ResponseHead};
use crate::model::proxy::ProxyUrl;
use crate::wire::http1::{self, HeadError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How the proxy answered CONNECT.
#[derive(Debug, Clone)]
pub enum TunnelAnswer {
    /// No answer within the deadline.
    TimedOut(Duration),
    /// Something that is not a valid HTTP response head.
    Invalid(String),
    /// A response head; `page` when it carried content, as a web server's page does and a
    /// tunnel never does.
    Answered {
        /// The head.
        head: ResponseHead,
        /// Whether content came with it.
        page: bool,
    },
}

/// What asking for a tunnel observed.
#[derive(Debug, Clone)]
pub struct TunnelObservation {
    /// The answer.
    pub answer: TunnelAnswer,
    /// Time taken.
    pub elapsed: Duration,
}

impl TunnelObservation {
    /// Whether a tunnel is open: a 2xx answer without content.
    pub fn opened(&self) -> bool {
        matches!(&self.answer, TunnelAnswer::Answered { head, page: false } if (200..300).contains(&head.status))
    }
}

/// Asks the proxy for a tunnel to `host:port` over an already connected `stream`.
pub async fn connect_tunnel(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    timeout: Duration,
) -> TunnelObservation {
    let start = Instant::now();
    let deadline = start + timeout;
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
        // Unbuffered: the bytes after the head belong to the tunnel.
        http1::read_response(stream, deadline).await
    };
    let answer = match tokio::time::timeout_at(deadline, io)
        .await
        .unwrap_or(Err(HeadError::TimedOut))
    {
        Err(HeadError::TimedOut) => TunnelAnswer::TimedOut(timeout),
        Err(HeadError::TooLarge { status }) => TunnelAnswer::Invalid(HeadTooLarge::seen(status).to_string()),
        Err(e) => TunnelAnswer::Invalid(e.to_string()),
        Ok(head) => {
            let page = answers_like_a_web_server(&head, stream);
            TunnelAnswer::Answered { head, page }
        }
    };
    TunnelObservation {
        answer,
        elapsed: start.elapsed(),
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
