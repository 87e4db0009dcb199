//! `--web.config.file`, in the format of Prometheus' exporter-toolkit
//! (docs/web-configuration.md), every field it documents, and checked as strictly: TLS
//! (certificate and key inline or from files, versions, cipher suites, curves, client
//! certificates and their allowed SANs), the response headers exporter-toolkit allows (and
//! only its values where it names them), the rate limit, and basic auth users with bcrypt
//! hashes (checked in [`super::auth`]). The file and the certificate files it names are looked
//! at on every request and re-read when any changed, off the async workers and for at most
//! [`READ_DEADLINE`]; a file that no longer loads, or a change that cannot be applied while
//! running (turning TLS on or off, turning basic auth off), is logged and the settings in
//! force stay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use serde::Deserialize;

mod error;
mod rate_limit;
mod tls;

pub use error::{HeaderError, RateLimitError, TlsConfigError, WebConfigError};
pub use rate_limit::RateLimit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<rate_limit::RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    /// PEM text, instead of `cert_file`.
    cert: Option<String>,
    /// PEM text, instead of `key_file`.
    key: Option<crate::secret::Secret>,
    /// PEM text, instead of `client_ca_file`.
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// Go's names (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); TLS 1.3's are not configurable.
    cipher_suites: Option<Vec<String>>,
    /// Go's names (`X25519`, `CurveP256`, `CurveP384`), in preference order.
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// HTTP/2 is not served: `true` is accepted, and said so.
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
    /// `rate_limit`, when on.
    pub rate_limit: Option<RateLimit>,
    /// The files the settings were read from besides the web config itself (certificate, key,
    /// client CA), each as it was just before it was read.
    files: Vec<(PathBuf, Option<Stamp>)>,
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
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let name = path.display().to_string();
        let text = crate::text::read_text(path, crate::platform::file::CONFIG_LIMIT).map_err(
            |source| WebConfigError::Read {
                name: name.clone(),
                source,
            },
        )?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), &name)
    }

    /// Checks web config text; `base` is the folder its paths are relative to, `name` names
    /// it in messages.
    pub fn parse(text: &str, base: &Path, name: &str) -> Result<WebConfig, WebConfigError> {
        let empty = text.trim().is_empty();
        let raw: RawWebConfig = if empty {
            RawWebConfig {
                tls_server_config: None,
                http_server_config: None,
                basic_auth_users: BTreeMap::new(),
                rate_limit: None,
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| WebConfigError::Yaml {
                name: name.to_string(),
                at: e
                    .location()
                    .map(|at| format!(":{}:{}", at.line(), at.column()))
                    .unwrap_or_default(),
                message: crate::config::yaml_message(&e),
            })?
        };
        for (user, hash) in &raw.basic_auth_users {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|_| WebConfigError::NotBcrypt {
                    name: name.to_string(),
                    user: user.clone(),
                })?;
        }
        let (tls, files) = match raw.tls_server_config {
            None => (None, Vec::new()),
            Some(tls) => {
                let tls = tls::config(&tls, base).map_err(|source| WebConfigError::Tls {
                    name: name.to_string(),
                    source,
                })?;
                (Some(Arc::new(tls.config)), tls.files)
            }
        };
        let rate_limit = match &raw.rate_limit {
            None => None,
            Some(raw) => RateLimit::from_raw(raw).map_err(|source| WebConfigError::RateLimit {
                name: name.to_string(),
                source,
            })?,
        };
        let http = raw.http_server_config.unwrap_or(RawHttp {
            http2: None,
            headers: BTreeMap::new(),
        });
        if http.http2 == Some(true) {
            tracing::warn!(
                file = name,
                "http_server_config.http2: HTTP/2 is not served here; clients speak HTTP/1.1"
            );
        }
        let headers = headers(http.headers).map_err(|source| WebConfigError::Header {
            name: name.to_string(),
            source,
        })?;
        Ok(WebConfig {
            tls,
            users: raw.basic_auth_users,
            headers,
            rate_limit,
            files,
            empty,
        })
    }

    /// Whether basic auth is on.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// The bcrypt hash of `user`, when there is such a user.
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }
}

