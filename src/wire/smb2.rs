//! SMB2 NEGOTIATE ([MS-SMB2] 2.2.3 and 2.2.4), NetBIOS-framed as on port 445: the request a
//! probe sends and what the first bytes of a reply say.

/// The dialects amlprobe offers: 2.0.2, 2.1, 3.0 and 3.0.2 (3.1.1 needs negotiate contexts,
/// which a probe does not need). A server must pick one of them ([MS-SMB2] 3.3.5.4).
pub const DIALECTS: [u16; 4] = [0x0202, 0x0210, 0x0300, 0x0302];

/// The SMB2 NEGOTIATE command code ([MS-SMB2] 2.2.1.2).
pub const NEGOTIATE: u16 = 0x0000;
/// `SMB2_FLAGS_SERVER_TO_REDIR` ([MS-SMB2] 2.2.1.2): set on every response, never on a request.
const SERVER_TO_REDIR: u32 = 0x0000_0001;
/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: u32 = 0x0000_0000;
/// The errors [MS-SMB2] 3.3.5.4 has a server answer a NEGOTIATE with: `STATUS_INVALID_PARAMETER`
/// (no dialects offered) and `STATUS_NOT_SUPPORTED` (no dialect in common, e.g. a share that
/// allows SMB 3.1.1 only).
pub const NEGOTIATE_ERRORS: [(u32, &str); 2] = [
    (0xC000_000D, "STATUS_INVALID_PARAMETER"),
    (0xC000_00BB, "STATUS_NOT_SUPPORTED"),
];
/// SMB1's NEGOTIATE command and its reply flag ([MS-CIFS] 2.2.3.1, `SMB_FLAGS_REPLY`).
const SMB1_NEGOTIATE: u8 = 0x72;
const SMB1_FLAGS_REPLY: u8 = 0x80;

/// Where fields sit in a NetBIOS-framed SMB2 message: the 4-byte frame header, then the
/// 64-byte SMB2 header ([MS-SMB2] 2.2.1.2), then the NEGOTIATE response body (2.2.4).
const FRAME: usize = 4;
const STATUS_AT: usize = FRAME + 8;
const COMMAND_AT: usize = FRAME + 12;
const FLAGS_AT: usize = FRAME + 16;
const DIALECT_AT: usize = FRAME + 64 + 4;

/// A NetBIOS-framed SMB2 NEGOTIATE offering [`DIALECTS`].
pub fn negotiate_request() -> Vec<u8> {
    let mut smb = Vec::with_capacity(64 + 36 + 8);
    smb.extend_from_slice(b"\xfeSMB");
    smb.extend_from_slice(&64u16.to_le_bytes()); // header StructureSize
    smb.extend_from_slice(&[0; 2]); // CreditCharge
    smb.extend_from_slice(&[0; 4]); // Status
    smb.extend_from_slice(&NEGOTIATE.to_le_bytes()); // Command
    smb.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    smb.extend_from_slice(&[0; 4]); // Flags
    smb.extend_from_slice(&[0; 4]); // NextCommand
    smb.extend_from_slice(&[0; 8]); // MessageId
    smb.extend_from_slice(&[0; 4]); // Reserved
    smb.extend_from_slice(&[0; 4]); // TreeId
    smb.extend_from_slice(&[0; 8]); // SessionId
    smb.extend_from_slice(&[0; 16]); // Signature
    smb.extend_from_slice(&36u16.to_le_bytes()); // body StructureSize
    smb.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    smb.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    smb.extend_from_slice(&[0; 2]); // Reserved
    smb.extend_from_slice(&[0; 4]); // Capabilities
    smb.extend_from_slice(b"amlprobe-client!"); // ClientGuid (16 bytes)
    smb.extend_from_slice(&[0; 8]); // ClientStartTime
    for d in DIALECTS {
        smb.extend_from_slice(&d.to_le_bytes());
    }
    frame(&smb)
}

/// `smb` behind its NetBIOS session header (a zero type byte and a 24-bit length).
fn frame(smb: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(smb.len() as u32).to_be_bytes()[1..]);
    framed.extend_from_slice(smb);
    framed
}

/// What a reply's first bytes say, field by field; [`Smb2::answers_negotiate`] judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An SMB2 message.
    Smb2(Smb2),
    /// An SMB1 message.
    Smb1 {
        /// Whether `SMB_FLAGS_REPLY` is set and the command is NEGOTIATE.
        negotiate_reply: bool,
    },
    /// Not SMB at all.
    Other {
        /// Bytes received.
        len: usize,
        /// The first bytes, printable ASCII kept and the rest shown as `.`.
        shown: String,
    },
}

