//! HTTP/1 message heads (RFC 9112), read and parsed the same way for everyone: the probes and
//! their CONNECT tunnels and the discovery client read response heads, `serve` reads request
//! heads. A head is read with a byte cap and the caller's deadline; lines end in CRLF and there
//! are at most [`MAX_HEADERS`] header lines.
//!
//! Requests are refused when malformed (header names are tokens, so an obs-fold line or a space
//! before the colon is refused; values carry no control characters): `serve` must not guess at
//! what a client meant. Responses are read the way clients read them: a header line that is not
//! `name: value` or carries a control character is skipped and the head decoded lossily, since a
//! probed peer that answers with a quirky header still answered, and its verdict must not turn
//! on a header amlprobe never needed.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The longest head read, start line to empty line: a status (or request line) and headers are
/// all anyone here needs, and endless headers must not hold a probe or the server.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most header lines one head may carry; the byte cap alone would allow two thousand.
pub const MAX_HEADERS: usize = 100;

/// Header lines, names lower-cased, in order.
pub type Headers = Vec<(String, String)>;

/// Why no head came back.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The deadline passed first.
    #[error("no complete HTTP head in time")]
    TimedOut,
    /// The peer closed the connection first.
    #[error("connection closed before a complete HTTP head")]
    Closed,
    /// The peer hung up without sending a byte: closed (`reset` false) or reset.
    #[error("the connection was {} before a byte of an answer", if *reset { "reset" } else { "closed" })]
    HungUp {
        /// A TCP reset rather than a close.
        reset: bool,
    },
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// No empty line within [`MAX_HEAD_BYTES`]; `status` is the code of the first line when
    /// that was a complete, valid status line (a response that never stops sending headers).
    #[error("the HTTP head did not end within {MAX_HEAD_BYTES} bytes")]
    TooLarge {
        /// The status code, when a status line came first.
        status: Option<u16>,
    },
    /// More than [`MAX_HEADERS`] header lines.
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// Not a well-formed HTTP/1 head; says what is wrong.
    #[error("{0}")]
    Malformed(&'static str),
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Headers,
}

impl ResponseHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        lookup(&self.headers, name)
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, as sent.
    pub method: String,
    /// The request target, as sent (path and query, or an absolute URL).
    pub target: String,
    /// Headers.
    pub headers: Headers,
}

impl RequestHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        lookup(&self.headers, name)
    }
}

fn lookup<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads and parses a response head by `deadline`.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant) -> Result<ResponseHead, HeadError> {
    parse_response(&read_head(stream, deadline).await?)
}

/// Reads and parses a request head by `deadline`.
#[cfg(test)]
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant) -> Result<RequestHead, HeadError> {
    read_request_line_first(stream, deadline, deadline, |_| {}).await
}

/// Reads and parses a request head by `deadline`, its request line already by `line_by`:
/// `on_line` gets that line (without its CRLF) as soon as it is complete, so a server can tell
/// what is asked before the headers are in.
pub async fn read_request_line_first<S: AsyncRead + Unpin>(
    stream: &mut S,
    line_by: Instant,
    deadline: Instant,
    on_line: impl FnOnce(&[u8]),
) -> Result<RequestHead, HeadError> {
    parse_request(&read_head_with(stream, line_by, deadline, on_line).await?)
}

/// Reads one head up to and including its empty line and never a byte past it, so a CONNECT
/// tunnel's first bytes stay in the stream. It reads a byte at a time: a caller that may read
/// past the head (a server, a client reading the body next) wraps its stream in a
/// `tokio::io::BufReader` to save the system calls.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    read_head_with(stream, deadline, deadline, |_| {}).await
}

