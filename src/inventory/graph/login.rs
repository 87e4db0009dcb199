//! `appproxy_exporter login`: delegated sign-in with the device code flow. The user opens the
//! page it prints and enters the code; the refresh token is stored in `token_cache_file`
//! (mode 0600) for the exporter to use and renew.

use std::io::Write;
use std::time::{Duration, Instant};

use super::auth::{self, AuthError, TokenCacheFile};
use super::model::DeviceCodeResponse;
use super::transport::GraphMetrics;
use crate::config::Settings;
use crate::config::values::GraphAuth;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "login needs inventory.graph with auth: device_code and token_cache_file in the config file"
    )]
    NotDeviceCode,
    #[error("the device code request failed: {0}")]
    DeviceCode(String),
    #[error("sign-in did not complete: {0}")]
    Denied(String),
    #[error("the code expired before sign-in completed; run login again")]
    Expired,
    #[error("the sign-in answer carried no refresh token; the scope must include offline_access")]
    NoRefreshToken,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The longest wait between two polls, in seconds (RFC 8628 suggests 5).
const MAX_POLL_INTERVAL: u64 = 60;
/// The longest a device code is waited for, in seconds (Entra ID's live 15 minutes).
const MAX_CODE_LIFETIME: u64 = 3600;

/// Runs the device code flow, telling the user what to do on `out`; returns where the refresh
/// token was stored.
pub async fn login(settings: &Settings, out: &mut dyn Write) -> Result<String, LoginError> {
    let graph = settings
        .inventory
        .graph
        .as_ref()
        .filter(|g| g.auth == GraphAuth::DeviceCode)
        .ok_or(LoginError::NotDeviceCode)?;
    let cache_path = graph
        .token_cache_file
        .clone()
        .ok_or(LoginError::NotDeviceCode)?;
    let tenant = settings.tenant_id.as_deref().unwrap_or_default();
    let http = super::http_client(Duration::from_secs(30))
        .map_err(|e| LoginError::DeviceCode(e.to_string()))?;
    let metrics = GraphMetrics::default();
    let scope = auth::scope(graph, GraphAuth::DeviceCode);

    let response = http
        .post(auth::device_code_url(graph, tenant))
        .form(&[
            ("client_id", graph.client_id.as_str()),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .map_err(|e| LoginError::DeviceCode(super::transport::describe(&e)))?;
    let status = response.status();
    let bytes = super::transport::read_limited(response, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let code: DeviceCodeResponse = serde_json::from_str(&text).map_err(|_| {
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .filter(|c| !c.is_control())
            .collect();
        LoginError::DeviceCode(format!("{status}: {first}"))
    })?;
    let instructions = code.message.clone().unwrap_or_else(|| {
        format!(
            "To sign in, open {} and enter the code {}.",
            code.verification_uri
                .as_deref()
                .unwrap_or("https://microsoft.com/devicelogin"),
            code.user_code.as_deref().unwrap_or("?")
        )
    });
    // The sign-in server's own text: shown escaped, so it cannot rewrite the terminal.
    let _ = writeln!(out, "{}", crate::text::printable(&instructions));
    let _ = out.flush();

    // Both come from the sign-in server: bounded, so a wild value neither overflows the
    // deadline (2^64 - 1 once made login panic) nor makes it wait for ever between polls.
    let mut interval = Duration::from_secs(code.interval.unwrap_or(5).clamp(1, MAX_POLL_INTERVAL));
    let lifetime = Duration::from_secs(code.expires_in.unwrap_or(900).min(MAX_CODE_LIFETIME));
    let deadline = crate::clock::later(Instant::now(), lifetime);
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:device_code".to_string(),
        ),
        ("client_id", graph.client_id.clone()),
        ("device_code", code.device_code.clone()),
    ];
    let token_url = auth::token_url(graph, tenant);
    loop {
        if Instant::now() >= deadline {
            return Err(LoginError::Expired);
        }
        tokio::time::sleep(interval).await;
        match auth::post_token(&http, &token_url, &form, &metrics).await {
            Ok(granted) => {
                let refresh = granted.refresh_token.ok_or(LoginError::NoRefreshToken)?;
                let cache = TokenCacheFile {
                    path: cache_path.clone(),
                };
                cache.write(&Secret::new(refresh))?;
                let stored = cache_path.display().to_string();
                let _ = writeln!(out, "Signed in. The refresh token is stored in {stored}.");
                return Ok(stored);
            }
            Err(AuthError::Refused { error, .. }) if error == "authorization_pending" => {}
            Err(AuthError::Refused { error, .. }) if error == "slow_down" => {
                interval =
                    (interval + Duration::from_secs(5)).min(Duration::from_secs(MAX_POLL_INTERVAL));
            }
            Err(AuthError::Refused { error, .. }) if error == "expired_token" => {
                return Err(LoginError::Expired);
            }
            Err(AuthError::Refused {
                error, description, ..
            }) => {
                return Err(LoginError::Denied(format!("{error}: {description}")));
            }
            Err(other) => return Err(other.into()),
        }
    }
}
