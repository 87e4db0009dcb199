//! The web config's `tls_server_config`, every field exporter-toolkit documents
//! (docs/web-configuration.md): certificate and key inline or from files, client certificates
//! and their allowed SANs, the TLS versions, the cipher suites and curves by their Go names,
//! and the server's cipher order. What rustls cannot do as Go does is refused with the reason,
//! or, where the difference is harmless, logged once at loading.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};

use super::RawTls;
use super::error::TlsConfigError;

/// The TLS settings, and the files they were read from: a change to any of them is a change
/// of the web config (exporter-toolkit reads the certificate at every handshake, so a renewed
/// certificate is picked up without touching web.yml; so it is here).
pub(super) struct Tls {
    pub config: ServerConfig,
    pub files: Vec<(PathBuf, Option<super::Stamp>)>,
}

/// A PEM value, inline in the web config or in a file beside it, with the words that name it.
struct Pem {
    at: String,
    bytes: Vec<u8>,
}

/// Reads the PEM value `inline` or `file` (paths relative to `base`) gives; both at once is a
/// mistake, as is neither when `required`.
fn pem(
    (inline_key, inline): (&'static str, Option<&[u8]>),
    (file_key, file): (&'static str, Option<&PathBuf>),
    base: &Path,
    files: &mut Vec<(PathBuf, Option<super::Stamp>)>,
) -> Result<Option<Pem>, TlsConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(TlsConfigError::BothSet {
            inline: inline_key,
            file: file_key,
        }),
        (Some(text), None) => Ok(Some(Pem {
            at: inline_key.to_string(),
            bytes: text.to_vec(),
        })),
        (None, Some(file)) => {
            let path = base.join(file);
            // Stamped before it is read: a change while it is read is seen at the next look.
            files.push((path.clone(), super::stamp(&path)));
            let bytes =
                crate::platform::file::read_bounded(&path, crate::platform::file::SECRET_LIMIT)
                    .map_err(|source| TlsConfigError::Read {
                        what: file_key,
                        path: path.clone(),
                        source,
                    })?;
            Ok(Some(Pem {
                at: format!("{file_key} {}", path.display()),
                bytes,
            }))
        }
        (None, None) => Ok(None),
    }
}

fn certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.bytes)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsConfigError::Pem {
            at: pem.at.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate(pem.at.clone()));
    }
    Ok(certs)
}

