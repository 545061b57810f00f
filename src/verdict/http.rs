//! HTTP answers → reason codes: who answered (the Azure front end, a firewall denying the
//! request, a block page, the proxy itself) and whether the flow asked for Azure's headers.

use super::firewall;
use super::proxy::{classify_status, describe_refusal};
use super::step::StepVerdict;
use crate::engine::probe::http::{Exchange, ExchangeError};
use crate::model::outcome::ReasonCode;
use crate::model::proxy::ProxyUrl;
use crate::model::suite::HttpCheck;
use crate::report::schema::HttpDetails;

/// The verdict on an origin's answer (direct, or through a CONNECT tunnel); `over_tls` when the
/// request went inside a TLS session, where no middlebox could read the name it carried.
pub fn classify_response(
    host: &str,
    exchange: &Exchange,
    check: HttpCheck,
    over_tls: bool,
) -> (StepVerdict, Option<HttpDetails>) {
    let elapsed = exchange.elapsed;
    let head = match &exchange.response {
        Ok(h) => h,
        Err(e) => {
            let (reason, message) = match e {
                ExchangeError::TooLarge(too_large) => (
                    ReasonCode::HttpError,
                    format!("{host} sent {too_large}; amlprobe stopped reading there"),
                ),
                ExchangeError::HungUp { reset } if !over_tls => (
                    ReasonCode::HttpClosedAfterRequest,
                    format!(
                        "{host} accepted the connection, then {} it right after the HTTP request without answering: a firewall or NVA denying the name it read in the request",
                        if *reset { "reset" } else { "closed" }
                    ),
                ),
                ExchangeError::HungUp { reset } => (
                    ReasonCode::HttpError,
                    format!(
                        "no valid HTTP response from {host}: the TLS session was {} before a byte of an answer",
                        if *reset { "reset" } else { "closed" }
                    ),
                ),
                ExchangeError::Other(e) => (
                    ReasonCode::HttpError,
                    format!("no valid HTTP response from {host}: {e}"),
                ),
            };
            return (StepVerdict::fail(reason, message, elapsed), None);
        }
    };
    let details = HttpDetails {
        status: head.status,
        server: head.header("server").map(str::to_string),
        azure: head.looks_like_azure(),
        firewall: firewall::azure_firewall_denial(head.status, &exchange.body),
        block_page: None,
    };
    let server = details
        .server
        .as_deref()
        .map(|s| format!(", server '{s}'"))
        .unwrap_or_default();
    let mut details = details;
    if !details.azure {
        details.block_page = firewall::block_page(head, &exchange.body).map(str::to_string);
    }
    let obs = if let Some(denial) = &details.firewall {
        // Checked first, for every flow: a denial is never the service answering.
        let text = if denial.text.is_empty() {
            String::new()
        } else {
            format!(": '{}'", denial.text)
        };
        StepVerdict::fail(
            ReasonCode::HttpFirewallDenied,
            format!(
                "a firewall answered for {host} and denied the request (HTTP {}{server}){text}",
                head.status
            ),
            elapsed,
        )
    } else if let Some(who) = &details.block_page {
        StepVerdict::fail(
            ReasonCode::HttpBlockPage,
            format!(
                "{host} answered HTTP {}{server} with {who}'s block page, not the service",
                head.status
            ),
            elapsed,
        )
    } else if check == HttpCheck::Azure && !details.azure {
        StepVerdict::fail(
            ReasonCode::HttpNotAzure,
            format!(
                "{host} answered HTTP {}{server} without Azure's headers: a block page or captive portal, not the service",
                head.status
            ),
            elapsed,
        )
    } else {
        StepVerdict::pass(format!("{host} answered HTTP {}{server}", head.status), elapsed)
    };
    (obs, Some(details))
}

