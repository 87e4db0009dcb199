//! One endpoint probed by one route, phase by phase: resolve, TCP connect, for the proxy route
//! an HTTP CONNECT tunnel, and on 443 a TLS handshake whose chain is judged. Each phase is
//! timed; a failure says which phase failed and how (refused, dropped, unresolvable ...).

use std::time::{Duration, Instant};

pub use crate::net::{Failure, Family, Phase};

use crate::config::Endpoint;
use crate::net::tls::{TlsSetup, TlsVerdict};
use crate::net::{self, Io};

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
    /// The address family the TCP connection was made over.
    pub family: Option<Family>,
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
        family: None,
    };
    let deadline = crate::clock::later(Instant::now(), timeout);
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
        net::resolve(connect_host, connect_port),
    )
    .await?;
    let connected = timed(result, Phase::Connect, deadline, net::connect(&addresses)).await?;
    result.family = Some(connected.family());
    let mut stream: Io = Box::new(connected.stream);
    if let Route::Proxy { .. } = route {
        let answer = timed(
            result,
            Phase::ProxyConnect,
            deadline,
            net::tunnel::open(stream, &endpoint.host, endpoint.port),
        )
        .await?;
        result.proxy_status = Some(answer.status);
        stream = answer.tunnel.ok_or(Failure::ProxyStatus(answer.status))?;
    }
    result.connected = true;
    // A stand-in host's certificate need not name it: DNS and TCP are its whole check.
    if endpoint.port != 443 || endpoint.reachable_only.is_some() {
        return Ok(());
    }
    let setup = TlsSetup::get().map_err(|error| Failure::Tls(error.to_string()))?;
    let verdict = timed(result, Phase::Tls, deadline, async {
        setup
            .handshake(stream, &endpoint.host, expected_issuers)
            .await
            .map_err(|error| Failure::Tls(error.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::EndpointPurpose;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn endpoint(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            purpose: EndpointPurpose::Certificates,
            reachable_only: None,
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