/// [`read_head`], with the first line due by `line_by` and handed to `on_line` once complete.
async fn read_head_with<S: AsyncRead + Unpin>(
    stream: &mut S,
    line_by: Instant,
    deadline: Instant,
    on_line: impl FnOnce(&[u8]),
) -> Result<Vec<u8>, HeadError> {
    let read = async {
        let mut head = Vec::with_capacity(512);
        let mut on_line = Some(on_line);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HEAD_BYTES {
                let status = head
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .and_then(|end| std::str::from_utf8(&head[..end]).ok())
                    .and_then(|line| parse_status_line(line).ok());
                return Err(HeadError::TooLarge { status });
            }
            let next = if on_line.is_some() {
                match tokio::time::timeout_at(line_by, stream.read_u8()).await {
                    Ok(next) => next,
                    Err(_) => return Err(HeadError::TimedOut),
                }
            } else {
                stream.read_u8().await
            };
            let byte = match next {
                Ok(byte) => byte,
                Err(e) if head.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(HeadError::HungUp { reset: false });
                }
                Err(e) if head.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(HeadError::HungUp { reset: true });
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(HeadError::Closed),
                Err(e) => return Err(HeadError::Io(e)),
            };
            // A bare LF, or a CR not followed by LF, can never end the head: refused at once
            // rather than waited on until the deadline.
            if (byte == b'\n') != (head.last() == Some(&b'\r')) {
                return Err(HeadError::Malformed("a line ends in a bare CR or LF"));
            }
            head.push(byte);
            if byte == b'\n'
                && let Some(tell) = on_line.take()
            {
                tell(&head[..head.len() - 2]);
            }
        }
        Ok(head)
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or(Err(HeadError::TimedOut))
}

/// Parses a complete response head: `HTTP/1.x NNN reason`, headers, empty line.
pub fn parse_response(raw: &[u8]) -> Result<ResponseHead, HeadError> {
    let text = String::from_utf8_lossy(raw);
    let (start, headers) = split_head(&text, Strictness::SkipBadHeaders)?;
    Ok(ResponseHead {
        status: parse_status_line(start)?,
        headers,
    })
}

/// Parses a complete request head: `METHOD target HTTP/1.x`, headers, empty line.
pub fn parse_request(raw: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(raw).map_err(|_| HeadError::Malformed("the head is not UTF-8"))?;
    let (start, headers) = split_head(text, Strictness::Refuse)?;
    let mut parts = start.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if is_token(method)
                && is_version(version)
                && !target.is_empty()
                && target.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(RequestHead {
                method: method.to_string(),
                target: target.to_string(),
                headers,
            })
        }
        _ => Err(HeadError::Malformed("not an HTTP/1.x request line")),
    }
}

/// What to do with a header line that is not `name: value`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// Refuse the head (requests).
    Refuse,
    /// Leave the line out (responses).
    SkipBadHeaders,
}

/// The start line and the parsed header lines of a head that ends in CRLF CRLF.
fn split_head(text: &str, strictness: Strictness) -> Result<(&str, Headers), HeadError> {
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or(HeadError::Malformed("the head does not end in an empty line"))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::TooManyHeaders);
        }
        match parse_header_line(line) {
            Ok(header) => headers.push(header),
            Err(_) if strictness == Strictness::SkipBadHeaders => {}
            Err(e) => return Err(e),
        }
    }
    Ok((start, headers))
}

/// `name: value`: the name a token (lower-cased), the value trimmed of spaces and tabs and free
/// of control characters (a CR or LF there would smuggle in another header).
fn parse_header_line(line: &str) -> Result<(String, String), HeadError> {
    let (name, value) = line
        .split_once(':')
        .filter(|(name, _)| is_token(name))
        .ok_or(HeadError::Malformed("a header line is not 'name: value'"))?;
    let value = value.trim_matches([' ', '\t']);
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(HeadError::Malformed("a header value carries a control character"));
    }
    Ok((name.to_ascii_lowercase(), value.to_string()))
}

/// The code of `HTTP/1.x NNN[ reason]`: exactly three digits, 100 to 599.
fn parse_status_line(line: &str) -> Result<u16, HeadError> {
    let mut parts = line.splitn(3, ' ');
    if !parts.next().is_some_and(is_version) {
        return Err(HeadError::Malformed("not an HTTP/1.x response"));
    }
    parts
        .next()
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..600).contains(code))
        .ok_or(HeadError::Malformed("no status code"))
}

