//! SMB answers → reason codes: port 445 open is not enough, the peer must speak SMB (some
//! middleboxes accept every connection and then say nothing, or something else).

use super::step::StepVerdict;
use crate::engine::probe::smb::{SmbAnswer, SmbObservation};
use crate::model::duration::FlagDuration;
use crate::model::outcome::ReasonCode;
use crate::wire::smb2::{Negotiation, Reply, dialect_name};

/// The verdict on an SMB2 negotiation.
pub fn classify(o: &SmbObservation) -> StepVerdict {
    let target = &o.target;
    let not_smb = |message: String| StepVerdict::fail(ReasonCode::SmbNotSmb, message, o.elapsed);
    match &o.answer {
        SmbAnswer::Silent => StepVerdict::fail(
            ReasonCode::SmbNoResponse,
            format!(
                "{target} accepted the connection but sent no SMB answer within {}",
                FlagDuration(o.waited)
            ),
            o.elapsed,
        ),
        SmbAnswer::Closed => not_smb(format!(
            "{target} accepted the connection, then closed it without an SMB answer (a middlebox?)"
        )),
        SmbAnswer::Failed(e) => not_smb(format!("{target}: SMB negotiation failed: {e}")),
        SmbAnswer::Replied(Reply::Smb2(smb2)) => match smb2.answers_negotiate() {
            Negotiation::Chose(d) => StepVerdict::pass(
                format!("{target} SMB2 negotiate answered (dialect {})", dialect_name(d)),
                o.elapsed,
            ),
            // A server that shares no dialect with amlprobe's still answered in SMB2: port 445
            // reaches an SMB server (a share may allow SMB 3.1.1 only).
            Negotiation::Refused(status) => StepVerdict::pass(
                format!(
                    "{target} SMB2 server answered the negotiate with {status} (no dialect in common with amlprobe's 2.0.2 to 3.0.2)"
                ),
                o.elapsed,
            ),
            Negotiation::NotAnAnswer(why) => {
                not_smb(format!("{target} answered with {why}: a middlebox, not Azure Files"))
            }
        },
        SmbAnswer::Replied(Reply::Smb1 { negotiate_reply: true }) => {
            StepVerdict::pass(format!("{target} answered with SMB1 only"), o.elapsed)
        }
        SmbAnswer::Replied(Reply::Smb1 { negotiate_reply: false }) => not_smb(format!(
            "{target} answered with an SMB1 message that is not a NEGOTIATE reply: a middlebox, not Azure Files"
        )),
        SmbAnswer::Replied(Reply::Other { len, shown }) => not_smb(format!(
            "{target} answered {len} bytes that are not SMB ('{shown}'): a middlebox, not Azure Files"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ProbeStatus;
    use std::time::Duration;

    fn judged(answer: SmbAnswer) -> StepVerdict {
        classify(&SmbObservation {
            target: "st.file.core.windows.net:445".into(),
            answer,
            waited: Duration::from_secs(2),
            elapsed: Duration::ZERO,
        })
    }

    fn replied(bytes: &[u8]) -> StepVerdict {
        judged(SmbAnswer::Replied(Reply::parse(bytes)))
    }

    #[test]
    fn only_a_servers_negotiate_answer_passes() {
        use crate::wire::smb2::tests::{negotiate_response, smb2_message};
        let v = replied(&negotiate_response(0x0302));
        assert_eq!(v.status, ProbeStatus::Pass);
        assert!(v.message.contains("(dialect 3.0.2)"), "{}", v.message);
        let refused = replied(&smb2_message(0xC000_00BB, 0, 1, &[9, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(refused.status, ProbeStatus::Pass, "{}", refused.message);
        assert!(refused.message.contains("STATUS_NOT_SUPPORTED"), "{}", refused.message);
        assert_eq!(replied(b"\0\0\0\x20\xffSMB\x72\0\0\0\0\x98").status, ProbeStatus::Pass);
        assert_eq!(judged(SmbAnswer::Silent).reason, Some(ReasonCode::SmbNoResponse));
        assert_eq!(judged(SmbAnswer::Closed).reason, Some(ReasonCode::SmbNotSmb));
        assert_eq!(
            judged(SmbAnswer::Failed("reset".into())).reason,
            Some(ReasonCode::SmbNotSmb)
        );
        let http = replied(b"HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(http.reason, Some(ReasonCode::SmbNotSmb));
        assert!(http.message.contains("HTTP/1.1"), "{}", http.message);
    }

    /// A middlebox that sends amlprobe's NEGOTIATE back was judged "works (dialect 0.0.1)".
    #[test]
    fn an_echo_of_the_request_is_not_smb() {
        let echo = replied(&crate::wire::smb2::negotiate_request());
        assert_eq!(echo.reason, Some(ReasonCode::SmbNotSmb), "{}", echo.message);
        assert!(
            echo.message.contains("an echo of amlprobe's own NEGOTIATE"),
            "{}",
            echo.message
        );
        assert!(!echo.message.contains("0.0.1"), "{}", echo.message);
        for wrong in [
            crate::wire::smb2::tests::negotiate_response(0x0311),
            crate::wire::smb2::tests::smb2_message(0, 5, 1, &[0; 70]),
            crate::wire::smb2::tests::smb2_message(0x8000_0005, 0, 1, &[0; 70]),
            b"\0\0\0\x20\xffSMB\x72\0\0\0\0\x18".to_vec(),
        ] {
            assert_eq!(replied(&wrong).reason, Some(ReasonCode::SmbNotSmb), "{wrong:02x?}");
        }
    }
}
