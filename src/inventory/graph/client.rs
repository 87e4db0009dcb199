//! Requests to Microsoft Graph: bearer token, OData paging followed whole (with a guard against
//! a link that repeats or leaves the Graph host), 429 answered by waiting `Retry-After`, 5xx and
//! transport failures retried with exponential backoff and jitter, all bounded. Every request is
//! counted in `appproxy_graph_requests_total{endpoint,code}`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounterVec};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde::de::DeserializeOwned;
use url::Url;

use super::auth::{AuthError, TokenProvider};
use super::model::{ErrorBody, Page};

/// The Graph request counter and duration histogram; cumulative, so they live for the whole
/// process and are registered once.
#[derive(Debug, Clone)]
pub struct GraphMetrics {
    pub requests: IntCounterVec,
    pub duration: Histogram,
}

impl GraphMetrics {
    pub fn new() -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            prometheus::Opts::new(
                "appproxy_graph_requests_total",
                "Requests to Microsoft Graph and its sign-in endpoint, by endpoint and answer (HTTP status, timeout or error).",
            ),
            &["endpoint", "code"],
        )?;
        let duration = Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "appproxy_graph_request_duration_seconds",
                "How long requests to Microsoft Graph and its sign-in endpoint took.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )?;
        Ok(Self { requests, duration })
    }

    /// `endpoint` is one of a fixed set of names, `code` an HTTP status, `timeout` or `error`.
    pub fn observe(&self, endpoint: &str, code: &str, started: Instant) {
        self.requests.with_label_values(&[endpoint, code]).inc();
        self.duration.observe(started.elapsed().as_secs_f64());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("Graph answered 401 {code} on {endpoint}: {message}")]
    Unauthorized {
        endpoint: &'static str,
        code: String,
        message: String,
    },
    #[error("Graph answered 403 {code} on {endpoint}: {message}")]
    Forbidden {
        endpoint: &'static str,
        code: String,
        message: String,
    },
    #[error(
        "Graph answered {status} on {endpoint} ({code}: {message}), still after {attempts} attempts"
    )]
    Status {
        endpoint: &'static str,
        status: u16,
        code: String,
        message: String,
        attempts: u32,
    },
    #[error("Graph could not be reached for {endpoint}, still after {attempts} attempts: {detail}")]
    Transport {
        endpoint: &'static str,
        attempts: u32,
        detail: String,
    },
    #[error("Graph answered {endpoint} with malformed JSON: {detail}")]
    Malformed {
        endpoint: &'static str,
        detail: String,
    },
    #[error("Graph's @odata.nextLink for {endpoint} {problem}; stopped following it")]
    BadNextLink {
        endpoint: &'static str,
        problem: &'static str,
    },
    #[error("signing in to Graph failed: {0}")]
    Auth(#[from] AuthError),
}

/// How hard to try before a request counts as failed.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured as given; longer ones are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff for attempt `n` (0-based), with ±50% jitter so many exporters
    /// throttled together do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.base_backoff.saturating_mul(1 << attempt.min(16));
        exponential
            .min(self.max_backoff)
            .mul_f64(0.5 + fastrand::f64())
    }
}

/// A guard against endless paging: no tenant has this many pages of one list.
const MAX_PAGES: usize = 10_000;

