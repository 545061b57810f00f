//! SMB on 445: send an SMB2 NEGOTIATE and record what comes back. An open port alone proves
//! little: some middleboxes accept every connection.

use crate::wire::smb2::{self, Reply};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the peer answered the NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmbAnswer {
    /// Nothing within the deadline.
    Silent,
    /// The peer closed the connection before answering.
    Closed,
    /// The exchange failed with this socket error.
    Failed(String),
    /// A reply, decoded.
    Replied(Reply),
}

/// What negotiating SMB observed.
#[derive(Debug, Clone)]
pub struct SmbObservation {
    /// `host:port`.
    pub target: String,
    /// The answer.
    pub answer: SmbAnswer,
    /// The deadline that applied.
    pub waited: Duration,
    /// Time taken.
    pub elapsed: Duration,
}

/// Negotiates SMB2 over a connected stream.
pub async fn negotiate(stream: &mut TcpStream, target: &str, timeout: Duration) -> SmbObservation {
    let start = Instant::now();
    let io = async {
        stream.write_all(&smb2::negotiate_request()).await?;
        let mut reply = vec![0u8; 256];
        let mut filled = 0;
        while filled < Reply::MIN_LEN {
            let n = stream.read(&mut reply[filled..]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            filled += n;
        }
        reply.truncate(filled);
        Ok(reply)
    };
    let answer = match tokio::time::timeout(timeout, io).await {
        Err(_) => SmbAnswer::Silent,
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => SmbAnswer::Closed,
        Ok(Err(e)) => SmbAnswer::Failed(e.to_string()),
        Ok(Ok(reply)) => SmbAnswer::Replied(Reply::parse(&reply)),
    };
    SmbObservation {
        target: target.to_string(),
        answer,
        waited: timeout,
        elapsed: start.elapsed(),
    }
}
