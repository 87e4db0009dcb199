//! One served connection, plain or TLS: its place under the connection limits, held until it
//! closes, and its write deadline. An answer must be written within [`WRITE_TIMEOUT`] of its
//! request, as Go's `WriteTimeout` has it: past that a write fails and hyper closes the
//! connection, so a client that does not read holds its connection, its request slot and
//! what its answer holds for that long at most.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long an answer may take to be written, from its request's arrival: far more than any
/// scrape timeout (Prometheus' longest is the scrape interval) and than sending a whole
/// diagnosis of 10,000 apps to a reader on a slow link.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// When the answer being written must be done; set when a request arrives.
#[derive(Clone, Default)]
pub struct WriteDeadline(Arc<Mutex<Option<Instant>>>);

impl WriteDeadline {
    /// The answer to the request that just arrived must be written within `timeout`.
    pub fn start(&self, timeout: Duration) {
        *self.lock() = Some(crate::clock::later_tokio(Instant::now(), timeout));
    }

    fn at(&self) -> Option<Instant> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection, plain or TLS, holding its places under the connection limits until dropped.
pub struct Conn {
    stream: Stream,
    _places: Box<dyn Send + Sync>,
    deadline: WriteDeadline,
    /// Armed while a write waits on a client that does not read.
    timer: Option<Pin<Box<Sleep>>>,
}

pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    /// `places` are whatever holds this connection's places (dropped when it closes).
    pub(super) fn new(stream: Stream, places: Box<dyn Send + Sync>) -> Conn {
        Conn {
            stream,
            _places: places,
            deadline: WriteDeadline::default(),
            timer: None,
        }
    }

    /// The deadline of the answer being written, for the service to set per request.
    pub fn write_deadline(&self) -> WriteDeadline {
        self.deadline.clone()
    }

    #[cfg(test)]
    pub(super) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// A write that could not go on: `Pending` until the deadline, then an error.
    fn wait_or_time_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(at) = self.deadline.at() else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `write` on the stream, failing once the deadline has passed, and when the client does
    /// not take the bytes by then.
    fn write_by_deadline(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut Stream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.deadline.at().is_some_and(|at| Instant::now() >= at) {
            return Poll::Ready(Err(timed_out()));
        }
        match write(&mut self.stream, cx) {
            Poll::Pending => self.wait_or_time_out(cx),
            ready => ready,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the answer was not taken within the write timeout",
    )
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
        self.get_mut()
            .write_by_deadline(cx, |stream, cx| match stream {
                Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            })
    }

    /// Vectored writes let hyper hand the exposition's shared chunks to `writev` as they are;
    /// without them it copies every answer into a buffer of its own, a megabyte per scrape
    /// and per kept-alive connection at 10,000 apps.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_by_deadline(cx, |stream, cx| match stream {
                Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            })
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        match polled {
            Poll::Pending => this.wait_or_time_out(cx).map_ok(|_| ()),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