/// The verdict on a plain-HTTP request sent to `proxy` in absolute form. A proxy answers such
/// requests itself when it refuses them: an error status without Azure's headers is the
/// proxy's, anything else is the origin's answer.
pub fn classify_proxied_response(
    host: &str,
    proxy: &ProxyUrl,
    exchange: &Exchange,
    check: HttpCheck,
) -> (StepVerdict, Option<HttpDetails>) {
    if let Ok(head) = &exchange.response
        && !head.looks_like_azure()
        && firewall::azure_firewall_denial(head.status, &exchange.body).is_none()
        && let Some(reason) = classify_status(head).filter(|r| *r != ReasonCode::ProxyError)
    {
        let message = describe_refusal(proxy, head, &format!("GET http://{host}/"));
        return (StepVerdict::fail(reason, message, exchange.elapsed), None);
    }
    classify_response(host, exchange, check, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::probe::http::HeadTooLarge;
    use crate::wire::http1::parse_response;
    use std::time::Duration;

    fn answered(raw: &[u8]) -> Exchange {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        Exchange {
            response: Ok(parse_response(&raw[..split]).unwrap()),
            body: raw[split..].to_vec(),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn azure_headers_are_required_only_when_asked() {
        let block = answered(b"HTTP/1.1 200 OK\r\nServer: FortiGate\r\n\r\n");
        let (o, _) = classify_response("h", &block, HttpCheck::Azure, false);
        assert_eq!(o.reason, Some(ReasonCode::HttpNotAzure));
        let (o, d) = classify_response("h", &block, HttpCheck::Any, false);
        assert_eq!((o.reason, d.unwrap().status), (None, 200));
        let none = Exchange {
            response: Err(ExchangeError::Other("x".into())),
            body: Vec::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            classify_response("h", &none, HttpCheck::Any, false).0.reason,
            Some(ReasonCode::HttpError)
        );
    }

    #[test]
    fn an_endless_head_says_what_was_seen() {
        let endless = Exchange {
            response: Err(ExchangeError::TooLarge(HeadTooLarge::Headers(200))),
            body: Vec::new(),
            elapsed: Duration::ZERO,
        };
        let (o, _) = classify_response("h", &endless, HttpCheck::Any, false);
        assert_eq!(o.reason, Some(ReasonCode::HttpError));
        assert!(
            o.message
                .contains("HTTP 200 response whose head did not end within 8 KiB"),
            "{}",
            o.message
        );
    }

    #[test]
    fn a_proxy_refusal_is_told_from_the_origin_answer() {
        let proxy = ProxyUrl::parse("http://10.0.0.9:3128").unwrap();
        let denied = answered(b"HTTP/1.1 403 Forbidden\r\nServer: squid\r\n\r\n");
        let (o, _) = classify_proxied_response("h", &proxy, &denied, HttpCheck::Any);
        assert_eq!(o.reason, Some(ReasonCode::ProxyDenied));
        // Azure itself answering 403 through the proxy is the origin speaking.
        let azure = answered(b"HTTP/1.1 403 Forbidden\r\nx-ms-request-id: 1\r\n\r\n");
        let (o, _) = classify_proxied_response("h", &proxy, &azure, HttpCheck::Azure);
        assert_eq!(o.reason, None);
    }

    #[test]
    fn a_firewall_denial_is_never_the_service_answering() {
        // Azure Firewall's application rules deny plain HTTP with 470 and a text; a flow that
        // accepts any answer must not count it as working (issue 21, finding 0).
        let denied = answered(
            b"HTTP/1.1 470 status code 470\r\nContent-Type: text/plain\r\n\r\nAction: Deny. Reason: No rule matched. Proceeding with default action.",
        );
        for check in [HttpCheck::Any, HttpCheck::Azure] {
            let (o, d) = classify_response("security.ubuntu.com", &denied, check, false);
            assert_eq!(o.reason, Some(ReasonCode::HttpFirewallDenied), "{check:?}");
            assert!(
                o.message.contains("'Action: Deny. Reason: No rule matched."),
                "{}",
                o.message
            );
            assert!(d.unwrap().firewall.is_some());
        }
        let proxy = ProxyUrl::parse("http://10.0.0.9:3128").unwrap();
        let (o, _) = classify_proxied_response("h", &proxy, &denied, HttpCheck::Any);
        assert_eq!(
            o.reason,
            Some(ReasonCode::HttpFirewallDenied),
            "a firewall behind the proxy"
        );
        // The same text under another status, and 470 with an empty body, are denials too.
        let text_only = answered(b"HTTP/1.1 403 Forbidden\r\n\r\nAction: Deny. Policy: p. Rule: r");
        assert_eq!(
            classify_response("h", &text_only, HttpCheck::Any, false).0.reason,
            Some(ReasonCode::HttpFirewallDenied)
        );
        let bare = answered(b"HTTP/1.1 470 Unknown\r\n\r\n");
        assert_eq!(
            classify_response("h", &bare, HttpCheck::Any, false).0.reason,
            Some(ReasonCode::HttpFirewallDenied)
        );
        let origin = answered(b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n<html>ubuntu archive</html>");
        assert_eq!(classify_response("h", &origin, HttpCheck::Any, false).0.reason, None);
    }

    #[test]
    fn a_block_page_is_never_the_service_even_where_any_answer_will_do() {
        let blocked = answered(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><head><title>Web Page Blocked</title></head><body>FortiGuard</body></html>",
        );
        for check in [HttpCheck::Any, HttpCheck::Azure] {
            let (o, _) = classify_response("security.ubuntu.com", &blocked, check, false);
            assert_eq!(o.reason, Some(ReasonCode::HttpBlockPage), "{check:?}");
            assert!(
                o.message.contains("a FortiGate web filter's block page"),
                "{}",
                o.message
            );
        }
        // Without a vendor's mark, an answer lacking Azure's headers stays http_not_azure.
        let plain = answered(b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n<html>hello</html>");
        assert_eq!(
            classify_response("h", &plain, HttpCheck::Azure, false).0.reason,
            Some(ReasonCode::HttpNotAzure)
        );
    }

    #[test]
    fn a_hang_up_right_after_the_request_is_a_denial_by_name() {
        for reset in [false, true] {
            let hung_up = Exchange {
                response: Err(ExchangeError::HungUp { reset }),
                body: Vec::new(),
                elapsed: Duration::ZERO,
            };
            let (o, _) = classify_response("login.microsoftonline.com", &hung_up, HttpCheck::Any, false);
            assert_eq!(o.reason, Some(ReasonCode::HttpClosedAfterRequest));
            let word = if reset { "reset" } else { "closed" };
            assert!(
                o.message
                    .contains(&format!("then {word} it right after the HTTP request")),
                "{}",
                o.message
            );
            // Inside TLS no middlebox read the name: a hang-up there is the server's.
            let (o, _) = classify_response("login.microsoftonline.com", &hung_up, HttpCheck::Any, true);
            assert_eq!(o.reason, Some(ReasonCode::HttpError));
        }
    }
}
