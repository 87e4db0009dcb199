//! `--web.config.file`, in the format of Prometheus' exporter-toolkit, and checked as strictly:
//! TLS (certificate and key, minimum and maximum version, cipher suites, client certificates),
//! the response headers exporter-toolkit allows (and only its values where it names them), and
//! basic auth users with bcrypt hashes. Passwords are checked off the async workers, one bcrypt
//! at a time, and the result of each (user, hash, password) is cached, as exporter-toolkit does.
//! The file is checked for changes on every connection and request and re-read when it
//! changed; a file that no longer loads, or a change that cannot be applied while running
//! (turning TLS on or off, an emptied file), is logged and the settings in force stay.

use std::collections::{BTreeMap, HashMap};
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
    /// Go's names (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); TLS 1.3's are not configurable.
    cipher_suites: Option<Vec<String>>,
    // Accepted for compatibility with Go's settings; rustls chooses its own safe curves.
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

/// The response headers exporter-toolkit lets a web config set, with the only values it
/// accepts where it names any (exporter-toolkit's web/handler.go, `extraHTTPHeaders`).
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// The web config in force.
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    users: BTreeMap<String, String>,
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Whether the file was empty: an emptied file never replaces a running config.
    empty: bool,
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
        let name = path.display().to_string();
        let text = crate::text::read_text(path, crate::text::CONFIG_LIMIT)
            .map_err(|e| format!("{name}: cannot read the web config: {e}"))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), &name)
    }

    /// Checks web config text; `base` is the folder its paths are relative to, `name` names
    /// it in messages.
    pub fn parse(text: &str, base: &Path, name: &str) -> Result<WebConfig, String> {
        let empty = text.trim().is_empty();
        let raw: RawWebConfig = if empty {
            RawWebConfig {
                tls_server_config: None,
                http_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                let at = e
                    .location()
                    .map(|at| format!(":{}:{}", at.line(), at.column()))
                    .unwrap_or_default();
                format!("{name}{at}: {}", crate::config::yaml_message(&e))
            })?
        };
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
        let headers = headers(
            raw.http_server_config
                .map(|h| h.headers)
                .unwrap_or_default(),
        )
        .map_err(|e| format!("{name}: http_server_config.headers: {e}"))?;
        Ok(WebConfig {
            tls,
            users: raw.basic_auth_users,
            headers,
            empty,
        })
    }

    /// Whether basic auth is on.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

