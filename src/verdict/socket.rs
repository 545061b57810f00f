//! Socket outcomes → reason codes: `tcp_*` for a connect, `udp_*` for a datagram exchange.
//! TCP tells dropped (silence) from refused (a reset) from unreachable (ICMP or a local rule).
//! UDP is asymmetric: only a reply passes and only an ICMP error fails, because many UDP
//! services ignore datagrams they don't understand, so silence proves nothing.

use super::step::StepVerdict;
use crate::engine::probe::{SocketObservation, SocketOutcome};
use crate::model::duration::FlagDuration;
use crate::model::outcome::ReasonCode;

/// The verdict on a TCP connect.
pub fn classify_tcp(o: &SocketObservation) -> StepVerdict {
    let addr = o.peer;
    let fail = |reason, message: String| StepVerdict::fail(reason, message, o.elapsed);
    match &o.outcome {
        SocketOutcome::Connected | SocketOutcome::Replied(_) => {
            StepVerdict::pass(format!("connected to {addr}"), o.elapsed)
        }
        SocketOutcome::Refused => fail(
            ReasonCode::TcpRefused,
            format!("{addr} refused the connection (TCP reset)"),
        ),
        SocketOutcome::NetworkUnreachable => fail(
            ReasonCode::TcpUnreachable,
            format!("no route to the network of {addr} from this host"),
        ),
        SocketOutcome::HostUnreachable => fail(
            ReasonCode::TcpUnreachable,
            format!("{addr} is unreachable (ICMP unreachable or no route)"),
        ),
        SocketOutcome::LocalFirewall => fail(
            ReasonCode::TcpUnreachable,
            format!("a firewall rule on this host blocks connections to {addr}"),
        ),
        SocketOutcome::KernelTimeout => fail(ReasonCode::TcpTimeout, format!("connecting to {addr} timed out")),
        SocketOutcome::Silent => fail(
            ReasonCode::TcpTimeout,
            format!(
                "no answer from {addr} within {}: packets are silently dropped",
                FlagDuration(o.waited)
            ),
        ),
        SocketOutcome::Failed(e) => fail(ReasonCode::TcpError, format!("connecting to {addr} failed: {e}")),
    }
}

/// The verdict on a UDP exchange.
pub fn classify_udp(o: &SocketObservation) -> StepVerdict {
    let addr = o.peer;
    match &o.outcome {
        SocketOutcome::Replied(n) => StepVerdict::pass(format!("{addr} replied with {n} bytes"), o.elapsed),
        SocketOutcome::Connected => StepVerdict::pass(format!("{addr} replied"), o.elapsed),
        SocketOutcome::Refused => StepVerdict::fail(
            ReasonCode::UdpRefused,
            format!("{addr} answered with ICMP port unreachable: nothing listens there or a firewall rejects it"),
            o.elapsed,
        ),
        SocketOutcome::NetworkUnreachable | SocketOutcome::HostUnreachable | SocketOutcome::LocalFirewall => {
            let why = match o.outcome {
                SocketOutcome::NetworkUnreachable => "no route to its network from this host",
                SocketOutcome::HostUnreachable => "ICMP host unreachable or no route",
                _ => "a firewall rule on this host blocks it",
            };
            StepVerdict::fail(
                ReasonCode::UdpRefused,
                format!("{addr} is unreachable: {why}"),
                o.elapsed,
            )
        }
        SocketOutcome::Failed(e) => StepVerdict::inconclusive(
            ReasonCode::UdpNoReply,
            format!("sending to {addr} failed: {e}"),
            o.elapsed,
        ),
        SocketOutcome::Silent | SocketOutcome::KernelTimeout => StepVerdict::inconclusive(
            ReasonCode::UdpNoReply,
            format!(
                "no reply from {addr} within {} (--udp-timeout); UDP services often stay silent, so this is not proof of a block",
                FlagDuration(o.waited)
            ),
            o.elapsed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::ProbeStatus;
    use std::time::Duration;

    fn seen(outcome: SocketOutcome) -> SocketObservation {
        SocketObservation {
            peer: "10.0.0.4:443".parse().unwrap(),
            outcome,
            waited: Duration::from_secs(2),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn tcp_outcomes_map_to_their_reason() {
        let reason = |o| classify_tcp(&seen(o)).reason;
        assert_eq!(reason(SocketOutcome::Connected), None);
        assert_eq!(reason(SocketOutcome::Refused), Some(ReasonCode::TcpRefused));
        assert_eq!(
            reason(SocketOutcome::NetworkUnreachable),
            Some(ReasonCode::TcpUnreachable)
        );
        assert_eq!(reason(SocketOutcome::HostUnreachable), Some(ReasonCode::TcpUnreachable));
        assert_eq!(reason(SocketOutcome::LocalFirewall), Some(ReasonCode::TcpUnreachable));
        assert_eq!(reason(SocketOutcome::KernelTimeout), Some(ReasonCode::TcpTimeout));
        assert_eq!(reason(SocketOutcome::Silent), Some(ReasonCode::TcpTimeout));
        let other = classify_tcp(&seen(SocketOutcome::Failed("Cannot assign requested address".into())));
        assert_eq!(other.reason, Some(ReasonCode::TcpError));
        assert!(other.message.contains("10.0.0.4:443") && other.message.contains("Cannot assign"));
    }

    #[test]
    fn a_silent_tcp_peer_names_the_deadline_as_the_flag_takes_it() {
        let v = classify_tcp(&seen(SocketOutcome::Silent));
        assert!(v.message.contains("within 2s"), "{}", v.message);
    }

    #[test]
    fn udp_fails_only_on_an_icmp_error_and_silence_is_inconclusive() {
        let udp = |o| classify_udp(&seen(o));
        assert_eq!(udp(SocketOutcome::Replied(4)).status, ProbeStatus::Pass);
        for blocked in [
            SocketOutcome::Refused,
            SocketOutcome::NetworkUnreachable,
            SocketOutcome::HostUnreachable,
            SocketOutcome::LocalFirewall,
        ] {
            let v = udp(blocked);
            assert_eq!((v.status, v.reason), (ProbeStatus::Fail, Some(ReasonCode::UdpRefused)));
        }
        for unsure in [SocketOutcome::Silent, SocketOutcome::Failed("x".into())] {
            let v = udp(unsure);
            assert_eq!(
                (v.status, v.reason),
                (ProbeStatus::Inconclusive, Some(ReasonCode::UdpNoReply))
            );
        }
    }
}
