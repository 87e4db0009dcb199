//! The one network layer every step that dials goes through: name resolution, TCP connections
//! that race both address families (RFC 8305), and the words an on-call engineer reads when a
//! dial fails. Steps 3-4 (`endpoints`), 5-6 (`proxy`) and 7-10 (`backend`) use it; none of them
//! reaches into another step family for it.

pub mod dial;
pub mod tunnel;

use std::fmt;

pub use dial::{Connected, Family, connect, resolve};

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
