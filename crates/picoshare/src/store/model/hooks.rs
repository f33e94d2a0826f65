//! Notifications (issue 26, part 1): the events the server tells the owner
//! about, the destinations they go to, and the pure rules of delivery that
//! do not depend on a database: which destination wants which event, the
//! two wire formats (a signed JSON webhook and a plain-text push in the
//! style of ntfy), and the retry schedule.
//!
//! Events are written to a persistent outbox in the transaction of the
//! change that causes them (`sqlite/hooks.rs`) and delivered by
//! `crate::hooks`. The signature is computed with the `hmac` and `sha2`
//! crates; the jitter with `rand`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// A file uploaded through a guest link is stored.
    GuestUpload,
    /// A file's whole body was sent to a client (a full `GET`, not a range).
    Download,
    /// A file's last allowed download was counted.
    DownloadLimitReached,
    /// A guest link took its last allowed file.
    GuestLinkUsedUp,
    /// A file expires within [`EXPIRY_NOTICE`].
    ExpiringSoon,
    /// Sent by the owner from the settings page or the API.
    Test,
}

/// Every event type, in the order the settings page lists them.
pub(crate) const EVENT_TYPES: [EventType; 6] = [
    EventType::GuestUpload,
    EventType::Download,
    EventType::DownloadLimitReached,
    EventType::GuestLinkUsedUp,
    EventType::ExpiringSoon,
    EventType::Test,
];

/// How long before its expiration a file's "expiring soon" event is sent
/// (by the garbage collection that runs at start-up and every interval).
pub(crate) const EXPIRY_NOTICE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Undelivered events kept at most; past it the oldest are dropped (and
/// counted, and logged).
pub(crate) const OUTBOX_MAX: i64 = 10_000;

/// Delivered events kept (the newest), for the record; older ones are deleted.
pub(crate) const DELIVERED_KEPT: i64 = 1_000;

impl EventType {
    /// Its name on the wire and in the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::GuestUpload => "guest_upload",
            EventType::Download => "download",
            EventType::DownloadLimitReached => "download_limit_reached",
            EventType::GuestLinkUsedUp => "guest_link_used_up",
            EventType::ExpiringSoon => "expiring_soon",
            EventType::Test => "test",
        }
    }

    /// The event type called `s`.
    pub(crate) fn parse(s: &str) -> Option<EventType> {
        EVENT_TYPES.into_iter().find(|t| t.as_str() == s)
    }

    /// A short English title (the settings page; a push's `Title`).
    pub(crate) fn title(self) -> &'static str {
        match self {
            EventType::GuestUpload => "Guest upload",
            EventType::Download => "File downloaded",
            EventType::DownloadLimitReached => "Download limit used up",
            EventType::GuestLinkUsedUp => "Guest link used up",
            EventType::ExpiringSoon => "File expiring soon",
            EventType::Test => "Test event",
        }
    }

    /// The push's `Tags` (names of emoji that ntfy shows).
    fn tags(self) -> &'static str {
        match self {
            EventType::GuestUpload => "inbox_tray",
            EventType::Download => "outbox_tray",
            EventType::DownloadLimitReached | EventType::GuestLinkUsedUp => "no_entry",
            EventType::ExpiringSoon => "hourglass",
            EventType::Test => "bell",
        }
    }
}

/// How a destination wants its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DestinationKind {
    /// A JSON `POST`, signed with the destination's secret.
    Webhook,
    /// A plain-text `POST` to a topic URL with `Title` and `Tags` headers
    /// (ntfy and services that read the same headers); the secret, if any,
    /// is sent as a bearer token.
    Ntfy,
}

impl DestinationKind {
    /// Its name in the API and the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Ntfy => "ntfy",
        }
    }

    /// The kind called `s`.
    pub(crate) fn parse(s: &str) -> Option<DestinationKind> {
        match s {
            "webhook" => Some(DestinationKind::Webhook),
            "ntfy" => Some(DestinationKind::Ntfy),
            _ => None,
        }
    }
}

/// A destination's settings, as the owner gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestinationSpec {
    /// A name for the owner.
    pub(crate) name: String,
    /// The format.
    pub(crate) kind: DestinationKind,
    /// Where events are posted (`http` or `https`).
    pub(crate) url: String,
    /// The webhook's signing key, or the push service's access token (may
    /// be empty for a push).
    pub(crate) secret: String,
    /// The event types it wants.
    pub(crate) events: Vec<EventType>,
    /// Downloads: only the first completed download of each file.
    pub(crate) first_download_only: bool,
    /// Downloads, limits used up and expiry: only these files (`None`: all).
    pub(crate) entry_ids: Option<Vec<String>>,
    /// Whether events are queued for it at all.
    pub(crate) enabled: bool,
}

