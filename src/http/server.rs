//! The HTTP server: hyper's HTTP/1.1 over the listener's connections, with the limits Go's
//! net/http servers of exporter-toolkit have. A request's head must arrive within
//! [`READ_HEADER_TIMEOUT`] (Go's `ReadHeaderTimeout`, which also bounds an idle kept-alive
//! connection when no other timeout is set), its answer must be written within
//! [`super::conn::WRITE_TIMEOUT`] (Go's `WriteTimeout`), and the listener limits the
//! connections. Shutdown lets the requests in flight finish, for at most [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::conn::{WRITE_TIMEOUT, WriteDeadline};
use super::listener::WebListener;

/// How long a client has to send a request's head, from the connection's start or the end of
/// the previous answer.
pub const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The longest request head read (hyper's default is 400 KiB).
const MAX_HEAD: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(listener: WebListener, app: Router, shutdown: impl Future<Output = ()>) {
    serve_with(listener, app, shutdown, WRITE_TIMEOUT).await;
}

/// [`serve`] with a write timeout of the caller's choosing (tests shorten it).
pub async fn serve_with(
    mut listener: WebListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    write_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (connection, _peer) = tokio::select! {
            accepted = listener.next() => accepted,
            () = &mut shutdown => break,
        };
        let service = WithWriteDeadline {
            inner: TowerToHyperService::new(app.clone()),
            deadline: connection.write_deadline(),
            timeout: write_timeout,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(READ_HEADER_TIMEOUT)
            .max_buf_size(MAX_HEAD)
            // A client that shuts its side after the request (`nc -N`, some probes) still
            // gets the answer, as from Go's servers.
            .half_close(true)
            .keep_alive(true);
        let served = graceful.watch(builder.serve_connection(TokioIo::new(connection), service));
        tokio::spawn(async move {
            if let Err(error) = served.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = SHUTDOWN_GRACE.as_secs(),
            "requests still in flight at shutdown were cut"
        );
    }
}

/// A connection's service: each request sets when its answer must be written by.
struct WithWriteDeadline<S> {
    inner: S,
    deadline: WriteDeadline,
    timeout: Duration,
}

impl<S, B> hyper::service::Service<hyper::Request<B>> for WithWriteDeadline<S>
where
    S: hyper::service::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: hyper::Request<B>) -> Self::Future {
        self.deadline.start(self.timeout);
        self.inner.call(request)
    }
}

/// Raises the open-file soft limit to the hard one, as Go's runtime does at start: every
/// scrape, probe and backend request holds a descriptor, and the usual soft limit of 1024 is
/// low for a host with thousands of apps. Off Unix there is no such limit.
pub fn raise_file_limit() {
    #[cfg(unix)]
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;

    /// An answer that never ends goes to a client that never reads: once the write deadline
    /// passes, the connection is closed and the answer dropped, with all it held.
    #[tokio::test]
    async fn an_answer_the_client_does_not_take_is_cut_at_the_write_deadline() {
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let app = Router::new().route(
            "/endless",
            axum::routing::get(move || {
                let held = Dropped(Arc::clone(&flag));
                async move {
                    let chunks = futures_util::stream::repeat_with(move || {
                        let _ = &held;
                        Ok::<_, std::convert::Infallible>(vec![b'x'; 64 * 1024])
                    });
                    axum::body::Body::from_stream(chunks)
                }
            }),
        );
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let limits = super::super::listener::ConnectionLimits {
            total: 0,
            per_client: 0,
        };
        let tasks = crate::supervise::Tasks::new();
        let listener = WebListener::new(vec![socket], None, limits, &tasks).unwrap();
        let server = tokio::spawn(serve_with(
            listener,
            app,
            std::future::pending(),
            Duration::from_millis(500),
        ));
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the answer is still held"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(400));
        server.abort();
    }
}
