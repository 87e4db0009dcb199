//! Signing in to Microsoft Graph: client credentials with a secret or a certificate (an RS256
//! client assertion), or a delegated refresh token that `appproxy_exporter login` stored. Access
//! tokens are cached and renewed at 80% of their lifetime, before they expire.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::{Deserialize, Serialize};

use super::model::TokenResponse;
use super::transport::GraphMetrics;
use crate::config::GraphSettings;
use crate::config::values::GraphAuth;
use crate::secret::Secret;

/// Where the client secret comes from when `client_secret_file` is not set.
pub const CLIENT_SECRET_ENV: &str = "APPPROXY_CLIENT_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: crate::platform::file::ReadError,
    },
    #[error("{path}: {detail}")]
    BadFile { path: String, detail: String },
    #[error(
        "no client secret: set inventory.graph.client_secret_file or the {CLIENT_SECRET_ENV} environment variable"
    )]
    NoSecret,
    #[error("no refresh token in {path}: run `appproxy_exporter login` first")]
    NotSignedIn { path: String },
    #[error("sign-in refused ({status} {error}): {description}")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    #[error("the sign-in endpoint could not be reached: {0}")]
    Transport(String),
    #[error("the sign-in endpoint answered {status} without a token")]
    Malformed { status: u16 },
    #[error(
        "the sign-in endpoint answered {status}, a redirect to {location:?}, which is not followed: the credentials go to the configured login_url only"
    )]
    Redirected { status: u16, location: String },
    #[error("signing the client assertion with the private key failed")]
    Signing,
    #[error("cannot write the token cache {path}: {source}")]
    WriteCache {
        path: String,
        source: std::io::Error,
    },
}

/// How this exporter proves who it is.
enum Credential {
    Secret(Secret),
    Certificate(Box<CertificateKey>),
    RefreshToken(TokenCacheFile),
}

struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// Hands out access tokens for Graph, from its cache while they are fresh.
pub struct TokenProvider {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    scope: String,
    credential: Credential,
    cached: tokio::sync::Mutex<Option<Cached>>,
    metrics: GraphMetrics,
}

impl TokenProvider {
    /// Reads the secret, certificate or token cache the settings name.
    pub fn new(
        http: reqwest::Client,
        settings: &GraphSettings,
        tenant_id: &str,
        metrics: GraphMetrics,
    ) -> Result<Self, AuthError> {
        let credential = match settings.auth {
            GraphAuth::ClientSecret => Credential::Secret(client_secret(settings)?),
            GraphAuth::ClientCertificate => {
                let (Some(cert), Some(key)) =
                    (&settings.certificate_file, &settings.private_key_file)
                else {
                    return Err(AuthError::BadFile {
                        path: "inventory.graph".into(),
                        detail: "client_certificate needs certificate_file and private_key_file"
                            .into(),
                    });
                };
                Credential::Certificate(Box::new(CertificateKey::load(cert, key)?))
            }
            GraphAuth::DeviceCode => {
                let path = settings
                    .token_cache_file
                    .clone()
                    .ok_or(AuthError::NotSignedIn {
                        path: "(token_cache_file is not set)".into(),
                    })?;
                Credential::RefreshToken(TokenCacheFile { path })
            }
        };
        Ok(Self {
            http,
            token_url: token_url(settings, tenant_id),
            client_id: settings.client_id.clone(),
            scope: scope(settings, settings.auth),
            credential,
            cached: tokio::sync::Mutex::new(None),
            metrics,
        })
    }

    /// A valid access token: the cached one, or a new one when it is due for renewal.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.request_token().await?;
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: crate::clock::later(Instant::now(), lifetime.mul_f64(0.8)),
        });
        Ok(token)
    }

    /// Forgets the cached token, after Graph refused it.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request_token(&self) -> Result<(Secret, Duration), AuthError> {
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        match &self.credential {
            Credential::Secret(secret) => {
                form.push(("grant_type", "client_credentials".into()));
                form.push(("client_secret", secret.expose().to_string()));
            }
            Credential::Certificate(key) => {
                form.push(("grant_type", "client_credentials".into()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion",
                    key.assertion(&self.client_id, &self.token_url)?,
                ));
            }
            Credential::RefreshToken(cache) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", cache.read().await?.expose().to_string()));
            }
        }
        let answer = post_token(&self.http, &self.token_url, &form, &self.metrics).await?;
        if let (Credential::RefreshToken(cache), Some(rotated)) =
            (&self.credential, &answer.refresh_token)
        {
            cache.write(&Secret::new(rotated.clone()))?;
        }
        Ok((answer.access_token, answer.lifetime))
    }
}

/// A successful answer of the token endpoint.
pub struct Granted {
    pub access_token: Secret,
    pub refresh_token: Option<String>,
    pub lifetime: Duration,
}

