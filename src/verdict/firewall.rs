//! Fingerprints of firewalls answering in a service's place. What a middlebox sends is never
//! the service working: Azure Firewall denies a plain-HTTP request its application rules don't
//! allow with status 470 and a text naming the action, which no origin server sends.
//!
//! Sources (docs/sources.md, AZFW and "Azure Firewall's HTTP denial"): status 470 for denied
//! plain HTTP (Microsoft's support article on apt: "Failed to fetch <url> 470 status code 470");
//! the body text as third-party captures show it (`Action: Deny. Reason: No rule matched.
//! Proceeding with default action.`), and the log's form naming the rule (`Action: Deny. Policy:
//! <p>. Rule Collection Group: <g>. Rule Collection: <c>. Rule: <r>`), which newer versions
//! echo in the body.

use crate::engine::probe::http::ResponseHead;
use crate::redact;
use crate::report::schema::FirewallDenial;
use crate::sanitize;

/// The status Azure Firewall answers a denied plain-HTTP request with; not a registered HTTP
/// status, so no origin sends it.
pub const AZURE_FIREWALL_DENY_STATUS: u16 = 470;

/// The words every Azure Firewall deny text carries.
const DENY_MARK: &str = "Action: Deny";

/// How much of a deny text a report quotes.
const TEXT_LIMIT: usize = 300;

/// The labels a newer deny text names its rule with, in the order it writes them.
const LABELS: [&str; 4] = ["Policy: ", "Rule Collection Group: ", "Rule Collection: ", "Rule: "];

/// The denial `status` and `body` announce, if they announce one: status 470, or a body with
/// Azure Firewall's deny text (whatever status carries it).
pub fn azure_firewall_denial(status: u16, body: &[u8]) -> Option<FirewallDenial> {
    let body = String::from_utf8_lossy(body);
    let text = body.trim();
    if status != AZURE_FIREWALL_DENY_STATUS && !text.contains(DENY_MARK) {
        return None;
    }
    let from = text.find(DENY_MARK).unwrap_or(0);
    let [policy, rule_collection_group, rule_collection, rule] = LABELS.map(|label| labelled(&text[from..], label));
    Some(FirewallDenial {
        text: quoted(text),
        policy,
        rule_collection_group,
        rule_collection,
        rule,
    })
}

/// What a web filter's block page carries that no origin's page at a service's root does: the
/// filter's own name or its stock wording. Each entry: (what to call it, where to look, text).
/// Sources: the vendors' documented default block pages (docs/sources.md, "Block pages").
const BLOCK_PAGES: &[(&str, Where, &str)] = &[
    ("a FortiGate web filter", Where::Body, "FortiGuard"),
    ("a FortiGate web filter", Where::Body, "Fortinet"),
    // FortiOS's default URL block replacement message.
    ("a FortiGate web filter", Where::Body, "<title>Web Filter Violation"),
    (
        "a FortiGate web filter",
        Where::Body,
        "has been blocked because the URL is banned",
    ),
    (
        "a Palo Alto Networks URL filter",
        Where::Body,
        "has been blocked in accordance with company policy",
    ),
    ("a Zscaler web filter", Where::Body, "Zscaler"),
    ("a Cisco Umbrella web filter", Where::Body, "Cisco Umbrella"),
    ("a Sophos web filter", Where::Body, "Sophos"),
    ("a Check Point web filter", Where::Body, "Check Point"),
    ("a web filter", Where::Body, "<title>Web Page Blocked"),
    (
        "a squid proxy intercepting the connection",
        Where::Header("x-squid-error"),
        "",
    ),
];

/// Where a block page fingerprint is looked for.
#[derive(Clone, Copy)]
enum Where {
    /// The first bytes of the body.
    Body,
    /// A response header's presence (its value is not needed).
    Header(&'static str),
}

/// Who served a block page in the service's place, when `head` and `body` are one.
pub fn block_page(head: &ResponseHead, body: &[u8]) -> Option<&'static str> {
    let body = String::from_utf8_lossy(body);
    BLOCK_PAGES
        .iter()
        .find(|(_, place, text)| match place {
            Where::Body => body.contains(text),
            Where::Header(name) => head.header(name).is_some(),
        })
        .map(|(who, _, _)| *who)
}

