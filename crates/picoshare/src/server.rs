//! Starting and stopping the server.
//!
//! [`Application::build`] opens the store and binds the listener (port 0 works, for
//! tests); [`Application::run_until_stopped`] serves until the shutdown future
//! resolves (see `crate::http::serve` for the connections and their
//! timeouts), lets in-flight requests finish for a grace period, aborts those
//! still running, then stops the store's writer, which reclaims any upload that
//! did not finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::http::{self, AppState, AppStateInner};
use crate::store::remote::RemoteStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// A server ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Tells long requests that the server is shutting down.
    stopping: tokio::sync::watch::Sender<bool>,
    /// How notifications are retried (`crate::hooks`).
    delivery: crate::hooks::Delivery,
    /// The sender of e-mail notifications, with an SMTP server configured.
    mailer: Option<crate::hooks::Mailer>,
}

impl Application {
    /// Opens the database and binds the listening socket.
    ///
    /// # Errors
    /// If the database cannot be opened or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let clock: Arc<dyn Clock> = match &config.clock_file {
            Some(path) => {
                tracing::warn!(path = %path.display(), "testing aid: the clock is read from a file");
                Arc::new(crate::clock::FileClock::new(path))
            }
            None => Arc::new(SystemClock),
        };
        Self::build_with_clock(config, clock).await
    }

    /// Like [`Application::build`], with an injected clock.
    ///
    /// # Errors
    /// If the database cannot be opened or the address cannot be bound.
    async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let delivery = crate::hooks::Delivery::from_env()?;
        let mailer = match &config.smtp {
            Some(smtp) => {
                tracing::info!(
                    host = %smtp.host,
                    port = smtp.port,
                    tls = ?smtp.tls,
                    from = %smtp.from,
                    "e-mail notifications go through this SMTP server"
                );
                Some(crate::hooks::Mailer::new(smtp, delivery.timeout)?)
            }
            None => None,
        };
        let store = match &config.remote {
            None => {
                let store_cfg = config.store.clone();
                let path = store_cfg.path.clone();
                Store::Sqlite(
                    tokio::task::spawn_blocking(move || SqliteStore::open(store_cfg))
                        .await?
                        .with_context(|| {
                            format!("could not open the database at {}", path.display())
                        })?,
                )
            }
            Some(remote) => Store::Remote(
                RemoteStore::open(remote.clone())
                    .await
                    .context("could not open the scale-out storage (PostgreSQL and S3)")?,
            ),
        };
        // Sessions belong to the passphrase they were opened under: a new
        // passphrase ends every other session, as it does in the original.
        let secret_tag = http::auth::session::passphrase_tag(&store, &config.shared_secret)
            .await
            .context("could not prepare the login sessions")?;
        let ended = store
            .end_sessions_of_other_secrets(secret_tag.clone())
            .await
            .context("could not end the sessions of an earlier passphrase")?;
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "ended the login sessions of another passphrase"
            );
        }
        let listener = match TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) if config.listen_is_default => {
                let v4 = SocketAddr::from(([0, 0, 0, 0], config.listen.port()));
                tracing::info!(error = %e, "IPv6 unavailable; listening on IPv4 only");
                TcpListener::bind(v4)
                    .await
                    .with_context(|| format!("could not listen on {v4}"))?
            }
            Err(e) => {
                return Err(e).with_context(|| format!("could not listen on {}", config.listen))
            }
        };
        let (stopping, shutdown) = tokio::sync::watch::channel(false);
        let limiter_capacity = config
            .limiter_capacity
            .unwrap_or(http::auth::login_limit::DEFAULT_CAPACITY);
        let state = AppState::new(AppStateInner {
            store,
            secret_digest: http::auth::session::secret_digest(&config.shared_secret),
            secret_tag: secret_tag.into(),
            config: Arc::new(config),
            clock,
            metrics: Arc::default(),
            login_limiter: Arc::new(http::auth::login_limit::Limiter::with_capacity(
                limiter_capacity,
            )),
            file_access: Arc::new(http::auth::protect::FileAccess::with_capacity(
                limiter_capacity,
            )),
            tus_locks: Arc::default(),
            shutdown,
        });
        Ok(Application {
            listener,
            state,
            stopping,
            delivery,
            mailer,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    ///
    /// # Errors
    /// If the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.state.config.shutdown_grace;
        let store = self.state.store.clone();
        let clock_for_gc = self.state.clock.clone();
        let gc_interval = self.state.config.gc_interval;
        let timeouts = http::serve::Timeouts {
            header: self.state.config.header_timeout,
            send: self.state.config.send_timeout,
        };
        let app = http::router(self.state)
            .layer(
                // One INFO line per request: method, route, status and latency.
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(|req: &axum::http::Request<_>| {
                        tracing::info_span!("request", method = %req.method(), route = log_route(req))
                    })
                    .on_request(())
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new()
                            .level(tracing::Level::INFO)
                            .latency_unit(tower_http::LatencyUnit::Millis),
                    ),
            )
            ;
        let gc = tokio::spawn(crate::gc::run_periodically(
            store.clone(),
            clock_for_gc,
            gc_interval,
        ));
        let hooks = tokio::spawn(crate::hooks::run(store.clone(), self.delivery, self.mailer));
        // Resumable uploads save what they have and reply at once when the
        // server starts shutting down.
        let stopping = self.stopping;
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        let open = http::serve::serve(self.listener, app, timeouts, shutdown).await;
        tracing::info!("shutting down: waiting up to {grace:?} for requests in flight");
        if !open.drain(grace).await {
            tracing::warn!("grace period over: abandoning requests still in flight");
        }
        gc.abort();
        hooks.abort();
        store.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The route a request matched, as a pattern (`/api/guest/{id}`), never the
/// concrete path: link IDs are capabilities (a guest-link ID lets anyone upload)
/// and do not belong in logs. Downloads are logged as `/-{id}`.
fn log_route<B>(req: &axum::http::Request<B>) -> &str {
    if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
        return m.as_str();
    }
    let path = req.uri().path();
    if path.starts_with("/-") || path.starts_with("/!") {
        "/-{id}"
    } else {
        "(no route)"
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
