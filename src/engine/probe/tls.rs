//! TLS: handshake with SNI, capture the presented chain even when it is untrusted, then verify
//! it against two stores. Mozilla's public roots (plus `--ca-file`) are what Azure ML's
//! containers and SDKs trust; the VM's OS store tells whether a middlebox's CA was pushed to this
//! machine. What the outcome means is decided in `verdict::tls`.

use super::SetupError;
use crate::report::schema::TlsDetails;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How a handshake attempt ended, as observed.
#[derive(Debug, Clone)]
pub enum Handshake {
    /// The host name cannot be a TLS server name.
    InvalidName,
    /// No handshake within the deadline.
    TimedOut(Duration),
    /// The handshake failed before completing.
    Failed {
        /// The I/O error kind: `UnexpectedEof` and `ConnectionReset` mean the peer closed.
        kind: io::ErrorKind,
        /// The error as rustls or the socket reported it.
        error: String,
        /// Bytes the server sent before it ended: none means it closed right after our
        /// ClientHello, as a firewall denying the name (SNI) does.
        server_bytes: u64,
    },
    /// The handshake completed without a certificate.
    NoCertificate,
    /// The handshake completed; how the presented chain verified against each store.
    Completed {
        /// Against Mozilla's roots plus `--ca-file`.
        public: Result<(), rustls::Error>,
        /// Against the OS store plus `--ca-file` (`None`: this machine has no OS store).
        system: Option<bool>,
    },
}

/// What one handshake attempt observed.
#[derive(Debug, Clone)]
pub struct TlsObservation {
    /// How it ended.
    pub handshake: Handshake,
    /// The chain, when one was presented.
    pub details: Option<TlsDetails>,
    /// Time taken.
    pub elapsed: Duration,
}

impl TlsObservation {
    /// Whether the handshake completed with a publicly trusted chain (then the session is usable).
    pub fn trusted(&self) -> bool {
        matches!(self.handshake, Handshake::Completed { public: Ok(()), .. })
    }

    /// Whether the peer closed or reset the connection mid-handshake.
    pub fn peer_closed(&self) -> bool {
        matches!(
            self.handshake,
            Handshake::Failed {
                kind: io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset,
                ..
            }
        )
    }
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

    /// Handshakes over `stream` with SNI `host` and verifies the presented chain. The session is
    /// handed back for an HTTP request when the handshake completed.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        host: &str,
        timeout: Duration,
    ) -> (TlsObservation, Option<TlsStream<Counted>>) {
        let start = Instant::now();
        let ended = |handshake, details| TlsObservation {
            handshake,
            details,
            elapsed: start.elapsed(),
        };
        let Ok(server_name) = ServerName::try_from(host.to_string()) else {
            return (ended(Handshake::InvalidName, None), None);
        };
        let received = Arc::new(AtomicU64::new(0));
        let stream = Counted {
            inner: stream,
            received: received.clone(),
        };
        let tls = match tokio::time::timeout(timeout, self.connector.connect(server_name.clone(), stream)).await {
            Err(_) => return (ended(Handshake::TimedOut(timeout), None), None),
            Ok(Err(e)) => {
                let failed = Handshake::Failed {
                    kind: e.kind(),
                    error: e.to_string(),
                    server_bytes: received.load(Ordering::Relaxed),
                };
                return (ended(failed, None), None);
            }
            Ok(Ok(s)) => s,
        };
        let (_, conn) = tls.get_ref();
        let chain = conn.peer_certificates().unwrap_or_default();
        let mut details = describe(chain);
        details.version = conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(|v| v.replace('_', "."));
        let Some((leaf, rest)) = chain.split_first() else {
            return (ended(Handshake::NoCertificate, Some(details)), None);
        };
        let now = UnixTime::now();
        let public = self
            .public
            .verify_server_cert(leaf, rest, &server_name, &[], now)
            .map(|_| ());
        let system = self
            .system
            .as_ref()
            .map(|v| v.verify_server_cert(leaf, rest, &server_name, &[], now).is_ok());
        details.trusted_public = public.is_ok();
        details.trusted_system = system;
        (ended(Handshake::Completed { public, system }, Some(details)), Some(tls))
    }
}

/// The socket under a handshake, counting the bytes the server sends.
#[derive(Debug)]
pub struct Counted {
    inner: TcpStream,
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.received
                .fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A handshake against a loopback peer that reads the ClientHello, then answers `reply`
    /// (maybe nothing) and hangs up.
    async fn against(reply: &'static [u8]) -> Handshake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 512];
            let _ = s.read(&mut hello).await;
            s.write_all(reply).await.unwrap();
        });
        let prober = TlsProber::new(&[] as &[&Path]).unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (observed, _) = prober.handshake(stream, "a.test", Duration::from_secs(5)).await;
        peer.await.unwrap();
        observed.handshake
    }

    #[tokio::test]
    async fn the_bytes_a_server_sent_before_hanging_up_are_counted() {
        match against(b"").await {
            Handshake::Failed { server_bytes, .. } => assert_eq!(server_bytes, 0),
            other => panic!("{other:?}"),
        }
        match against(b"HTTP/1.1 400 Bad Request\r\n\r\n").await {
            Handshake::Failed { server_bytes, .. } => assert!(server_bytes > 0),
            other => panic!("{other:?}"),
        }
    }
}
