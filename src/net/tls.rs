//! TLS for every step that dials. For the Microsoft endpoints (steps 3-5) the handshake accepts
//! whatever chain the peer presents so the chain can be examined; it is then verified against
//! the platform trust store (which honours `SSL_CERT_FILE`) and its issuers are compared with
//! the expected organisations. A chain from anyone else is TLS interception, which the connector
//! does not survive. For backends (step 7) the chain is verified during the handshake as the
//! connector's Windows does ([`crate::platform::trust`]), and a failure says why in words. The
//! version a backend handshake reached is kept ([`TlsVersion`]), and a backend that offers only
//! TLS 1.1 or older, which rustls does not speak, is told apart ([`TlsError::OnlyLegacy`]): the
//! connector's SChannel may still speak it, so that is not the backend's failure by itself.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

/// Makes ring rustls' process-wide crypto provider, which HTTP clients (Graph) and the web
/// server's TLS look up as well as the probes. Idempotent.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why TLS could not be set up, or a handshake not judged; the words on-call engineers read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the platform trust store holds no usable root certificate")]
    NoRoots,
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(rustls::client::VerifierBuilderError),
    #[error(transparent)]
    Trust(#[from] crate::platform::trust::TrustError),
    #[error("{host:?} is not a valid TLS name: {source}")]
    InvalidName {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// Why the handshake failed, in words ([`reason`]).
    #[error("the TLS handshake failed: {0}")]
    Handshake(String),
    /// The server offers only TLS 1.1 or older ([`only_legacy`]): rustls speaks TLS 1.2 and 1.3
    /// only, so the exporter cannot load the page, whereas SChannel may.
    #[error(
        "the TLS handshake failed: {LEGACY_TLS}: the backend offers only TLS 1.1 or older, which the exporter's TLS (rustls) does not speak"
    )]
    OnlyLegacy,
    #[error("the server presented no certificate")]
    NoCertificate,
    #[error("the server presented an empty chain")]
    EmptyChain,
}

/// What the TLS handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsVerdict {
    /// A trusted chain from an expected issuer.
    Genuine,
    /// The chain names no expected issuer; the issuer organisation that signed the leaf.
    Intercepted { issuer: String },
    /// An expected issuer, but the chain does not verify (expired, wrong name, unknown root).
    Untrusted { reason: String },
}

/// Roots and the client configurations, built once per process.
pub struct TlsSetup {
    verifier: Arc<WebPkiServerVerifier>,
    /// Completes any handshake so the chain can be judged afterwards (steps 3-5).
    connector: TlsConnector,
    /// Verifies the chain during the handshake, as the connector does with backend
    /// certificate validation on (step 7).
    verifying: TlsConnector,
}

impl TlsSetup {
    /// The shared set-up; the platform's roots are read on first use.
    pub fn get() -> Result<&'static TlsSetup, &'static TlsError> {
        static SETUP: OnceLock<Result<TlsSetup, TlsError>> = OnceLock::new();
        SETUP.get_or_init(TlsSetup::load).as_ref()
    }

    fn load() -> Result<TlsSetup, TlsError> {
        install_crypto_provider();
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a trust store certificate could not be loaded");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(TlsError::NoRoots);
        }
        let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(TlsError::Verifier)?;
        let config = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Examine(Arc::clone(&verifier))))
            .with_no_client_auth();
        let verifying = crate::platform::trust::backend_config(&verifier)?;
        Ok(TlsSetup {
            verifier,
            connector: TlsConnector::from(Arc::new(config)),
            verifying: TlsConnector::from(Arc::new(verifying)),
        })
    }

    /// A TLS client stream to a backend: with `verify`, a chain that does not verify fails the
    /// handshake; without, any chain is accepted (the app's certificate validation is off).
    pub async fn connect<S>(
        &self,
        stream: S,
        host: &str,
        verify: bool,
    ) -> Result<tokio_rustls::client::TlsStream<S>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(host)?;
        let connector = if verify {
            &self.verifying
        } else {
            &self.connector
        };
        connector.connect(name, stream).await.map_err(|e| {
            if only_legacy(&e) {
                TlsError::OnlyLegacy
            } else {
                TlsError::Handshake(reason(&e, host))
            }
        })
    }

    /// Handshakes over `stream` as `host` and judges the presented chain.
    pub async fn handshake<S>(
        &self,
        stream: S,
        host: &str,
        expected_issuers: &[String],
    ) -> Result<TlsVerdict, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(host)?;
        let stream = self
            .connector
            .connect(name.clone(), stream)
            .await
            .map_err(|e| TlsError::Handshake(reason(&e, host)))?;
        let (_, connection) = stream.get_ref();
        let chain = connection
            .peer_certificates()
            .ok_or(TlsError::NoCertificate)?;
        let (leaf, intermediates) = chain.split_first().ok_or(TlsError::EmptyChain)?;

        let issuers: Vec<String> = chain.iter().filter_map(issuer_organisation).collect();
        if !issuers
            .iter()
            .any(|o| expected_issuers.iter().any(|e| e.eq_ignore_ascii_case(o)))
        {
            let issuer = issuers
                .first()
                .cloned()
                .unwrap_or_else(|| "(no organisation)".into());
            return Ok(TlsVerdict::Intercepted { issuer });
        }
        match self
            .verifier
            .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        {
            Ok(_) => Ok(TlsVerdict::Genuine),
            Err(error) => Ok(TlsVerdict::Untrusted {
                reason: error.to_string(),
            }),
        }
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|source| TlsError::InvalidName {
        host: host.to_string(),
        source,
    })
}

