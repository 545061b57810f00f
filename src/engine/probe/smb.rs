//! SMB on 445: send an SMB2 NEGOTIATE and check that SMB answers. An open port alone proves
//! little: some middleboxes accept every connection.

use super::Observation;
use crate::model::outcome::ReasonCode;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A NetBIOS-framed SMB2 NEGOTIATE offering dialects 2.0.2 to 3.0.2 (3.1.1 needs negotiate
/// contexts, which a probe does not need).
fn negotiate_request() -> Vec<u8> {
    let dialects: [u16; 4] = [0x0202, 0x0210, 0x0300, 0x0302];
    let mut smb = Vec::with_capacity(64 + 36 + 8);
    smb.extend_from_slice(b"\xfeSMB");
    smb.extend_from_slice(&64u16.to_le_bytes()); // header StructureSize
    smb.extend_from_slice(&[0; 2]); // CreditCharge
    smb.extend_from_slice(&[0; 4]); // Status
    smb.extend_from_slice(&0u16.to_le_bytes()); // Command: NEGOTIATE
    smb.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    smb.extend_from_slice(&[0; 4]); // Flags
    smb.extend_from_slice(&[0; 4]); // NextCommand
    smb.extend_from_slice(&[0; 8]); // MessageId
    smb.extend_from_slice(&[0; 4]); // Reserved
    smb.extend_from_slice(&[0; 4]); // TreeId
    smb.extend_from_slice(&[0; 8]); // SessionId
    smb.extend_from_slice(&[0; 16]); // Signature
    smb.extend_from_slice(&36u16.to_le_bytes()); // body StructureSize
    smb.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    smb.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    smb.extend_from_slice(&[0; 2]); // Reserved
    smb.extend_from_slice(&[0; 4]); // Capabilities
    smb.extend_from_slice(b"amlprobe-client!"); // ClientGuid (16 bytes)
    smb.extend_from_slice(&[0; 8]); // ClientStartTime
    for d in dialects {
        smb.extend_from_slice(&d.to_le_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(smb.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(&smb);
    frame
}

/// What the first bytes of a reply say.
fn judge_reply(reply: &[u8]) -> Result<String, String> {
    match reply.get(4..8) {
        Some(b"\xfeSMB") => {
            let dialect = reply
                .get(4 + 64 + 4..4 + 64 + 6)
                .map(|b| u16::from_le_bytes([b[0], b[1]]));
            Ok(match dialect {
                Some(d) => format!(
                    "SMB2 negotiate answered (dialect {}.{}.{})",
                    d >> 8,
                    (d >> 4) & 0xf,
                    d & 0xf
                ),
                None => "SMB2 negotiate answered".into(),
            })
        }
        Some(b"\xffSMB") => Ok("answered with SMB1 only".into()),
        _ => {
            let shown: String = reply
                .iter()
                .take(16)
                .map(|b| if b.is_ascii_graphic() { *b as char } else { '.' })
                .collect();
            Err(format!("answered {} bytes that are not SMB ('{shown}')", reply.len()))
        }
    }
}

/// Negotiates SMB2 over a connected stream.
pub async fn negotiate(stream: &mut TcpStream, target: &str, timeout: Duration) -> Observation {
    let start = Instant::now();
    let io = async {
        stream.write_all(&negotiate_request()).await?;
        let mut reply = vec![0u8; 256];
        let mut filled = 0;
        while filled < 8 {
            let n = stream.read(&mut reply[filled..]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            filled += n;
        }
        reply.truncate(filled);
        Ok(reply)
    };
    match tokio::time::timeout(timeout, io).await {
        Err(_) => Observation::fail(
            ReasonCode::SmbNoResponse,
            format!("{target} accepted the connection but sent no SMB answer within {timeout:?}"),
            start.elapsed(),
        ),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Observation::fail(
            ReasonCode::SmbNotSmb,
            format!("{target} accepted the connection, then closed it without an SMB answer (a middlebox?)"),
            start.elapsed(),
        ),
        Ok(Err(e)) => Observation::fail(
            ReasonCode::SmbNotSmb,
            format!("{target}: SMB negotiation failed: {e}"),
            start.elapsed(),
        ),
        Ok(Ok(reply)) => match judge_reply(&reply) {
            Ok(m) => Observation::pass(format!("{target} {m}"), start.elapsed()),
            Err(m) => Observation::fail(
                ReasonCode::SmbNotSmb,
                format!("{target} {m}: a middlebox, not Azure Files"),
                start.elapsed(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_well_framed() {
        let r = negotiate_request();
        let len = u32::from_be_bytes([0, r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        assert_eq!(&r[4..8], b"\xfeSMB");
        assert_eq!(len, 64 + 36 + 8);
    }

    #[test]
    fn replies_are_judged() {
        let mut smb2 = vec![0, 0, 0, 100];
        smb2.extend_from_slice(b"\xfeSMB");
        smb2.resize(4 + 64 + 4, 0);
        smb2.extend_from_slice(&0x0302u16.to_le_bytes());
        assert!(judge_reply(&smb2).unwrap().contains("3.0.2"));
        assert!(judge_reply(b"HTTP/1.1 400 Bad Request\r\n").is_err());
    }
}