/// POSTs a token request and reads the answer; errors carry the endpoint's error code and
/// description (never the request's secrets).
pub async fn post_token(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, String)],
    metrics: &GraphMetrics,
) -> Result<Granted, AuthError> {
    let started = Instant::now();
    let response = http.post(url).form(form).send().await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            metrics.observe(
                "token",
                if error.is_timeout() {
                    "timeout"
                } else {
                    "error"
                },
                started,
            );
            return Err(AuthError::Transport(super::transport::describe(&error)));
        }
    };
    let status = response.status().as_u16();
    metrics.observe("token", &status.to_string(), started);
    if response.status().is_redirection() {
        // Following it would send the credentials wherever the answer points.
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect::<String>())
            .unwrap_or_default();
        return Err(AuthError::Redirected { status, location });
    }
    let bytes = super::transport::read_limited(response, TOKEN_ANSWER_LIMIT)
        .await
        .map_err(|_| AuthError::Malformed { status })?;
    let body: TokenResponse =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed { status })?;
    match body {
        TokenResponse {
            access_token: Some(token),
            refresh_token,
            expires_in,
            ..
        } => Ok(Granted {
            access_token: Secret::new(token),
            refresh_token,
            lifetime: Duration::from_secs(expires_in.unwrap_or(3600).clamp(1, MAX_TOKEN_LIFETIME)),
        }),
        TokenResponse {
            error: Some(error),
            error_description,
            ..
        } => Err(AuthError::Refused {
            status,
            error: redact(&error, form),
            description: redact(
                &first_line(error_description.as_deref().unwrap_or("")),
                form,
            ),
        }),
        _ => Err(AuthError::Malformed { status }),
    }
}

/// The longest lifetime taken from a token answer, in seconds: Entra ID's access tokens live
/// an hour or so and 24 hours at most; a longer `expires_in` (2^64 - 1 once overflowed the
/// renewal instant and panicked the prober) is read as a day.
const MAX_TOKEN_LIFETIME: u64 = 24 * 3600;

/// A token answer is a few KiB; more is not a token endpoint's.
const TOKEN_ANSWER_LIMIT: usize = 64 << 10;

/// The request's secrets, wherever and however the sign-in server echoes them in its error
/// text, then cut to 500 characters: redacted first, or a secret repeated across the cut
/// would be left in part.
fn redact(text: &str, form: &[(&str, String)]) -> String {
    let mut text = text.to_string();
    for (key, value) in form {
        let secret = matches!(
            *key,
            "client_secret" | "client_assertion" | "refresh_token" | "device_code"
        );
        if secret {
            text = crate::secret::redact_echo(&text, value);
        }
    }
    text.chars().take(500).collect()
}

/// AADSTS descriptions continue with trace and correlation ids on later lines.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

pub fn token_url(settings: &GraphSettings, tenant_id: &str) -> String {
    let login = settings.login_url.0.as_str().trim_end_matches('/');
    format!("{login}/{tenant_id}/oauth2/v2.0/token")
}

pub fn device_code_url(settings: &GraphSettings, tenant_id: &str) -> String {
    let login = settings.login_url.0.as_str().trim_end_matches('/');
    format!("{login}/{tenant_id}/oauth2/v2.0/devicecode")
}

/// `{graph}/.default`: the permissions granted to the app; delegated sign-in adds
/// `offline_access` to get a refresh token.
pub fn scope(settings: &GraphSettings, auth: GraphAuth) -> String {
    let graph = settings.graph_url.0.as_str().trim_end_matches('/');
    match auth {
        GraphAuth::DeviceCode => format!("{graph}/.default offline_access"),
        _ => format!("{graph}/.default"),
    }
}

fn client_secret(settings: &GraphSettings) -> Result<Secret, AuthError> {
    let text =
        match &settings.client_secret_file {
            Some(path) => crate::text::read_text(path, crate::platform::file::SECRET_LIMIT)
                .map_err(|source| AuthError::Read {
                    what: "client secret file",
                    path: path.display().to_string(),
                    source,
                })?,
            None => std::env::var(CLIENT_SECRET_ENV).map_err(|_| AuthError::NoSecret)?,
        };
    let secret = text.trim();
    if secret.is_empty() {
        return Err(AuthError::NoSecret);
    }
    Ok(Secret::new(secret))
}

/// A certificate's private key and the thumbprint Entra ID knows it by.
struct CertificateKey {
    key: RsaKeyPair,
    /// base64url SHA-1 of the certificate's DER: the JWT header's `x5t`.
    x5t: String,
}