/// The header fields of an SMB2 message (and the dialect of a NEGOTIATE response), each `None`
/// when the reply ended before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smb2 {
    /// `SMB2_FLAGS_SERVER_TO_REDIR`: a response, not a request (nor an echo of one).
    pub response: Option<bool>,
    /// The command.
    pub command: Option<u16>,
    /// The NT status.
    pub status: Option<u32>,
    /// `DialectRevision` of a NEGOTIATE response.
    pub dialect: Option<u16>,
}

/// What an SMB2 message says about amlprobe's NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiation {
    /// A server chose this dialect, one of [`DIALECTS`].
    Chose(u16),
    /// A server refused it with one of [`NEGOTIATE_ERRORS`] (name given): it speaks SMB2.
    Refused(&'static str),
    /// Not a server's answer to a NEGOTIATE; the reason, in words.
    NotAnAnswer(String),
}

impl Smb2 {
    /// Whether this is a server's answer to amlprobe's NEGOTIATE: the response flag, the
    /// NEGOTIATE command, a status a server answers a NEGOTIATE with and, on success, a dialect
    /// amlprobe offered. An echo of the request has none of the first and "dialect 0.0.1".
    pub fn answers_negotiate(&self) -> Negotiation {
        let not = |why: String| Negotiation::NotAnAnswer(why);
        let (Some(response), Some(command), Some(status)) = (self.response, self.command, self.status) else {
            return not("an SMB2 header cut short".into());
        };
        if !response {
            return not("an SMB2 request, not a response (an echo of amlprobe's own NEGOTIATE?)".into());
        }
        if command != NEGOTIATE {
            return not(format!("an SMB2 response to command {command:#06x}, not to NEGOTIATE"));
        }
        if let Some((_, name)) = NEGOTIATE_ERRORS.iter().find(|(code, _)| *code == status) {
            return Negotiation::Refused(name);
        }
        if status != STATUS_SUCCESS {
            return not(format!(
                "a NEGOTIATE response with status {status:#010x}, which no server answers a NEGOTIATE with"
            ));
        }
        match self.dialect {
            Some(d) if DIALECTS.contains(&d) => Negotiation::Chose(d),
            Some(d) => not(format!(
                "a NEGOTIATE response choosing dialect {}, which amlprobe did not offer",
                dialect_name(d)
            )),
            None => not("a NEGOTIATE response cut short before its dialect".into()),
        }
    }
}

impl Reply {
    /// The bytes a probe needs before it can tell SMB from something else (NetBIOS header and
    /// protocol id).
    pub const MIN_LEN: usize = FRAME + 4;
    /// The bytes that hold everything [`Reply::parse`] reads: up to the chosen dialect.
    pub const WANTED_LEN: usize = DIALECT_AT + 2;

    /// How many bytes the reply whose first bytes are `start` has in all, by its NetBIOS
    /// header, capped at [`Reply::WANTED_LEN`]: a probe reads no further.
    pub fn wanted(start: &[u8]) -> usize {
        match start.get(..FRAME) {
            Some(h) => (FRAME + u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize).min(Self::WANTED_LEN),
            None => Self::WANTED_LEN,
        }
    }

