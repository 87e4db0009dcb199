//! One endpoint probed by one route, phase by phase: resolve, TCP connect, for the proxy route
//! an HTTP CONNECT tunnel, and on 443 a TLS handshake whose chain is judged. Each phase is
//! timed; a failure says which phase failed and how (refused, dropped, unresolvable ...).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::{TlsSetup, TlsVerdict};
use crate::config::Endpoint;

/// How a probe leaves this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct,
    /// Through a forward proxy with HTTP CONNECT; `http://host:port`.
    Proxy {
        host: String,
        port: u16,
    },
}

impl Route {
    /// The `route` label value.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Proxy { .. } => "proxy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Resolve,
    Connect,
    ProxyConnect,
    Tls,
}

impl Phase {
    /// The `phase` label value.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::ProxyConnect => "proxy_connect",
            Phase::Tls => "tls",
        }
    }
}

/// Why a probe failed; the words on-call engineers read in the walk's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Unresolvable(String),
    Refused,
    /// Nothing answered before the deadline: a firewall drops the packets.
    Dropped(Phase),
    Unreachable(String),
    ProxyStatus(u16),
    ProxyGarbled,
    Tls(String),
    Untrusted(String),
    Intercepted(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unresolvable(detail) => write!(f, "does not resolve ({detail})"),
            Failure::Refused => f.write_str("refused (a firewall rejects it, or nothing listens)"),
            Failure::Dropped(Phase::Resolve) => f.write_str("name resolution timed out"),
            Failure::Dropped(Phase::ProxyConnect) => {
                f.write_str("the proxy did not answer CONNECT in time")
            }
            Failure::Dropped(Phase::Tls) => f.write_str("the TLS handshake timed out"),
            Failure::Dropped(Phase::Connect) => f.write_str("timed out (dropped by a firewall)"),
            Failure::Unreachable(detail) => write!(f, "unreachable ({detail})"),
            Failure::ProxyStatus(status) => write!(f, "the proxy answered {status} to CONNECT"),
            Failure::ProxyGarbled => f.write_str("the proxy's answer to CONNECT is not HTTP"),
            Failure::Tls(detail) => f.write_str(detail),
            Failure::Untrusted(reason) => write!(f, "certificate chain not trusted ({reason})"),
            Failure::Intercepted(issuer) => write!(
                f,
                "TLS intercepted: the certificate is issued by {issuer:?}"
            ),
        }
    }
}

/// One route's result for one endpoint.
#[derive(Debug, Clone)]
pub struct RouteResult {
    pub route: Route,
    /// TCP reached the endpoint (directly, or a CONNECT tunnel was opened): the port test.
    pub connected: bool,
    pub failure: Option<Failure>,
    /// Seconds per completed phase.
    pub phases: Vec<(Phase, f64)>,
    /// Set when a TLS handshake judged the chain.
    pub intercepted: Option<bool>,
    /// The proxy's answer to CONNECT, on the proxy route.
    pub proxy_status: Option<u16>,
}

impl RouteResult {
    pub fn up(&self) -> bool {
        self.connected && self.failure.is_none()
    }
}

/// Probes `endpoint` by `route` within `timeout`.
pub async fn probe(
    endpoint: &Endpoint,
    route: &Route,
    timeout: Duration,
    expected_issuers: &[String],
) -> RouteResult {
    let mut result = RouteResult {
        route: route.clone(),
        connected: false,
        failure: None,
        phases: Vec::new(),
        intercepted: None,
        proxy_status: None,
    };
    let deadline = Instant::now() + timeout;
    let outcome = run(endpoint, route, deadline, expected_issuers, &mut result).await;
    if let Err(failure) = outcome {
        result.failure = Some(failure);
    }
    result
}

async fn run(
    endpoint: &Endpoint,
    route: &Route,
    deadline: Instant,
    expected_issuers: &[String],
    result: &mut RouteResult,
) -> Result<(), Failure> {
    // On the proxy route the proxy resolves the endpoint's name, as the connector's would.
    let (connect_host, connect_port) = match route {
        Route::Direct => (endpoint.host.as_str(), endpoint.port),
        Route::Proxy { host, port } => (host.as_str(), *port),
    };
    let addresses = timed(
        result,
        Phase::Resolve,
        deadline,
        resolve(connect_host, connect_port),
    )
    .await?;
    let mut stream = timed(result, Phase::Connect, deadline, connect(&addresses)).await?;
    if let Route::Proxy { .. } = route {
        let status = timed(
            result,
            Phase::ProxyConnect,
            deadline,
            open_tunnel(&mut stream, endpoint),
        )
        .await?;
        result.proxy_status = Some(status);
        if status != 200 {
            return Err(Failure::ProxyStatus(status));
        }
    }
    result.connected = true;
    if endpoint.port != 443 {
        return Ok(());
    }
    let setup = TlsSetup::get().map_err(Failure::Tls)?;
    let verdict = timed(result, Phase::Tls, deadline, async {
        setup
            .handshake(stream, &endpoint.host, expected_issuers)
            .await
            .map_err(Failure::Tls)
    })
    .await?;
    result.intercepted = Some(matches!(verdict, TlsVerdict::Intercepted { .. }));
    match verdict {
        TlsVerdict::Genuine => Ok(()),
        TlsVerdict::Intercepted { issuer } => Err(Failure::Intercepted(issuer)),
        TlsVerdict::Untrusted { reason } => Err(Failure::Untrusted(reason)),
    }
}

