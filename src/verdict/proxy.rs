//! Proxy answers → reason codes: a proxy's refusal says why (denied, credentials, upstream),
//! and a web server at the proxy address is not a proxy at all.

use super::step::StepVerdict;
use crate::engine::probe::http::ResponseHead;
use crate::engine::probe::proxy::{TunnelAnswer, TunnelObservation};
use crate::model::duration::FlagDuration;
use crate::model::outcome::ReasonCode;
use crate::model::proxy::ProxyUrl;

/// Maps a proxy's own error status to a reason, or `None` for success (2xx).
pub fn classify_status(head: &ResponseHead) -> Option<ReasonCode> {
    match head.status {
        200..=299 => None,
        407 => Some(ReasonCode::ProxyAuthRequired),
        502..=504 => Some(ReasonCode::ProxyUpstreamFailed),
        400..=499 => Some(ReasonCode::ProxyDenied),
        _ => Some(ReasonCode::ProxyError),
    }
}

/// Describes a proxy's refusal, naming squid's error code when it sends one.
pub fn describe_refusal(proxy: &ProxyUrl, head: &ResponseHead, what: &str) -> String {
    let detail = head
        .header("x-squid-error")
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let creds = if head.status == 407 && proxy.credentials.is_some() {
        "; the credentials in the proxy URL were rejected"
    } else {
        ""
    };
    format!("proxy {proxy} answered {} to {what}{detail}{creds}", head.status)
}

/// The verdict on the proxy's answer to `CONNECT host:port`.
pub fn classify_tunnel(proxy: &ProxyUrl, host: &str, port: u16, tunnel: &TunnelObservation) -> StepVerdict {
    let what = format!("CONNECT {host}:{port}");
    let fail = |reason, message| StepVerdict::fail(reason, message, tunnel.elapsed);
    match &tunnel.answer {
        TunnelAnswer::TimedOut(timeout) => fail(
            ReasonCode::ProxyError,
            format!("proxy {proxy} did not answer {what} within {}", FlagDuration(*timeout)),
        ),
        TunnelAnswer::Invalid(e) => fail(
            ReasonCode::ProxyError,
            format!("proxy {proxy} gave no valid answer to {what}: {e}"),
        ),
        TunnelAnswer::Answered { head, page } => match classify_status(head) {
            None if *page => fail(
                ReasonCode::ProxyError,
                format!(
                    "proxy {proxy} answered {what} like a web server (HTTP {} with a page{}), not with a tunnel: it is not an HTTP proxy; check the proxy URL's host and port",
                    head.status,
                    head.header("server")
                        .map(|s| format!(", server '{s}'"))
                        .unwrap_or_default()
                ),
            ),
            None => StepVerdict::pass(
                format!("proxy {proxy} opened a tunnel to {host}:{port}"),
                tunnel.elapsed,
            ),
            Some(reason) => fail(reason, describe_refusal(proxy, head, &what)),
        },
    }
}

/// The verdict on reaching the proxy itself: whatever stopped the connection, the flow is
/// blocked because the proxy is out of reach.
pub fn classify_proxy_connect(proxy: &ProxyUrl, connect: &StepVerdict) -> StepVerdict {
    let mut o = connect.clone();
    if o.status != crate::model::outcome::ProbeStatus::Pass {
        o.reason = Some(ReasonCode::ProxyUnreachable);
        o.message = format!("cannot reach proxy {proxy}: {}", o.message);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn head(status: u16) -> ResponseHead {
        ResponseHead {
            status,
            headers: vec![],
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(&head(200)), None);
        assert_eq!(classify_status(&head(403)), Some(ReasonCode::ProxyDenied));
        assert_eq!(classify_status(&head(407)), Some(ReasonCode::ProxyAuthRequired));
        assert_eq!(classify_status(&head(503)), Some(ReasonCode::ProxyUpstreamFailed));
        assert_eq!(classify_status(&head(500)), Some(ReasonCode::ProxyError));
    }

    #[test]
    fn a_page_answering_connect_is_not_a_proxy() {
        let proxy = ProxyUrl::parse("http://10.0.0.9:3128").unwrap();
        let answered = |page| TunnelObservation {
            answer: TunnelAnswer::Answered { head: head(200), page },
            elapsed: Duration::ZERO,
        };
        assert_eq!(classify_tunnel(&proxy, "h", 443, &answered(false)).reason, None);
        assert_eq!(
            classify_tunnel(&proxy, "h", 443, &answered(true)).reason,
            Some(ReasonCode::ProxyError)
        );
        let refused = StepVerdict::fail(ReasonCode::TcpRefused, "refused", Duration::ZERO);
        assert_eq!(
            classify_proxy_connect(&proxy, &refused).reason,
            Some(ReasonCode::ProxyUnreachable)
        );
    }
}