    /// Decodes the start of a reply.
    pub fn parse(reply: &[u8]) -> Reply {
        let u16_at = |at: usize| reply.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |at: usize| {
            reply
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        match reply.get(FRAME..FRAME + 4) {
            Some(b"\xfeSMB") => Reply::Smb2(Smb2 {
                response: u32_at(FLAGS_AT).map(|f| f & SERVER_TO_REDIR != 0),
                command: u16_at(COMMAND_AT),
                status: u32_at(STATUS_AT),
                dialect: u16_at(DIALECT_AT),
            }),
            Some(b"\xffSMB") => Reply::Smb1 {
                negotiate_reply: reply.get(FRAME + 4) == Some(&SMB1_NEGOTIATE)
                    && reply.get(FRAME + 9).is_some_and(|f| f & SMB1_FLAGS_REPLY != 0),
            },
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
pub(crate) mod tests {
    use super::*;

    /// An SMB2 message as a server would frame it: the header's status, command and flags set,
    /// the rest zero; `body` after the 64-byte header.
    pub(crate) fn smb2_message(status: u32, command: u16, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut smb = b"\xfeSMB".to_vec();
        smb.extend_from_slice(&64u16.to_le_bytes());
        smb.extend_from_slice(&[0; 2]);
        smb.extend_from_slice(&status.to_le_bytes());
        smb.extend_from_slice(&command.to_le_bytes());
        smb.extend_from_slice(&1u16.to_le_bytes());
        smb.extend_from_slice(&flags.to_le_bytes());
        smb.resize(64, 0);
        smb.extend_from_slice(body);
        frame(&smb)
    }

    /// A successful NEGOTIATE response choosing `dialect` ([MS-SMB2] 2.2.4, StructureSize 65).
    pub(crate) fn negotiate_response(dialect: u16) -> Vec<u8> {
        let mut body = 65u16.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode
        body.extend_from_slice(&dialect.to_le_bytes());
        body.resize(65, 0);
        smb2_message(STATUS_SUCCESS, NEGOTIATE, SERVER_TO_REDIR, &body)
    }

    fn negotiation(bytes: &[u8]) -> Negotiation {
        match Reply::parse(bytes) {
            Reply::Smb2(smb2) => smb2.answers_negotiate(),
            other => panic!("not SMB2: {other:?}"),
        }
    }

    #[test]
    fn request_is_well_framed() {
        let r = negotiate_request();
        let len = u32::from_be_bytes([0, r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        assert_eq!(&r[4..8], b"\xfeSMB");
        assert_eq!(len, 64 + 36 + 8);
        assert_eq!(Reply::wanted(&r), Reply::WANTED_LEN);
        assert_eq!(Reply::wanted(&smb2_message(0, 0, 1, &[0; 9])), 4 + 64 + 6);
        assert_eq!(Reply::wanted(b"\0\0\0\x10"), 20);
    }

    #[test]
    fn a_server_answer_chooses_an_offered_dialect() {
        for d in DIALECTS {
            assert_eq!(negotiation(&negotiate_response(d)), Negotiation::Chose(d));
        }
        assert_eq!(dialect_name(0x0302), "3.0.2");
        // The error response of [MS-SMB2] 2.2.2 (StructureSize 9) carries no dialect.
        let refused = smb2_message(0xC000_00BB, NEGOTIATE, SERVER_TO_REDIR, &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(negotiation(&refused), Negotiation::Refused("STATUS_NOT_SUPPORTED"));
    }

    /// The exact bytes amlprobe sends, sent back: "dialect 0.0.1" before, not an answer now.
    #[test]
    fn an_echo_of_amlprobes_own_request_is_not_an_answer() {
        let echo = negotiate_request();
        let Negotiation::NotAnAnswer(why) = negotiation(&echo) else {
            panic!("an echo passed");
        };
        assert!(why.contains("request, not a response"), "{why}");
        // Only its first bytes, as a probe that stops early would see them.
        assert!(matches!(
            negotiation(&echo[..Reply::WANTED_LEN]),
            Negotiation::NotAnAnswer(_)
        ));
    }

    #[test]
    fn every_field_must_be_a_servers_answer() {
        let not = |bytes: &[u8], says: &str| match negotiation(bytes) {
            Negotiation::NotAnAnswer(why) => assert!(why.contains(says), "{why}"),
            other => panic!("{other:?} for {bytes:02x?}"),
        };
        let mut request_flagged = negotiate_request();
        request_flagged[FLAGS_AT] = 0; // what a request has
        not(&request_flagged, "request, not a response");
        not(
            &smb2_message(0, 0x0001, SERVER_TO_REDIR, &[65, 0, 1, 0, 2, 3]),
            "command 0x0001",
        );
        not(
            &smb2_message(0xC000_0022, NEGOTIATE, SERVER_TO_REDIR, &[9, 0]),
            "status 0xc0000022",
        );
        not(
            &negotiate_response(0x0311),
            "dialect 3.1.1, which amlprobe did not offer",
        );
        not(&negotiate_response(0x0001), "dialect 0.0.1");
        not(
            &negotiate_response(0x0302)[..DIALECT_AT],
            "cut short before its dialect",
        );
        not(&negotiate_response(0x0302)[..FLAGS_AT], "header cut short");
        // The twelve bytes an older test peer sent: SMB2's magic and nothing of an answer.
        not(
            b"\x00\x00\x00\x48\xfeSMB\x40\x00\x00\x00\x00\x00\x00\x00",
            "header cut short",
        );
    }

    #[test]
    fn smb1_and_other_replies_are_decoded() {
        let mut smb1 = b"\0\0\0\x20\xffSMB\x72\0\0\0\0\x98".to_vec();
        assert_eq!(Reply::parse(&smb1), Reply::Smb1 { negotiate_reply: true });
        smb1[FRAME + 9] = 0x18; // no SMB_FLAGS_REPLY: a request
        assert_eq!(Reply::parse(&smb1), Reply::Smb1 { negotiate_reply: false });
        assert_eq!(
            Reply::parse(b"\0\0\0\x10\xffSMB"),
            Reply::Smb1 { negotiate_reply: false }
        );
        assert_eq!(
            Reply::parse(b"HTTP/1.1 400 Bad Request\r\n"),
            Reply::Other {
                len: 26,
                shown: "HTTP/1.1.400.Bad".into()
            }
        );
    }
}
