//! Accepting connections and serving HTTP/1.1 on them, with the timeouts that
//! keep slow and stalled clients from holding the server's resources.
//!
//! - **Header timeout**: a client must send a whole request head within
//!   `header_timeout` of starting it (bytes trickled one at a time do not extend
//!   it), and an idle keep-alive connection is closed after the same time.
//! - **Send timeout**: when the client reads nothing of a response for
//!   `send_timeout` (the socket's send buffer stays full), the connection is
//!   closed. A slow reader that keeps reading is never cut.
//! - Request bodies have their own idle timeout, applied to every request by a
//!   layer of the router ([`super::layers::body_timeout`]).
//!
//! Every accepted socket has `TCP_NODELAY` set: responses leave as soon as
//! they are written, never held back for the client's delayed ACK.
//!
//! Only HTTP/1.1 (and 1.0) is served, as the original does on plain HTTP;
//! HTTP/2 and TLS are a reverse proxy's job.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::Service;

/// The per-connection timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Time to send a request head; also the idle keep-alive time.
    pub(crate) header: Duration,
    /// Time a response may wait for a client that reads nothing.
    pub(crate) send: Duration,
}

/// The connections still open when accepting stopped.
pub(crate) struct OpenConnections {
    tasks: JoinSet<()>,
}

impl OpenConnections {
    /// Waits up to `grace` for the open connections to finish (they have been
    /// told to close once their request in flight is answered). Returns whether
    /// all finished; the others are aborted, which drops their requests (an
    /// upload in progress is then abandoned and its chunks deleted).
    pub(crate) async fn drain(mut self, grace: Duration) -> bool {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_ok() {
            return true;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        false
    }
}

/// Serves `app` on connections from `listener` until `shutdown` resolves; then
/// stops accepting, asks every open connection to close after its request in
/// flight, and returns them (see [`OpenConnections::drain`]).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> OpenConnections {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Nagle's algorithm would hold a response's body back
                    // behind its headers until the client's delayed ACK
                    // (about 40 ms) on a reused connection: every small
                    // download after the first would wait that long.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    let conn = serve_connection(stream, peer, app.clone(), timeouts, stop_rx.clone());
                    tasks.spawn(conn);
                }
                Err(e) if is_per_connection_error(&e) => {}
                Err(e) => {
                    // Typically out of file descriptors: wait a moment for some
                    // connections to close rather than spinning.
                    tracing::error!(error = %e, "could not accept a connection");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    OpenConnections { tasks }
}

/// Errors that concern one connection only (the listener is fine).
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        // A Router is always ready, so it can be called without `poll_ready`.
        app.clone().call(req)
    });
    let io = TokioIo::new(SendTimeout::new(stream, timeouts.send));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopping = async move {
        // The guard `wait_for` returns must not live across an await.
        let _ = stop.wait_for(|&stopping| stopping).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests are the client's business.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A socket whose writes fail with `TimedOut` once they have been blocked
/// (the client reading nothing) for the timeout. Any progress resets it.
struct SendTimeout {
    inner: TcpStream,
    timeout: Duration,
    stall: Pin<Box<Sleep>>,
    stalled: bool,
}

impl SendTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        SendTimeout {
            inner,
            timeout,
            stall: Box::pin(tokio::time::sleep(timeout)),
            stalled: false,
        }
    }

    /// After a write returned `Pending`: starts the stall timer if it is not
    /// running, and fails once it has run out.
    fn poll_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + self.timeout;
            self.stall.as_mut().reset(deadline);
        }
        match self.stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the response for the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_stall(cx),
        }
    }
}

impl AsyncRead for SendTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(r, cx)
    }
}
