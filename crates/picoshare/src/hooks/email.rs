//! E-mail notifications: one plain-text message per event and destination,
//! sent through the SMTP server of the server's settings (`PS_SMTP_*`,
//! `crate::config::SmtpConfig`) with the `lettre` crate over tokio and
//! rustls (the system's roots, or `PS_SMTP_CA_FILE`'s).
//!
//! The message's `Message-ID` is made of the event's ID (and the sender's
//! domain), the same on every try and at every destination, so a mail
//! client files a repeat (at-least-once delivery) as the same message; the
//! ID is also in `X-PicoShare-Event-Id`, the type in `X-PicoShare-Event`,
//! and `Auto-Submitted: auto-generated` tells auto-responders not to reply.
//! An SMTP server's `2xx` after the message's data marks it delivered;
//! anything else (a refused connection, a `4xx` or a `5xx`, a TLS or login
//! failure) is a failed try, retried like a webhook's.
//!
//! Each message opens its own connection (no pool: a pool's idle timer
//! would wake an idle server), and at most [`CONNECTIONS`] are open at once.
//! Why the sender's domain in `Message-ID`: the right side of an ID is
//! meant to be a domain its sender controls, so IDs of different servers
//! never meet.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};
use crate::store::model::hooks::{mail_text, recipients, Due};

/// SMTP connections open at once at most (a round sends up to 32 events,
/// at most 8 of one destination).
const CONNECTIONS: usize = 8;

/// Sends the e-mail of due events.
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right side of every `Message-ID` (the sender's domain).
    domain: String,
    /// One permit per open connection.
    slots: tokio::sync::Semaphore,
    /// One message's time limit: the wait for a connection and every
    /// command of the exchange together (within the time the outbox
    /// claims a due event for, `crate::hooks::round`).
    limit: Duration,
}

impl Mailer {
    /// The sender for `cfg`, each SMTP command waiting at most `timeout`.
    ///
    /// # Errors
    /// A TLS set-up that cannot be made (a CA file rustls refuses).
    pub(crate) fn new(cfg: &SmtpConfig, timeout: Duration) -> anyhow::Result<Mailer> {
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(cfg)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(cfg)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, pass)) = &cfg.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: cfg.from.clone(),
            domain: cfg.from.email.domain().to_owned(),
            slots: tokio::sync::Semaphore::new(CONNECTIONS),
            limit: timeout * 2,
        })
    }

    /// Sends the e-mail of `due`; `Err` with the reason unless the SMTP
    /// server accepted it.
    pub(crate) async fn send(&self, due: &Due) -> Result<(), String> {
        let message = self.message(due)?;
        let attempt = async {
            let _slot = self.slots.acquire().await;
            self.transport.send(message).await
        };
        match tokio::time::timeout(self.limit, attempt).await {
            Err(_) => Err(format!(
                "no answer in time: the SMTP exchange (with the wait for a free \
                 connection) took more than {} s",
                self.limit.as_secs()
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(describe(&e)),
        }
    }

    /// The message of `due`.
    fn message(&self, due: &Due) -> Result<Message, String> {
        let event: serde_json::Value = serde_json::from_str(&due.body).unwrap_or_default();
        let (subject, body) = mail_text(due.kind, &event);
        let header = |name: &'static str, value: &str| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@{}>", due.event_id, self.domain)))
            .raw_header(header("X-PicoShare-Event-Id", &due.event_id))
            .raw_header(header("X-PicoShare-Event", due.kind.as_str()))
            .raw_header(header("Auto-Submitted", "auto-generated"))
            .header(ContentType::TEXT_PLAIN);
        let mut any = false;
        for to in recipients(&due.url) {
            let address: Address = to
                .parse()
                .map_err(|e| format!("the recipient {to:?} is not an e-mail address: {e}"))?;
            builder = builder.to(Mailbox::new(None, address));
            any = true;
        }
        if !any {
            return Err("the destination has no recipient".to_owned());
        }
        builder
            .body(body)
            .map_err(|e| format!("the message could not be made: {e}"))
    }
}

/// TLS to `cfg.host`, trusting the CA file's certificates if one is given,
/// else the system's roots.
fn tls_parameters(cfg: &SmtpConfig) -> anyhow::Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.ca_pem {
        let cert = Certificate::from_pem(pem)
            .map_err(|e| anyhow::anyhow!("PS_SMTP_CA_FILE holds no usable certificate: {e}"))?;
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| anyhow::anyhow!("could not set up TLS for the SMTP server: {e}"))
}

/// A failed SMTP exchange in words.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let cause = cause.trim().to_owned();
    let with = |what: &str| {
        if cause.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {cause}")
        }
    };
    if let Some(code) = e.status() {
        with(&format!("the mail server answered {code}"))
    } else if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_tls() || tls_failure(e) {
        with("TLS failed")
    } else if e.is_client() {
        with("the mail server could not be used")
    } else {
        with("could not connect")
    }
}

/// Whether rustls refused the connection somewhere in `e`'s causes (lettre
/// reports a failed handshake as a connection error).
fn tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let io_inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if s.is::<rustls::Error>() || io_inner.is_some_and(|i| i.is::<rustls::Error>()) {
            return true;
        }
        source = s.source();
    }
    false
}
