//! The vocabulary every layer shares: what a probe observed (`ProbeStatus`, `ReasonCode`) and
//! what that means for a flow (`FlowStatus`). These names are the JSON contract.

use serde::{Deserialize, Serialize};

/// Result of one probe step against one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// The step worked.
    Pass,
    /// The step was observed to fail.
    Fail,
    /// Nothing conclusive was observed (for example a UDP probe without a reply).
    Inconclusive,
}

/// Verdict for a whole flow, derived from its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// Every probe of the flow passed.
    Works,
    /// At least one probe observed a failure.
    Blocked,
    /// No failure, but at least one probe could not conclude.
    Inconclusive,
    /// The flow was not probed because context it needs is missing.
    Skipped,
    /// The flow cannot be observed from inside the VNet (for example inbound rules).
    NotTestable,
}

impl FlowStatus {
    /// Every status, in documentation order.
    pub const ALL: [FlowStatus; 5] = [
        FlowStatus::Works,
        FlowStatus::Blocked,
        FlowStatus::Inconclusive,
        FlowStatus::Skipped,
        FlowStatus::NotTestable,
    ];

    /// How renderers show it to people: a blocked flow stands out in capitals.
    pub fn label(self) -> &'static str {
        match self {
            FlowStatus::Works => "works",
            FlowStatus::Blocked => "BLOCKED",
            FlowStatus::Inconclusive => "inconclusive",
            FlowStatus::Skipped => "skipped",
            FlowStatus::NotTestable => "not testable",
        }
    }

    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Works => "works",
            FlowStatus::Blocked => "blocked",
            FlowStatus::Inconclusive => "inconclusive",
            FlowStatus::Skipped => "skipped",
            FlowStatus::NotTestable => "not_testable",
        }
    }
}

impl ProbeStatus {
    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Pass => "pass",
            ProbeStatus::Fail => "fail",
            ProbeStatus::Inconclusive => "inconclusive",
        }
    }
}

/// Why a probe did not pass. Stable snake_case codes: consumers match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The name does not exist (NXDOMAIN).
    DnsNxdomain,
    /// The name exists but has no A/AAAA records (NODATA).
    DnsNoRecords,
    /// The name's CNAME chain loops back on itself.
    DnsCnameLoop,
    /// The name's CNAME chain is longer than resolvers follow.
    DnsChainTooLong,
    /// The resolver answered SERVFAIL.
    DnsServfail,
    /// The resolver answered REFUSED.
    DnsRefused,
    /// No DNS answer within the deadline.
    DnsTimeout,
    /// No query reached a nameserver: nothing listens there (ICMP port unreachable) or no route.
    DnsUnreachable,
    /// A name that must resolve to a private endpoint resolved to a non-private address.
    DnsPublicIp,
    /// The name resolved, but not to the address recorded for its private endpoint.
    DnsWrongIp,
    /// The name resolved to an address no service has (loopback, unspecified, link-local,
    /// multicast, broadcast): a DNS sinkhole or a broken record.
    DnsSinkhole,
    /// Any other resolver failure.
    DnsError,
    /// No answer to the TCP SYN within the deadline (silently dropped).
    TcpTimeout,
    /// The connection was actively refused (TCP reset).
    TcpRefused,
    /// The network or host is unreachable (ICMP unreachable, no route, local firewall).
    TcpUnreachable,
    /// Any other connect failure.
    TcpError,
    /// The TLS handshake did not finish within the deadline.
    TlsTimeout,
    /// The certificate chain does not lead to a trusted root.
    TlsUntrustedIssuer,
    /// The chain is longer (or more tangled) than certificate verifiers follow.
    TlsChainTooLong,
    /// The chain is trusted only by this machine's OS store: a TLS-inspecting middlebox.
    TlsInspected,
    /// The certificate is not valid for the host name.
    TlsNameMismatch,
    /// The certificate has expired (or is not yet valid).
    TlsExpired,
    /// The handshake failed (alert, protocol mismatch, connection closed).
    TlsHandshakeFailed,
    /// TCP connected, then the peer closed or reset the connection right after the ClientHello
    /// without sending a byte: a firewall denying the name (SNI).
    TlsClosedAfterHello,
    /// No reply to a UDP datagram; inconclusive by nature.
    UdpNoReply,
    /// An ICMP unreachable came back for a UDP datagram.
    UdpRefused,
    /// The proxy itself could not be reached.
    ProxyUnreachable,
    /// The proxy refused the tunnel or request (HTTP 403 and similar).
    ProxyDenied,
    /// The proxy wants credentials (HTTP 407).
    ProxyAuthRequired,
    /// The proxy could not reach the target (HTTP 502, 503, 504).
    ProxyUpstreamFailed,
    /// The proxy accepted the tunnel, then closed it during the TLS handshake.
    ProxyTunnelClosed,
    /// The proxy answered with something that is not a valid HTTP response.
    ProxyError,
    /// An HTTP answer came back, but not from the Azure service (a block page or captive portal).
    HttpNotAzure,
    /// A firewall answered in the service's place and denied the request (Azure Firewall's HTTP
    /// 470 and its deny text).
    HttpFirewallDenied,
    /// A web filter's block page answered in the service's place (its vendor's marks).
    HttpBlockPage,
    /// The peer closed or reset the connection right after the HTTP request without a byte of
    /// answer: a firewall denying the name it read (the Host header).
    HttpClosedAfterRequest,
    /// No valid HTTP response came back.
    HttpError,
    /// The port answered, but not with SMB: a middlebox is in the way.
    SmbNotSmb,
    /// The SMB port accepted the connection but never answered the SMB negotiation.
    SmbNoResponse,
    /// The flow needs workspace context that was not given.
    MissingContext,
    /// The flow does not apply here: a fact it depends on does not hold (it is not required).
    NotApplicable,
    /// A probe the plan asked for produced no observation (its task failed or never ran).
    NotObserved,
}

