//! SMB2 NEGOTIATE ([MS-SMB2] 2.2.3 and 2.2.4), NetBIOS-framed as on port 445: the request a
//! probe sends and what the first bytes of a reply say.

/// A NetBIOS-framed SMB2 NEGOTIATE offering dialects 2.0.2 to 3.0.2 (3.1.1 needs negotiate
/// contexts, which a probe does not need).
pub fn negotiate_request() -> Vec<u8> {
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

/// What a reply's first bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An SMB2 response; the dialect it chose when the reply is long enough to hold it.
    Smb2 {
        /// `0x0302` for 3.0.2.
        dialect: Option<u16>,
    },
    /// An SMB1 response: the server speaks only the old protocol.
    Smb1,
    /// Not SMB at all.
    Other {
        /// Bytes received.
        len: usize,
        /// The first bytes, printable ASCII kept and the rest shown as `.`.
        shown: String,
    },
}

impl Reply {
    /// The bytes a probe needs before it can tell (NetBIOS header and protocol id).
    pub const MIN_LEN: usize = 8;

    /// Decodes the start of a reply.
    pub fn parse(reply: &[u8]) -> Reply {
        match reply.get(4..8) {
            Some(b"\xfeSMB") => Reply::Smb2 {
                dialect: reply
                    .get(4 + 64 + 4..4 + 64 + 6)
                    .map(|b| u16::from_le_bytes([b[0], b[1]])),
            },
            Some(b"\xffSMB") => Reply::Smb1,
            _ => Reply::Other {
                len: reply.len(),
                shown: reply
                    .iter()
                    .take(16)
                    .map(|b| if b.is_ascii_graphic() { *b as char } else { '.' })
                    .collect(),
            },
        }
    }
}

/// `3.0.2` for `0x0302`.
pub fn dialect_name(d: u16) -> String {
    format!("{}.{}.{}", d >> 8, (d >> 4) & 0xf, d & 0xf)
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
    fn replies_are_decoded() {
        let mut smb2 = vec![0, 0, 0, 100];
        smb2.extend_from_slice(b"\xfeSMB");
        smb2.resize(4 + 64 + 4, 0);
        smb2.extend_from_slice(&0x0302u16.to_le_bytes());
        assert_eq!(Reply::parse(&smb2), Reply::Smb2 { dialect: Some(0x0302) });
        assert_eq!(dialect_name(0x0302), "3.0.2");
        assert_eq!(Reply::parse(&smb2[..8]), Reply::Smb2 { dialect: None });
        assert_eq!(Reply::parse(b"\0\0\0\x10\xffSMB"), Reply::Smb1);
        assert_eq!(
            Reply::parse(b"HTTP/1.1 400 Bad Request\r\n"),
            Reply::Other {
                len: 26,
                shown: "HTTP/1.1.400.Bad".into()
            }
        );
    }
}
