//! The idle timeout and the minimum rate of request bodies, applied to every
//! request by a layer of the router, so every route that reads a body
//! (uploads included, and any added later) gets them without doing anything.
//!
//! Both count only the time the handler waits for the next piece of the
//! body: a timer starts when a read finds nothing to return and stops when
//! bytes arrive, so time the handler spends elsewhere (waiting for the disk,
//! say) never counts against the client.
//!
//! - A body that sends nothing for the idle timeout is cut off.
//! - A body must also arrive at an average of at least the minimum rate
//!   (`PS_BODY_MIN_RATE` bytes per second, over the time waited for it, once
//!   it has been waited on for the idle timeout: a body that sends nothing
//!   at all is always cut for its silence): a body trickled a byte at a time,
//!   each just inside the idle timeout, would otherwise hold its connection
//!   (and its file descriptor) for ever. A slow upload that keeps up the
//!   rate, however long it takes, is never cut.
//!
//! A body cut off yields an error, and the reply becomes `408 Request
//! Timeout` (the connection is then closed).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
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

/// Why a request body was cut off (kept in an `AtomicU8`, 0 for not cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Cut {
    /// It sent nothing for the idle timeout.
    Idle = 1,
    /// It fell below the minimum rate.
    Slow = 2,
}

impl Cut {
    fn of(flag: &AtomicU8) -> Option<Cut> {
        match flag.load(Ordering::Acquire) {
            1 => Some(Cut::Idle),
            2 => Some(Cut::Slow),
            _ => None,
        }
    }
}

/// The error a request body yields once it is cut off.
#[derive(Debug)]
struct BodyIdleTimeout(Cut);

impl std::fmt::Display for BodyIdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Cut::Idle => write!(f, "the request body sent nothing for the idle timeout"),
            Cut::Slow => write!(f, "the request body arrived slower than the minimum rate"),
        }
    }
}

impl std::error::Error for BodyIdleTimeout {}

/// What a body must keep up: the idle timeout, and the minimum rate after a
/// grace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Longest wait for a byte.
    pub(crate) idle: Duration,
    /// Bytes per second on average over the time waited, after `grace`
    /// (0: no minimum).
    pub(crate) min_rate: u64,
    /// Time waited before the minimum rate applies.
    pub(crate) grace: Duration,
}

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
    let limits = BodyLimits {
        idle: state.config.body_idle_timeout,
        min_rate: state.config.body_min_rate,
        grace: state.config.body_idle_timeout,
    };
    let fired = Arc::new(AtomicU8::new(0));
    let flag = Arc::clone(&fired);
    let shared: Arc<Mutex<Body>> = Arc::new(Mutex::new(Body::empty()));
    let handle = Arc::clone(&shared);
    let req = req.map(|inner| {
        *lock(&handle) = inner;
        Body::new(IdleBody::new(handle, limits, flag))
    });
    let resp = next.run(req).await;
    let Some(cut) = Cut::of(&fired) else {
        // Only refusals: a server error or a shutdown (503, when a resumable
        // upload saved what it had) must not wait for, or throw away, more.
        if resp.status().is_client_error() {
            drain(&shared).await;
        }
        return resp;
    };
    let why = match cut {
        Cut::Idle => {
            tracing::info!(
                seconds = limits.idle.as_secs(),
                "request body idle: request cut off"
            );
            format!(
                "the request body sent nothing for {} seconds",
                limits.idle.as_secs()
            )
        }
        Cut::Slow => {
            tracing::info!(
                min_rate = limits.min_rate,
                "request body too slow: request cut off"
            );
            format!(
                "the request body arrived slower than {} bytes per second",
                limits.min_rate
            )
        }
    };
    let mut resp = AppError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "Request timeout: {why}, so the request was cut off. Nothing from it was stored; \
             please try again."
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
/// arriving, for the idle timeout, or once the time waited on it passes what
/// the minimum rate allows for the bytes received. The body itself is shared
/// with the layer, which may drain it after the handler is done with it.
struct IdleBody {
    inner: Arc<Mutex<Body>>,
    limits: BodyLimits,
    timer: Pin<Box<Sleep>>,
    /// Why the timer fires, while waiting.
    timer_cut: Cut,
    /// When the current wait began, while waiting.
    waiting_since: Option<Instant>,
    /// Time waited before the current wait.
    waited: Duration,
    /// Body bytes received.
    received: u64,
    fired: Arc<AtomicU8>,
}

