//! Requests to Microsoft Graph: bearer token, OData paging followed whole (with a guard against
//! a link that repeats or leaves the Graph host), 429 answered by waiting `Retry-After`, 5xx and
//! transport failures retried with exponential backoff and jitter, all bounded. Many objects are
//! read with JSON batching (`POST /$batch`), each inner answer judged on its own. Every request,
//! and every request inside a batch, is counted in `appproxy_graph_requests_total{graph_endpoint,code}`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde::de::DeserializeOwned;
use url::Url;

use super::auth::{AuthError, TokenProvider};
use super::model::{BatchItem, BatchResponse, ErrorBody, Page};
use super::transport::{GraphMetrics, ReadError, describe, read_limited};

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
    #[error("Graph's batch answer for {endpoint} cannot be used: {problem}")]
    BadBatch {
        endpoint: &'static str,
        problem: String,
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

/// The most one list may hold in all its pages, in bytes: a group's 100,000 apps with their
/// publishing settings are about 200 MB. The limits per page (32 MiB) and in pages alone let
/// a list that never ends feed the exporter hundreds of gigabytes.
const LIST_LIMIT: usize = 256 << 20;

/// Graph takes at most 20 requests in one batch (JSON batching, "Batch size limitations").
pub const BATCH_SIZE: usize = 20;

/// Batches in flight at once: up to 80 inner requests, well inside Graph's throttling limits.
const BATCHES_IN_FLIGHT: usize = 4;

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
        let url = self.url(endpoint, path)?;
        self.pages(endpoint, url).await
    }

    /// The rest of a list whose first page came elsewhere (inside a batch answer), from its
    /// `@odata.nextLink`; held to the Graph host as every page is.
    pub async fn list_from_link<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        next_link: &str,
    ) -> Result<Vec<T>, GraphError> {
        let url = Url::parse(next_link).map_err(|_| GraphError::BadNextLink {
            endpoint,
            problem: "is not a URL",
        })?;
        if url.origin() != self.base.origin() {
            return Err(GraphError::BadNextLink {
                endpoint,
                problem: "points to another host",
            });
        }
        self.pages(endpoint, url).await
    }

    /// Every page from `url` on, following `@odata.nextLink` until it is absent.
    async fn pages<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        mut url: Url,
    ) -> Result<Vec<T>, GraphError> {
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        let mut read = 0;
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
            let body = self.send(endpoint, url, None).await?;
            read += body.len();
            if read > LIST_LIMIT {
                return Err(GraphError::Malformed {
                    endpoint,
                    detail: format!(
                        "the list is larger than {} MiB in all its pages, more than any tenant's",
                        LIST_LIMIT >> 20
                    ),
                });
            }
            let page: Page<T> = parse(endpoint, &body)?;
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

    /// GET with the retry policy (see [`GraphClient::send`]), parsed as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: Url,
    ) -> Result<T, GraphError> {
        let body = self.send(endpoint, url, None).await?;
        parse(endpoint, &body)
    }

    /// Reads many objects by their paths (relative to `/beta`, each with its query) in JSON
    /// batches of at most [`BATCH_SIZE`]. Each inner answer is judged on its own: a 2xx is
    /// parsed; a 404 means the object is gone (`None`, with a log line: it was deleted since it
    /// was listed); a 429 waits its `Retry-After` and a 5xx backs off, and those are asked again
    /// in a later batch, as often as the retry policy allows; anything else fails the read.
    /// An answer that does not match its batch (ids missing, repeated or unknown, more answers
    /// than requests, a body that is not JSON) fails the read: nothing is guessed.
    pub async fn batch<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        paths: &[String],
    ) -> Result<Vec<Option<T>>, GraphError> {
        let read = self.batch_with(endpoint, paths, false).await?;
        // Strict: every refusal failed the read above, so each answer is `Ok`.
        Ok(read.into_iter().map(Result::unwrap_or_default).collect())
    }

    /// As [`GraphClient::batch`], but an answer Graph refuses (a 4xx other than 404 and 429,
    /// or a body that does not read as `T`) is that request's error, not the whole read's:
    /// for reads where one object's answer must not cost the rest of the inventory.
    /// Throttling, 5xx and a batch that does not match its requests still fail the read.
    pub async fn batch_each<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        paths: &[String],
    ) -> Result<Vec<Result<Option<T>, String>>, GraphError> {
        self.batch_with(endpoint, paths, true).await
    }

    async fn batch_with<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        paths: &[String],
        lenient: bool,
    ) -> Result<Vec<Result<Option<T>, String>>, GraphError> {
        let url = self.url("$batch", "$batch")?;
        let mut results: Vec<Option<Result<Option<T>, String>>> =
            paths.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..paths.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let chunks: Vec<Vec<usize>> =
                pending.chunks(BATCH_SIZE).map(<[usize]>::to_vec).collect();
            let url = &url;
            // Owned chunks: borrowed ones make this future too hard to prove `Send` for `spawn`.
            let answers: Vec<Vec<(usize, Inner<T>)>> = stream::iter(chunks)
                .map(|chunk: Vec<usize>| async move {
                    self.one_batch(endpoint, url, paths, &chunk, lenient).await
                })
                .buffer_unordered(BATCHES_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let mut again = Vec::new();
            let mut wait = Duration::ZERO;
            for (index, inner) in answers.into_iter().flatten() {
                match inner {
                    Inner::Done(value) => results[index] = Some(value),
                    Inner::Retry {
                        status,
                        retry_after,
                        error,
                    } => {
                        if attempt >= self.retry.attempts {
                            return Err(error.into_error(endpoint, status, attempt));
                        }
                        let pause = retry_after.map_or_else(
                            || self.retry.backoff(attempt - 1),
                            |after| after.min(self.retry.max_retry_after),
                        );
                        wait = wait.max(pause);
                        again.push(index);
                    }
                }
            }
            if !again.is_empty() {
                tracing::debug!(
                    endpoint,
                    requests = again.len(),
                    wait_seconds = wait.as_secs_f64(),
                    "Graph asked to retry requests inside a batch"
                );
                tokio::time::sleep(wait).await;
            }
            again.sort_unstable();
            pending = again;
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(None))).collect())
    }

    /// One `POST /$batch` of the requests at `chunk` (indexes into `paths`), checked against
    /// what was asked.
    async fn one_batch<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &Url,
        paths: &[String],
        chunk: &[usize],
        lenient: bool,
    ) -> Result<Vec<(usize, Inner<T>)>, GraphError> {
        let requests: Vec<serde_json::Value> = chunk
            .iter()
            .enumerate()
            .map(|(id, &index)| {
                serde_json::json!({
                    "id": id.to_string(),
                    "method": "GET",
                    "url": format!("/{}", paths[index].trim_start_matches('/')),
                })
            })
            .collect();
        let body = serde_json::json!({ "requests": requests });
        let answer = self.send("$batch", url.clone(), Some(&body)).await?;
        let answer: BatchResponse = parse("$batch", &answer)?;
        let bad = |problem: String| GraphError::BadBatch { endpoint, problem };
        if answer.responses.len() > chunk.len() {
            return Err(bad(format!(
                "{} answers to {} requests",
                answer.responses.len(),
                chunk.len()
            )));
        }
        let mut answered = vec![false; chunk.len()];
        let mut out = Vec::with_capacity(chunk.len());
        for item in answer.responses {
            let Some(id) = item.id.as_deref() else {
                return Err(bad("an answer has no id".into()));
            };
            let Some(slot) = id.parse::<usize>().ok().filter(|&i| i < chunk.len()) else {
                return Err(bad(format!(
                    "an answer has the id {id:?}, which no request had"
                )));
            };
            if std::mem::replace(&mut answered[slot], true) {
                return Err(bad(format!("two answers have the id {id:?}")));
            }
            let index = chunk[slot];
            out.push((
                index,
                self.judge_inner(endpoint, &paths[index], item, lenient)?,
            ));
        }
        if let Some(slot) = answered.iter().position(|a| !a) {
            return Err(bad(format!("request {slot} has no answer")));
        }
        Ok(out)
    }

    /// One answer inside a batch.
    fn judge_inner<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        item: BatchItem,
        lenient: bool,
    ) -> Result<Inner<T>, GraphError> {
        let Some(status) = item.status.and_then(|s| StatusCode::from_u16(s).ok()) else {
            return Err(GraphError::BadBatch {
                endpoint,
                problem: format!("the answer to {path} has no valid status"),
            });
        };
        self.metrics.count(endpoint, status.as_str());
        if status.is_success() {
            if !item.body.is_object() {
                if lenient {
                    return Ok(Inner::Done(Err(format!(
                        "Graph's answer ({status}) is not a JSON object"
                    ))));
                }
                return Err(GraphError::BadBatch {
                    endpoint,
                    problem: format!("the answer to {path} is not a JSON object"),
                });
            }
            return match serde_json::from_value(item.body) {
                Ok(value) => Ok(Inner::Done(Ok(Some(value)))),
                Err(e) if lenient => Ok(Inner::Done(Err(format!(
                    "Graph's answer does not read as documented: {e}"
                )))),
                Err(e) => Err(GraphError::Malformed {
                    endpoint,
                    detail: e.to_string(),
                }),
            };
        }
        let (code, message) = match serde_json::from_value::<ErrorBody>(item.body) {
            Ok(ErrorBody { error }) => (error.code, error.message),
            Err(_) => (
                "unknown".into(),
                "the answer carried no Graph error body".into(),
            ),
        };
        let error = InnerError::from_graph(&code, &message, None);
        match status {
            StatusCode::NOT_FOUND => {
                tracing::info!(
                    endpoint,
                    request = path,
                    code = %error.code,
                    "Graph no longer knows an object it listed (404); leaving it out of the inventory"
                );
                Ok(Inner::Done(Ok(None)))
            }
            StatusCode::TOO_MANY_REQUESTS => Ok(Inner::Retry {
                status,
                retry_after: header_retry_after(&item.headers),
                error,
            }),
            s if s.is_server_error() => Ok(Inner::Retry {
                status,
                retry_after: header_retry_after(&item.headers),
                error,
            }),
            _ if lenient => Ok(Inner::Done(Err(format!(
                "Graph answered {status} ({}: {})",
                error.code, error.message
            )))),
            _ => Err(error.into_error(endpoint, status, 1)),
        }
    }

    /// One request with the retry policy: 429 waits `Retry-After`, 5xx and transport errors
    /// back off, one 401 renews the token; 403 and other answers fail at once. A GET without
    /// `body`, a POST of it as JSON with it.
    async fn send(
        &self,
        endpoint: &'static str,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, GraphError> {
        let mut renewed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.token().await?;
            let started = Instant::now();
            let request = match body {
                None => self.http.get(url.clone()),
                Some(body) => self.http.post(url.clone()).json(body),
            };
            let sent = request
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
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect::<String>());
            let answer = read_limited(response, GRAPH_ANSWER_LIMIT).await;
            self.metrics.observe(endpoint, status.as_str(), started);
            let answer = match answer {
                Ok(answer) => answer,
                Err(ReadError::TooLarge) => {
                    return Err(GraphError::Malformed {
                        endpoint,
                        detail: format!(
                            "the answer is larger than {} MiB, more than any Graph page",
                            GRAPH_ANSWER_LIMIT >> 20
                        ),
                    });
                }
                Err(ReadError::Transport(detail)) if attempt < self.retry.attempts => {
                    tracing::debug!(endpoint, error = %detail, "reading a Graph answer failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                    continue;
                }
                Err(ReadError::Transport(detail)) => {
                    return Err(GraphError::Transport {
                        endpoint,
                        attempts: attempt,
                        detail,
                    });
                }
            };
            if status.is_success() {
                return Ok(answer);
            }
            if status.is_redirection() {
                // Followed, the bearer token would go wherever the answer points.
                return Err(GraphError::Status {
                    endpoint,
                    status: status.as_u16(),
                    code: "redirect".into(),
                    message: format!(
                        "Graph answered a redirect to {:?}, which is not followed",
                        location.unwrap_or_default()
                    ),
                    attempts: attempt,
                });
            }
            let (code, message) = error_of(&answer);
            match status {
                StatusCode::UNAUTHORIZED if !renewed_token => {
                    // The token may have been revoked or expired early: one fresh one.
                    renewed_token = true;
                    self.tokens.invalidate().await;
                    attempt -= 1;
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
                    let error = InnerError::from_graph(&code, &message, Some(token.expose()));
                    return Err(error.into_error(endpoint, status, attempt));
                }
            }
        }
    }
}

