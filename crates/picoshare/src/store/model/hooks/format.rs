//! What a notification says, in each of its three formats: the signed JSON
//! envelope of a webhook (and its `X-PicoShare-Signature`), the plain-text
//! message of a push in the style of ntfy, and the plain-text e-mail. Pure
//! functions of a stored event; the rules of which destination gets what are
//! in the parent module.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::EventType;

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

/// The recipients of an e-mail destination, whose URL is
/// `mailto:` and the addresses separated by commas.
pub(crate) fn recipients(url: &str) -> Vec<&str> {
    url.strip_prefix("mailto:")
        .unwrap_or(url)
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

/// The URL an e-mail destination stores for `addresses` (see [`recipients`]).
pub(crate) fn mailto(addresses: &[String]) -> String {
    format!("mailto:{}", addresses.join(","))
}

/// The subject and plain-text body of the e-mail for the stored event
/// `event` (the envelope above): the push's sentence, then the event's
/// facts one per line.
pub(crate) fn mail_text(kind: EventType, event: &Value) -> (String, String) {
    let d = &event["data"];
    let s = |k: &str| d[k].as_str().unwrap_or("").to_owned();
    let size = d["size"].as_u64().map(human_size).unwrap_or_default();
    let label = s("guestLinkLabel");
    let link = if label.is_empty() {
        s("guestLinkId")
    } else {
        format!("\"{label}\"")
    };
    let what = match kind {
        EventType::GuestUpload => format!("guest upload of {} ({size})", s("filename")),
        EventType::Download => format!("{} ({size}) was downloaded", s("filename")),
        EventType::DownloadLimitReached => {
            format!("download limit of {} used up", s("filename"))
        }
        EventType::GuestLinkUsedUp => format!("guest link {link} used up"),
        EventType::ExpiringSoon => format!("{} expires soon", s("filename")),
        EventType::Test => "test e-mail".to_owned(),
    };
    let subject = one_line(&format!("PicoShare: {what}"), 200);

    let (sentence, _, _) = push_text(kind, event);
    let mut body = format!("{sentence}\n\n");
    let mut line = |name: &str, value: String| {
        if !value.is_empty() {
            body.push_str(&format!("{name:<17}{}\n", one_line(&value, 1000)));
        }
    };
    line("File:", s("filename"));
    if let Some(n) = d["size"].as_u64() {
        line("Size:", format!("{size} ({n} bytes)"));
    }
    line("Type:", s("contentType"));
    line("File ID:", s("entryId"));
    if d.get("expiration").is_some() {
        let when = d["expiration"].as_str().unwrap_or("never");
        line("Expires:", when.to_owned());
    }
    line("Note:", s("note"));
    if d.get("guestLinkId").is_some() {
        line("Guest link:", format!("{link} ({})", s("guestLinkId")));
    }
    if let Some(n) = d["maxUploads"].as_u64() {
        line("Upload limit:", format!("{n} files"));
    }
    line("Last file ID:", s("lastEntryId"));
    if let Some(n) = d["maxDownloads"].as_u64() {
        line("Download limit:", format!("{n} downloads"));
    }
    line("Downloaded at:", s("downloadTime"));
    line("Downloaded by:", s("clientIp"));
    line("Browser:", s("userAgent"));
    if let Some(n) = d["downloadCount"].as_u64() {
        line("Downloads:", n.to_string());
    }
    line("Message:", s("message"));
    line(
        "Event:",
        format!(
            "{} at {}",
            kind.as_str(),
            event["time"].as_str().unwrap_or("")
        ),
    );
    line("Event ID:", event["id"].as_str().unwrap_or("").to_owned());
    body.push_str(
        "\n-- \nSent by your PicoShare server. Change or delete this destination on its \
         Notifications page (/settings/notifications).\n",
    );
    (subject, body)
}

/// `text` on one line (control characters as spaces), at most `max`
/// characters (an ellipsis marks a cut).
fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
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