impl IdleBody {
    fn new(inner: Arc<Mutex<Body>>, limits: BodyLimits, fired: Arc<AtomicU8>) -> Self {
        IdleBody {
            inner,
            limits,
            timer: Box::pin(tokio::time::sleep(limits.idle)),
            timer_cut: Cut::Idle,
            waiting_since: None,
            waited: Duration::ZERO,
            received: 0,
            fired,
        }
    }

    /// How much longer, in all, the body may be waited on before it falls
    /// below the minimum rate (`None`: no minimum).
    fn rate_allowance(&self) -> Option<Duration> {
        if self.limits.min_rate == 0 {
            return None;
        }
        let earned =
            Duration::from_millis(self.received.saturating_mul(1000) / self.limits.min_rate);
        Some((self.limits.grace + earned).saturating_sub(self.waited))
    }

    fn cut(&self, why: Cut) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.fired.store(why as u8, Ordering::Release);
        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(why)))))
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
        if let Some(why) = Cut::of(&this.fired) {
            return Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(why)))));
        }
        let polled = Pin::new(&mut *lock(&this.inner)).poll_frame(cx);
        match polled {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    this.received += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                if this.waiting_since.is_none() {
                    let now = Instant::now();
                    this.waiting_since = Some(now);
                    let (wait, why) = match this.rate_allowance() {
                        Some(allowed) if allowed < this.limits.idle => (allowed, Cut::Slow),
                        _ => (this.limits.idle, Cut::Idle),
                    };
                    this.timer_cut = why;
                    this.timer.as_mut().reset(now + wait);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.cut(this.timer_cut),
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

    fn idle_only(idle: Duration) -> BodyLimits {
        BodyLimits {
            idle,
            min_rate: 0,
            grace: Duration::ZERO,
        }
    }

    /// A body whose bytes come one by one, `gap` apart, `n` of them.
    fn trickled(n: usize, gap: Duration) -> Body {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tokio::spawn(async move {
            for _ in 0..n {
                tokio::time::sleep(gap).await;
                if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    return;
                }
            }
        });
        Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    #[tokio::test]
    async fn a_trickled_body_falls_below_the_minimum_rate() {
        let fired = Arc::new(AtomicU8::new(0));
        // Each byte comes well inside the idle timeout, but 20 bytes a
        // second is below the minimum of 100.
        let limits = BodyLimits {
            idle: Duration::from_secs(5),
            min_rate: 100,
            grace: Duration::from_millis(200),
        };
        let body = IdleBody::new(
            shared(trickled(1000, Duration::from_millis(50))),
            limits,
            fired.clone(),
        );
        let start = std::time::Instant::now();
        let err = body.collect().await.unwrap_err();
        assert!(err.is::<BodyIdleTimeout>(), "{err}");
        assert_eq!(Cut::of(&fired), Some(Cut::Slow));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        // Fast enough: never cut.
        let fired = Arc::new(AtomicU8::new(0));
        let limits = BodyLimits {
            min_rate: 10,
            ..limits
        };
        let body = IdleBody::new(
            shared(trickled(20, Duration::from_millis(50))),
            limits,
            fired.clone(),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 20);
        assert_eq!(Cut::of(&fired), None);
    }

    #[tokio::test]
    async fn a_silent_body_fails_after_the_timeout() {
        let stream = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let fired = Arc::new(AtomicU8::new(0));
        let timeout = Duration::from_millis(100);
        let mut body = IdleBody::new(
            shared(Body::from_stream(stream)),
            idle_only(timeout),
            fired.clone(),
        );
        let start = std::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyIdleTimeout>(), "{err}");
        assert!(start.elapsed() >= timeout);
        assert_eq!(Cut::of(&fired), Some(Cut::Idle));
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
        let fired = Arc::new(AtomicU8::new(0));
        // The whole body takes over twice the timeout; no gap comes near it.
        let timeout = Duration::from_millis(250);
        let body = IdleBody::new(
            shared(Body::from_stream(stream)),
            idle_only(timeout),
            fired.clone(),
        );
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 10);
        assert_eq!(Cut::of(&fired), None);
    }

    #[tokio::test]
    async fn time_spent_between_reads_does_not_count() {
        let body = Body::from(Bytes::from_static(b"ab"));
        let fired = Arc::new(AtomicU8::new(0));
        let limits = BodyLimits {
            idle: Duration::from_millis(20),
            min_rate: 1000,
            grace: Duration::ZERO,
        };
        let mut body = IdleBody::new(shared(body), limits, fired);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"ab"));
    }
}
