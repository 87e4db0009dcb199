//! The listening sockets (one per `--web.listen-address`, or those systemd passes): plain TCP,
//! or TLS per the web config in force when each connection arrives. Handshakes run in their own
//! tasks, so a slow client never holds up the others. The accept loops run supervised.
//!
//! Connections are limited three ways, so that no client can keep the others out:
//! - at most `--web.max-connections` are open at once: past that, no more are accepted until
//!   one closes (they wait in the kernel's queue), so a flood of idle sockets cannot use up
//!   the process's descriptors;
//! - one client (an IPv4 address, or an IPv6 /64, what one host can easily hold) has at most
//!   `--web.max-connections-per-client`; more are closed as they come;
//! - the last eighth of the places goes only to clients that hold none: a scrape or a health
//!   check from a new address gets in while others hold every other place.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::conn::{Conn, Stream};
use super::webconfig::WebConfigFile;
use crate::supervise::Tasks;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `--web.max-connections` and `--web.max-connections-per-client`; 0 means no limit.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_client: usize,
}

/// Accepts connections on every socket and hands them to the HTTP server once they are ready.
pub struct WebListener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

/// What every accept loop shares: the places, and how many each client holds.
struct Places {
    open: Arc<Semaphore>,
    limits: ConnectionLimits,
    clients: Mutex<HashMap<IpAddr, usize>>,
}

/// A client's place, given back when its connection closes.
struct ClientPlace {
    places: Arc<Places>,
    client: IpAddr,
    _open: OwnedSemaphorePermit,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut clients = self
            .places
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = clients.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

impl Places {
    /// The place of a connection from `peer`, given its place under the total; `None` when
    /// the client may not have one more (its connection is then closed).
    fn admit(self: &Arc<Self>, peer: IpAddr, open: OwnedSemaphorePermit) -> Option<ClientPlace> {
        let client = client_of(peer);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = clients.get(&client).copied().unwrap_or(0);
        let ConnectionLimits { total, per_client } = self.limits;
        if per_client > 0 && held >= per_client {
            return None;
        }
        let reserve = total / 8;
        let in_use = total.saturating_sub(self.open.available_permits());
        if total > 0 && held > 0 && in_use > total - reserve {
            return None;
        }
        *clients.entry(client).or_default() += 1;
        Some(ClientPlace {
            places: Arc::clone(self),
            client,
            _open: open,
        })
    }
}

/// Who a connection counts for: its IPv4 address, or its IPv6 address's /64 (one host is
/// given a /64 or more and may use any address of it).
fn client_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

impl WebListener {
    /// `listeners` must not be empty; the first one's address is the server's `local_addr`.
    /// The accept loops run under `tasks`.
    pub fn new(
        listeners: Vec<TcpListener>,
        web: Option<Arc<WebConfigFile>>,
        limits: ConnectionLimits,
        tasks: &Tasks,
    ) -> io::Result<WebListener> {
        let local = match listeners.first() {
            Some(first) => first.local_addr()?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no socket to listen on",
                ));
            }
        };
        let places = Arc::new(Places {
            open: Arc::new(Semaphore::new(match limits.total {
                0 => Semaphore::MAX_PERMITS,
                n => n,
            })),
            limits,
            clients: Mutex::new(HashMap::new()),
        });
        let (tx, ready) = mpsc::channel(64);
        for listener in listeners {
            let listener = Arc::new(listener);
            let (web, places, tx) = (web.clone(), Arc::clone(&places), tx.clone());
            tokio::spawn(tasks.supervise("accept", move || {
                accept_loop(
                    Arc::clone(&listener),
                    web.clone(),
                    Arc::clone(&places),
                    tx.clone(),
                )
            }));
        }
        Ok(WebListener { ready, local })
    }

    /// The next connection ready to serve (TLS handshake done); waits forever when the accept
    /// loops have ended.
    pub async fn next(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            None => std::future::pending().await,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

async fn accept_loop(
    listener: Arc<TcpListener>,
    web: Option<Arc<WebConfigFile>>,
    places: Arc<Places>,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        // A place first: at the limit, connections wait in the kernel's queue, not here.
        let Ok(open) = Arc::clone(&places.open).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait a little rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let Some(place) = places.admit(peer.ip(), open) else {
            tracing::debug!(%peer, "a connection closed at once: its client holds as many as it may");
            continue;
        };
        // Nagle's algorithm off, as Go's net package sets it on every TCP connection: an
        // answer ends in a short write (the gzip member's tail, the last chunk), which Nagle
        // holds until the client acknowledges the bytes before it, and the client delays that
        // acknowledgement by up to 40 ms (Linux's delayed ACK), so one scrape in ten took 40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot turn Nagle's algorithm off");
        }
        // TLS cannot be turned on or off while running: the settings in force say which.
        let tx = tx.clone();
        match web.as_ref().filter(|w| w.in_force().tls.is_some()) {
            None => {
                let conn = Conn::new(Stream::Plain(tcp), Box::new(place));
                let _ = tx.send((conn, peer)).await;
            }
            Some(web) => {
                tokio::spawn(handshake(tcp, peer, Arc::clone(web), place, tx));
            }
        }
    }
}

