//! TLS: handshake with SNI, capture the presented chain even when it is untrusted, then judge it
//! against two stores. Mozilla's public roots (plus `--ca-file`) are what Azure ML's containers
//! and SDKs trust; the VM's OS store tells whether a middlebox's CA was pushed to this machine.

use super::{Observation, SetupError};
use crate::outcome::ReasonCode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What the server presented.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsDetails {
    /// Negotiated protocol version, e.g. `TLSv1.3`.
    pub version: Option<String>,
    /// Leaf subject.
    pub subject: Option<String>,
    /// Leaf issuer.
    pub issuer: Option<String>,
    /// Leaf subject alternative names.
    pub sans: Vec<String>,
    /// Leaf expiry, RFC 3339.
    pub not_after: Option<String>,
    /// Whether the chain verifies against Mozilla's roots plus `--ca-file`.
    pub trusted_public: bool,
    /// Whether the chain verifies against this machine's OS store plus `--ca-file` (null: no OS store).
    pub trusted_system: Option<bool>,
}

/// Result of a handshake attempt.
#[derive(Debug, Clone)]
pub struct TlsObservation {
    /// Verdict of the step.
    pub observation: Observation,
    /// The chain, when one was presented.
    pub details: Option<TlsDetails>,
    /// The peer closed or reset the connection mid-handshake; through a proxy that is the
    /// proxy ending the tunnel.
    pub peer_closed: bool,
}

/// Shared TLS state for a run: one client config and two verifiers.
pub struct TlsProber {
    connector: TlsConnector,
    public: Arc<WebPkiServerVerifier>,
    system: Option<Arc<WebPkiServerVerifier>>,
}

impl TlsProber {
    /// Builds the prober; `ca_files` are extra trust anchors added to both stores.
    pub fn new(ca_files: &[impl AsRef<Path>]) -> Result<Self, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut extra = Vec::new();
        for file in ca_files {
            extra.extend(read_anchors(file.as_ref())?);
        }
        let mut public_roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        public_roots.add_parsable_certificates(extra.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        let system = if native.certs.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(native.certs);
            roots.add_parsable_certificates(extra);
            Some(build_verifier(roots, &provider)?)
        };
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaptureChain(provider.clone())))
            .with_no_client_auth();
        Ok(TlsProber {
            connector: TlsConnector::from(Arc::new(config)),
            public: build_verifier(public_roots, &provider)?,
            system,
        })
    }

    /// Handshakes over `stream` with SNI `host` and judges the presented chain. The session is
    /// handed back for an HTTP request when the handshake completed.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        host: &str,
        timeout: Duration,
    ) -> (TlsObservation, Option<TlsStream<TcpStream>>) {
        let start = Instant::now();
        let failed = |reason, message: String, peer_closed| {
            let observation = Observation::fail(reason, message, start.elapsed());
            (
                TlsObservation {
                    observation,
                    details: None,
                    peer_closed,
                },
                None,
            )
        };
        let Ok(server_name) = ServerName::try_from(host.to_string()) else {
            return failed(
                ReasonCode::TlsHandshakeFailed,
                format!("'{host}' is not a valid TLS server name"),
                false,
            );
        };
        let tls = match tokio::time::timeout(timeout, self.connector.connect(server_name.clone(), stream)).await {
            Err(_) => {
                let message = format!("the TLS handshake with {host} did not finish within {timeout:?}");
                return failed(ReasonCode::TlsTimeout, message, false);
            }
            Ok(Err(e)) => {
                let closed = matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset);
                return failed(ReasonCode::TlsHandshakeFailed, handshake_error(host, &e), closed);
            }
            Ok(Ok(s)) => s,
        };
        let elapsed = start.elapsed();
        let (_, conn) = tls.get_ref();
        let chain = conn.peer_certificates().unwrap_or_default();
        let mut details = describe(chain);
        details.version = conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(|v| v.replace('_', "."));
        let Some((leaf, rest)) = chain.split_first() else {
            let o = Observation::fail(
                ReasonCode::TlsHandshakeFailed,
                "the server presented no certificate",
                elapsed,
            );
            return (
                TlsObservation {
                    observation: o,
                    details: Some(details),
                    peer_closed: false,
                },
                None,
            );
        };
        let now = UnixTime::now();
        let public = self.public.verify_server_cert(leaf, rest, &server_name, &[], now);
        let system = self
            .system
            .as_ref()
            .map(|v| v.verify_server_cert(leaf, rest, &server_name, &[], now).is_ok());
        details.trusted_public = public.is_ok();
        details.trusted_system = system;
        let issuer = details.issuer.clone().unwrap_or_else(|| "an unknown issuer".into());
        let observation = match public {
            Ok(_) => Observation::pass(format!("trusted certificate for {host} from {issuer}"), elapsed),
            Err(e) => judge(host, &issuer, &e, system, elapsed),
        };
        (
            TlsObservation {
                observation,
                details: Some(details),
                peer_closed: false,
            },
            Some(tls),
        )
    }
}