pub(super) fn config(tls: &RawTls, base: &Path) -> Result<Tls, TlsConfigError> {
    crate::net::tls::install_crypto_provider();
    let mut files = Vec::new();
    let missing = |inline, file| TlsConfigError::Missing { inline, file };
    // Both are asked for before either is read, as exporter-toolkit does (validateTLSPaths).
    if tls.cert.is_none() && tls.cert_file.is_none() {
        return Err(missing("cert", "cert_file"));
    }
    if tls.key.is_none() && tls.key_file.is_none() {
        return Err(missing("key", "key_file"));
    }
    let cert = pem(
        ("cert", tls.cert.as_deref().map(str::as_bytes)),
        ("cert_file", tls.cert_file.as_ref()),
        base,
        &mut files,
    )?
    .ok_or_else(|| missing("cert", "cert_file"))?;
    let key = pem(
        ("key", tls.key.as_ref().map(|k| k.expose().as_bytes())),
        ("key_file", tls.key_file.as_ref()),
        base,
        &mut files,
    )?
    .ok_or_else(|| missing("key", "key_file"))?;
    let certs = certificates(&cert)?;
    let key = PrivateKeyDer::from_pem_slice(&key.bytes).map_err(|source| TlsConfigError::Pem {
        at: key.at.clone(),
        source,
    })?;

    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref())?;
    let mut provider = provider(tls.cipher_suites.as_deref().unwrap_or_default())?;
    if let Some(curves) = &tls.curve_preferences {
        provider.kx_groups = curves_in_order(curves)?;
    }
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(TlsConfigError::Versions)?;
    let client_ca = pem(
        ("client_ca", tls.client_ca.as_deref().map(str::as_bytes)),
        ("client_ca_file", tls.client_ca_file.as_ref()),
        base,
        &mut files,
    )?;
    let kind = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    if let Some(sans) = &tls.client_allowed_sans {
        if sans.is_empty() {
            return Err(TlsConfigError::NoSans);
        }
        if kind != "RequireAndVerifyClientCert" {
            return Err(TlsConfigError::SansWithout(kind.to_string()));
        }
    }
    let builder = match kind {
        // As exporter-toolkit says too: a CA that nothing uses is a mistake.
        "NoClientCert" if client_ca.is_some() => return Err(TlsConfigError::UnusedClientCa),
        "NoClientCert" => builder.with_no_client_auth(),
        // Go takes a certificate without checking it against any CA: it proves nothing about
        // the client, and exporter-toolkit's own docs call these values insecure.
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            return Err(TlsConfigError::Unverified(kind.to_string()));
        }
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = client_ca.ok_or_else(|| TlsConfigError::NoClientCa(kind.to_string()))?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(&ca)? {
                roots.add(cert).map_err(|source| TlsConfigError::ClientCa {
                    at: ca.at.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if kind == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(TlsConfigError::ClientVerifier)?;
            match &tls.client_allowed_sans {
                None => builder.with_client_cert_verifier(verifier),
                Some(sans) => builder.with_client_cert_verifier(Arc::new(AllowedSans {
                    inner: verifier,
                    allowed: sans.clone(),
                })),
            }
        }
        other => return Err(TlsConfigError::ClientAuthType(other.to_string())),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsConfigError::CertificateAndKey)?;
    // exporter-toolkit's default is the server's order (`prefer_server_cipher_suites: true`).
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { config, files })
}

/// The cipher suites `cipher_suites` names, by their Go (and IANA) names, as exporter-toolkit
/// takes them, in the order given (the server's order when `prefer_server_cipher_suites`);
/// TLS 1.3's suites are not configurable there and stay. A name Go does not know is refused as
/// exporter-toolkit refuses it; one it knows but rustls does not offer (the CBC and RSA key
/// exchange suites) is refused too, saying so.
fn provider(names: &[String]) -> Result<rustls::crypto::CryptoProvider, TlsConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let name_of = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
    let mut chosen: Vec<rustls::SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in names {
        let Some(suite) = provider.cipher_suites.iter().find(|s| &name_of(s) == name) else {
            return Err(if GO_ONLY_SUITES.contains(&name.as_str()) {
                TlsConfigError::NotOffered(name.clone())
            } else {
                TlsConfigError::UnknownCipher(name.clone())
            });
        };
        chosen.push(*suite);
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// Suites Go's crypto/tls names that rustls does not implement.
const GO_ONLY_SUITES: [&str; 13] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// `curve_preferences` by Go's `tls.CurveID` names, in the order given. Go's CurveP521 is
/// not offered by rustls' ring provider: refused, saying so, rather than dropped.
fn curves_in_order(
    names: &[String],
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, TlsConfigError> {
    use rustls::crypto::ring::kx_group;
    if names.is_empty() {
        return Err(TlsConfigError::NoCurves);
    }
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(kx_group::X25519),
            "CurveP256" => Ok(kx_group::SECP256R1),
            "CurveP384" => Ok(kx_group::SECP384R1),
            "CurveP521" => Err(TlsConfigError::CurveNotOffered(name.clone())),
            _ => Err(TlsConfigError::UnknownCurve(name.clone())),
        })
        .collect()
}

