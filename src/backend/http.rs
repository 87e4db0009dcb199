//! One request to an app's internal URL, the way the connector makes it: directly or through
//! the backend proxy, TLS validated per the app's setting, redirects not followed. Written on
//! sockets so each phase (resolve, connect, tls, processing, transfer) is timed, and a backend
//! that trickles or never answers is bounded by the deadline.

use std::fmt;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::endpoints::tls::TlsSetup;
use crate::net::{self, Failure};
use crate::proxy::ProxyAddress;

/// The phases timed (`appproxy_backend_phase_duration_seconds{phase}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }
}

/// Where a request failed (`appproxy_backend_failure_info{phase}`): resolve, connect and
/// timeout are the network's (step 8); tls and http the application's (step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePhase {
    Resolve,
    Connect,
    Timeout,
    Tls,
    Http,
}

impl FailurePhase {
    pub fn label(self) -> &'static str {
        match self {
            FailurePhase::Resolve => "resolve",
            FailurePhase::Connect => "connect",
            FailurePhase::Timeout => "timeout",
            FailurePhase::Tls => "tls",
            FailurePhase::Http => "http",
        }
    }

    /// A failure of the network between connector and backend (step 8) rather than of the
    /// application (step 7).
    pub fn is_network(self) -> bool {
        matches!(
            self,
            FailurePhase::Resolve | FailurePhase::Connect | FailurePhase::Timeout
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFailure {
    pub phase: FailurePhase,
    pub detail: String,
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// What one request found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub phases: Vec<(Phase, f64)>,
    /// From the start until the (bounded) body was read, or the failure.
    pub seconds: f64,
    pub status: Option<u16>,
    pub failure: Option<HttpFailure>,
    /// The start of the body, for recognising App Proxy's own error pages (step 10).
    pub body_start: String,
}

/// How much of the body is kept in [`Outcome::body_start`].
const BODY_KEPT: usize = 8 * 1024;

/// How much of a body is read: enough to know the page loaded, never a whole download.
pub const BODY_LIMIT: usize = 64 * 1024;
const HEAD_LIMIT: usize = 64 * 1024;

/// Requests `url` and reads the answer within `deadline`.
pub async fn get(
    url: &Url,
    verify: bool,
    proxy: Option<&ProxyAddress>,
    deadline: Duration,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        phases: Vec::new(),
        seconds: 0.0,
        status: None,
        failure: None,
        body_start: String::new(),
    };
    let until = tokio::time::Instant::from_std(started + deadline);
    let result = tokio::time::timeout_at(until, run(url, verify, proxy, &mut outcome)).await;
    outcome.seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => outcome.failure = Some(failure),
        // The answer's head arrived: the page loaded, its body was still coming.
        Err(_) if outcome.status.is_some() => {}
        Err(_) => {
            let waiting = match outcome.phases.last().map(|(p, _)| *p) {
                None => "resolving the name",
                Some(Phase::Resolve) => "connecting",
                Some(Phase::Connect) if url.scheme() == "https" => "the TLS handshake",
                Some(_) => "any response",
            };
            outcome.failure = Some(HttpFailure {
                phase: FailurePhase::Timeout,
                detail: format!(
                    "no response within {:.0} s (waiting for {waiting})",
                    deadline.as_secs_f64()
                ),
            });
        }
    }
    outcome
}

async fn run(
    url: &Url,
    verify: bool,
    proxy: Option<&ProxyAddress>,
    outcome: &mut Outcome,
) -> Result<(), HttpFailure> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let https = url.scheme() == "https";
    let (connect_host, connect_port) =
        proxy.map_or((host.as_str(), port), |p| (p.host.as_str(), p.port));
    // The evidence names what was dialled: the backend, or the proxy in front of it.
    let network = |phase, failure: Failure| HttpFailure {
        phase,
        detail: match proxy {
            None => format!("{host}:{port} {failure}"),
            Some(_) => format!(
                "{host}:{port} through the backend proxy {connect_host}:{connect_port}: {failure}"
            ),
        },
    };
    let mut mark = Instant::now();
    let addresses = net::resolve(connect_host, connect_port)
        .await
        .map_err(|f| network(FailurePhase::Resolve, f))?;
    lap(outcome, Phase::Resolve, &mut mark);
    let mut stream = net::connect(&addresses)
        .await
        .map_err(|f| network(FailurePhase::Connect, f))?
        .stream;
    if proxy.is_some() && https {
        let status = net::tunnel::connect(&mut stream, &host, port)
            .await
            .map_err(|f| network(FailurePhase::Connect, f))?;
        if status != 200 {
            return Err(network(FailurePhase::Connect, Failure::ProxyStatus(status)));
        }
    }
    lap(outcome, Phase::Connect, &mut mark);

    // Through a proxy, plain HTTP goes in absolute form; otherwise origin form.
    let target = if proxy.is_some() && !https {
        url.as_str().to_string()
    } else {
        let mut target = url.path().to_string();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        target
    };
    let host_header = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: appproxy_exporter/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );

    if https {
        let setup = TlsSetup::get().map_err(|detail| HttpFailure {
            phase: FailurePhase::Tls,
            detail,
        })?;
        let tls = setup
            .connect(stream, &host, verify)
            .await
            .map_err(|detail| HttpFailure {
                phase: FailurePhase::Tls,
                detail,
            })?;
        lap(outcome, Phase::Tls, &mut mark);
        exchange(tls, &request, outcome, &mut mark).await
    } else {
        exchange(stream, &request, outcome, &mut mark).await
    }
}

