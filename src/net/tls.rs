//! TLS for every step that dials. For the Microsoft endpoints (steps 3-5) the handshake accepts
//! whatever chain the peer presents so the chain can be examined; it is then verified against
//! the platform trust store (which honours `SSL_CERT_FILE`) and its issuers are compared with
//! the expected organisations. A chain from anyone else is TLS interception, which the connector
//! does not survive. For backends (step 7) the chain is verified during the handshake as the
//! connector's Windows does (on Windows with the platform verifier: the machine's store,
//! missing intermediates fetched), and a failure says why in words, the TLS version included
//! when the backend speaks only TLS 1.1 or older.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

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
    pub fn get() -> Result<&'static TlsSetup, String> {
        static SETUP: OnceLock<Result<TlsSetup, String>> = OnceLock::new();
        SETUP
            .get_or_init(TlsSetup::load)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load() -> Result<TlsSetup, String> {
        crate::install_crypto_provider();
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a trust store certificate could not be loaded");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("the platform trust store holds no usable root certificate".into());
        }
        let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        let config = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Examine(Arc::clone(&verifier))))
            .with_no_client_auth();
        let verifying = verifying_config(&verifier)?;
        Ok(TlsSetup {
            verifier,
            connector: TlsConnector::from(Arc::new(config)),
            verifying,
        })
    }

    /// A TLS client stream to a backend: with `verify`, a chain that does not verify fails the
    /// handshake; without, any chain is accepted (the app's certificate validation is off).
    pub async fn connect<S>(
        &self,
        stream: S,
        host: &str,
        verify: bool,
    ) -> Result<tokio_rustls::client::TlsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a valid TLS name: {e}"))?;
        let connector = if verify {
            &self.verifying
        } else {
            &self.connector
        };
        connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("the TLS handshake failed: {}", reason(&e, host)))
    }

    /// Handshakes over `stream` as `host` and judges the presented chain.
    pub async fn handshake<S>(
        &self,
        stream: S,
        host: &str,
        expected_issuers: &[String],
    ) -> Result<TlsVerdict, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a valid TLS name: {e}"))?;
        let stream = self
            .connector
            .connect(name.clone(), stream)
            .await
            .map_err(|e| format!("the TLS handshake failed: {}", reason(&e, host)))?;
        let (_, connection) = stream.get_ref();
        let chain = connection
            .peer_certificates()
            .ok_or_else(|| "the server presented no certificate".to_string())?;
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| "the server presented an empty chain".to_string())?;

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

/// Backend chains verified during the handshake: the platform verifier on Windows, as the
/// connector's own .NET does; webpki with the platform's roots elsewhere.
#[cfg(windows)]
fn verifying_config(_roots: &Arc<WebPkiServerVerifier>) -> Result<TlsConnector, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let config = ClientConfig::builder()
        .with_platform_verifier()
        .map_err(|e| format!("cannot use the Windows certificate verifier: {e}"))?
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(not(windows))]
fn verifying_config(roots: &Arc<WebPkiServerVerifier>) -> Result<TlsConnector, String> {
    let config = ClientConfig::builder()
        .with_webpki_verifier(Arc::clone(roots))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
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
            "{LEGACY_TLS}: the backend offers only TLS 1.1 or older, which are deprecated and off by default on current Windows Server"
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

/// How a backend that speaks only old TLS is named in the evidence (and recognised).
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
