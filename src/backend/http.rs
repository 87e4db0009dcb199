//! One request to an app's internal URL, the way the connector makes it: directly or through
//! the backend proxy, TLS validated per the app's setting, redirects not followed. The dial is
//! the exporter's own (resolve, connect, the CONNECT tunnel, TLS: each phase timed); HTTP/1.1 is
//! hyper's: interim 1xx answers skipped, chunked and length framing, keep-alive, no body after
//! 204 or 304. Latency is the time to the final response head, which is what App Proxy's
//! backend timeout measures; the body is read only up to a bound, and timed on its own.
//!
//! Which step a failure belongs to is the contract's rule: no address, refused, unreachable or
//! a connect that times out is the network's (step 8); connected (and TLS up) with no final
//! answer before the deadline is a timeout (step 9); a final 5xx, a TLS failure or an answer
//! that is not HTTP is the application's (step 7); an answer the proxy made is the proxy's.

use std::fmt;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::http::{HeaderMap, Request, Response, header};
use hyper_util::rt::TokioIo;
use url::Url;

use crate::net::ProxyAddress;
use crate::net::tls::{PresentedCertificate, TlsError, TlsSetup, TlsVersion};
use crate::net::{self, Driver, Failure, Io};

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

/// Where a request failed (`appproxy_backend_failure_info{phase}`), which decides the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePhase {
    /// No address (step 8).
    Resolve,
    /// Refused, unreachable, dropped, or a proxy that cannot reach the backend (step 8).
    Connect,
    /// Connected, no final answer in time (step 9).
    Timeout,
    /// The TLS handshake failed (step 7).
    Tls,
    /// A final 5xx, or an answer that is not HTTP (step 7).
    Http,
    /// The backend proxy refused the request itself: 407 or 403 (step 5).
    Proxy,
}

impl FailurePhase {
    pub fn label(self) -> &'static str {
        match self {
            FailurePhase::Resolve => "resolve",
            FailurePhase::Connect => "connect",
            FailurePhase::Timeout => "timeout",
            FailurePhase::Tls => "tls",
            FailurePhase::Http => "http",
            FailurePhase::Proxy => "proxy",
        }
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
    /// From the start to the final response head, or to the failure or the deadline.
    pub seconds: f64,
    pub status: Option<u16>,
    pub failure: Option<HttpFailure>,
    /// The start of the body, for recognising App Proxy's own pages (step 10).
    pub body_start: String,
    /// A redirect's `Location`, for telling a sign-in redirect (step 10).
    pub location: Option<String>,
    /// The proxy the request went through, when it did (`http://host:port`).
    pub via: Option<String>,
    /// The address connected to, when the request went directly (a proxy resolves for itself).
    pub address: Option<std::net::IpAddr>,
    /// The leaf certificate of the TLS handshake, kept only where asked for
    /// ([`get_presenting`]: step 10 compares it with the custom domain's).
    pub certificate: Option<Box<PresentedCertificate>>,
    /// The TLS version the handshake reached, or [`TlsVersion::Legacy`] when the backend offers
    /// only TLS 1.0/1.1 (`appproxy_backend_tls_version_info`); `None` for `http` or before TLS.
    pub tls_version: Option<TlsVersion>,
}

/// How much of the body is kept in [`Outcome::body_start`].
const BODY_KEPT: usize = 8 * 1024;

/// How much of a body is read: enough to know the page loaded, never a whole download.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Requests `url` and reads the answer within `deadline`. `host` is the Host header to send
/// instead of the URL's (App Proxy sends the external host when an app's "Translate URLs in
/// headers" is off); the TLS server name and the certificate's expected name follow it, as
/// .NET's HttpClient does with a Host header set (docs/backend.md, "Host header").
pub async fn get(
    url: &Url,
    host: Option<&str>,
    verify: bool,
    proxy: Option<&ProxyAddress>,
    deadline: Duration,
) -> Outcome {
    fetch(url, host, verify, proxy, deadline, false).await
}

/// As [`get`], keeping the leaf certificate the handshake presented in
/// [`Outcome::certificate`]: one handshake both loads the page and shows the certificate.
pub async fn get_presenting(
    url: &Url,
    verify: bool,
    proxy: Option<&ProxyAddress>,
    deadline: Duration,
) -> Outcome {
    fetch(url, None, verify, proxy, deadline, true).await
}