fn lap(outcome: &mut Outcome, phase: Phase, mark: &mut Instant) {
    outcome.phases.push((phase, mark.elapsed().as_secs_f64()));
    *mark = Instant::now();
}

/// Sends the request, reads the head and a bounded part of the body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
    outcome: &mut Outcome,
    mark: &mut Instant,
) -> Result<(), HttpFailure> {
    let http = |detail: String| HttpFailure {
        phase: FailurePhase::Http,
        detail,
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| http(format!("sending the request failed: {e}")))?;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut received: Vec<u8> = Vec::new();
    let mut first_byte = true;
    let head_end = loop {
        let n = stream.read(&mut buffer).await.map_err(|e| {
            http(format!(
                "the connection failed before a complete answer: {e}"
            ))
        })?;
        if n == 0 {
            return Err(http(if received.is_empty() {
                "the backend closed the connection without answering".into()
            } else {
                format!("the answer is not HTTP: {}", preview(&received))
            }));
        }
        if first_byte {
            lap(outcome, Phase::Processing, mark);
            first_byte = false;
        }
        received.extend_from_slice(&buffer[..n]);
        if !received.starts_with(&b"HTTP/1."[..received.len().min(7)]) {
            return Err(http(format!(
                "the answer is not HTTP: {}",
                preview(&received)
            )));
        }
        if let Some(at) = find(&received, b"\r\n\r\n") {
            break at + 4;
        }
        if received.len() > HEAD_LIMIT {
            return Err(http("the answer's head is larger than 64 KiB".into()));
        }
    };
    let status = received
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..600).contains(code))
        .ok_or_else(|| http(format!("the answer is not HTTP: {}", preview(&received))))?;
    outcome.status = Some(status);
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut kept: Vec<u8> = received[head_end..]
        .iter()
        .copied()
        .take(BODY_KEPT)
        .collect();
    let mut body = received.len() - head_end;
    while body < length.unwrap_or(usize::MAX).min(BODY_LIMIT) {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                body += n;
                let room = BODY_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
                if buffer[..n].ends_with(b"0\r\n\r\n") {
                    break;
                }
            }
        }
    }
    lap(outcome, Phase::Transfer, mark);
    outcome.body_start = String::from_utf8_lossy(&kept).into_owned();
    if status >= 500 {
        return Err(http(format!("HTTP {status}")));
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first bytes of an answer, printable.
fn preview(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot server answering with `answer` after `delay`.
    async fn server(answer: &'static [u8], delay: Duration) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            tokio::time::sleep(delay).await;
            let _ = socket.write_all(answer).await;
        });
        Url::parse(&format!("http://127.0.0.1:{port}/app/?x=1")).unwrap()
    }

    #[tokio::test]
    async fn a_page_loads_with_every_phase_timed() {
        let url = server(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            Duration::ZERO,
        )
        .await;
        let outcome = get(&url, true, None, Duration::from_secs(5)).await;
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.failure, None);
        let phases: Vec<_> = outcome.phases.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            phases,
            [
                Phase::Resolve,
                Phase::Connect,
                Phase::Processing,
                Phase::Transfer
            ]
        );
    }

    #[tokio::test]
    async fn a_503_is_an_application_failure() {
        let url = server(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let outcome = get(&url, true, None, Duration::from_secs(5)).await;
        assert_eq!(outcome.status, Some(503));
        assert_eq!(
            outcome.failure.as_ref().map(|f| f.phase),
            Some(FailurePhase::Http)
        );
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_says_so() {
        let url = server(b"SSH-2.0-OpenSSH_9.2\r\n", Duration::ZERO).await;
        let failure = get(&url, true, None, Duration::from_secs(5))
            .await
            .failure
            .unwrap();
        assert_eq!(failure.phase, FailurePhase::Http);
        assert!(failure.detail.contains("not HTTP"), "{failure}");
    }

    #[tokio::test]
    async fn a_redirect_is_a_loaded_page_and_is_not_followed() {
        let url = server(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\n\r\n", Duration::ZERO).await;
        let outcome = get(&url, true, None, Duration::from_secs(5)).await;
        assert_eq!((outcome.status, outcome.failure), (Some(302), None));
    }

    #[tokio::test]
    async fn a_refused_port_is_a_network_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let failure = get(&url, true, None, Duration::from_secs(5))
            .await
            .failure
            .unwrap();
        assert_eq!(failure.phase, FailurePhase::Connect);
        assert!(failure.phase.is_network());
    }

    #[tokio::test]
    async fn silence_until_the_deadline_is_a_timeout_measured_to_the_deadline() {
        let url = server(b"HTTP/1.1 200 OK\r\n\r\n", Duration::from_secs(10)).await;
        let outcome = get(&url, true, None, Duration::from_millis(300)).await;
        let failure = outcome.failure.unwrap();
        assert_eq!(failure.phase, FailurePhase::Timeout);
        assert!(
            failure.detail.contains("waiting for any response"),
            "{failure}"
        );
        assert!(outcome.seconds >= 0.3);
    }
}
