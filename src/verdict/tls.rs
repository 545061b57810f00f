//! TLS handshakes → reason codes: which store trusted the chain decides between a healthy
//! path, an inspecting middlebox (trusted only by the OS store) and an untrusted issuer.

use super::step::StepVerdict;
use crate::engine::probe::tls::{Handshake, TlsObservation};
use crate::model::duration::FlagDuration;
use crate::model::outcome::ReasonCode;
use crate::model::proxy::ProxyUrl;
use rustls::CertificateError;
use std::io;

/// The verdict on one handshake with `host`; `proxy` when it ran inside that proxy's tunnel.
pub fn classify(host: &str, tls: &TlsObservation, proxy: Option<&ProxyUrl>) -> StepVerdict {
    let elapsed = tls.elapsed;
    let fail = |reason, message: String| StepVerdict::fail(reason, message, elapsed);
    let issuer = tls
        .details
        .as_ref()
        .and_then(|d| d.issuer.clone())
        .unwrap_or_else(|| "an unknown issuer".into());
    match &tls.handshake {
        Handshake::InvalidName => fail(
            ReasonCode::TlsHandshakeFailed,
            format!("'{host}' is not a valid TLS server name"),
        ),
        Handshake::TimedOut(timeout) => fail(
            ReasonCode::TlsTimeout,
            format!(
                "the TLS handshake with {host} did not finish within {}",
                FlagDuration(*timeout)
            ),
        ),
        // Inside a tunnel, the peer that hung up is the proxy ending it.
        Handshake::Failed { .. } if proxy.is_some() && tls.peer_closed() => fail(
            ReasonCode::ProxyTunnelClosed,
            format!(
                "proxy {} closed the tunnel to {host} during the TLS handshake",
                proxy.expect("checked")
            ),
        ),
        // Nothing came back before the end: the peer took the ClientHello and hung up, as a
        // firewall denying the name (SNI) by application rule does (Azure Firewall closes, NVAs
        // reset). A server that answered anything and then failed is a handshake failure.
        Handshake::Failed {
            kind: kind @ (io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset),
            server_bytes: 0,
            ..
        } => fail(
            ReasonCode::TlsClosedAfterHello,
            format!(
                "{host} accepted the TCP connection, then {} it right after the TLS ClientHello without sending a byte: a firewall or NVA denying the name by its SNI",
                if *kind == io::ErrorKind::ConnectionReset {
                    "reset"
                } else {
                    "closed"
                }
            ),
        ),
        Handshake::Failed { kind, error, .. } => {
            fail(ReasonCode::TlsHandshakeFailed, handshake_error(host, *kind, error))
        }
        Handshake::NoCertificate => fail(
            ReasonCode::TlsHandshakeFailed,
            "the server presented no certificate".into(),
        ),
        Handshake::Completed { public: Ok(()), .. } => {
            StepVerdict::pass(format!("trusted certificate for {host} from {issuer}"), elapsed)
        }
        Handshake::Completed { public: Err(e), system } => {
            let (reason, message) = certificate_problem(host, &issuer, e, *system);
            fail(reason, message)
        }
    }
}