/// Runs one phase against the overall deadline and records its duration when it completes.
async fn timed<T>(
    result: &mut RouteResult,
    phase: Phase,
    deadline: Instant,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let started = Instant::now();
    let outcome = tokio::time::timeout_at(deadline.into(), work)
        .await
        .unwrap_or(Err(Failure::Dropped(phase)));
    if outcome.is_ok() {
        result.phases.push((phase, started.elapsed().as_secs_f64()));
    }
    outcome
}

pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Unresolvable(e.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(Failure::Unresolvable("no address".into()));
    }
    Ok(addresses)
}

/// Tries each address in turn; the last error tells how the connection failed.
pub async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Failure> {
    let mut last = Failure::Unreachable("no address to try".into());
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = classify(&error),
        }
    }
    Err(last)
}

fn classify(error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Failure::Refused,
        io::ErrorKind::TimedOut => Failure::Dropped(Phase::Connect),
        _ => Failure::Unreachable(error.to_string()),
    }
}

async fn open_tunnel(stream: &mut TcpStream, endpoint: &Endpoint) -> Result<u16, Failure> {
    connect_tunnel(stream, &endpoint.host, endpoint.port).await
}

/// Sends `CONNECT host:port` over a connection to a proxy and returns its status code.
pub async fn connect_tunnel(stream: &mut TcpStream, host: &str, port: u16) -> Result<u16, Failure> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: appproxy_exporter\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| classify(&e))?;
    // Read the answer's head byte by byte, so nothing of the tunnel is consumed.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(Failure::ProxyGarbled);
        }
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) if head.is_empty() => return Err(Failure::Refused),
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(error) => return Err(classify(&error)),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or(Failure::ProxyGarbled)?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::EndpointPurpose;
    use tokio::net::TcpListener;

    fn endpoint(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            purpose: EndpointPurpose::Certificates,
        }
    }

    #[tokio::test]
    async fn a_listening_port_connects_and_a_closed_one_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = probe(
            &endpoint("127.0.0.1", port),
            &Route::Direct,
            Duration::from_secs(2),
            &[],
        )
        .await;
        assert!(open.up(), "{open:?}");
        assert_eq!(
            open.phases.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [Phase::Resolve, Phase::Connect]
        );
        drop(listener);
        let closed = probe(
            &endpoint("127.0.0.1", port),
            &Route::Direct,
            Duration::from_secs(2),
            &[],
        )
        .await;
        assert_eq!(closed.failure, Some(Failure::Refused));
        assert!(!closed.connected);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_so() {
        let result = probe(
            &endpoint("no-such-host.invalid", 80),
            &Route::Direct,
            Duration::from_secs(5),
            &[],
        )
        .await;
        assert!(
            matches!(
                result.failure,
                Some(Failure::Unresolvable(_)) | Some(Failure::Dropped(Phase::Resolve))
            ),
            "{result:?}"
        );
    }

    /// A one-shot proxy that answers CONNECT with `answer`.
    async fn fake_proxy(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(answer.as_bytes()).await;
        });
        port
    }

    #[tokio::test]
    async fn a_proxy_refusing_connect_is_reported_with_its_status() {
        let port =
            fake_proxy("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                .await;
        let route = Route::Proxy {
            host: "127.0.0.1".into(),
            port,
        };
        let result = probe(
            &endpoint("crl.example", 80),
            &route,
            Duration::from_secs(2),
            &[],
        )
        .await;
        assert_eq!(result.proxy_status, Some(407));
        assert_eq!(result.failure, Some(Failure::ProxyStatus(407)));
        assert!(!result.connected);
    }

    #[tokio::test]
    async fn a_proxy_opening_the_tunnel_counts_as_connected() {
        let port = fake_proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let route = Route::Proxy {
            host: "127.0.0.1".into(),
            port,
        };
        let result = probe(
            &endpoint("crl.example", 80),
            &route,
            Duration::from_secs(2),
            &[],
        )
        .await;
        assert!(result.up(), "{result:?}");
        assert!(result.phases.iter().any(|(p, _)| *p == Phase::ProxyConnect));
    }
}