pub struct GraphClient {
    http: reqwest::Client,
    /// `{graph_url}/beta/`: every path is relative to it.
    base: Url,
    tokens: TokenProvider,
    metrics: GraphMetrics,
    retry: RetryPolicy,
}

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        graph_url: &Url,
        tokens: TokenProvider,
        metrics: GraphMetrics,
        retry: RetryPolicy,
    ) -> Self {
        let mut base = graph_url.clone();
        let path = format!("{}/beta/", base.path().trim_end_matches('/'));
        base.set_path(&path);
        Self {
            http,
            base,
            tokens,
            metrics,
            retry,
        }
    }

    /// Every item of a list, following `@odata.nextLink` until it is absent.
    pub async fn list<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
    ) -> Result<Vec<T>, GraphError> {
        let mut url = self.url(endpoint, path)?;
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(GraphError::BadNextLink {
                    endpoint,
                    problem: "repeats a page already read",
                });
            }
            if seen.len() > MAX_PAGES {
                return Err(GraphError::BadNextLink {
                    endpoint,
                    problem: "did not end after 10000 pages",
                });
            }
            let page: Page<T> = self.get(endpoint, url).await?;
            items.extend(page.value);
            let Some(next) = page.next_link else {
                return Ok(items);
            };
            url = Url::parse(&next).map_err(|_| GraphError::BadNextLink {
                endpoint,
                problem: "is not a URL",
            })?;
            // The bearer token goes with every page: never to another host.
            if url.origin() != self.base.origin() {
                return Err(GraphError::BadNextLink {
                    endpoint,
                    problem: "points to another host",
                });
            }
        }
    }

    /// One object.
    pub async fn one<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
    ) -> Result<T, GraphError> {
        let url = self.url(endpoint, path)?;
        self.get(endpoint, url).await
    }

    fn url(&self, endpoint: &'static str, path: &str) -> Result<Url, GraphError> {
        self.base.join(path).map_err(|_| GraphError::Malformed {
            endpoint,
            detail: format!("cannot build a URL from {path:?}"),
        })
    }

    /// GET with the retry policy: 429 waits `Retry-After`, 5xx and transport errors back off,
    /// one 401 renews the token; 403 and other answers fail at once.
    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: Url,
    ) -> Result<T, GraphError> {
        let mut renewed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.token().await?;
            let started = Instant::now();
            let sent = self
                .http
                .get(url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    let code = if error.is_timeout() {
                        "timeout"
                    } else {
                        "error"
                    };
                    self.metrics.observe(endpoint, code, started);
                    if attempt >= self.retry.attempts {
                        return Err(GraphError::Transport {
                            endpoint,
                            attempts: attempt,
                            detail: describe(&error),
                        });
                    }
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                    continue;
                }
            };
            let status = response.status();
            let retry_after = retry_after(&response);
            let body = response.bytes().await;
            self.metrics.observe(endpoint, status.as_str(), started);
            let body = match body {
                Ok(body) => body,
                Err(error) if attempt < self.retry.attempts => {
                    tracing::debug!(endpoint, error = %describe(&error), "reading a Graph answer failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                    continue;
                }
                Err(error) => {
                    return Err(GraphError::Transport {
                        endpoint,
                        attempts: attempt,
                        detail: describe(&error),
                    });
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|e| GraphError::Malformed {
                    endpoint,
                    detail: e.to_string(),
                });
            }
            let (code, message) = error_of(&body);
            match status {
                StatusCode::UNAUTHORIZED if !renewed_token => {
                    // The token may have been revoked or expired early: one fresh one.
                    renewed_token = true;
                    self.tokens.invalidate().await;
                    attempt -= 1;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(GraphError::Unauthorized {
                        endpoint,
                        code,
                        message,
                    });
                }
                StatusCode::FORBIDDEN => {
                    return Err(GraphError::Forbidden {
                        endpoint,
                        code,
                        message,
                    });
                }
                StatusCode::TOO_MANY_REQUESTS if attempt < self.retry.attempts => {
                    let wait = retry_after.map_or_else(
                        || self.retry.backoff(attempt - 1),
                        |wait| wait.min(self.retry.max_retry_after),
                    );
                    tracing::debug!(
                        endpoint,
                        wait_seconds = wait.as_secs_f64(),
                        "Graph throttled the request (429)"
                    );
                    tokio::time::sleep(wait).await;
                }
                s if s.is_server_error() && attempt < self.retry.attempts => {
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                }
                _ => {
                    return Err(GraphError::Status {
                        endpoint,
                        status: status.as_u16(),
                        code,
                        message,
                        attempts: attempt,
                    });
                }
            }
        }
    }
}

/// `Retry-After` in seconds (the form Graph uses).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Graph's error code and message, or placeholders when the body is not Graph's error JSON.
fn error_of(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => (error.code, error.message),
        Err(_) => (
            "unknown".into(),
            "the answer carried no Graph error body".into(),
        ),
    }
}

/// A transport error with its causes, which reqwest keeps in `source()`.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let policy = RetryPolicy::default();
        for attempt in 0..40 {
            let wait = policy.backoff(attempt);
            assert!(
                wait <= policy.max_backoff.mul_f64(1.5),
                "{attempt}: {wait:?}"
            );
            assert!(
                wait >= policy
                    .base_backoff
                    .mul_f64(0.5)
                    .min(policy.max_backoff.mul_f64(0.5))
            );
        }
        assert!(policy.backoff(0) < Duration::from_millis(751));
    }

    #[test]
    fn graph_error_bodies_are_read_and_others_tolerated() {
        let (code, message) = error_of(br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{}}}"#);
        assert_eq!(code, "Authorization_RequestDenied");
        assert!(message.starts_with("Insufficient"));
        assert_eq!(error_of(b"<html>").0, "unknown");
    }
}
