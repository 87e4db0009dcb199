//! The web config's `tls_server_config`, as exporter-toolkit reads it: certificate and key,
//! client certificates, the TLS versions and the cipher suites by their Go names.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::RawTls;
use super::error::TlsConfigError;

pub(super) fn config(tls: &RawTls, base: &Path) -> Result<ServerConfig, TlsConfigError> {
    crate::net::tls::install_crypto_provider();
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(TlsConfigError::CertAndKeyRequired);
    };
    let cert_path = base.join(cert_file);
    let key_path = base.join(key_file);
    let read = |what: &'static str, path: &Path| {
        crate::platform::file::read_bounded(path, crate::platform::file::SECRET_LIMIT).map_err(
            |source| TlsConfigError::Read {
                what,
                path: path.to_path_buf(),
                source,
            },
        )
    };
    let pem = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsConfigError::Pem { what, path, source }
    };
    let cert_pem = read("cert_file", &cert_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(pem("cert_file", &cert_path))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate(cert_path));
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", &key_path)?)
        .map_err(pem("key_file", &key_path))?;

    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref())?;
    let provider = provider(tls.cipher_suites.as_deref().unwrap_or_default())?;
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(TlsConfigError::Versions)?;
    let builder = match tls.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        // As the exporter-toolkit says too: a CA that nothing uses is a mistake.
        "NoClientCert" if tls.client_ca_file.is_some() => {
            return Err(TlsConfigError::UnusedClientCa);
        }
        "NoClientCert" => builder.with_no_client_auth(),
        kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven") => {
            let ca_file = tls
                .client_ca_file
                .as_ref()
                .ok_or_else(|| TlsConfigError::NoClientCa(kind.to_string()))?;
            let ca_path = base.join(ca_file);
            let ca_pem = read("client_ca_file", &ca_path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
                let cert = cert.map_err(pem("client_ca_file", &ca_path))?;
                roots.add(cert).map_err(|source| TlsConfigError::ClientCa {
                    path: ca_path.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if kind == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier.build().map_err(TlsConfigError::ClientVerifier)?,
            )
        }
        other => return Err(TlsConfigError::ClientAuthType(other.to_string())),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsConfigError::CertificateAndKey)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The cipher suites `cipher_suites` names, by their Go (and IANA) names, as exporter-toolkit
/// takes them; TLS 1.3's suites are not configurable there and stay. A name Go does not know
/// is refused as exporter-toolkit refuses it; one it knows but rustls does not offer (the CBC
/// and RSA key exchange suites) is refused too, saying so.
fn provider(names: &[String]) -> Result<rustls::crypto::CryptoProvider, TlsConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let name_of = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
    for name in names {
        let offered = provider.cipher_suites.iter().any(|s| &name_of(s) == name);
        if !offered {
            return Err(if GO_ONLY_SUITES.contains(&name.as_str()) {
                TlsConfigError::NotOffered(name.clone())
            } else {
                TlsConfigError::UnknownCipher(name.clone())
            });
        }
    }
    provider.cipher_suites.retain(|s| {
        s.version() == &rustls::version::TLS13 || names.iter().any(|n| *n == name_of(s))
    });
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

/// TLS 1.2 and 1.3 are what rustls speaks: an older minimum means 1.2.
fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsConfigError> {
    let rank = |v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS10" | "TLS11" | "TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(TlsConfigError::UnknownVersion(other.to_string())),
    };
    let (low, high) = (rank(min, 12)?, rank(max, 13)?);
    if low > high {
        return Err(TlsConfigError::VersionsReversed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_are_go_names_and_unknown_ones_are_refused() {
        assert!(provider(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).is_ok());
        let error = provider(&["TLS_ECDHE_RSA_WITH_NOTHING".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "unknown cipher: TLS_ECDHE_RSA_WITH_NOTHING");
        let error = provider(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not offered here"), "{error}");
        let only = provider(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
        assert!(only.cipher_suites.iter().all(|s| {
            s.version() == &rustls::version::TLS13
                || format!("{:?}", s.suite()) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        }));
    }

    #[test]
    fn tls_versions_map_to_what_rustls_speaks() {
        assert_eq!(versions(Some("TLS13"), None).unwrap().len(), 1);
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert!(versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(versions(Some("SSL3"), None).is_err());
    }
}
