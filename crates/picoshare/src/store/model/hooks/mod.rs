//! Notifications (issue 26, part 1): the events the server tells the owner
//! about, the destinations they go to, and the pure rules of delivery that
//! do not depend on a database: which destination wants which event, the
//! three formats (a signed JSON webhook, a plain-text push in the style of
//! ntfy, and a plain-text e-mail), and the retry schedule.
//!
//! Events are written to a persistent outbox in the transaction of the
//! change that causes them (`sqlite/hooks.rs`) and delivered by
//! `crate::hooks`. The formats are in `format.rs` (the signature computed
//! with the `hmac` and `sha2` crates).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::sql::{shared_sql, unsigned, Row};
use super::time::db_time_to_utc;
use super::{DownloadRecord, NewEntry};
use crate::store::StoreError;
use crate::validate::NEVER_EXPIRE;

mod format;
pub(crate) use format::*;

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
    /// A plain-text e-mail to the addresses of the destination's URL, a
    /// `mailto:` URI ([`recipients`]), through the server's SMTP server.
    Email,
}

impl DestinationKind {
    /// Its name in the API and the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Ntfy => "ntfy",
            DestinationKind::Email => "email",
        }
    }

    /// The kind called `s`.
    pub(crate) fn parse(s: &str) -> Option<DestinationKind> {
        match s {
            "webhook" => Some(DestinationKind::Webhook),
            "ntfy" => Some(DestinationKind::Ntfy),
            "email" => Some(DestinationKind::Email),
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
    /// Where events are posted (`http` or `https`), or for e-mail the
    /// recipients as `mailto:a@example.com,b@example.com`.
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

// The rows and statements both stores use (each runs them with its own
// client; `sql.rs` explains the placeholders).

/// The columns [`decode_spec`] and [`decode_destination`] read, in order
/// (the latter also the count of queued events after them).
pub(crate) const DEST_COLUMNS: &str = "d.id, d.name, d.kind, d.url, d.secret, d.events,
    d.first_download_only, d.entry_ids, d.enabled, d.created_time, d.last_success_time,
    d.last_error, d.last_error_time";

/// A destination's ID and settings from a row of [`DEST_COLUMNS`].
pub(crate) fn decode_spec(r: &impl Row) -> Result<(String, DestinationSpec), StoreError> {
    let kind = r.text(2)?;
    let events = r.text(5)?;
    Ok((
        r.text(0)?,
        DestinationSpec {
            name: r.text(1)?,
            kind: DestinationKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown destination kind {kind:?}")))?,
            url: r.text(3)?,
            secret: r.text(4)?,
            events: events.split(' ').filter_map(EventType::parse).collect(),
            first_download_only: r.int(6)? != 0,
            entry_ids: r
                .opt_text(7)?
                .map(|s| s.split(' ').map(str::to_owned).collect()),
            enabled: r.int(8)? != 0,
        },
    ))
}

/// A destination from a row of [`DEST_COLUMNS`] and its queued count.
pub(crate) fn decode_destination(r: &impl Row) -> Result<Destination, StoreError> {
    let (id, spec) = decode_spec(r)?;
    let error_time = r.opt_text(12)?;
    Ok(Destination {
        id,
        spec,
        created: db_time_to_utc(&r.text(9)?),
        last_success: r.opt_text(10)?.as_deref().map(db_time_to_utc),
        last_error: r
            .opt_text(11)?
            .zip(error_time.as_deref().map(db_time_to_utc)),
        queued: unsigned(r.int(13)?),
    })
}

/// `spec`'s list columns as stored: the events, and the entry IDs if any.
pub(crate) fn spec_params(spec: &DestinationSpec) -> (String, Option<String>) {
    let events: Vec<&str> = spec.events.iter().map(|e| e.as_str()).collect();
    (
        events.join(" "),
        spec.entry_ids.as_ref().map(|v| v.join(" ")),
    )
}

/// The facts every event about a file carries, from a row of
/// `filename, content_type, expiration_time, size` of entry `id`.
pub(crate) fn entry_facts(id: &str, r: &impl Row) -> Result<Value, StoreError> {
    Ok(json!({
        "entryId": id,
        "filename": r.text(0)?,
        "contentType": r.text(1)?,
        "size": r.int(3)?,
        "expiration": r.opt_text(2)?.filter(|t| t != NEVER_EXPIRE),
    }))
}

/// Adds to a file's facts what a "download" event tells of download `rec`:
/// the file's recorded downloads (`count`) and whether it is the first.
pub(crate) fn add_download(data: &mut Value, rec: &DownloadRecord, count: i64, first: bool) {
    data["downloadTime"] = json!(rec.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    data["clientIp"] = json!(rec.client_ip);
    data["userAgent"] = json!(rec.user_agent);
    data["downloadCount"] = json!(count);
    data["firstDownload"] = json!(first);
}

/// The events a guest's upload of entry `id` through `link` writes: "guest
/// upload" (`data`: the file's facts), and "guest link used up" when the
/// link's files (`count`, this one included) reached its `max`.
pub(crate) fn guest_upload_events(
    mut data: Value,
    id: &str,
    entry: &NewEntry,
    link: &str,
    label: Option<&str>,
    max: Option<i64>,
    count: i64,
) -> Vec<(EventType, Value)> {
    data["guestLinkId"] = json!(link);
    data["guestLinkLabel"] = json!(label);
    data["note"] = json!(entry.note);
    let mut events = vec![(EventType::GuestUpload, data)];
    if max.is_some_and(|m| count == m) {
        let used_up = json!({
            "guestLinkId": link,
            "guestLinkLabel": label,
            "maxUploads": max,
            "lastEntryId": id,
        });
        events.push((EventType::GuestLinkUsedUp, used_up));
    }
    events
}

/// The facts of an event about file `entry_id` (none for a test event).
pub(crate) fn facts_of(kind: EventType, entry_id: Option<&str>, first: bool) -> EventFacts<'_> {
    EventFacts {
        kind,
        entry_id,
        first_download: first,
        only_destination: None,
    }
}

/// A test event's data and facts: for destination `id` alone.
pub(crate) fn test_event(id: &str) -> (Value, EventFacts<'_>) {
    let facts = EventFacts {
        kind: EventType::Test,
        entry_id: None,
        first_download: false,
        only_destination: Some(id),
    };
    (json!({"message": "A test event from PicoShare."}), facts)
}

/// Counts `dropped` events deleted from a full outbox, and says so.
pub(crate) fn log_dropped(dropped: u64, max: i64) {
    let total = DROPPED.fetch_add(dropped, Ordering::Relaxed) + dropped;
    tracing::warn!(
        dropped,
        total,
        "the notification outbox is full ({max} undelivered events): dropped the oldest"
    );
}

shared_sql! {
    /// One event for one destination.
    pub(crate) const INSERT_EVENT = "INSERT INTO picoshare_hook_outbox
            (event_id, destination_id, event_type, body, created_time, attempts, next_try_ms)
         VALUES ($1, $2, $3, $4, $5, 0, $6)";
    /// The undelivered events.
    pub(crate) const COUNT_WAITING =
        "SELECT count(*) FROM picoshare_hook_outbox WHERE delivered_time IS NULL";
    /// Drops the oldest `$1` undelivered events.
    pub(crate) const DROP_OLDEST = "DELETE FROM picoshare_hook_outbox WHERE seq IN
        (SELECT seq FROM picoshare_hook_outbox WHERE delivered_time IS NULL ORDER BY seq LIMIT $1)";
    /// Guest link `$1`'s label, file limit and files so far (those of
    /// unfinished resumable uploads other than entry `$2`'s included: a
    /// resumable upload's row is marked complete after its entry row).
    pub(crate) const GUEST_LINK_FILES = "SELECT label, max_file_uploads,
            (SELECT count(*) FROM entries e WHERE e.guest_link_id = g.id)
            + (SELECT count(*) FROM picoshare_tus_uploads t
               WHERE t.guest_link_id = g.id AND t.completed = 0 AND t.entry_id <> $2)
         FROM guest_links g WHERE g.id = $1";
    /// Entry `$1`'s download limit and downloads used.
    pub(crate) const DOWNLOAD_LIMIT =
        "SELECT max_downloads, downloads_used FROM picoshare_entry_limits WHERE entry_id = $1";
    /// Entry `$1`'s recorded downloads.
    pub(crate) const DOWNLOAD_COUNT = "SELECT count(*) FROM downloads WHERE entry_id = $1";
    /// Forgets the notices and first downloads of files that are gone.
    pub(crate) const FORGET_GONE = "DELETE FROM picoshare_hook_expiry_notices
         WHERE entry_id NOT IN (SELECT id FROM entries);
         DELETE FROM picoshare_hook_downloaded
         WHERE entry_id NOT IN (SELECT id FROM entries);";
    /// Whether an enabled destination wants "expiring soon".
    pub(crate) const EXPIRING_WANTED = "SELECT EXISTS (SELECT 1 FROM picoshare_hook_destinations
        WHERE enabled = 1 AND (' ' || events || ' ') LIKE '% expiring_soon %')";
    /// Whether an enabled destination wants downloads.
    pub(crate) const DOWNLOADS_WANTED = "SELECT EXISTS (SELECT 1 FROM picoshare_hook_destinations
        WHERE enabled = 1 AND (' ' || events || ' ') LIKE '% download %')";
    /// A new destination.
    pub(crate) const INSERT_DESTINATION = "INSERT INTO picoshare_hook_destinations (id, name,
            kind, url, secret, events, first_download_only, entry_ids, enabled, created_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    /// Destination `$1`'s new settings.
    pub(crate) const UPDATE_DESTINATION = "UPDATE picoshare_hook_destinations SET name = $2,
            kind = $3, url = $4, secret = $5, events = $6, first_download_only = $7,
            entry_ids = $8, enabled = $9
         WHERE id = $1";
    /// Destination `$1`'s events.
    pub(crate) const DELETE_DESTINATION_EVENTS =
        "DELETE FROM picoshare_hook_outbox WHERE destination_id = $1";
    /// Destination `$1`.
    pub(crate) const DELETE_DESTINATION = "DELETE FROM picoshare_hook_destinations WHERE id = $1";
    /// When the next undelivered event is due.
    pub(crate) const NEXT_DUE =
        "SELECT min(next_try_ms) FROM picoshare_hook_outbox WHERE delivered_time IS NULL";
    /// Event `$1` delivered at `$2`.
    pub(crate) const MARK_DELIVERED =
        "UPDATE picoshare_hook_outbox SET delivered_time = $2 WHERE seq = $1";
    /// Destination `$1`'s last success at `$2`.
    pub(crate) const DESTINATION_SUCCEEDED =
        "UPDATE picoshare_hook_destinations SET last_success_time = $2 WHERE id = $1";
    /// Event `$1` failed: its next try at `$2`.
    pub(crate) const MARK_FAILED = "UPDATE picoshare_hook_outbox SET attempts = attempts + 1,
        next_try_ms = $2 WHERE seq = $1";
    /// The other events of destination `$1` wait as long as its failed one
    /// (`$2`): a receiver that is down gets one round of tries per retry,
    /// not one per event.
    pub(crate) const DESTINATION_WAITS = "UPDATE picoshare_hook_outbox SET next_try_ms = $2
         WHERE destination_id = $1 AND delivered_time IS NULL AND next_try_ms < $2";
    /// Destination `$1`'s last error `$2` at `$3`.
    pub(crate) const DESTINATION_FAILED = "UPDATE picoshare_hook_destinations SET last_error = $2,
        last_error_time = $3 WHERE id = $1";
    /// Keeps the newest `$1` + 1 delivered events only.
    pub(crate) const TRIM_DELIVERED = "DELETE FROM picoshare_hook_outbox
         WHERE delivered_time IS NOT NULL
         AND seq < (SELECT seq FROM picoshare_hook_outbox WHERE delivered_time IS NOT NULL
                    ORDER BY seq DESC LIMIT 1 OFFSET $1)";
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

    #[test]
    fn mail_texts() {
        let ev = envelope(
            "0123",
            EventType::GuestUpload,
            DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
                .unwrap()
                .into(),
            json!({"entryId": "abcdefghij", "filename": "tax\r\nBcc: x@y.z.pdf",
                "contentType": "application/pdf", "size": 1536, "expiration": null,
                "guestLinkId": "g1", "guestLinkLabel": "Tax", "note": null}),
        );
        let (subject, body) = mail_text(EventType::GuestUpload, &ev);
        assert_eq!(
            subject, "PicoShare: guest upload of tax  Bcc: x@y.z.pdf (1.5 KiB)",
            "one line"
        );
        assert!(
            body.starts_with("tax\r\nBcc: x@y.z.pdf (1.5 KiB) was uploaded"),
            "{body}"
        );
        for line in [
            "File:            tax  Bcc: x@y.z.pdf\n",
            "Size:            1.5 KiB (1536 bytes)\n",
            "Expires:         never\n",
            "Guest link:      \"Tax\" (g1)\n",
            "Event:           guest_upload at 2026-12-05T10:00:00Z\n",
            "Event ID:        0123\n",
        ] {
            assert!(body.contains(line), "{line:?} in {body}");
        }
        assert!(!body.contains("Note:"), "no empty lines: {body}");
        let long = envelope(
            "1",
            EventType::Download,
            Utc::now(),
            json!({"filename": "x".repeat(300), "size": 1}),
        );
        let (subject, _) = mail_text(EventType::Download, &long);
        assert_eq!(subject.chars().count(), 200);
        assert!(subject.ends_with('…'));
        assert_eq!(
            recipients("mailto:a@x.org, b@y.org,"),
            ["a@x.org", "b@y.org"]
        );
        assert_eq!(
            mailto(&["a@x.org".into(), "b@y.org".into()]),
            "mailto:a@x.org,b@y.org"
        );
    }
}