/// What became of one request inside a batch.
enum Inner<T> {
    /// Read (`Some`), or gone (`None`: 404); refused, in a lenient batch.
    Done(Result<Option<T>, String>),
    /// Throttled or failed on the server's side: ask again.
    Retry {
        status: StatusCode,
        retry_after: Option<Duration>,
        error: InnerError,
    },
}

/// Graph's error code and message for one answer.
struct InnerError {
    code: String,
    message: String,
}

/// The longest Graph error message kept, in characters: Graph's own are a sentence or two,
/// and one of a megabyte was logged whole on one line.
const MESSAGE_KEPT: usize = 500;

impl InnerError {
    /// Graph's code and message as they may be logged: whatever looks like a bearer token or
    /// is the `token` sent removed (a server may echo the request's Authorization header),
    /// control characters escaped, and cut.
    fn from_graph(code: &str, message: &str, token: Option<&str>) -> InnerError {
        let clean = |text: &str, max: usize| {
            let text = match token {
                Some(token) => crate::secret::redact_echo(text, token),
                None => text.to_string(),
            };
            let text = crate::secret::redact_tokens(&text);
            crate::secret::cut(&crate::text::printable(&text), max)
        };
        InnerError {
            code: clean(code, 100),
            message: clean(message, MESSAGE_KEPT),
        }
    }

