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

/// Negotiates SMB2 over a connected stream: reads the reply up to its chosen dialect (or its
/// end, if shorter), so the header can be judged whole. What arrived before the deadline counts.
pub async fn negotiate(stream: &mut TcpStream, target: &str, timeout: Duration) -> SmbObservation {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut reply = [0u8; Reply::WANTED_LEN];
    let mut filled = 0;
    let read = async {
        stream.write_all(&smb2::negotiate_request()).await?;
        loop {
            let n = stream.read(&mut reply[filled..]).await?;
            filled += n;
            if n == 0 || filled >= Reply::wanted(&reply[..filled]) {
                return Ok::<_, io::Error>(());
            }
        }
    };
    let ended = tokio::time::timeout_at(deadline, read).await;
    let answer = match ended {
        _ if filled >= Reply::MIN_LEN => SmbAnswer::Replied(Reply::parse(&reply[..filled])),
        Err(_) => SmbAnswer::Silent,
        Ok(Err(e)) => SmbAnswer::Failed(e.to_string()),
        Ok(Ok(())) => SmbAnswer::Closed,
    };
    SmbObservation {
        target: target.to_string(),
        answer,
        waited: timeout,
        elapsed: start.elapsed(),
    }
}