/// The value after `label`: up to the next label, the end of the line or of the text, without
/// the sentence's full stop. `Rule: ` never matches inside `Rule Collection: `.
fn labelled(text: &str, label: &str) -> Option<String> {
    let start = text
        .match_indices(label)
        .map(|(i, _)| i)
        .find(|&i| label != "Rule: " || !text[..i].ends_with("Collection Group: "))?
        + label.len();
    let rest = &text[start..];
    let end = LABELS
        .iter()
        .filter_map(|l| rest.find(&format!(". {l}")))
        .chain(rest.find(['\r', '\n']))
        .min()
        .unwrap_or(rest.len());
    let value = rest[..end].trim().trim_end_matches('.').trim();
    (!value.is_empty()).then(|| quoted(value))
}

/// Secrets masked, control characters escaped, at most [`TEXT_LIMIT`] characters.
fn quoted(text: &str) -> String {
    let safe = sanitize::terminal(&redact::text(text)).into_owned();
    if safe.chars().count() <= TEXT_LIMIT {
        return safe;
    }
    let kept: String = safe.chars().take(TEXT_LIMIT).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_470_is_a_denial_whatever_the_body() {
        let d = azure_firewall_denial(470, b"").unwrap();
        assert_eq!(d.text, "");
        let d = azure_firewall_denial(
            470,
            b"Action: Deny. Reason: No rule matched. Proceeding with default action.\n",
        )
        .unwrap();
        assert_eq!(
            d.text,
            "Action: Deny. Reason: No rule matched. Proceeding with default action."
        );
        assert_eq!((d.policy, d.rule), (None, None));
    }

    #[test]
    fn the_deny_text_is_a_denial_under_any_status() {
        let body = b"HTTP request from 10.0.0.4:50748 to security.ubuntu.com:80. Url: security.ubuntu.com. Action: Deny. No rule matched. Proceeding with default action";
        assert!(azure_firewall_denial(403, body).is_some());
        assert!(azure_firewall_denial(200, body).is_some());
        assert!(azure_firewall_denial(200, b"<html>Welcome to nginx</html>").is_none());
        assert!(azure_firewall_denial(404, b"").is_none());
    }

    #[test]
    fn a_newer_deny_text_names_policy_and_rule() {
        let body = b"HTTP request from 10.0.0.4:1 to x.example:80. Url: x.example. Action: Deny. Policy: fw-policy. Rule Collection Group: DefaultApplicationRuleCollectionGroup. Rule Collection: deny-web. Rule: block-x";
        let d = azure_firewall_denial(470, body).unwrap();
        assert_eq!(d.policy.as_deref(), Some("fw-policy"));
        assert_eq!(
            d.rule_collection_group.as_deref(),
            Some("DefaultApplicationRuleCollectionGroup")
        );
        assert_eq!(d.rule_collection.as_deref(), Some("deny-web"));
        assert_eq!(d.rule.as_deref(), Some("block-x"));
    }

    #[test]
    fn hostile_deny_texts_are_inert_and_short() {
        let mut body = b"Action: Deny. Policy: p\x1b[2J\xe2\x80\xae. Rule: r".to_vec();
        body.extend(vec![b'a'; 5000]);
        let d = azure_firewall_denial(470, &body).unwrap();
        assert!(!d.text.contains('\x1b') && !d.text.contains('\u{202e}'), "{}", d.text);
        assert!(d.text.chars().count() <= TEXT_LIMIT + 1, "{}", d.text.len());
        assert_eq!(d.policy.as_deref(), Some("p\\x1b[2J\\u{202e}"));
    }

    #[test]
    fn block_pages_are_told_by_their_vendor_marks_only() {
        let page = |head: &[u8], body: &str| {
            let head = crate::wire::http1::parse_response(head).unwrap();
            block_page(&head, body.as_bytes())
        };
        let ok = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(
            page(
                ok,
                "<html><head><title>Web Page Blocked</title></head><body>FortiGuard Intrusion Prevention</body>"
            ),
            Some("a FortiGate web filter")
        );
        assert_eq!(
            page(
                ok,
                "<html><head><title>Web Page Blocked</title></head><body>blocked</body>"
            ),
            Some("a web filter")
        );
        assert_eq!(
            page(
                ok,
                "Access to the web page you were trying to visit has been blocked in accordance with company policy."
            ),
            Some("a Palo Alto Networks URL filter")
        );
        assert_eq!(
            page(
                b"HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
                ""
            ),
            Some("a squid proxy intercepting the connection")
        );
        for origin in [
            "<html><title>Ubuntu Archive</title>",
            "{\"error\":{\"code\":\"InvalidResource\"}}",
            "<title>Access Denied</title>",
            "",
        ] {
            assert_eq!(page(ok, origin), None, "{origin}");
        }
    }
}
