//! The listening sockets (one per `--web.listen-address`, or those systemd passes): plain TCP,
//! or TLS per the web config in force when each connection arrives. Handshakes run in their own
//! tasks, so a slow client never holds up the others. At most `--web.max-connections`
//! connections are open at once: past that, no more are accepted until one closes (they wait
//! in the kernel's queue), so a flood of idle sockets cannot use up the process's descriptors.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::webconfig::WebConfigFile;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection, plain or TLS, holding its place under the connection limit until dropped.
pub struct Conn {
    stream: Stream,
    _place: OwnedSemaphorePermit,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    /// Vectored writes let hyper hand the exposition's shared chunks to `writev` as they are;
    /// without them it copies every answer into a buffer of its own, a megabyte per scrape
    /// and per kept-alive connection at 10,000 apps.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections on every socket and hands them to the HTTP server once they are ready.
pub struct WebListener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl WebListener {
    /// `listeners` must not be empty; the first one's address is the server's `local_addr`.
    /// At most `max_connections` connections are open at once (0: no limit).
    pub fn new(
        listeners: Vec<TcpListener>,
        web: Option<Arc<WebConfigFile>>,
        max_connections: usize,
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
        let places = Arc::new(Semaphore::new(match max_connections {
            0 => Semaphore::MAX_PERMITS,
            n => n,
        }));
        let (tx, ready) = mpsc::channel(64);
        for listener in listeners {
            tokio::spawn(accept_loop(
                listener,
                web.clone(),
                Arc::clone(&places),
                tx.clone(),
            ));
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
    listener: TcpListener,
    web: Option<Arc<WebConfigFile>>,
    places: Arc<Semaphore>,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        // A place first: at the limit, connections wait in the kernel's queue, not here.
        let Ok(place) = Arc::clone(&places).acquire_owned().await else {
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
        // Nagle's algorithm off, as Go's net package sets it on every TCP connection: an
        // answer ends in a short write (the gzip member's tail, the last chunk), which Nagle
        // holds until the client acknowledges the bytes before it, and the client delays that
        // acknowledgement by up to 40 ms (Linux's delayed ACK), so one scrape in ten took 40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot turn Nagle's algorithm off");
        }
        // The settings in force, without a look at the file: that is the requests' to do.
        let tls = web.as_ref().and_then(|w| w.in_force().tls.clone());
        let tx = tx.clone();
        match tls {
            None => {
                let conn = Conn {
                    stream: Stream::Plain(tcp),
                    _place: place,
                };
                let _ = tx.send((conn, peer)).await;
            }
            Some(config) => {
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn = Conn {
                                stream: Stream::Tls(Box::new(stream)),
                                _place: place,
                            };
                            let _ = tx.send((conn, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A served connection sends each write at once: with Nagle's algorithm on, a scrape's
    /// last short write waited for the client's delayed acknowledgement.
    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let mut listener = WebListener::new(vec![socket], None, 0).unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (conn, _peer) = listener.next().await;
        let Stream::Plain(tcp) = &conn.stream else {
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
}