async fn fetch(
    url: &Url,
    host: Option<&str>,
    verify: bool,
    proxy: Option<&ProxyAddress>,
    deadline: Duration,
    keep_certificate: bool,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        phases: Vec::new(),
        seconds: 0.0,
        status: None,
        failure: None,
        body_start: String::new(),
        location: None,
        via: proxy.map(ToString::to_string),
        address: None,
        certificate: None,
        tls_version: None,
    };
    let until = tokio::time::Instant::from_std(started + deadline);
    let mut progress = Progress::default();
    let result = tokio::time::timeout_at(
        until,
        run(
            Asked {
                url,
                host_header: host,
                verify,
                proxy,
                keep_certificate,
            },
            started,
            &mut outcome,
            &mut progress,
        ),
    )
    .await;
    if outcome.status.is_none() {
        outcome.seconds = started.elapsed().as_secs_f64();
    }
    match result {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => outcome.failure = Some(failure),
        // The final head arrived: the page loaded, its body was still coming.
        Err(_) if outcome.status.is_some() => {}
        Err(_) => outcome.failure = Some(progress.timed_out(url, proxy, deadline)),
    }
    outcome
}

/// How far a request got, for naming what a deadline interrupted.
#[derive(Debug, Default)]
struct Progress {
    resolved: bool,
    connected: bool,
    tunnelled: bool,
    secured: bool,
}

impl Progress {
    fn timed_out(
        &self,
        url: &Url,
        proxy: Option<&ProxyAddress>,
        deadline: Duration,
    ) -> HttpFailure {
        let seconds = deadline.as_secs_f64();
        let https = url.scheme() == "https";
        let (phase, detail) = if !self.resolved {
            (
                FailurePhase::Resolve,
                format!("name resolution did not finish in {seconds:.0} s"),
            )
        } else if !self.connected {
            (
                FailurePhase::Connect,
                format!("the connection did not open in {seconds:.0} s (dropped by a firewall?)"),
            )
        } else if proxy.is_some() && https && !self.tunnelled {
            (
                FailurePhase::Connect,
                format!("the backend proxy did not open the tunnel in {seconds:.0} s"),
            )
        } else if https && !self.secured {
            (
                FailurePhase::Tls,
                format!("the TLS handshake did not finish in {seconds:.0} s"),
            )
        } else {
            (
                FailurePhase::Timeout,
                format!(
                    "connected, but no answer within {seconds:.0} s: App Proxy shows such an app as \"Backend Timeout\""
                ),
            )
        };
        HttpFailure { phase, detail }
    }
}

/// What [`run`] is asked to do.
struct Asked<'a> {
    url: &'a Url,
    host_header: Option<&'a str>,
    verify: bool,
    proxy: Option<&'a ProxyAddress>,
    keep_certificate: bool,
}