/// Checks the configured response headers as exporter-toolkit does: only the headers it
/// allows, only its values where it names them, and nothing that is not a valid header value
/// (a CR or LF would let a value start a header of its own).
fn headers(
    raw: BTreeMap<String, String>,
) -> Result<Vec<(axum::http::HeaderName, axum::http::HeaderValue)>, String> {
    raw.into_iter()
        .map(|(name, value)| {
            let Some((_, values)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
                let allowed: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "HTTP header {name:?} can not be configured (the ones that can: {})",
                    allowed.join(", ")
                ));
            };
            if !values.is_empty() && !values.contains(&value.as_str()) {
                return Err(format!("{name}: expected one of {values:?}, got {value:?}"));
            }
            let header_value = axum::http::HeaderValue::from_str(&value).map_err(|_| {
                format!(
                    "{name}: the value holds characters a header cannot carry (a line break, say)"
                )
            })?;
            let header_name = axum::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// Basic auth, checked as exporter-toolkit does: the result of each (user, hash, password) is
/// cached, and bcrypt, slow on purpose, runs off the async workers and one at a time, so a
/// flood of wrong passwords costs one core at most and delays no scrape or probe.
pub struct Authenticator {
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt: tokio::sync::Semaphore,
}

/// Cached results kept at most; past it the cache starts again.
const AUTH_CACHE: usize = 1024;

/// exporter-toolkit's hash of "fakepassword": an unknown user costs what a wrong password does,
/// so user names cannot be told by timing.
const DECOY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl Default for Authenticator {
    fn default() -> Authenticator {
        Authenticator {
            cache: Mutex::new(HashMap::new()),
            bcrypt: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Authenticator {
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    /// Whether a request with this `Authorization` header may pass `config`.
    pub async fn authorized(&self, config: &WebConfig, authorization: Option<&str>) -> bool {
        if config.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let (hash, known) = match config.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (DECOY_HASH.to_string(), false),
        };
        // The key is a digest: no password sits in memory longer than the request.
        let key: [u8; 32] = {
            let mut context = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [user.as_bytes(), hash.as_bytes(), password.as_bytes()] {
                context.update(&(part.len() as u64).to_le_bytes());
                context.update(part);
            }
            let mut key = [0u8; 32];
            key.copy_from_slice(context.finish().as_ref());
            key
        };
        if let Some(ok) = self.cached(&key) {
            return ok && known;
        }
        let ok = {
            let Ok(_turn) = self.bcrypt.acquire().await else {
                return false;
            };
            // Another request may have checked the same credentials while this one waited.
            match self.cached(&key) {
                Some(ok) => ok,
                None => tokio::task::spawn_blocking(move || {
                    bcrypt::verify(&password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false),
            }
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= AUTH_CACHE {
            cache.clear();
        }
        cache.insert(key, ok);
        ok && known
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied()
    }
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
    let read = |what: &str, path: &Path| {
        crate::text::read_bounded(path, crate::text::SECRET_LIMIT)
            .map_err(|e| format!("{what} {}: {e}", path.display()))
    };
    let cert_pem = read("cert_file", &cert_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no certificate in it",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", &key_path)?)
        .map_err(|e| format!("key_file {}: {e}", key_path.display()))?;

    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref())?;
    let provider = provider(tls.cipher_suites.as_deref().unwrap_or_default())?;
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("the cipher suites and TLS versions do not go together: {e}"))?;
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
            let ca_pem = read("client_ca_file", &ca_path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
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

/// The cipher suites `cipher_suites` names, by their Go (and IANA) names, as exporter-toolkit
/// takes them; TLS 1.3's suites are not configurable there and stay. A name Go does not know
/// is refused as exporter-toolkit refuses it; one it knows but rustls does not offer (the CBC
/// and RSA key exchange suites) is refused too, saying so.
fn provider(names: &[String]) -> Result<rustls::crypto::CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let name_of = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
    for name in names {
        let offered = provider.cipher_suites.iter().any(|s| &name_of(s) == name);
        if !offered {
            return Err(if GO_ONLY_SUITES.contains(&name.as_str()) {
                format!(
                    "cipher suite {name} is not offered here: only the ECDHE AEAD suites are (rustls)"
                )
            } else {
                format!("unknown cipher: {name}")
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
pub struct WebConfigFile {
    path: PathBuf,
    state: Mutex<(Option<SystemTime>, Arc<WebConfig>)>,
    /// Basic auth's checks and their cache, for as long as the file serves.
    pub auth: Authenticator,
}

impl std::fmt::Debug for WebConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigFile")
            .field("path", &self.path)
            .finish()
    }
}

impl WebConfigFile {
    /// Loads the file; an error here stops the start-up.
    pub fn open(path: &Path) -> Result<WebConfigFile, String> {
        let config = WebConfig::load(path)?;
        Ok(WebConfigFile {
            path: path.to_path_buf(),
            state: Mutex::new((modified(path), Arc::new(config))),
            auth: Authenticator::new(),
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
            match WebConfig::load(&self.path).and_then(|new| applicable(&state.1, new)) {
                Ok(config) => {
                    if state.1.requires_auth() && !config.requires_auth() {
                        tracing::warn!(file = %self.path.display(), "web config reloaded: basic auth is off now");
                    } else {
                        tracing::info!(file = %self.path.display(), "web config reloaded");
                    }
                    state.1 = Arc::new(config);
                }
                Err(error) => {
                    tracing::error!(%error, "the web config change is not applied; the settings in force stay")
                }
            }
        }
        Arc::clone(&state.1)
    }
}

/// Whether a re-read config can replace the one in force: TLS cannot be turned on or off
/// while the listeners run, and an emptied file (a write in progress, most likely) must not
/// turn TLS and authentication off.
fn applicable(running: &WebConfig, new: WebConfig) -> Result<WebConfig, String> {
    if new.empty && (running.tls.is_some() || running.requires_auth()) {
        return Err("the web config file is empty now; an empty file does not turn TLS or basic auth off while running (restart to do that)".into());
    }
    match (running.tls.is_some(), new.tls.is_some()) {
        (true, false) => Err("the web config no longer has tls_server_config; TLS cannot be turned off while running (restart to do that)".into()),
        (false, true) => Err("the web config has tls_server_config now; TLS cannot be turned on while running (restart to do that)".into()),
        _ => Ok(new),
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

    #[tokio::test]
    async fn basic_auth_accepts_the_right_password_only() {
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
        let auth = Authenticator::new();
        assert!(
            auth.authorized(&config, Some(&header("prometheus", "s3cret")))
                .await
        );
        assert!(
            auth.authorized(&config, Some(&header("prometheus", "s3cret")))
                .await,
            "from the cache"
        );
        assert!(
            !auth
                .authorized(&config, Some(&header("prometheus", "wrong")))
                .await
        );
        assert!(
            !auth
                .authorized(&config, Some(&header("prometheus", "wrong")))
                .await,
            "a wrong password is cached as wrong"
        );
        assert!(
            !auth
                .authorized(&config, Some(&header("someone", "s3cret")))
                .await
        );
        assert!(!auth.authorized(&config, None).await);
    }

    #[test]
    fn only_the_headers_exporter_toolkit_allows_with_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let load = |headers: &str| {
            WebConfig::load(&write(
                dir.path(),
                &format!("http_server_config:\n  headers:\n{headers}"),
            ))
        };
        assert!(
            load("    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n")
                .is_ok()
        );
        let error = load("    Content-Type: text/html\n").unwrap_err();
        assert!(
            error.contains("\"Content-Type\" can not be configured"),
            "{error}"
        );
        let error = load("    X-Frame-Options: allow-from\n").unwrap_err();
        assert!(error.contains("expected one of"), "{error}");
        let error = load("    Content-Security-Policy: \"a\\r\\nSet-Cookie: x=1\"\n").unwrap_err();
        assert!(error.contains("cannot carry"), "{error}");
    }

    #[test]
    fn changes_that_cannot_be_applied_while_running_keep_the_settings_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let path = write(dir.path(), &format!("basic_auth_users:\n  p: '{hash}'\n"));
        let file = WebConfigFile::open(&path).unwrap();
        assert!(file.current().requires_auth());
        std::fs::write(&path, "").unwrap();
        // The modification time may not move within the same second: force a new look.
        file.state.lock().unwrap().0 = None;
        assert!(
            file.current().requires_auth(),
            "an emptied file does not turn auth off"
        );
        std::fs::write(&path, "basic_auth_users: {}\n").unwrap();
        file.state.lock().unwrap().0 = None;
        assert!(
            !file.current().requires_auth(),
            "an explicit change does, with a warning"
        );
    }

    #[test]
    fn cipher_suites_are_go_names_and_unknown_ones_are_refused() {
        assert!(provider(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).is_ok());
        let error = provider(&["TLS_ECDHE_RSA_WITH_NOTHING".into()]).unwrap_err();
        assert_eq!(error, "unknown cipher: TLS_ECDHE_RSA_WITH_NOTHING");
        let error = provider(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).unwrap_err();
        assert!(error.contains("not offered here"), "{error}");
        let only = provider(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
        assert!(only.cipher_suites.iter().all(|s| {
            s.version() == &rustls::version::TLS13
                || format!("{:?}", s.suite()) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        }));
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