/// A TLS handshake with the settings the web config's files give now: a look at them first
/// (bounded, and shared with the requests' looks), so that a renewed certificate is presented
/// from the next connection on, as exporter-toolkit reads it at every handshake.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    web: Arc<WebConfigFile>,
    place: ClientPlace,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
) {
    let Some(config) = web.current().await.tls.clone() else {
        tracing::debug!(%peer, "the web config has no TLS settings now; the connection is closed");
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let conn = Conn::new(Stream::Tls(Box::new(stream)), Box::new(place));
            let _ = tx.send((conn, peer)).await;
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake refused"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWrite;

    fn listener_on(socket: TcpListener, limits: ConnectionLimits) -> WebListener {
        WebListener::new(vec![socket], None, limits, &Tasks::new()).unwrap()
    }

    /// A served connection sends each write at once: with Nagle's algorithm on, a scrape's
    /// last short write waited for the client's delayed acknowledgement.
    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let mut listener = listener_on(
            socket,
            ConnectionLimits {
                total: 0,
                per_client: 0,
            },
        );
        let _client = TcpStream::connect(address).await.unwrap();
        let (conn, _peer) = listener.next().await;
        let Stream::Plain(tcp) = conn.stream() else {
            panic!("a plain listener gave a TLS connection");
        };
        assert!(
            tcp.nodelay().unwrap(),
            "TCP_NODELAY is off on a served connection"
        );
        assert!(
            conn.is_write_vectored(),
            "hyper would copy every answer into its own buffer"
        );
    }

    /// A client at its limit has further connections closed; another client is served, and
    /// the last places are kept for clients that hold none.
    #[tokio::test]
    async fn one_client_cannot_take_every_place() {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let mut listener = listener_on(
            socket,
            ConnectionLimits {
                total: 16,
                per_client: 3,
            },
        );
        let connect = |from: &'static str| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
            socket
                .connect(format!("127.0.0.1:{port}").parse().unwrap())
                .await
                .unwrap()
        };
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(connect("127.0.0.1").await);
        }
        let mut served = Vec::new();
        for _ in 0..3 {
            served.push(listener.next().await);
        }
        assert!(
            served
                .iter()
                .all(|(_, p)| p.ip() == IpAddr::from([127, 0, 0, 1]))
        );
        let _other = connect("127.0.0.2").await;
        let (_conn, peer) = listener.next().await;
        assert_eq!(
            peer.ip(),
            IpAddr::from([127, 0, 0, 2]),
            "the 4th and 5th were closed"
        );
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of("2001:db8:1:3::1".parse().unwrap()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_of(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    /// With 16 places, the last 2 go only to clients that hold none.
    #[test]
    fn the_last_places_go_to_clients_that_hold_none() {
        let places = Arc::new(Places {
            open: Arc::new(Semaphore::new(16)),
            limits: ConnectionLimits {
                total: 16,
                per_client: 0,
            },
            clients: Mutex::new(HashMap::new()),
        });
        let one: IpAddr = [10, 0, 0, 1].into();
        let mut kept = Vec::new();
        loop {
            let open = Arc::clone(&places.open).try_acquire_owned().unwrap();
            match places.admit(one, open) {
                Some(place) => kept.push(place),
                None => break,
            }
        }
        assert_eq!(kept.len(), 14);
        for n in 2..4 {
            let open = Arc::clone(&places.open).try_acquire_owned().unwrap();
            let newcomer = places.admit([10, 0, 0, n].into(), open);
            assert!(
                newcomer.is_some(),
                "a client that holds none gets a kept place"
            );
            kept.push(newcomer.unwrap());
        }
        drop(kept);
        assert!(
            places.clients.lock().unwrap().is_empty(),
            "every place given back"
        );
    }
}