/// A destination with its delivery state.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// Its ID (16 hex digits).
    pub(crate) id: String,
    /// Its settings.
    pub(crate) spec: DestinationSpec,
    /// When it was created.
    pub(crate) created: DateTime<Utc>,
    /// The last delivery that succeeded.
    pub(crate) last_success: Option<DateTime<Utc>>,
    /// The last failure, in words, and when.
    pub(crate) last_error: Option<(String, DateTime<Utc>)>,
    /// Events waiting for it.
    pub(crate) queued: u64,
}

/// What a destination's filters look at in an event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventFacts<'a> {
    /// The event's type.
    pub(crate) kind: EventType,
    /// The file it is about, if any.
    pub(crate) entry_id: Option<&'a str>,
    /// For a download: whether it is the file's first recorded download.
    pub(crate) first_download: bool,
    /// For a test event: the one destination it is for.
    pub(crate) only_destination: Option<&'a str>,
}

impl DestinationSpec {
    /// Whether this destination (`id`) wants an event with `facts`.
    pub(crate) fn wants(&self, id: &str, facts: &EventFacts<'_>) -> bool {
        if let Some(only) = facts.only_destination {
            return only == id;
        }
        if !self.enabled || !self.events.contains(&facts.kind) {
            return false;
        }
        if facts.kind == EventType::Download && self.first_download_only && !facts.first_download {
            return false;
        }
        match (&self.entry_ids, facts.entry_id, facts.kind) {
            // Guest uploads are new files: no list can name them yet.
            (_, _, EventType::GuestUpload | EventType::GuestLinkUsedUp) => true,
            (Some(ids), Some(entry), _) => ids.iter().any(|i| i == entry),
            _ => true,
        }
    }
}

