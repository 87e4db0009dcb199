//! What every request to Graph and its sign-in endpoint shares: the request metrics, a body
//! read within a limit, and a transport error with its causes.

use std::sync::Arc;
use std::time::Instant;

use crate::exposition::{CounterVec, Histogram};

/// The Graph request counter and duration histogram; cumulative, so they live for the whole
/// process, shared by every Graph source a reload makes.
#[derive(Debug, Clone)]
pub struct GraphMetrics(Arc<GraphCounts>);

#[derive(Debug)]
struct GraphCounts {
    requests: CounterVec,
    duration: Histogram,
}

impl Default for GraphMetrics {
    fn default() -> Self {
        GraphMetrics(Arc::new(GraphCounts {
            requests: CounterVec::new(
                "appproxy_graph_requests_total",
                "Requests to Microsoft Graph and its sign-in endpoint, by graph_endpoint (which call) and answer (HTTP status, timeout or error).",
                &["graph_endpoint", "code"],
            ),
            duration: Histogram::new(
                "appproxy_graph_request_duration_seconds",
                "How long requests to Microsoft Graph and its sign-in endpoint took.",
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
        }))
    }
}

impl GraphMetrics {
    /// `endpoint` is one of a fixed set of names, `code` an HTTP status, `timeout` or `error`.
    pub fn observe(&self, endpoint: &str, code: &str, started: Instant) {
        self.0.requests.inc(&[endpoint, code]);
        self.0.duration.observe(started.elapsed().as_secs_f64());
    }

    /// A request answered inside a batch: counted, but its time is the batch's.
    pub(super) fn count(&self, endpoint: &str, code: &str) {
        self.0.requests.inc(&[endpoint, code]);
    }

    /// How many requests of `endpoint` were answered `code`.
    pub fn requests(&self, endpoint: &str, code: &str) -> u64 {
        self.0.requests.get(&[endpoint, code])
    }

    /// Both families, in the text format, in name order.
    pub fn write(&self, out: &mut impl std::fmt::Write) {
        self.0.duration.write(out);
        self.0.requests.write(out);
    }
}

/// Why an answer's body could not be had.
pub enum ReadError {
    TooLarge,
    Transport(String),
}

/// Reads a body of at most `limit` bytes, chunk by chunk, so a huge answer is refused rather
/// than held.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Transport(describe(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
