//! Delivery of notifications: the task that sends the outbox's events to
//! their destinations, and the watch on a download's body that says when it
//! was sent whole.
//!
//! The task ([`run`]) never polls: it sleeps until the store wakes it (a
//! commit wrote events, a destination changed) or until the next retry is
//! due, whichever comes first; with nothing queued it only waits for the
//! wake-up, so an idle server makes no periodic calls. Each round sends up
//! to [`BATCH`] due events at once, each `POST` with its own timeout, and
//! records the outcomes in one durable commit: a 2xx (for e-mail, the SMTP
//! server's acceptance; `email.rs`) marks the event
//! delivered (never sent again), anything else schedules the next try with
//! exponential backoff and jitter ([`crate::store::model::hooks::backoff`]).
//! Sending happens on this task only, never on a request's: a slow or dead
//! receiver delays nothing but its own events.
//!
//! Settings from the environment (read once at start-up by [`Delivery::from_env`]):
//! `PS_HOOKS_RETRY_INITIAL_MS` (first retry delay, 10 000 by default),
//! `PS_HOOKS_RETRY_MAX_MS` (the cap, 3 600 000), `PS_HOOKS_TIMEOUT_MS`
//! (one request's time limit, 10 000). The first two exist so that tests
//! can prove retries in seconds.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::store::model::hooks::{backoff, push_text, signature, DestinationKind};
use crate::store::model::DownloadRecord;
use crate::store::sqlite::hooks::{Attempt, Due};
use crate::store::Store;

mod email;

pub(crate) use email::Mailer;

/// Deliveries a receiver accepted, since the process started (`/metrics`).
pub(crate) static DELIVERED: AtomicU64 = AtomicU64::new(0);
/// Delivery attempts that failed, since the process started (`/metrics`).
pub(crate) static FAILED: AtomicU64 = AtomicU64::new(0);

/// Events sent per round at most.
const BATCH: usize = 32;

/// How delivery retries and times out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// The wait after a first failure.
    pub(crate) initial: Duration,
    /// The longest wait between tries.
    pub(crate) max: Duration,
    /// One request's time limit (connecting, sending, the answer's headers).
    pub(crate) timeout: Duration,
}

impl Delivery {
    /// The settings from the environment (see the module header).
    ///
    /// # Errors
    /// A value that is not a positive number of milliseconds.
    pub(crate) fn from_env() -> anyhow::Result<Delivery> {
        let ms = |name: &str, default: u64| -> anyhow::Result<Duration> {
            match std::env::var(name) {
                Err(_) => Ok(Duration::from_millis(default)),
                Ok(v) => {
                    let n: u64 = v.trim().parse().ok().filter(|n| *n > 0).with_context(|| {
                        format!("{name} must be a positive number of milliseconds, not {v:?}")
                    })?;
                    Ok(Duration::from_millis(n))
                }
            }
        };
        let d = Delivery {
            initial: ms("PS_HOOKS_RETRY_INITIAL_MS", 10_000)?,
            max: ms("PS_HOOKS_RETRY_MAX_MS", 3_600_000)?,
            timeout: ms("PS_HOOKS_TIMEOUT_MS", 10_000)?,
        };
        anyhow::ensure!(
            d.max >= d.initial,
            "PS_HOOKS_RETRY_MAX_MS must be at least PS_HOOKS_RETRY_INITIAL_MS"
        );
        Ok(d)
    }
}

/// What sends the events: HTTP for webhooks and pushes, and the SMTP
/// server's sender when one is configured.
struct Senders {
    http: reqwest::Client,
    mail: Option<Mailer>,
}

/// Delivers the outbox's events until the task is aborted (see the module
/// header); e-mail through `mail`, if the server has an SMTP server.
pub(crate) async fn run(store: Store, delivery: Delivery, mail: Option<Mailer>) {
    let client = match reqwest::Client::builder()
        .timeout(delivery.timeout)
        .connect_timeout(delivery.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("PicoShare/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not start the notification client; no notifications will be sent");
            return;
        }
    };
    let senders = Senders { http: client, mail };
    if let Err(e) = store.refresh_hooks().await {
        tracing::warn!(error = %e, "could not read the notification destinations");
    }
    loop {
        let wait = match round(&store, &senders, &delivery).await {
            Ok(Some(wait)) => wait,
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "notification delivery failed; trying again in a minute");
                Some(Duration::from_secs(60))
            }
        };
        let state = store.hook_state();
        match wait {
            Some(Duration::ZERO) => {}
            Some(d) => {
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(d) => {}
                }
            }
            None => state.wake.notified().await,
        }
    }
}

