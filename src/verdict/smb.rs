//! SMB answers → reason codes: port 445 open is not enough, the peer must speak SMB (some
//! middleboxes accept every connection and then say nothing, or something else).

use super::step::StepVerdict;
use crate::engine::probe::smb::{SmbAnswer, SmbObservation};
use crate::model::duration::FlagDuration;
use crate::model::outcome::ReasonCode;
use crate::wire::smb2::{Reply, dialect_name};

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
        SmbAnswer::Replied(Reply::Smb2 { dialect: Some(d) }) => StepVerdict::pass(
            format!("{target} SMB2 negotiate answered (dialect {})", dialect_name(*d)),
            o.elapsed,
        ),
        SmbAnswer::Replied(Reply::Smb2 { dialect: None }) => {
            StepVerdict::pass(format!("{target} SMB2 negotiate answered"), o.elapsed)
        }
        SmbAnswer::Replied(Reply::Smb1) => StepVerdict::pass(format!("{target} answered with SMB1 only"), o.elapsed),
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

    #[test]
    fn only_an_smb_answer_passes() {
        let v = judged(SmbAnswer::Replied(Reply::Smb2 { dialect: Some(0x0302) }));
        assert_eq!(v.status, ProbeStatus::Pass);
        assert!(v.message.contains("3.0.2"), "{}", v.message);
        assert_eq!(judged(SmbAnswer::Replied(Reply::Smb1)).status, ProbeStatus::Pass);
        assert_eq!(judged(SmbAnswer::Silent).reason, Some(ReasonCode::SmbNoResponse));
        assert_eq!(judged(SmbAnswer::Closed).reason, Some(ReasonCode::SmbNotSmb));
        assert_eq!(
            judged(SmbAnswer::Failed("reset".into())).reason,
            Some(ReasonCode::SmbNotSmb)
        );
        let http = judged(SmbAnswer::Replied(Reply::Other {
            len: 26,
            shown: "HTTP/1.1.400.Bad".into(),
        }));
        assert_eq!(http.reason, Some(ReasonCode::SmbNotSmb));
        assert!(http.message.contains("HTTP/1.1"), "{}", http.message);
    }
}
