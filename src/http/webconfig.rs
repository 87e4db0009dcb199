//! `--web.config.file`, in the format of Prometheus' exporter-toolkit: TLS (certificate and key,
//! minimum and maximum version, client certificates) and basic auth users with bcrypt hashes.
//! The file is checked for changes on every connection and request and re-read when it
//! changed; a file that no longer loads is logged and the last good one stays in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Accepted for compatibility with Go's settings; rustls chooses its own safe suites.
    #[allow(dead_code)]
    cipher_suites: Option<Vec<String>>,
    #[allow(dead_code)]
    curve_preferences: Option<Vec<String>>,
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The web config in force.
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    users: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// Passwords already checked against their hash: bcrypt is slow on purpose, a scrape
    /// every few seconds should not pay it each time.
    verified: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks the file; every path in it is relative to the file's folder.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{name}: cannot read the web config: {e}"))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig {
                tls_server_config: None,
                http_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| format!("{name}: {}", first_line(&e.to_string())))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        for (user, hash) in &raw.basic_auth_users {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|_| format!("{name}: basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\"`)"))?;
        }
        let tls = match raw.tls_server_config {
            None => None,
            Some(tls) => Some(Arc::new(
                tls_config(&tls, base).map_err(|e| format!("{name}: tls_server_config: {e}"))?,
            )),
        };
        Ok(WebConfig {
            tls,
            users: raw.basic_auth_users,
            headers: raw
                .http_server_config
                .map(|h| h.headers)
                .unwrap_or_default(),
            verified: Mutex::new(BTreeMap::new()),
        })
    }

    /// Whether a request with this `Authorization` header may pass.
    pub fn authorized(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            // Spend the same time as a wrong password, so user names cannot be probed.
            let _ = bcrypt::verify(
                &password,
                "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi",
            );
            return false;
        };
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.get(&user) == Some(&password) {
            return true;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false);
        if ok {
            verified.insert(user, password);
        }
        ok
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn tls_config(tls: &RawTls, base: &Path) -> Result<ServerConfig, String> {
    crate::install_crypto_provider();
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err("cert_file and key_file are required".into());
    };
    let cert_path = base.join(cert_file);
    let key_path = base.join(key_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no certificate in it",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("key_file {}: {e}", key_path.display()))?;

    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref())?;
    let builder = ServerConfig::builder_with_protocol_versions(&versions);
    let builder = match tls.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        // As the exporter-toolkit says too: a CA that nothing uses is a mistake.
        "NoClientCert" if tls.client_ca_file.is_some() => {
            return Err(
                "client_ca_file is set but client_auth_type does not ask for client certificates"
                    .into(),
            );
        }
        "NoClientCert" => builder.with_no_client_auth(),
        kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven") => {
            let ca_file = tls
                .client_ca_file
                .as_ref()
                .ok_or_else(|| format!("client_auth_type {kind} needs client_ca_file"))?;
            let ca_path = base.join(ca_file);
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&ca_path)
                .map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?
            {
                let cert =
                    cert.map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if kind == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "client_auth_type {other:?} is not supported: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS 1.2 and 1.3 are what rustls speaks: an older minimum means 1.2.
fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS10" | "TLS11" | "TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(format!(
            "unknown TLS version {other:?} (TLS10, TLS11, TLS12, TLS13)"
        )),
    };
    let (low, high) = (rank(min, 12)?, rank(max, 13)?);
    if low > high {
        return Err("min_version is above max_version".into());
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

/// The web config, re-read when its file changes.
#[derive(Debug)]
pub struct WebConfigFile {
    path: PathBuf,
    state: Mutex<(Option<SystemTime>, Arc<WebConfig>)>,
}

impl WebConfigFile {
    /// Loads the file; an error here stops the start-up.
    pub fn open(path: &Path) -> Result<WebConfigFile, String> {
        let config = WebConfig::load(path)?;
        Ok(WebConfigFile {
            path: path.to_path_buf(),
            state: Mutex::new((modified(path), Arc::new(config))),
        })
    }

    /// The config in force, re-read first when the file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = modified(&self.path);
        if now != state.0 {
            state.0 = now;
            match WebConfig::load(&self.path) {
                Ok(config) => {
                    tracing::info!(file = %self.path.display(), "web config reloaded");
                    state.1 = Arc::new(config);
                }
                Err(error) => {
                    tracing::error!(%error, "the web config no longer loads; the previous one stays in force")
                }
            }
        }
        Arc::clone(&state.1)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn basic_auth_accepts_the_right_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let config = WebConfig::load(&write(
            dir.path(),
            &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
        ))
        .unwrap();
        let header = |user: &str, password: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        assert!(config.authorized(Some(&header("prometheus", "s3cret"))));
        assert!(
            config.authorized(Some(&header("prometheus", "s3cret"))),
            "from the cache"
        );
        assert!(!config.authorized(Some(&header("prometheus", "wrong"))));
        assert!(!config.authorized(Some(&header("someone", "s3cret"))));
        assert!(!config.authorized(None));
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let error =
            WebConfig::load(&write(dir.path(), "basic_auth_users:\n  a: plain\n")).unwrap_err();
        assert!(
            error.contains("basic_auth_users.a: not a bcrypt hash"),
            "{error}"
        );
        let error = WebConfig::load(&write(
            dir.path(),
            "tls_server_config:\n  cert_file: x.crt\n",
        ))
        .unwrap_err();
        assert!(
            error.contains("cert_file and key_file are required"),
            "{error}"
        );
        let error = WebConfig::load(&write(dir.path(), "tls_server_confg: {}\n")).unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
        let error = WebConfig::load(&write(
            dir.path(),
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
        ))
        .unwrap_err();
        assert!(error.contains("missing.crt"), "{error}");
    }

    #[test]
    fn tls_versions_map_to_what_rustls_speaks() {
        assert_eq!(versions(Some("TLS13"), None).unwrap().len(), 1);
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert!(versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(versions(Some("SSL3"), None).is_err());
    }
}