/// Checks the configured response headers as exporter-toolkit does: only the headers it
/// allows, only its values where it names them, and nothing that is not a valid header value
/// (a CR or LF would let a value start a header of its own).
fn headers(
    raw: BTreeMap<String, String>,
) -> Result<Vec<(axum::http::HeaderName, axum::http::HeaderValue)>, HeaderError> {
    raw.into_iter()
        .map(|(name, value)| {
            let Some((_, values)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
                let allowed: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                return Err(HeaderError::NotAllowed {
                    name,
                    allowed: allowed.join(", "),
                });
            };
            if !values.is_empty() && !values.contains(&value.as_str()) {
                return Err(HeaderError::NotOneOf {
                    name,
                    expected: values,
                    value,
                });
            }
            let header_value = axum::http::HeaderValue::from_str(&value)
                .map_err(|_| HeaderError::BadValue { name: name.clone() })?;
            let header_name = axum::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HeaderError::BadName { name: name.clone() })?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// How long a look at the web config file and its reading may take before requests go on with
/// the settings in force: a file on a share that does not answer must not hold them up. The
/// read goes on in its thread; the next request after it finishes takes its result.
pub const READ_DEADLINE: Duration = Duration::from_secs(2);

/// What tells a changed file: its modification time, size and (on Unix) inode; a rename over
/// it changes the inode even within the modification time's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The web config file and the files it named, each with its stamp when it was last read.
type Watched = Vec<(PathBuf, Option<Stamp>)>;

/// Whether any watched file changed since it was read.
fn changed(watched: &Watched) -> bool {
    watched.iter().any(|(path, seen)| stamp(path) != *seen)
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// A look at the files, and the web config's new reading when one changed: what is watched
/// from then on, and the result.
type Look = Option<(Watched, Result<WebConfig, WebConfigError>)>;

/// The web config, re-read when its file changes.
pub struct WebConfigFile {
    path: PathBuf,
    in_force: Mutex<Arc<WebConfig>>,
    /// The files as last read, and a look still running past its deadline.
    look: tokio::sync::Mutex<(Watched, Option<tokio::task::JoinHandle<Look>>)>,
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
    pub fn open(path: &Path) -> Result<WebConfigFile, WebConfigError> {
        let (watched, config) = read(path, &Vec::new());
        let config = config?;
        Ok(WebConfigFile {
            path: path.to_path_buf(),
            in_force: Mutex::new(Arc::new(config)),
            look: tokio::sync::Mutex::new((watched, None)),
        })
    }

    /// The config in force, without looking at the file (the listener's TLS for a new
    /// connection).
    pub fn in_force(&self) -> Arc<WebConfig> {
        Arc::clone(
            &self
                .in_force
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The config in force, after a look at the file and a new reading when it changed. The
    /// look runs on a blocking thread for at most [`READ_DEADLINE`]; a request that comes while
    /// another looks, or while a look runs late, takes the config in force as it is.
    pub async fn current(&self) -> Arc<WebConfig> {
        let Ok(mut look) = self.look.try_lock() else {
            return self.in_force();
        };
        let (watched, pending) = &mut *look;
        let mut running = match pending.take() {
            Some(running) if !running.is_finished() => {
                *pending = Some(running);
                return self.in_force();
            }
            Some(finished) => finished,
            None => {
                let (path, seen) = (self.path.clone(), watched.clone());
                tokio::task::spawn_blocking(move || changed(&seen).then(|| read(&path, &seen)))
            }
        };
        match tokio::time::timeout(READ_DEADLINE, &mut running).await {
            Ok(Ok(Some((now, loaded)))) => {
                *watched = now;
                self.apply(loaded);
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!(%error, "reading the web config failed"),
            Err(_) => {
                tracing::warn!(file = %self.path.display(), seconds = READ_DEADLINE.as_secs(), "the web config file is still being read; the settings in force stay meanwhile");
                *pending = Some(running);
            }
        }
        self.in_force()
    }

    fn apply(&self, loaded: Result<WebConfig, WebConfigError>) {
        let mut in_force = self
            .in_force
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match loaded.and_then(|new| applicable(&in_force, new)) {
            Ok(config) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                *in_force = Arc::new(config);
            }
            Err(error) => {
                tracing::error!(%error, "the web config change is not applied; the settings in force stay")
            }
        }
    }
}

/// Reads the web config at `path`: the files to watch from then on and the result. After a
/// good reading those are the web config and the files it names, each stamped just before it
/// was read; after a failed one, the files watched before, stamped now, so that the next
/// change of any of them (the key that follows a renewed certificate, say) reads again.
fn read(path: &Path, before: &Watched) -> (Watched, Result<WebConfig, WebConfigError>) {
    let restamped: Watched = before.iter().map(|(p, _)| (p.clone(), stamp(p))).collect();
    let mut watched = vec![(path.to_path_buf(), stamp(path))];
    let loaded = WebConfig::load(path);
    match &loaded {
        Ok(config) => watched.extend(config.files.iter().cloned()),
        Err(_) => watched = restamped,
    }
    (watched, loaded)
}

/// Whether a re-read config can replace the one in force: TLS cannot be turned on or off
/// while the listeners run, and basic auth cannot be turned off. A file that no longer names
/// the users is far more often a write in progress, or a tool that writes a header first,
/// than a wish to open the exporter to anyone (a comment-only file once did that for a
/// moment at every rewrite): turning authentication off takes a restart.
fn applicable(running: &WebConfig, new: WebConfig) -> Result<WebConfig, WebConfigError> {
    if new.empty && (running.tls.is_some() || running.requires_auth()) {
        return Err(WebConfigError::EmptiedWhileRunning);
    }
    if running.requires_auth() && !new.requires_auth() {
        return Err(WebConfigError::AuthRemovedWhileRunning);
    }
    match (running.tls.is_some(), new.tls.is_some()) {
        (true, false) => Err(WebConfigError::TlsRemovedWhileRunning),
        (false, true) => Err(WebConfigError::TlsAddedWhileRunning),
        _ => Ok(new),
    }
}

#[cfg(test)]
mod fields_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        path
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
        let error = load("    Content-Type: text/html\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"Content-Type\" can not be configured"),
            "{error}"
        );
        let error = load("    X-Frame-Options: allow-from\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected one of"), "{error}");
        let error = load("    Content-Security-Policy: \"a\\r\\nSet-Cookie: x=1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot carry"), "{error}");
    }

    /// Files that drop basic auth (emptied, a comment only, no users) keep it on; a new
    /// password applies.
    #[tokio::test]
    async fn changes_that_cannot_be_applied_while_running_keep_the_settings_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let path = write(dir.path(), &format!("basic_auth_users:\n  p: '{hash}'\n"));
        let file = WebConfigFile::open(&path).unwrap();
        assert!(file.current().await.requires_auth());
        for text in [
            "",
            "# managed elsewhere\n",
            "http_server_config:\n",
            "basic_auth_users: {}\n",
        ] {
            // A new modification time: the kernel's clock moves in steps of a few ms.
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(&path, text).unwrap();
            assert!(
                file.current().await.requires_auth(),
                "{text:?} turned auth off"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let other = bcrypt::hash("n3w", 4).unwrap();
        std::fs::write(&path, format!("basic_auth_users:\n  q: '{other}'\n")).unwrap();
        let config = file.current().await;
        assert!(config.hash_of("q").is_some() && config.hash_of("p").is_none());
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            WebConfig::load(&write(dir.path(), text))
                .unwrap_err()
                .to_string()
        };
        let error = load("basic_auth_users:\n  a: plain\n");
        assert!(
            error.contains("basic_auth_users.a: not a bcrypt hash"),
            "{error}"
        );
        let error = load("tls_server_config:\n  cert_file: x.crt\n");
        assert!(error.contains("missing one of key or key_file"), "{error}");
        let error = load("tls_server_confg: {}\n");
        assert!(error.contains("unknown field"), "{error}");
        let error = load("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n");
        assert!(error.contains("missing.crt"), "{error}");
    }
}
