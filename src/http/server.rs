//! The HTTP server: hyper's HTTP/1.1 over the listener's connections, with the limits Go's
//! net/http servers of exporter-toolkit have. A request's head must arrive within
//! [`READ_HEADER_TIMEOUT`] (Go's `ReadHeaderTimeout`, which also bounds an idle kept-alive
//! connection when no other timeout is set), and at most `--web.max-connections` connections
//! are open at once (the listener holds further ones in the kernel's queue). Shutdown lets the
//! requests in flight finish, for at most [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::listener::WebListener;

/// How long a client has to send a request's head, from the connection's start or the end of
/// the previous answer.
pub const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The longest request head read (hyper's default is 400 KiB).
const MAX_HEAD: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(mut listener: WebListener, app: Router, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (connection, _peer) = tokio::select! {
            accepted = listener.next() => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
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