/// The JSON an event is stored and sent as: `{"id", "type", "time", "data"}`.
pub(crate) fn envelope(id: &str, kind: EventType, time: DateTime<Utc>, data: Value) -> Value {
    json!({
        "id": id,
        "type": kind.as_str(),
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
    })
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`: the value of
/// `X-PicoShare-Signature`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", crate::ids::hex(&mac.finalize().into_bytes()))
}

/// The plain-text message of a push for the stored event `event` (the
/// envelope above), and its title and tags.
pub(crate) fn push_text(kind: EventType, event: &Value) -> (String, &'static str, &'static str) {
    let d = &event["data"];
    let s = |k: &str| d[k].as_str().unwrap_or("").to_owned();
    let size = d["size"].as_u64().map(human_size).unwrap_or_default();
    let text = match kind {
        EventType::GuestUpload => {
            let label = s("guestLinkLabel");
            let via = if label.is_empty() {
                "a guest link".to_owned()
            } else {
                format!("the guest link \"{label}\"")
            };
            format!("{} ({size}) was uploaded through {via}.", s("filename"))
        }
        EventType::Download => format!(
            "{} ({size}) was downloaded by {} ({}).",
            s("filename"),
            s("clientIp"),
            s("userAgent")
        ),
        EventType::DownloadLimitReached => format!(
            "{} was downloaded {} times: its download limit is used up.",
            s("filename"),
            d["maxDownloads"]
        ),
        EventType::GuestLinkUsedUp => {
            format!(
                "The guest link \"{}\" took its last file ({} files).",
                s("guestLinkLabel"),
                d["maxUploads"]
            )
        }
        EventType::ExpiringSoon => {
            format!("{} ({size}) expires at {}.", s("filename"), s("expiration"))
        }
        EventType::Test => "A test event from PicoShare: this destination works.".to_owned(),
    };
    (text, kind.title(), kind.tags())
}

/// A size in words (`1.5 MiB`).
fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The retry schedule: the wait after the `attempts`-th failure (1 or
/// more) is `initial` doubled each time, at most `max`, times a random
/// factor in [0.5, 1] (so that events that failed together spread out).
pub(crate) fn backoff(attempts: u32, initial: Duration, max: Duration, unit: f64) -> Duration {
    let doubling = 2f64.powi(attempts.saturating_sub(1).min(40) as i32);
    let base = (initial.as_secs_f64() * doubling).min(max.as_secs_f64());
    Duration::from_secs_f64(base * (0.5 + 0.5 * unit.clamp(0.0, 1.0)))
}

/// Events dropped because the outbox was full, since the process started.
pub(crate) static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Events dropped because the outbox was full, since the process started.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// What the store and the delivery task share in memory.
#[derive(Debug, Default)]
pub(crate) struct HookState {
    /// Woken after a commit that wrote events, and when destinations change.
    pub(crate) wake: tokio::sync::Notify,
    /// Whether some enabled destination wants downloads (so a download
    /// costs nothing more when none does).
    pub(crate) downloads_wanted: AtomicBool,
}

/// One event for one destination, due for delivery.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    /// The outbox row.
    pub(crate) seq: i64,
    /// The event's ID.
    pub(crate) event_id: String,
    /// Its type.
    pub(crate) kind: EventType,
    /// The stored JSON (what a webhook gets).
    pub(crate) body: String,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    /// The destination.
    pub(crate) destination_id: String,
    /// Its format.
    pub(crate) dest_kind: DestinationKind,
    /// Its URL.
    pub(crate) url: String,
    /// Its secret.
    pub(crate) secret: String,
}

/// How one delivery attempt went.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// The outbox row.
    pub(crate) seq: i64,
    /// Its destination.
    pub(crate) destination_id: String,
    /// `Ok` when the receiver answered 2xx; else what went wrong and when to
    /// try again (milliseconds since the epoch).
    pub(crate) outcome: Result<(), (String, i64)>,
}

/// The outbox's bound: [`OUTBOX_MAX`], or `PS_HOOKS_OUTBOX_MAX` (a hidden
/// setting, for the test of the bound).
pub(crate) fn outbox_max() -> i64 {
    static MAX: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("PS_HOOKS_OUTBOX_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(OUTBOX_MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DestinationSpec {
        DestinationSpec {
            name: "n".into(),
            kind: DestinationKind::Webhook,
            url: "http://x/".into(),
            secret: "s".into(),
            events: EVENT_TYPES.to_vec(),
            first_download_only: false,
            entry_ids: None,
            enabled: true,
        }
    }

    fn facts(kind: EventType, entry: Option<&str>, first: bool) -> EventFacts<'_> {
        EventFacts {
            kind,
            entry_id: entry,
            first_download: first,
            only_destination: None,
        }
    }

    #[test]
    fn filters() {
        let mut s = spec();
        assert!(s.wants("d", &facts(EventType::Download, Some("a"), false)));
        s.first_download_only = true;
        assert!(!s.wants("d", &facts(EventType::Download, Some("a"), false)));
        assert!(s.wants("d", &facts(EventType::Download, Some("a"), true)));
        s.entry_ids = Some(vec!["b".into()]);
        assert!(!s.wants("d", &facts(EventType::Download, Some("a"), true)));
        assert!(s.wants("d", &facts(EventType::Download, Some("b"), true)));
        assert!(s.wants("d", &facts(EventType::GuestUpload, Some("a"), false)));
        s.events = vec![EventType::Download];
        assert!(!s.wants("d", &facts(EventType::GuestUpload, Some("a"), false)));
        s.enabled = false;
        assert!(!s.wants("d", &facts(EventType::Download, Some("b"), true)));
        let test = EventFacts {
            only_destination: Some("d"),
            ..facts(EventType::Test, None, false)
        };
        assert!(s.wants("d", &test), "a test reaches a disabled destination");
        assert!(!s.wants("e", &test));
    }

    #[test]
    fn signature_is_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_secs(10);
        let m = Duration::from_secs(3600);
        assert_eq!(backoff(1, i, m, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(2, i, m, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(3, i, m, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(30, i, m, 1.0), m);
        assert_eq!(backoff(u32::MAX, i, m, 1.0), m);
    }

    #[test]
    fn push_texts() {
        let ev = envelope(
            "e",
            EventType::GuestUpload,
            Utc::now(),
            json!({"filename": "a.txt", "size": 1536, "guestLinkLabel": "Tax"}),
        );
        let (text, title, _) = push_text(EventType::GuestUpload, &ev);
        assert_eq!(
            text,
            "a.txt (1.5 KiB) was uploaded through the guest link \"Tax\"."
        );
        assert_eq!(title, "Guest upload");
    }
}