async fn run(
    asked: Asked<'_>,
    started: Instant,
    outcome: &mut Outcome,
    progress: &mut Progress,
) -> Result<(), HttpFailure> {
    let Asked {
        url,
        host_header,
        verify,
        proxy,
        keep_certificate,
    } = asked;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let https = url.scheme() == "https";
    let (dial_host, dial_port) = proxy.map_or((host.as_str(), port), |p| (p.host.as_str(), p.port));
    // The name TLS asks for and the certificate must hold: the Host header's, without a port.
    let server_name = host_header.map_or(host.as_str(), |h| strip_port(h));
    // The evidence names what was dialled, and as what: the backend (with the Host header it
    // was asked as, when that is not its own), or the proxy in front of it.
    let shown = match host_header {
        Some(asked_as) => format!("{host}:{port} (asked as {asked_as})"),
        None => format!("{host}:{port}"),
    };
    let network = |phase, failure: Failure| HttpFailure {
        phase,
        detail: match proxy {
            None => format!("{shown} {failure}"),
            Some(_) => {
                format!("{shown} through the backend proxy {dial_host}:{dial_port}: {failure}")
            }
        },
    };

    let mut mark = Instant::now();
    let addresses = net::resolve(dial_host, dial_port)
        .await
        .map_err(|f| network(FailurePhase::Resolve, f))?;
    progress.resolved = true;
    lap(outcome, Phase::Resolve, &mut mark);
    let connected = net::connect(&addresses)
        .await
        .map_err(|f| network(FailurePhase::Connect, f))?;
    if proxy.is_none() {
        outcome.address = Some(connected.address.ip());
    }
    let mut stream: Io = Box::new(connected.stream);
    progress.connected = true;
    if let (Some(proxy), true) = (proxy, https) {
        let answer = net::tunnel::open(stream, &host, port)
            .await
            .map_err(|f| network(FailurePhase::Connect, f))?;
        stream = answer
            .tunnel
            .ok_or_else(|| proxy_refusal(proxy, &host, port, answer.status))?;
    }
    progress.tunnelled = true;
    lap(outcome, Phase::Connect, &mut mark);

    if https {
        let setup = TlsSetup::get().map_err(|error| HttpFailure {
            phase: FailurePhase::Tls,
            detail: error.to_string(),
        })?;
        let secured = match setup.connect(stream, server_name, verify).await {
            Ok(secured) => secured,
            Err(error) => {
                if matches!(error, TlsError::OnlyLegacy) {
                    outcome.tls_version = Some(TlsVersion::Legacy);
                }
                return Err(HttpFailure {
                    phase: FailurePhase::Tls,
                    detail: format!("{shown}: {error}"),
                });
            }
        };
        outcome.tls_version = TlsVersion::of(&secured);
        if keep_certificate {
            outcome.certificate = PresentedCertificate::of_peer(&secured).map(Box::new);
        }
        stream = Box::new(secured);
        lap(outcome, Phase::Tls, &mut mark);
    }
    progress.secured = true;

    let (response, _connection) =
        exchange(stream, url, host_header, proxy.is_some() && !https).await?;
    outcome.seconds = started.elapsed().as_secs_f64();
    lap(outcome, Phase::Processing, &mut mark);
    let status = response.status().as_u16();
    outcome.status = Some(status);
    outcome.location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect());
    if let Some(proxy) = proxy.filter(|_| !https && made_by_proxy(status, response.headers())) {
        return Err(proxy_refusal(proxy, &host, port, status));
    }
    let body = read_body(response, &mut outcome.body_start).await;
    lap(outcome, Phase::Transfer, &mut mark);
    if status >= 500 {
        return Err(HttpFailure {
            phase: FailurePhase::Http,
            detail: format!("{shown} answered HTTP {status}"),
        });
    }
    body.map_err(|detail| HttpFailure {
        phase: FailurePhase::Http,
        detail: format!("{shown} answered {status}, but {detail}"),
    })
}