    fn into_error(self, endpoint: &'static str, status: StatusCode, attempts: u32) -> GraphError {
        let Self { code, message } = self;
        match status {
            StatusCode::UNAUTHORIZED => GraphError::Unauthorized {
                endpoint,
                code,
                message,
            },
            StatusCode::FORBIDDEN => GraphError::Forbidden {
                endpoint,
                code,
                message,
            },
            _ => GraphError::Status {
                endpoint,
                status: status.as_u16(),
                code,
                message,
                attempts,
            },
        }
    }
}

fn parse<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(body).map_err(|e| GraphError::Malformed {
        endpoint,
        detail: e.to_string(),
    })
}

/// `Retry-After` of an answer inside a batch (`headers` is a JSON object there; any letter case).
fn header_retry_after(
    headers: &std::collections::HashMap<String, serde_json::Value>,
) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, value)| value)?;
    match value {
        serde_json::Value::String(text) => seconds(text),
        serde_json::Value::Number(n) => seconds(&n.to_string()),
        _ => None,
    }
}

/// `Retry-After` of an answer.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    seconds(response.headers().get(RETRY_AFTER)?.to_str().ok()?)
}

/// `Retry-After` in seconds, the form Graph uses, whole or not: Graph's throttling page shows
/// `Retry-After: 2.128`. Capped at a day so a wild value cannot overflow.
fn seconds(text: &str) -> Option<Duration> {
    let seconds = text.trim().parse::<f64>().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
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

/// The most one Graph answer may hold: a page of 100 objects or a batch of 20 is far less.
const GRAPH_ANSWER_LIMIT: usize = 32 << 20;

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
    fn retry_after_is_read_in_whole_and_fractional_seconds_and_nonsense_ignored() {
        assert_eq!(seconds("10"), Some(Duration::from_secs(10)));
        assert_eq!(seconds(" 2.128 "), Some(Duration::from_millis(2128)));
        for bad in ["", "-1", "soon", "NaN", "inf"] {
            assert_eq!(seconds(bad), None, "{bad:?}");
        }
        let headers =
            std::collections::HashMap::from([("retry-after".to_string(), serde_json::json!(3))]);
        assert_eq!(header_retry_after(&headers), Some(Duration::from_secs(3)));
    }

    #[test]
    fn graph_error_bodies_are_read_and_others_tolerated() {
        let (code, message) = error_of(br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{}}}"#);
        assert_eq!(code, "Authorization_RequestDenied");
        assert!(message.starts_with("Insufficient"));
        assert_eq!(error_of(b"<html>").0, "unknown");
    }
}
