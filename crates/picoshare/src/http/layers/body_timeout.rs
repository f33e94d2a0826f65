//! The idle timeout on request bodies, applied to every request by a layer of
//! the router, so every route that reads a body (uploads included, and any
//! added later) gets it without doing anything.
//!
//! The timer runs only while the handler waits for the next piece of the body:
//! it starts when a read finds nothing to return and stops when bytes arrive.
//! A body that sends nothing for the timeout is cut off with an error, and the
//! reply becomes `408 Request Timeout` (the connection is then closed). A slow
//! body that keeps moving is never cut, whatever its total duration, and time
//! the handler spends elsewhere (waiting for the disk, say) does not count.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http::{AppError, AppState};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a request body yields when it has sent nothing for the timeout.
#[derive(Debug)]
struct BodyIdleTimeout(pub(crate) Duration);

impl std::fmt::Display for BodyIdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body sent nothing for {} seconds",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyIdleTimeout {}

/// Most of a refused request's unread body that is read and thrown away
/// before the refusal is sent, and how long that may take.
const DRAIN_BYTES: u64 = 8 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Middleware: wraps the request body in the idle timeout and turns the reply
/// of a request whose body timed out into a 408.
///
/// It also lets a refused (4xx) request's client read the refusal: a handler that
/// refuses a request before reading all of its body (bad multipart framing, a
/// guest link's size limit) would otherwise close the connection with unread
/// bytes in it, which resets it, and a client still sending may lose the
/// reply. So the rest of such a body, up to `DRAIN_BYTES` and
/// `DRAIN_TIME`, is read and discarded first.
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timeout = state.config.body_idle_timeout;
    let fired = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fired);
    let shared: Arc<Mutex<Body>> = Arc::new(Mutex::new(Body::empty()));
    let handle = Arc::clone(&shared);
    let req = req.map(|inner| {
        *lock(&handle) = inner;
        Body::new(IdleBody::new(handle, timeout, flag))
    });
    let resp = next.run(req).await;
    if !fired.load(Ordering::Acquire) {
        // Only refusals: a server error or a shutdown (503, when a resumable
        // upload saved what it had) must not wait for, or throw away, more.
        if resp.status().is_client_error() {
            drain(&shared).await;
        }
        return resp;
    }
    tracing::info!(
        seconds = timeout.as_secs(),
        "request body idle: request cut off"
    );
    let mut resp = AppError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "Request timeout: the request body sent nothing for {} seconds, so the request \
             was cut off. Nothing from it was stored; please try again.",
            timeout.as_secs()
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn lock(body: &Mutex<Body>) -> std::sync::MutexGuard<'_, Body> {
    body.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads and discards what is left of a body, within the drain limits.
async fn drain(body: &Arc<Mutex<Body>>) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut read = 0u64;
    while read < DRAIN_BYTES {
        let next = std::future::poll_fn(|cx| {
            hyper::body::Body::poll_frame(Pin::new(&mut *lock(body)), cx)
        });
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}

/// A request body that fails once it has been waited on, without a byte
/// arriving, for the timeout. The body itself is shared with the layer, which
/// may drain it after the handler is done with it.
struct IdleBody {
    inner: Arc<Mutex<Body>>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    fired: Arc<AtomicBool>,
}

impl IdleBody {
    fn new(inner: Arc<Mutex<Body>>, timeout: Duration, fired: Arc<AtomicBool>) -> Self {
        IdleBody {
            inner,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
            fired,
        }
    }
}

impl hyper::body::Body for IdleBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.fired.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.timeout)))));
        }
        let polled = Pin::new(&mut *lock(&this.inner)).poll_frame(cx);
        match polled {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.timeout;
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fired.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.inner).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.inner).size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn shared(body: Body) -> Arc<Mutex<Body>> {
        Arc::new(Mutex::new(body))
    }

    #[tokio::test]
    async fn a_silent_body_fails_after_the_timeout() {
        let stream = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let fired = Arc::new(AtomicBool::new(false));
        let timeout = Duration::from_millis(100);
        let mut body = IdleBody::new(shared(Body::from_stream(stream)), timeout, fired.clone());
        let start = std::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyIdleTimeout>(), "{err}");
        assert!(start.elapsed() >= timeout);
        assert!(fired.load(Ordering::Relaxed));
        // It stays failed.
        assert!(body.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_slow_moving_body_is_never_cut() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let fired = Arc::new(AtomicBool::new(false));
        // The whole body takes over twice the timeout; no gap comes near it.
        let timeout = Duration::from_millis(250);
        let body = IdleBody::new(shared(Body::from_stream(stream)), timeout, fired.clone());
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 10);
        assert!(!fired.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn time_spent_between_reads_does_not_count() {
        let body = Body::from(Bytes::from_static(b"ab"));
        let fired = Arc::new(AtomicBool::new(false));
        let mut body = IdleBody::new(shared(body), Duration::from_millis(20), fired);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"ab"));
    }
}