/// Why a presented chain failed public verification.
fn certificate_problem(host: &str, issuer: &str, e: &rustls::Error, system: Option<bool>) -> (ReasonCode, String) {
    let cert_error = match e {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    };
    if let Some(CertificateError::Other(other)) = cert_error
        && let Some(why) = chain_too_long(other.0.as_ref())
    {
        return (
            ReasonCode::TlsChainTooLong,
            format!("the certificate chain {host} presents (leaf issued by '{issuer}') {why}"),
        );
    }
    match cert_error {
        Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => (
            ReasonCode::TlsNameMismatch,
            format!("the certificate from {issuer} is not valid for {host}"),
        ),
        Some(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => (
            ReasonCode::TlsExpired,
            format!("the certificate for {host} is outside its validity period ({e})"),
        ),
        _ if system == Some(true) => (
            ReasonCode::TlsInspected,
            format!(
                "TLS to {host} is intercepted: the certificate is issued by '{issuer}', trusted by this VM's OS store but not publicly"
            ),
        ),
        _ => (
            ReasonCode::TlsUntrustedIssuer,
            format!("the certificate for {host} is issued by '{issuer}', which is not a trusted root ({e})"),
        ),
    }
}

/// Why the verifier gave up on a chain without judging its root, when it did: webpki follows
/// at most 6 intermediates and spends a fixed budget on building paths, and rustls passes
/// both failures on as opaque errors. Such a chain fails in every rustls- or webpki-based
/// client whatever its root, so it is not an untrusted issuer.
fn chain_too_long(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<&'static str> {
    match e.downcast_ref::<webpki::Error>()? {
        webpki::Error::MaximumPathDepthExceeded => Some(
            "has more intermediate CAs than verifiers follow (6 at most), so it was rejected before reaching any root",
        ),
        webpki::Error::MaximumPathBuildCallsExceeded | webpki::Error::MaximumSignatureChecksExceeded => Some(
            "holds so many candidate intermediate certificates that the verifier's path-building budget ran out before reaching a root",
        ),
        _ => None,
    }
}

fn handshake_error(host: &str, kind: io::ErrorKind, error: &str) -> String {
    match kind {
        io::ErrorKind::UnexpectedEof => {
            format!(
                "{host} closed the connection during the TLS handshake (a firewall filtering by SNI, or not a TLS port)"
            )
        }
        io::ErrorKind::ConnectionReset => {
            format!("the connection to {host} was reset during the TLS handshake (a firewall filtering by SNI?)")
        }
        _ => format!("TLS handshake with {host} failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::OtherError;
    use std::sync::Arc;
    use std::time::Duration;

    fn observed(handshake: Handshake) -> TlsObservation {
        TlsObservation {
            handshake,
            details: None,
            elapsed: Duration::ZERO,
        }
    }

    fn reason(e: CertificateError, system: Option<bool>) -> Option<ReasonCode> {
        let public = Err(rustls::Error::InvalidCertificate(e));
        classify("h", &observed(Handshake::Completed { public, system }), None).reason
    }

    #[test]
    fn verifier_limits_are_a_long_chain_not_an_untrusted_issuer() {
        let other = |e: webpki::Error| CertificateError::Other(OtherError(Arc::new(e)));
        for limit in [
            webpki::Error::MaximumPathDepthExceeded,
            webpki::Error::MaximumPathBuildCallsExceeded,
            webpki::Error::MaximumSignatureChecksExceeded,
        ] {
            assert_eq!(reason(other(limit), Some(false)), Some(ReasonCode::TlsChainTooLong));
        }
        assert_eq!(
            reason(other(webpki::Error::UnsupportedCriticalExtension), Some(false)),
            Some(ReasonCode::TlsUntrustedIssuer)
        );
    }

    #[test]
    fn the_os_store_alone_trusting_the_chain_means_inspection() {
        assert_eq!(
            reason(CertificateError::UnknownIssuer, Some(true)),
            Some(ReasonCode::TlsInspected)
        );
        assert_eq!(
            reason(CertificateError::UnknownIssuer, Some(false)),
            Some(ReasonCode::TlsUntrustedIssuer)
        );
        assert_eq!(
            reason(CertificateError::UnknownIssuer, None),
            Some(ReasonCode::TlsUntrustedIssuer)
        );
        assert_eq!(
            reason(CertificateError::NotValidForName, Some(true)),
            Some(ReasonCode::TlsNameMismatch)
        );
        assert_eq!(reason(CertificateError::Expired, None), Some(ReasonCode::TlsExpired));
    }

    #[test]
    fn a_peer_hanging_up_is_the_proxy_only_inside_a_tunnel() {
        let closed = observed(Handshake::Failed {
            kind: io::ErrorKind::UnexpectedEof,
            error: "eof".into(),
            server_bytes: 1200,
        });
        let proxy = ProxyUrl::parse("http://10.0.0.9:3128").unwrap();
        assert_eq!(
            classify("h", &closed, Some(&proxy)).reason,
            Some(ReasonCode::ProxyTunnelClosed)
        );
        assert_eq!(
            classify("h", &closed, None).reason,
            Some(ReasonCode::TlsHandshakeFailed)
        );
        let refused = observed(Handshake::Failed {
            kind: io::ErrorKind::InvalidData,
            error: "alert".into(),
            server_bytes: 7,
        });
        assert_eq!(
            classify("h", &refused, Some(&proxy)).reason,
            Some(ReasonCode::TlsHandshakeFailed)
        );
        let slow = observed(Handshake::TimedOut(Duration::from_secs(2)));
        assert_eq!(classify("h", &slow, None).reason, Some(ReasonCode::TlsTimeout));
    }

    #[test]
    fn a_hang_up_before_any_answer_is_a_denial_by_name() {
        let hung_up = |kind, server_bytes| {
            observed(Handshake::Failed {
                kind,
                error: "eof".into(),
                server_bytes,
            })
        };
        let fin = classify("a.test", &hung_up(io::ErrorKind::UnexpectedEof, 0), None);
        assert_eq!(fin.reason, Some(ReasonCode::TlsClosedAfterHello));
        assert!(
            fin.message.contains("then closed it right after the TLS ClientHello"),
            "{}",
            fin.message
        );
        let rst = classify("a.test", &hung_up(io::ErrorKind::ConnectionReset, 0), None);
        assert_eq!(rst.reason, Some(ReasonCode::TlsClosedAfterHello));
        assert!(rst.message.contains("then reset it"), "{}", rst.message);
        // The server answered, then failed: not a denial by name.
        let late = classify("a.test", &hung_up(io::ErrorKind::UnexpectedEof, 90), None);
        assert_eq!(late.reason, Some(ReasonCode::TlsHandshakeFailed));
        // Another error with nothing received is no hang-up either.
        let other = classify("a.test", &hung_up(io::ErrorKind::InvalidData, 0), None);
        assert_eq!(other.reason, Some(ReasonCode::TlsHandshakeFailed));
    }
}