/// Sends what is due; then how long until the next event is due (`None`:
/// nothing is queued; zero: more are due now).
async fn round(
    store: &Store,
    senders: &Senders,
    delivery: &Delivery,
) -> Result<Option<Option<Duration>>, crate::store::StoreError> {
    // Claimed (scale-out) for longer than the round can take.
    let claim = delivery.timeout * 2 + Duration::from_secs(30);
    let due = store.hooks_due(BATCH, claim).await?;
    if !due.is_empty() {
        let sends = due.iter().map(|d| send(senders, d, delivery));
        let attempts = futures_util::future::join_all(sends).await;
        store.record_hook_attempts(attempts).await?;
        return Ok(Some(Some(Duration::ZERO)));
    }
    let next = store.hooks_next_due().await?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Some(next.map(|t| {
        // A millisecond late rather than early: a wake-up before the time
        // would find nothing due and sleep again.
        Duration::from_millis((t - now).max(0) as u64 + 1)
    })))
}

/// One attempt to deliver `due`.
async fn send(senders: &Senders, due: &Due, delivery: &Delivery) -> Attempt {
    let result = match (due.dest_kind, &senders.mail) {
        (DestinationKind::Email, Some(mail)) => mail.send(due).await,
        (DestinationKind::Email, None) => Err(
            "no SMTP server is configured: set PS_SMTP_HOST and PS_SMTP_FROM on the server".into(),
        ),
        _ => post(&senders.http, due).await,
    };
    let outcome = match result {
        Ok(()) => {
            DELIVERED.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            let wait = backoff(
                due.attempts + 1,
                delivery.initial,
                delivery.max,
                rand::random::<f64>(),
            );
            tracing::info!(
                destination = %due.destination_id,
                event = %due.event_id,
                attempts = due.attempts + 1,
                retry_in_ms = wait.as_millis() as u64,
                %error,
                "a notification was not delivered; will retry"
            );
            let next = chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64;
            Err((error, next))
        }
    };
    Attempt {
        seq: due.seq,
        destination_id: due.destination_id.clone(),
        outcome,
    }
}

/// The request of `due` in its destination's format; `Err` with the reason
/// unless the receiver answered 2xx.
async fn post(client: &reqwest::Client, due: &Due) -> Result<(), String> {
    let req = client
        .post(&due.url)
        .header("X-PicoShare-Event-Id", &due.event_id)
        .header("X-PicoShare-Event", due.kind.as_str());
    let req = match due.dest_kind {
        DestinationKind::Webhook => req
            .header("Content-Type", "application/json")
            .header(
                "X-PicoShare-Timestamp",
                chrono::Utc::now().timestamp().to_string(),
            )
            .header(
                "X-PicoShare-Signature",
                signature(&due.secret, due.body.as_bytes()),
            )
            .body(due.body.clone()),
        DestinationKind::Email => return Err("an e-mail destination is not posted".into()),
        DestinationKind::Ntfy => {
            let event: serde_json::Value = serde_json::from_str(&due.body).unwrap_or_default();
            let (text, title, tags) = push_text(due.kind, &event);
            let req = req
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Title", format!("PicoShare: {title}"))
                .header("Tags", tags)
                .body(text);
            if due.secret.is_empty() {
                req
            } else {
                req.bearer_auth(&due.secret)
            }
        }
    };
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("the receiver answered {}", resp.status())),
        Err(e) => Err(describe(&e)),
    }
}

/// A failed request in words, without the URL (which may hold a token).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {cause}")
    }
}

/// Watches the body of the download `rec` (a full `200` reply) and, once
/// every byte of it was handed to the connection, tells the store
/// ([`Store::download_completed`]). Replies that are not a whole file, and
/// every reply when no destination wants downloads, are left as they are.
pub(crate) fn watch_download(store: &Store, response: Response, rec: &DownloadRecord) -> Response {
    if response.status() != StatusCode::OK || !store.downloads_wanted() {
        return response;
    }
    let store = store.clone();
    let rec = rec.clone();
    let announced = response
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    response.map(|inner| {
        Body::new(Watched {
            remaining: inner.size_hint().exact().or(announced),
            inner,
            done: Some(Box::new(move || store.download_completed(rec))),
        })
    })
}

/// A body that runs `done` when its last byte was taken.
struct Watched {
    inner: Body,
    /// Bytes still to come, when the length is known: the connection stops
    /// polling a body once it wrote `Content-Length` bytes, so the end is
    /// seen by counting, not by a last empty poll.
    remaining: Option<u64>,
    done: Option<Box<dyn FnOnce() + Send>>,
}

impl Watched {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done();
        }
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if let Some(r) = self.remaining.as_mut() {
                    *r = r.saturating_sub(len);
                }
                // The connection stops asking once the body says it ended,
                // or once it has all the bytes it announced.
                if self.remaining == Some(0) || self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