impl ReasonCode {
    /// Every code, in documentation order.
    pub const ALL: [ReasonCode; 42] = [
        ReasonCode::DnsNxdomain,
        ReasonCode::DnsNoRecords,
        ReasonCode::DnsCnameLoop,
        ReasonCode::DnsChainTooLong,
        ReasonCode::DnsServfail,
        ReasonCode::DnsRefused,
        ReasonCode::DnsTimeout,
        ReasonCode::DnsUnreachable,
        ReasonCode::DnsPublicIp,
        ReasonCode::DnsWrongIp,
        ReasonCode::DnsSinkhole,
        ReasonCode::DnsError,
        ReasonCode::TcpTimeout,
        ReasonCode::TcpRefused,
        ReasonCode::TcpUnreachable,
        ReasonCode::TcpError,
        ReasonCode::TlsTimeout,
        ReasonCode::TlsUntrustedIssuer,
        ReasonCode::TlsChainTooLong,
        ReasonCode::TlsInspected,
        ReasonCode::TlsNameMismatch,
        ReasonCode::TlsExpired,
        ReasonCode::TlsHandshakeFailed,
        ReasonCode::TlsClosedAfterHello,
        ReasonCode::UdpNoReply,
        ReasonCode::UdpRefused,
        ReasonCode::ProxyUnreachable,
        ReasonCode::ProxyDenied,
        ReasonCode::ProxyAuthRequired,
        ReasonCode::ProxyUpstreamFailed,
        ReasonCode::ProxyTunnelClosed,
        ReasonCode::ProxyError,
        ReasonCode::HttpNotAzure,
        ReasonCode::HttpFirewallDenied,
        ReasonCode::HttpBlockPage,
        ReasonCode::HttpClosedAfterRequest,
        ReasonCode::HttpError,
        ReasonCode::SmbNotSmb,
        ReasonCode::SmbNoResponse,
        ReasonCode::MissingContext,
        ReasonCode::NotApplicable,
        ReasonCode::NotObserved,
    ];