/// The protocol version of a handshake, as blackbox_exporter's `probe_tls_version_info` names
/// it (`appproxy_backend_tls_version_info{version}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls13,
    Tls12,
    /// The server offers only TLS 1.0 or 1.1 (which of them is not told: rustls stops at the
    /// server's hello, before either side says more).
    Legacy,
}

impl TlsVersion {
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Tls13 => "TLS 1.3",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Legacy => "TLS 1.0/1.1",
        }
    }

    /// The version a completed handshake negotiated.
    pub fn of<S>(stream: &tokio_rustls::client::TlsStream<S>) -> Option<TlsVersion> {
        match stream.get_ref().1.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            _ => None,
        }
    }
}

/// Whether a handshake failed because the server offers only TLS 1.1 or older: rustls reads a
/// server hello of TLS 1.0 or 1.1 as `PeerIncompatible::ServerDoesNotSupportTls12Or13`, and a
/// server that cannot go as high as the client's minimum answers with a `protocol_version`
/// alert (RFC 8446 appendix D, RFC 5246 appendix E.1).
pub fn only_legacy(error: &std::io::Error) -> bool {
    use rustls::{AlertDescription, PeerIncompatible};
    matches!(
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(
            rustls::Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13)
                | rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
        )
    )
}

/// Why a handshake failed, in words.
pub fn reason(error: &std::io::Error, host: &str) -> String {
    use rustls::{AlertDescription, CertificateError, PeerIncompatible};
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match error.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "the backend closed the connection during the handshake (is the port TLS?)".into()
            }
            _ => error.to_string(),
        };
    };
    match tls {
        rustls::Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13)
        | rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => format!(
            "{LEGACY_TLS}: the server offers only TLS 1.1 or older, which the exporter's TLS (rustls) does not speak"
        ),
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the backend refused the handshake: no protocol version or cipher suite in common (a backend that speaks only TLS 1.0/1.1 or old ciphers does this)".into()
        }
        rustls::Error::InvalidMessage(_) => {
            "the backend does not speak TLS on this port (plain HTTP?)".into()
        }
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => {
                "the certificate's issuer is not trusted on this host (UnknownIssuer): a private CA not in the machine's store, or a missing intermediate".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the certificate does not name {host} (NotValidForName)")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the certificate is not valid yet".into()
            }
            CertificateError::Revoked => "the certificate is revoked".into(),
            other => format!("the certificate is not valid ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// The leaf certificate a server presented in a completed handshake: what step 10 compares
/// with the custom-domain certificate Graph describes (`backend::custom_domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The SHA-1 of the certificate's DER in lowercase hex: what Windows and Graph call its
    /// thumbprint.
    pub thumbprint: String,
    /// The subject as x509-parser prints it (`CN=..., O=...`), empty when it cannot be read.
    pub subject: String,
    /// The issuer's common name (CN), when it has one.
    pub issuer_common_name: Option<String>,
}

impl PresentedCertificate {
    /// Of the first certificate `stream`'s peer presented, when the handshake is done.
    pub fn of_peer<S>(stream: &tokio_rustls::client::TlsStream<S>) -> Option<PresentedCertificate> {
        let (_, connection) = stream.get_ref();
        let leaf = connection.peer_certificates()?.first()?;
        Some(PresentedCertificate::of(leaf.as_ref()))
    }

    /// Of a certificate's DER; one that does not parse still has its thumbprint.
    pub fn of(der: &[u8]) -> PresentedCertificate {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let thumbprint = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let parsed = x509_parser::parse_x509_certificate(der)
            .ok()
            .map(|(_, c)| c);
        PresentedCertificate {
            thumbprint,
            subject: parsed
                .as_ref()
                .map(|c| c.subject().to_string())
                .unwrap_or_default(),
            issuer_common_name: parsed.as_ref().and_then(|c| {
                let cn = c.issuer().iter_common_name().next()?;
                Some(cn.as_str().ok()?.to_string())
            }),
        }
    }
}

/// How a server that speaks only old TLS is named in the evidence ([`TlsError::OnlyLegacy`]).
pub const LEGACY_TLS: &str = "TLS 1.0/1.1 only";

/// The organisation (O=) of a certificate's issuer.
fn issuer_organisation(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let organisation = parsed
        .issuer()
        .iter_organization()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(organisation)
}

/// Lets any chain through the handshake (it is judged afterwards) while still checking the
/// handshake's signatures properly.
#[derive(Debug)]
struct Examine(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Examine {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(error: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }

    /// rustls' own words for a TLS 1.0/1.1 server hello, and the alert a server sends when the
    /// client's versions are all above its own (RFC 5246 appendix E.1), mean "legacy only"; a
    /// handshake failure alert (no cipher in common) or a certificate error do not.
    #[test]
    fn only_a_server_below_tls_12_is_told_legacy_only() {
        use rustls::{AlertDescription, CertificateError, PeerIncompatible};
        assert!(only_legacy(&io(rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
        ))));
        assert!(only_legacy(&io(rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion
        ))));
        assert!(!only_legacy(&io(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure
        ))));
        assert!(!only_legacy(&io(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))));
        assert!(!only_legacy(&std::io::ErrorKind::ConnectionReset.into()));
    }

    #[test]
    fn versions_are_named_as_blackbox_exporter_names_them() {
        let labels: Vec<_> = [TlsVersion::Tls13, TlsVersion::Tls12, TlsVersion::Legacy]
            .iter()
            .map(|v| v.label())
            .collect();
        assert_eq!(labels, ["TLS 1.3", "TLS 1.2", "TLS 1.0/1.1"]);
    }
}