/// TLS 1.2 and 1.3 are what rustls speaks. A minimum of TLS 1.0 or 1.1 allows less than Go
/// would, and is taken as 1.2 with a warning; a maximum below 1.2 leaves nothing, and is
/// refused.
fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsConfigError> {
    let rank = |v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS10") => Ok(10),
        Some("TLS11") => Ok(11),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(TlsConfigError::UnknownVersion(other.to_string())),
    };
    let (low, high) = (rank(min, 12)?, rank(max, 13)?);
    if low > high {
        return Err(TlsConfigError::VersionsReversed);
    }
    if high < 12 {
        return Err(TlsConfigError::NoVersionLeft(
            max.unwrap_or_default().to_string(),
        ));
    }
    if low < 12 {
        tracing::warn!(
            min_version = min.unwrap_or_default(),
            "tls_server_config: the minimum in force is TLS12: TLS 1.0 and 1.1 are not spoken here (rustls)"
        );
    }
    let mut versions = Vec::new();
    if low <= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if high >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    Ok(versions)
}

/// `client_allowed_sans`: after the CA's check, the client certificate must carry one of the
/// listed names among its SANs, exactly: DNS names, e-mail addresses, IP addresses and URIs,
/// as exporter-toolkit compares them (web/tls_config.go, `VerifyPeerCertificate`).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    fn sans(der: &CertificateDer<'_>) -> Vec<String> {
        use x509_parser::extensions::GeneralName;
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            return Vec::new();
        };
        let Ok(Some(extension)) = cert.subject_alternative_name() else {
            return Vec::new();
        };
        extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(name)
                | GeneralName::RFC822Name(name)
                | GeneralName::URI(name) => Some(name.to_string()),
                GeneralName::IPAddress(bytes) => ip_text(bytes),
                _ => None,
            })
            .collect()
    }
}

/// An IP address SAN as Go prints it (`net.IP.String`).
fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?).to_canonical(),
        _ => return None,
    };
    Some(ip.to_string())
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = Self::sans(end_entity);
        if sans.iter().any(|san| self.allowed.contains(san)) {
            return Ok(verified);
        }
        tracing::debug!(
            ?sans,
            "a client certificate without an allowed SAN was refused"
        );
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_are_go_names_in_the_order_given_and_unknown_ones_are_refused() {
        let error = provider(&["TLS_ECDHE_RSA_WITH_NOTHING".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "unknown cipher: TLS_ECDHE_RSA_WITH_NOTHING");
        let error = provider(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not offered here"), "{error}");
        let names = [
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ];
        let chosen = provider(&names.map(String::from)).unwrap();
        let tls12: Vec<String> = chosen
            .cipher_suites
            .iter()
            .filter(|s| s.version() != &rustls::version::TLS13)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(tls12, names);
    }

    #[test]
    fn tls_versions_map_to_what_rustls_speaks() {
        assert_eq!(versions(Some("TLS13"), None).unwrap().len(), 1);
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert_eq!(versions(Some("TLS10"), None).unwrap().len(), 2);
        assert!(versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(versions(Some("SSL3"), None).is_err());
        let error = versions(Some("TLS10"), Some("TLS11"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no version would be left"), "{error}");
    }

    #[test]
    fn curves_by_go_names_in_order() {
        use rustls::NamedGroup;
        let groups = curves_in_order(&["CurveP384".into(), "X25519".into()]).unwrap();
        let names: Vec<NamedGroup> = groups.iter().map(|g| g.name()).collect();
        assert_eq!(names, [NamedGroup::secp384r1, NamedGroup::X25519]);
        let error = curves_in_order(&["CurveP521".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not offered here"), "{error}");
        let error = curves_in_order(&["P-256".into()]).unwrap_err().to_string();
        assert!(error.contains("CurveP256"), "{error}");
    }

    #[test]
    fn ip_sans_print_as_go_prints_them() {
        assert_eq!(ip_text(&[192, 0, 2, 1]).as_deref(), Some("192.0.2.1"));
        let v6: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        assert_eq!(ip_text(&v6).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_text(&[1, 2, 3]), None);
    }
}