    /// The snake_case code as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::DnsNxdomain => "dns_nxdomain",
            ReasonCode::DnsNoRecords => "dns_no_records",
            ReasonCode::DnsCnameLoop => "dns_cname_loop",
            ReasonCode::DnsChainTooLong => "dns_chain_too_long",
            ReasonCode::DnsServfail => "dns_servfail",
            ReasonCode::DnsRefused => "dns_refused",
            ReasonCode::DnsTimeout => "dns_timeout",
            ReasonCode::DnsUnreachable => "dns_unreachable",
            ReasonCode::DnsPublicIp => "dns_public_ip",
            ReasonCode::DnsWrongIp => "dns_wrong_ip",
            ReasonCode::DnsSinkhole => "dns_sinkhole",
            ReasonCode::DnsError => "dns_error",
            ReasonCode::TcpTimeout => "tcp_timeout",
            ReasonCode::TcpRefused => "tcp_refused",
            ReasonCode::TcpUnreachable => "tcp_unreachable",
            ReasonCode::TcpError => "tcp_error",
            ReasonCode::TlsTimeout => "tls_timeout",
            ReasonCode::TlsUntrustedIssuer => "tls_untrusted_issuer",
            ReasonCode::TlsChainTooLong => "tls_chain_too_long",
            ReasonCode::TlsInspected => "tls_inspected",
            ReasonCode::TlsNameMismatch => "tls_name_mismatch",
            ReasonCode::TlsExpired => "tls_expired",
            ReasonCode::TlsHandshakeFailed => "tls_handshake_failed",
            ReasonCode::TlsClosedAfterHello => "tls_closed_after_hello",
            ReasonCode::UdpNoReply => "udp_no_reply",
            ReasonCode::UdpRefused => "udp_refused",
            ReasonCode::ProxyUnreachable => "proxy_unreachable",
            ReasonCode::ProxyDenied => "proxy_denied",
            ReasonCode::ProxyAuthRequired => "proxy_auth_required",
            ReasonCode::ProxyUpstreamFailed => "proxy_upstream_failed",
            ReasonCode::ProxyTunnelClosed => "proxy_tunnel_closed",
            ReasonCode::ProxyError => "proxy_error",
            ReasonCode::HttpNotAzure => "http_not_azure",
            ReasonCode::HttpFirewallDenied => "http_firewall_denied",
            ReasonCode::HttpBlockPage => "http_block_page",
            ReasonCode::HttpClosedAfterRequest => "http_closed_after_request",
            ReasonCode::HttpError => "http_error",
            ReasonCode::SmbNotSmb => "smb_not_smb",
            ReasonCode::SmbNoResponse => "smb_no_response",
            ReasonCode::MissingContext => "missing_context",
            ReasonCode::NotApplicable => "not_applicable",
            ReasonCode::NotObserved => "not_observed",
        }
    }
}

/// What the flows of a root cause share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// The DNS server fails (timeout, unreachable, SERVFAIL, REFUSED) for every name.
    DnsServer,
    /// Names of one private DNS zone resolve wrong.
    PrivateDnsZone,
    /// One TLS issuer intercepts several hosts.
    TlsIssuer,
    /// One proxy fails or denies several hosts.
    Proxy,
    /// One destination (a host, on the ports its flows use) is dropped, refused or unreachable,
    /// whatever flows or service tags reach it.
    Destination,
    /// A firewall's application rules deny these names (HTTP 470, a hang-up right after the
    /// TLS ClientHello): one rule collection listing them fixes it.
    FirewallRules,
    /// A web filter serves its block page for these names.
    BlockPage,
    /// One observation that shares nothing with the others (one host, maybe in several flows).
    Observation,
}

impl CauseKind {
    /// The snake_case name as it appears in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::DnsServer => "dns_server",
            CauseKind::PrivateDnsZone => "private_dns_zone",
            CauseKind::TlsIssuer => "tls_issuer",
            CauseKind::Proxy => "proxy",
            CauseKind::Destination => "destination",
            CauseKind::FirewallRules => "firewall_rules",
            CauseKind::BlockPage => "block_page",
            CauseKind::Observation => "observation",
        }
    }
}

impl CauseKind {
    /// Every kind, in documentation order.
    pub const ALL: [CauseKind; 8] = [
        CauseKind::DnsServer,
        CauseKind::PrivateDnsZone,
        CauseKind::TlsIssuer,
        CauseKind::Proxy,
        CauseKind::Destination,
        CauseKind::FirewallRules,
        CauseKind::BlockPage,
        CauseKind::Observation,
    ];
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_documents_every_reason_code() {
        let readme = include_str!("../../README.md");
        for code in ReasonCode::ALL {
            assert!(
                readme.contains(&format!("| `{code}` |")),
                "README.md lacks a row for {code}"
            );
        }
    }

    #[test]
    fn as_str_matches_the_serialized_code() {
        for code in ReasonCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        for status in FlowStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<FlowStatus>(&json).unwrap(), status);
        }
        for status in [ProbeStatus::Pass, ProbeStatus::Fail, ProbeStatus::Inconclusive] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }
}
