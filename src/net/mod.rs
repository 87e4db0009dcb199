//! The one network layer every step that dials goes through: name resolution, TCP connections
//! that race both address families (RFC 8305), and the words an on-call engineer reads when a
//! dial fails. Steps 3-4 (`endpoints`), 5-6 (`proxy`) and 7-10 (`backend`) use it; none of them
//! reaches into another step family for it.

pub mod dial;
mod proxy;
pub mod tls;
pub mod tunnel;

use std::fmt;

pub use dial::{Connected, Family, connect, resolve};
pub use proxy::ProxyAddress;

use tokio::io::{AsyncRead, AsyncWrite};

/// What the exporter identifies itself as to proxies and backends.
pub const USER_AGENT: &str = concat!("appproxy_exporter/", env!("CARGO_PKG_VERSION"));

/// A byte stream to a peer: a TCP connection, a tunnel through a proxy, TLS over either.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub type Io = Box<dyn Stream>;

/// The task that drives a hyper connection beside its requests; dropping it stops the task
/// (and closes the connection, unless it was handed over).
pub(crate) struct Driver(tokio::task::JoinHandle<()>);

impl Driver {
    pub(crate) fn spawn<F>(connection: F) -> Driver
    where
        F: std::future::Future + Send + 'static,
    {
        Driver(tokio::spawn(async move {
            let _ = connection.await;
        }))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a hyper error says about the peer: not HTTP, closed early, or the network's `io` error.
pub(crate) fn hyper_failure(error: &hyper::Error, not_http: Failure) -> Failure {
    if error.is_parse() || error.is_parse_status() {
        return not_http;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return dial::classify(io);
        }
        source = cause.source();
    }
    if error.is_incomplete_message() || error.is_closed() {
        return Failure::Refused;
    }
    Failure::Unreachable(error.to_string())
}

/// A phase of a dial, as the `phase` label of the endpoint probes names it.
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

/// Why a dial failed; the words on-call engineers read in the walk's evidence.
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
