//! Resolving a name and opening a TCP connection to it. Every resolved address is tried, the
//! families raced as Happy Eyeballs does (RFC 8305): the first address is dialled, and when it
//! has not connected within the connection attempt delay (250 ms, the RFC's recommendation) or
//! has failed, the next one is dialled too, alternating IPv6 and IPv4; the first connection
//! wins. A black-holed IPv6 address therefore costs 250 ms, not the whole timeout, when IPv4
//! works. The caller bounds the whole dial with its deadline.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::TcpStream;

use super::{Failure, Phase};

/// RFC 8305 section 5: "the recommended value for the default delay is 250 milliseconds".
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The address family a connection was made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(address: &SocketAddr) -> Family {
        if address.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    /// The label value (`ipv4`, `ipv6`).
    pub fn label(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// A connection and the address it reached.
#[derive(Debug)]
pub struct Connected {
    pub stream: TcpStream,
    pub address: SocketAddr,
}

impl Connected {
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }
}

/// Every address of `host` (the system resolver's order, which prefers per RFC 6724).
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

/// Connects to the first of `addresses` that answers, racing them as described above. When all
/// fail, the most telling failure is returned (refused over unreachable).
pub async fn connect(addresses: &[SocketAddr]) -> Result<Connected, Failure> {
    let mut waiting: VecDeque<SocketAddr> = interleave(addresses).into();
    let mut dialling = FuturesUnordered::new();
    let mut worst: Option<Failure> = None;
    loop {
        if dialling.is_empty() {
            let Some(next) = waiting.pop_front() else {
                return Err(
                    worst.unwrap_or_else(|| Failure::Unreachable("no address to try".into()))
                );
            };
            dialling.push(attempt(next));
        }
        tokio::select! {
            Some((address, result)) = dialling.next() => match result {
                Ok(stream) => return Ok(Connected { stream, address }),
                Err(error) => {
                    let failure = classify(&error);
                    if worst.as_ref().is_none_or(|w| rank(&failure) >= rank(w)) {
                        worst = Some(failure);
                    }
                    // A failed attempt makes room for the next address at once.
                    if let Some(next) = waiting.pop_front() {
                        dialling.push(attempt(next));
                    }
                }
            },
            () = tokio::time::sleep(ATTEMPT_DELAY), if !waiting.is_empty() => {
                if let Some(next) = waiting.pop_front() {
                    dialling.push(attempt(next));
                }
            }
        }
    }
}

async fn attempt(address: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    (address, TcpStream::connect(address).await)
}

/// The resolver's order, families alternated from the first one's (RFC 8305 section 4).
fn interleave(addresses: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addresses.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (VecDeque<SocketAddr>, VecDeque<SocketAddr>) = addresses
        .iter()
        .partition(|a| Family::of(a) == Family::of(first));
    let mut ordered = Vec::with_capacity(addresses.len());
    while !same.is_empty() || !other.is_empty() {
        ordered.extend(same.pop_front());
        ordered.extend(other.pop_front());
    }
    ordered
}

/// How much a failure says about the path: a refusal is an answer, unreachable is a guess.
fn rank(failure: &Failure) -> u8 {
    match failure {
        Failure::Refused => 2,
        Failure::Dropped(_) => 1,
        _ => 0,
    }
}

pub(crate) fn classify(error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Failure::Refused,
        io::ErrorKind::TimedOut => Failure::Dropped(Phase::Connect),
        _ => Failure::Unreachable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_resolvers_first_choice() {
        let resolved = addresses(&["[::1]:1", "[::2]:1", "127.0.0.1:1", "127.0.0.2:1"]);
        assert_eq!(
            interleave(&resolved),
            addresses(&["[::1]:1", "127.0.0.1:1", "[::2]:1", "127.0.0.2:1"])
        );
        let v4_first = addresses(&["127.0.0.1:1", "[::1]:1"]);
        assert_eq!(interleave(&v4_first), v4_first);
    }

    #[tokio::test]
    async fn a_refusing_address_gives_way_to_the_next_one_that_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let probe = TcpListener::bind("127.0.0.2:0").await.unwrap();
            probe.local_addr().unwrap()
        };
        let connected = connect(&[closed, open]).await.unwrap();
        assert_eq!(connected.address, open);
        assert_eq!(connected.family(), Family::Ipv4);
    }

    #[tokio::test]
    async fn when_every_address_fails_the_refusal_is_reported() {
        let closed = {
            let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
            probe.local_addr().unwrap()
        };
        assert_eq!(connect(&[closed]).await.unwrap_err(), Failure::Refused);
        assert!(matches!(
            connect(&[]).await.unwrap_err(),
            Failure::Unreachable(_)
        ));
    }
}