/// `HTTP/1.0`, `HTTP/1.1` and any other `HTTP/1.<digit>`.
fn is_version(version: &str) -> bool {
    version
        .strip_prefix("HTTP/1.")
        .is_some_and(|minor| minor.len() == 1 && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// An RFC 9110 token: a method or a header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    async fn read(raw: &[u8]) -> Result<Vec<u8>, HeadError> {
        read_head(&mut &raw[..], soon()).await
    }

    fn malformed<T: std::fmt::Debug>(r: Result<T, HeadError>) -> bool {
        matches!(r, Err(HeadError::Malformed(_)))
    }

    #[test]
    fn parses_response_heads() {
        let h = parse_response(
            b"HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error:  ERR_ACCESS_DENIED 0\t\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, 403);
        assert_eq!(h.headers[0], ("server".to_string(), "squid/5.7".to_string()));
        assert_eq!(h.header("x-squid-error"), Some("ERR_ACCESS_DENIED 0"));
        assert_eq!(h.header("X-Squid-Error"), Some("ERR_ACCESS_DENIED 0"));
        assert_eq!(parse_response(b"HTTP/1.0 200\r\n\r\n").unwrap().status, 200);
        assert_eq!(
            parse_response(b"HTTP/1.1 204 \r\nEmpty:\r\n\r\n")
                .unwrap()
                .header("empty"),
            Some("")
        );
        assert!(malformed(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")));
        assert!(malformed(parse_response(b"HTTP/2 200 OK\r\n\r\n")));
        assert!(malformed(parse_response(b"HTTP/1.1 200 OK\r\n")));
    }

    #[test]
    fn parses_request_heads() {
        let r = parse_request(b"GET /report?x=1 HTTP/1.0\r\nauthorization:  Bearer abc \r\nHost: x\r\n\r\n").unwrap();
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/report?x=1"));
        assert_eq!(r.header("Authorization"), Some("Bearer abc"));
        assert!(malformed(parse_request(b"\x16\x03\x01\x02\x00\r\n\r\n")));
        assert!(malformed(parse_request(b"GET  / HTTP/1.1\r\n\r\n")));
        assert!(malformed(parse_request(b"GET / HTTP/1.1 extra\r\n\r\n")));
    }

    #[test]
    fn a_status_must_be_three_digits_in_range() {
        for bad in [
            &b"HTTP/1.1 abc\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 +200 OK\r\n\r\n",
            b"HTTP/1.1 0200 OK\r\n\r\n",
            b"HTTP/1.1 600 OK\r\n\r\n",
            b"HTTP/1.1 099 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
        ] {
            assert!(malformed(parse_response(bad)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_request_line_needs_method_target_and_version() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.\r\n\r\n",
            b"GET / HTTPS/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
        ] {
            assert!(malformed(parse_request(bad)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bad_header_lines_refuse_a_request_and_are_skipped_in_a_response() {
        for line in [
            &b"no colon here"[..],
            b": no name",
            b"Host : space before the colon",
            // obs-fold: a continuation of the previous line.
            b" folded",
            b"\tfolded: too",
            b"Na(me: x",
        ] {
            let with = |start: &[u8]| [start, b"\r\nA: b\r\n", line, b"\r\n\r\n"].concat();
            let shown = String::from_utf8_lossy(line);
            let response = parse_response(&with(b"HTTP/1.1 200 OK")).unwrap();
            assert_eq!(response.headers, [("a".to_string(), "b".to_string())], "{shown}");
            assert!(malformed(parse_request(&with(b"GET / HTTP/1.1"))), "{shown}");
        }
    }

    #[test]
    fn control_characters_in_values_never_get_through() {
        for value in [&b"a\rInjected: 1"[..], b"a\nInjected: 1", b"a\0b", b"a\x1bb"] {
            let shown = String::from_utf8_lossy(value);
            let response = [&b"HTTP/1.1 200 OK\r\nX: "[..], value, b"\r\n\r\n"].concat();
            let head = parse_response(&response).unwrap();
            assert!(
                head.header("x").is_none() && head.header("injected").is_none(),
                "{shown}"
            );
            let request = [&b"GET / HTTP/1.1\r\nX: "[..], value, b"\r\n\r\n"].concat();
            assert!(malformed(parse_request(&request)), "{shown}");
        }
        assert!(parse_response("HTTP/1.1 200 OK\r\nServer: caf\u{e9}\tx\r\n\r\n".as_bytes()).is_ok());
    }

    #[test]
    fn a_response_in_another_encoding_is_read_lossily_and_a_request_is_refused() {
        let latin1 = b"HTTP/1.1 200 OK\r\nServer: caf\xe9\r\n\r\n";
        assert_eq!(parse_response(latin1).unwrap().header("server"), Some("caf\u{fffd}"));
        assert!(malformed(parse_request(b"GET /caf\xe9 HTTP/1.1\r\n\r\n")));
    }

    #[test]
    fn too_many_headers_are_refused() {
        let head = |n: usize| format!("HTTP/1.1 200 OK\r\n{}\r\n", "a: b\r\n".repeat(n));
        assert_eq!(
            parse_response(head(MAX_HEADERS).as_bytes()).unwrap().headers.len(),
            MAX_HEADERS
        );
        assert!(head(MAX_HEADERS + 1).len() < MAX_HEAD_BYTES);
        assert!(matches!(
            parse_response(head(MAX_HEADERS + 1).as_bytes()),
            Err(HeadError::TooManyHeaders)
        ));
    }

    #[tokio::test]
    async fn reads_exactly_one_head() {
        let mut stream = &b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"[..];
        let head = read_response(&mut stream, soon()).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(stream, b"\x16\x03\x01", "the tunnel's first bytes stay unread");
        let request = read_request(&mut &b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..], soon()).await;
        assert_eq!(request.unwrap().target, "/metrics");
    }

    #[tokio::test]
    async fn an_endless_head_stops_at_the_cap_and_says_what_was_seen() {
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.resize(MAX_HEAD_BYTES + 100, b'a');
        assert!(matches!(
            read(&endless).await,
            Err(HeadError::TooLarge { status: Some(200) })
        ));
        let garbage = vec![b'x'; MAX_HEAD_BYTES + 100];
        assert!(matches!(
            read(&garbage).await,
            Err(HeadError::TooLarge { status: None })
        ));
        let mut request = b"GET / HTTP/1.1\r\n".to_vec();
        request.resize(MAX_HEAD_BYTES + 100, b'a');
        assert!(matches!(
            read(&request).await,
            Err(HeadError::TooLarge { status: None })
        ));
        // A head of exactly the cap is still read.
        let mut full = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        full.resize(MAX_HEAD_BYTES - 4, b'a');
        full.extend_from_slice(b"\r\n\r\n");
        assert_eq!(read(&full).await.unwrap().len(), MAX_HEAD_BYTES);
    }

    #[tokio::test]
    async fn a_bare_line_end_is_refused_before_the_head_ends() {
        // Neither would ever end in CRLF CRLF: the reader must not wait for the deadline.
        for raw in [
            &b"GET /healthz HTTP/1.1\n"[..],
            b"GET /healthz HTTP/1.1\r\nHost: x\n",
            b"\n",
            b"HTTP/1.1 200 OK\r\nX: a\rInjected: 1\r\n",
        ] {
            let (mut client, mut server) = tokio::io::duplex(1024);
            tokio::io::AsyncWriteExt::write_all(&mut client, raw).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let r = tokio::time::timeout(Duration::from_secs(1), read_head(&mut server, deadline)).await;
            assert!(
                matches!(r, Ok(Err(HeadError::Malformed(_)))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[tokio::test]
    async fn an_unfinished_head_ends_at_the_deadline_or_the_close() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET /healthz HTTP/1.1\r")
            .await
            .unwrap();
        let r = read_head(&mut server, Instant::now() + Duration::from_millis(50)).await;
        assert!(matches!(r, Err(HeadError::TimedOut)));
        drop(client);
        assert!(matches!(
            read_head(&mut server, soon()).await,
            Err(HeadError::HungUp { reset: false })
        ));
        assert!(matches!(read(b"HTTP/1.1 200 OK\r\nHost").await, Err(HeadError::Closed)));
    }
}