/// `host` of a Host header value `host[:port]` (an IPv6 literal keeps its brackets off).
fn strip_port(value: &str) -> &str {
    let host = match value.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => value,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

fn lap(outcome: &mut Outcome, phase: Phase, mark: &mut Instant) {
    outcome.phases.push((phase, mark.elapsed().as_secs_f64()));
    *mark = Instant::now();
}

/// Sends the GET over `stream` and waits for the final response head (hyper skips 1xx).
/// `absolute` asks for the absolute form, as a plain-HTTP request through a proxy is sent.
async fn exchange(
    stream: Io,
    url: &Url,
    host_header: Option<&str>,
    absolute: bool,
) -> Result<(Response<hyper::body::Incoming>, Driver), HttpFailure> {
    let http = |detail: String| HttpFailure {
        phase: FailurePhase::Http,
        detail,
    };
    let target = if absolute {
        url.as_str().to_string()
    } else {
        let mut target = url.path().to_string();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        target
    };
    let host_header = match (host_header, url.port()) {
        (Some(asked_as), _) => asked_as.to_string(),
        (None, Some(port)) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        (None, None) => url.host_str().unwrap_or_default().to_string(),
    };
    let request = Request::get(target)
        .header(header::HOST, host_header)
        .header(header::USER_AGENT, net::USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .header(header::ACCEPT_ENCODING, "gzip, deflate")
        .body(Empty::<Bytes>::new())
        .map_err(|e| http(format!("cannot build a request for {url}: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(format!("the connection failed: {e}")))?;
    // The connection is driven beside the request and stops with it (also on the deadline).
    let driver = Driver::spawn(connection);
    let answer = sender.send_request(request).await.map_err(|e| {
        http(match net::hyper_failure(&e, Failure::ProxyGarbled) {
            Failure::ProxyGarbled => format!("the answer is not HTTP ({e})"),
            Failure::Refused => "the backend closed the connection without answering".into(),
            other => format!("the connection failed before an answer: {other}"),
        })
    })?;
    Ok((answer, driver))
}

/// A body that ended before its end.
#[derive(Debug, thiserror::Error)]
#[error("its body broke off after {read} bytes: {source}")]
struct BrokenBody {
    read: usize,
    source: hyper::Error,
}

/// Reads at most [`BODY_LIMIT`] bytes of the body, keeping the first [`BODY_KEPT`]. A body that
/// breaks off is an error; one cut at the limit is not.
async fn read_body(
    response: Response<hyper::body::Incoming>,
    kept: &mut String,
) -> Result<(), BrokenBody> {
    let mut body = response.into_body();
    let mut start: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let result = loop {
        if read >= BODY_LIMIT {
            break Ok(());
        }
        match body.frame().await {
            None => break Ok(()),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len();
                    let room = BODY_KEPT.saturating_sub(start.len());
                    start.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(source)) => break Err(BrokenBody { read, source }),
        }
    };
    *kept = String::from_utf8_lossy(&start).into_owned();
    result
}

/// Proxy products whose name in `Server` marks an error page as theirs.
const PROXY_SERVERS: [&str; 6] = [
    "tinyproxy",
    "squid",
    "proxysg",
    "zscaler",
    "mcafee web gateway",
    "forcepoint",
];

/// Whether a plain-HTTP answer through the proxy was made by the proxy rather than forwarded
/// from the backend: a 407 always (RFC 9110 15.5.8); a `Proxy-Status` error (RFC 9209) or
/// Squid's `X-Squid-Error`; never one with the `Via` a proxy adds to what it forwards (RFC 9110
/// 7.6.3); otherwise a 403, 500, 502, 503 or 504 whose `Server` is a proxy product. A backend's own
/// 5xx through a proxy that strips `Via` and names itself nowhere stays the backend's.
fn made_by_proxy(status: u16, headers: &HeaderMap) -> bool {
    let proxy_status_error = headers
        .get_all("proxy-status")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("error=")));
    if status == 407 || proxy_status_error || headers.contains_key("x-squid-error") {
        return true;
    }
    if headers.contains_key(header::VIA) || !matches!(status, 403 | 500 | 502 | 503 | 504) {
        return false;
    }
    headers
        .get(header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|server| PROXY_SERVERS.iter().any(|p| server.contains(p)))
}

/// The proxy's own answer: a refusal (407 or 403) is the proxy's (step 5); anything else means
/// it could not reach the backend, which the evidence of step 8 names it for.
fn proxy_refusal(proxy: &ProxyAddress, host: &str, port: u16, status: u16) -> HttpFailure {
    match status {
        407 => HttpFailure {
            phase: FailurePhase::Proxy,
            detail: format!(
                "the backend proxy {proxy} asks for authentication (407) for {host}:{port}, which the connector cannot give"
            ),
        },
        403 => HttpFailure {
            phase: FailurePhase::Proxy,
            detail: format!("the backend proxy {proxy} refuses {host}:{port} (403)"),
        },
        _ => HttpFailure {
            phase: FailurePhase::Connect,
            detail: format!(
                "{host}:{port} through the backend proxy {proxy}: the proxy could not reach it (it answered {status})"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot server answering with `answer` after `delay`, then holding the connection
    /// open (keep-alive) for a while.
    async fn server(answer: &'static [u8], delay: Duration) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            tokio::time::sleep(delay).await;
            let _ = socket.write_all(answer).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        Url::parse(&format!("http://127.0.0.1:{port}/app/?x=1")).unwrap()
    }

    /// What a backend received, and a URL of it that answers 200.
    async fn recording_server() -> (Url, tokio::sync::oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 2048];
            let n = socket.read(&mut request).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&request[..n]).into_owned());
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        });
        (
            Url::parse(&format!("http://127.0.0.1:{port}/app/")).unwrap(),
            rx,
        )
    }

    #[tokio::test]
    async fn the_backend_is_asked_with_the_host_header_app_proxy_sends() {
        let (url, request) = recording_server().await;
        let outcome = get(
            &url,
            Some("intranet-contoso.msappproxy.net"),
            true,
            None,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome.status, Some(200));
        let request = request.await.unwrap().to_ascii_lowercase();
        assert!(
            request.contains("\r\nhost: intranet-contoso.msappproxy.net\r\n"),
            "{request}"
        );
        // Without one, the internal URL's own host and port.
        let (url, request) = recording_server().await;
        get(&url, None, true, None, Duration::from_secs(5)).await;
        let port = url.port().unwrap();
        let request = request.await.unwrap().to_ascii_lowercase();
        assert!(
            request.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
    }

    #[test]
    fn the_tls_name_of_a_host_header_leaves_its_port_out() {
        assert_eq!(
            strip_port("app-contoso.msappproxy.net"),
            "app-contoso.msappproxy.net"
        );
        assert_eq!(strip_port("app.corp.example:8443"), "app.corp.example");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
    }

    #[tokio::test]
    async fn a_page_loads_with_every_phase_timed_and_keep_alive_does_not_delay_it() {
        let url = server(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            Duration::ZERO,
        )
        .await;
        let outcome = get(&url, None, true, None, Duration::from_secs(5)).await;
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
        assert!(
            outcome.phases.iter().map(|(_, s)| s).sum::<f64>() < 4.0,
            "the length ends the body; the open connection does not"
        );
        assert_eq!(outcome.body_start, "hello");
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_the_final_500_fails_step_7() {
        let url = server(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let outcome = get(&url, None, true, None, Duration::from_secs(5)).await;
        assert_eq!(outcome.status, Some(500));
        assert_eq!(outcome.failure.map(|f| f.phase), Some(FailurePhase::Http));
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded_to_its_end() {
        let url = server(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let outcome = get(&url, None, true, None, Duration::from_secs(5)).await;
        assert_eq!(outcome.failure, None);
        assert_eq!(outcome.body_start, "hello world");
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_is_a_failure_not_a_loaded_page() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
                .await;
        });
        let failure = get(&url, None, true, None, Duration::from_secs(5))
            .await
            .failure
            .unwrap();
        assert_eq!(failure.phase, FailurePhase::Http);
        assert!(failure.detail.contains("body broke off"), "{failure}");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_says_so() {
        let url = server(b"SSH-2.0-OpenSSH_9.2\r\n", Duration::ZERO).await;
        let failure = get(&url, None, true, None, Duration::from_secs(5))
            .await
            .failure
            .unwrap();
        assert_eq!(failure.phase, FailurePhase::Http);
        assert!(failure.detail.contains("not HTTP"), "{failure}");
    }

    #[tokio::test]
    async fn a_redirect_is_a_loaded_page_and_is_not_followed() {
        let url = server(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\n\r\n", Duration::ZERO).await;
        let outcome = get(&url, None, true, None, Duration::from_secs(5)).await;
        assert_eq!((outcome.status, outcome.failure), (Some(302), None));
        assert_eq!(
            outcome.location.as_deref(),
            Some("http://elsewhere.invalid/")
        );
    }

    #[tokio::test]
    async fn a_refused_port_is_a_network_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let failure = get(&url, None, true, None, Duration::from_secs(5))
            .await
            .failure
            .unwrap();
        assert_eq!(failure.phase, FailurePhase::Connect);
    }

    #[tokio::test]
    async fn connected_and_silent_until_the_deadline_is_a_timeout_not_a_network_failure() {
        let url = server(b"HTTP/1.1 200 OK\r\n\r\n", Duration::from_secs(10)).await;
        let outcome = get(&url, None, true, None, Duration::from_millis(300)).await;
        let failure = outcome.failure.unwrap();
        assert_eq!(failure.phase, FailurePhase::Timeout);
        assert!(failure.detail.contains("Backend Timeout"), "{failure}");
        assert!(outcome.seconds >= 0.3);
    }

    #[test]
    fn answers_the_proxy_made_are_told_from_forwarded_ones() {
        let mut headers = HeaderMap::new();
        assert!(made_by_proxy(407, &headers));
        assert!(
            !made_by_proxy(502, &headers),
            "nothing says proxy: the backend's"
        );
        headers.insert(header::SERVER, "tinyproxy/1.11.1".parse().unwrap());
        assert!(made_by_proxy(502, &headers), "the proxy's own page");
        assert!(!made_by_proxy(501, &headers));
        headers.insert(
            header::VIA,
            "1.1 tinyproxy (tinyproxy/1.11.1)".parse().unwrap(),
        );
        assert!(!made_by_proxy(502, &headers), "forwarded from the backend");
        headers.insert("x-squid-error", "ERR_DNS_FAIL 0".parse().unwrap());
        assert!(made_by_proxy(503, &headers));
    }
}