impl CertificateKey {
    fn load(cert_file: &Path, key_file: &Path) -> Result<Self, AuthError> {
        let read = |what, path: &Path| {
            crate::text::read_text(path, crate::platform::file::SECRET_LIMIT).map_err(|source| {
                AuthError::Read {
                    what,
                    path: path.display().to_string(),
                    source,
                }
            })
        };
        let bad = |path: &Path, detail: &str| AuthError::BadFile {
            path: path.display().to_string(),
            detail: detail.to_string(),
        };
        let cert = pem_block(&read("certificate file", cert_file)?, &["CERTIFICATE"])
            .ok_or_else(|| bad(cert_file, "no PEM CERTIFICATE block"))?;
        let x5t = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &cert.1,
        ));
        let key_text = read("private key file", key_file)?;
        let (label, der) = pem_block(&key_text, &["PRIVATE KEY", "RSA PRIVATE KEY"])
            .ok_or_else(|| bad(key_file, "no PEM PRIVATE KEY or RSA PRIVATE KEY block"))?;
        let key = if label == "PRIVATE KEY" {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        }
        .map_err(|e| bad(key_file, &format!("not a usable RSA private key ({e})")))?;
        Ok(Self { key, x5t })
    }

    /// A client assertion for the token endpoint at `audience`, valid for ten minutes.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, AuthError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            iss: &'a str,
            sub: &'a str,
            jti: String,
            nbf: u64,
            iat: u64,
            exp: u64,
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = Claims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: format!("{:032x}", fastrand::u128(..)),
            nbf: now,
            iat: now,
            exp: now + 600,
        };
        let header = serde_json::to_vec(&header).map_err(|_| AuthError::Signing)?;
        let claims = serde_json::to_vec(&claims).map_err(|_| AuthError::Signing)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The first PEM block with one of `labels`, as (label, DER).
fn pem_block(text: &str, labels: &[&str]) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let body: String = lines.by_ref().take_while(|l| *l != end).collect();
        if labels.contains(&label) {
            return STANDARD
                .decode(body)
                .ok()
                .map(|der| (label.to_string(), der));
        }
    }
    None
}

/// The refresh token `login` stored, kept readable by this user only.
pub struct TokenCacheFile {
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CacheContents {
    refresh_token: String,
}

impl TokenCacheFile {
    /// The refresh token, read on the blocking pool: it is read at every token renewal, from
    /// the async workers' side.
    pub async fn read(&self) -> Result<Secret, AuthError> {
        let not_signed_in = || AuthError::NotSignedIn {
            path: self.path.display().to_string(),
        };
        let bytes = crate::platform::file::read_bounded_async(
            self.path.clone(),
            crate::platform::file::SECRET_LIMIT,
        )
        .await
        .map_err(|_| not_signed_in())?;
        let text = crate::text::decode(&bytes).map_err(|_| not_signed_in())?;
        let contents: CacheContents = serde_json::from_str(&text).map_err(|_| not_signed_in())?;
        Ok(Secret::new(contents.refresh_token))
    }

    /// Replaces the file whole (write a sibling, then rename), created with mode 0600.
    pub fn write(&self, refresh_token: &Secret) -> Result<(), AuthError> {
        let failed = |source| AuthError::WriteCache {
            path: self.path.display().to_string(),
            source,
        };
        let contents = CacheContents {
            refresh_token: refresh_token.expose().to_string(),
        };
        let text = serde_json::to_string(&contents).unwrap_or_default();
        let temporary = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(failed)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
        drop(file);
        std::fs::rename(&temporary, &self.path).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sign-in server's error text is its own: it may repeat the secret it was sent,
    /// anywhere, as sent (form-encoded) or JSON-escaped. The text was cut to 500 characters
    /// before the secret was looked for, so one repeated across the cut was logged in part,
    /// and an encoded one whole.
    #[test]
    fn a_secret_echoed_across_the_cut_or_encoded_is_redacted() {
        let secret = "Zq8~x/y+z=\"w\\v&u%t s";
        let form = [("client_secret", secret.to_string())];
        let percent: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let json = serde_json::to_string(secret).unwrap();
        let json = &json[1..json.len() - 1];
        for text in [
            format!("{}{secret} and more", "x".repeat(490)),
            format!("AADSTS7000215: Invalid client secret provided: {percent}"),
            format!("AADSTS7000215: {}", percent.replace("%2F", "%2f")),
            format!("AADSTS7000215: {json}"),
        ] {
            let shown = redact(&text, &form);
            assert!(shown.chars().count() <= 500, "{shown}");
            for part in [&secret[..6], &percent[..6], &json[..6]] {
                assert!(!shown.contains(part), "{part:?} is in {shown:?}");
            }
        }
    }

    #[test]
    fn pem_blocks_are_found_by_label() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_block(text, &["CERTIFICATE"]),
            Some(("CERTIFICATE".into(), vec![0, 1, 2, 3]))
        );
        assert_eq!(pem_block(text, &["PRIVATE KEY"]), None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_token_cache_is_written_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCacheFile {
            path: dir.path().join("token.json"),
        };
        cache.write(&Secret::new("r1")).unwrap();
        let mode = std::fs::metadata(&cache.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(cache.read().await.unwrap().expose(), "r1");
    }

    #[tokio::test]
    async fn a_missing_token_cache_says_to_run_login() {
        let cache = TokenCacheFile {
            path: PathBuf::from("/nonexistent/token.json"),
        };
        let error = cache.read().await.unwrap_err().to_string();
        assert!(error.contains("appproxy_exporter login"), "{error}");
    }
}