fn judge(host: &str, issuer: &str, e: &rustls::Error, system: Option<bool>, elapsed: Duration) -> Observation {
    let cert_error = match e {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    };
    let too_long = match cert_error {
        Some(CertificateError::Other(other)) => chain_too_long(other.0.as_ref()),
        _ => None,
    };
    if let Some(why) = too_long {
        return Observation::fail(
            ReasonCode::TlsChainTooLong,
            format!("the certificate chain {host} presents (leaf issued by '{issuer}') {why}"),
            elapsed,
        );
    }
    match cert_error {
        Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => Observation::fail(
            ReasonCode::TlsNameMismatch,
            format!("the certificate from {issuer} is not valid for {host}"),
            elapsed,
        ),
        Some(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => Observation::fail(
            ReasonCode::TlsExpired,
            format!("the certificate for {host} is outside its validity period ({e})"),
            elapsed,
        ),
        _ if system == Some(true) => Observation::fail(
            ReasonCode::TlsInspected,
            format!(
                "TLS to {host} is intercepted: the certificate is issued by '{issuer}', trusted by this VM's OS store but not publicly"
            ),
            elapsed,
        ),
        _ => Observation::fail(
            ReasonCode::TlsUntrustedIssuer,
            format!("the certificate for {host} is issued by '{issuer}', which is not a trusted root ({e})"),
            elapsed,
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

fn handshake_error(host: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            format!(
                "{host} closed the connection during the TLS handshake (a firewall filtering by SNI, or not a TLS port)"
            )
        }
        io::ErrorKind::ConnectionReset => {
            format!("the connection to {host} was reset during the TLS handshake (a firewall filtering by SNI?)")
        }
        _ => format!("TLS handshake with {host} failed: {e}"),
    }
}

fn build_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, SetupError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| SetupError::Tls(e.to_string()))
}

pub(crate) fn read_anchors(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let err = |message: String| SetupError::CaFile {
        file: path.display().to_string(),
        message,
    };
    let data = crate::files::read_bytes(path).map_err(|e| err(e.to_string()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(err("holds no PEM certificates".into()));
    }
    Ok(certs)
}

fn describe(chain: &[CertificateDer<'_>]) -> TlsDetails {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let mut d = TlsDetails::default();
    let Some(leaf) = chain.first() else { return d };
    let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
        return d;
    };
    d.subject = Some(cert.subject().to_string());
    d.issuer = Some(cert.issuer().to_string());
    d.not_after = cert
        .validity()
        .not_after
        .to_datetime()
        .format(&::time::format_description::well_known::Rfc3339)
        .ok();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => d.sans.push((*n).to_string()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b)
                            .ok()
                            .map(|a| std::net::IpAddr::from(a).to_string()),
                        16 => <[u8; 16]>::try_from(*b)
                            .ok()
                            .map(|a| std::net::IpAddr::from(a).to_string()),
                        _ => None,
                    };
                    d.sans.extend(ip);
                }
                _ => {}
            }
        }
    }
    d
}

/// Accepts any chain during the handshake so it can be captured and judged afterwards, but
/// still checks handshake signatures: the server must own the leaf key.
#[derive(Debug)]
struct CaptureChain(Arc<CryptoProvider>);

impl ServerCertVerifier for CaptureChain {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::OtherError;

    fn reason(e: CertificateError) -> Option<ReasonCode> {
        judge(
            "h",
            "CA",
            &rustls::Error::InvalidCertificate(e),
            Some(false),
            Duration::ZERO,
        )
        .reason
    }

    #[test]
    fn verifier_limits_are_a_long_chain_not_an_untrusted_issuer() {
        let other = |e: webpki::Error| CertificateError::Other(OtherError(Arc::new(e)));
        for limit in [
            webpki::Error::MaximumPathDepthExceeded,
            webpki::Error::MaximumPathBuildCallsExceeded,
            webpki::Error::MaximumSignatureChecksExceeded,
        ] {
            assert_eq!(reason(other(limit)), Some(ReasonCode::TlsChainTooLong));
        }
        assert_eq!(
            reason(other(webpki::Error::UnsupportedCriticalExtension)),
            Some(ReasonCode::TlsUntrustedIssuer)
        );
        assert_eq!(
            reason(CertificateError::UnknownIssuer),
            Some(ReasonCode::TlsUntrustedIssuer)
        );
    }
}
