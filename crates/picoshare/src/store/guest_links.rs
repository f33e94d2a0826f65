//! Guest links: their rows in `guest_links`, and the file lifetime they carry.
//!
//! A guest link lets someone without the passphrase upload files, within limits
//! the owner chose: until when the link works, how long uploaded files live, how
//! large a file may be and how many files the link accepts.
//!
//! The number of files a link has taken is never stored: it is counted live from
//! `entries` (`guest_link_id`), as the original does, so deleting a guest's file
//! gives the link its slot back. Enforcing the count against concurrent uploads is
//! the HTTP layer's job (it reserves slots); this module only reports the count.
//!
//! The file lifetime is stored as the original stores it, a Go `time.Duration` in
//! Go's own text form (`168h0m0s`), so [`FileLifetime`] parses and prints that
//! form exactly.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{db_time_to_utc, expiration_from_db, expiration_to_db, SqliteStore, StoreError};
use crate::ids::GuestLinkId;
use crate::validate::db_time;

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;

/// How long files uploaded through a guest link live: a Go `time.Duration`
/// (whole nanoseconds, signed 64-bit), exactly as the original keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileLifetime {
    nanos: i64,
}

/// A text that is not a Go duration (`time.ParseDuration` would reject it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct InvalidDuration(pub String);

impl FileLifetime {
    /// "Never": the original's sentinel of 100 × 365 days (`876000h0m0s`).
    pub const INFINITE: FileLifetime = FileLifetime {
        nanos: 876_000 * NANOS_PER_HOUR,
    };

    /// One day, the shortest lifetime a guest link may have.
    pub const ONE_DAY: FileLifetime = FileLifetime {
        nanos: 24 * NANOS_PER_HOUR,
    };

    /// A lifetime of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// The length in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Whether this is the "never expires" sentinel.
    pub fn is_infinite(self) -> bool {
        self == Self::INFINITE
    }

    /// When a file uploaded at `t` expires: `None` (never) for the infinite
    /// lifetime, otherwise `t` plus the lifetime (plain arithmetic, no calendar).
    pub fn expiration_from(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_infinite() {
            return None;
        }
        // The largest Go duration is about 292 years, far from chrono's limits,
        // so this only fails for absurd clocks; "never" is the safe reading then.
        t.checked_add_signed(chrono::TimeDelta::nanoseconds(self.nanos))
    }

    /// Parses Go's duration syntax, as `time.ParseDuration` does: an optional
    /// sign, then one or more decimal numbers (with an optional fraction), each
    /// followed by a unit among `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`
    /// (`1h30m`, `1.5h`, `168h0m0s`, `-90m`); `0` alone is also accepted.
    ///
    /// # Errors
    /// [`InvalidDuration`] for anything else, and for values beyond ±292 years.
    pub fn parse_go(text: &str) -> Result<Self, InvalidDuration> {
        let invalid = || InvalidDuration(text.to_owned());
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Self { nanos: 0 });
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        // Accumulated in u64 so that exactly 2^63 ns (i64::MIN once negated) fits.
        const LIMIT: u64 = 1 << 63;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
            let has_whole = after_whole.len() != rest.len();
            rest = after_whole;
            let (mut frac, mut scale, mut has_frac) = (0u64, 1f64, false);
            if let Some(after_dot) = rest.strip_prefix('.') {
                let (f, s, after_frac) = leading_fraction(after_dot);
                has_frac = after_frac.len() != after_dot.len();
                (frac, scale, rest) = (f, s, after_frac);
            }
            if !has_whole && !has_frac {
                return Err(invalid());
            }
            let unit_len = rest
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ns" => 1,
                "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO as u64,
                "ms" => NANOS_PER_MILLI as u64,
                "s" => NANOS_PER_SECOND as u64,
                "m" => NANOS_PER_MINUTE as u64,
                "h" => NANOS_PER_HOUR as u64,
                _ => return Err(invalid()),
            };
            rest = &rest[unit_len..];
            if whole > LIMIT / unit {
                return Err(invalid());
            }
            let mut value = whole * unit;
            if frac > 0 {
                // Go adds the fraction through a float, truncating; so do we.
                value += (frac as f64 * (unit as f64 / scale)) as u64;
                if value > LIMIT {
                    return Err(invalid());
                }
            }
            total = total
                .checked_add(value)
                .filter(|&t| t <= LIMIT)
                .ok_or_else(invalid)?;
        }
        let nanos = if negative {
            // total <= 2^63, so its negation fits.
            (total as i64).wrapping_neg()
        } else {
            i64::try_from(total).map_err(|_| invalid())?
        };
        Ok(Self { nanos })
    }
}

/// The run of ASCII digits at the start of `s` as an integer, and what follows.
/// `None` if the number exceeds 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for d in s[..end].bytes() {
        x = x.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        if x > 1 << 63 {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// The digits after a decimal point: their value (as many digits as fit), the
/// power of ten it is scaled by, and what follows all the digits.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (mut x, mut scale) = (0u64, 1f64);
    for d in s[..end].bytes() {
        match x
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            // Digits beyond what fits are ignored, as Go does.
            Some(v) if v <= 1 << 63 => {
                x = v;
                scale *= 10.0;
            }
            _ => break,
        }
    }
    (x, scale, &s[end..])
}

/// Writes `v / 10^prec` as a fraction (`.25`) without trailing zeros, or nothing
/// if it has none, then returns the integer part.
fn push_fraction(out: &mut String, v: u64, prec: u32) -> u64 {
    let div = 10u64.pow(prec);
    let frac = v % div;
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = prec as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    v / div
}

impl fmt::Display for FileLifetime {
    /// Go's `Duration.String()`: `72h3m0.5s`, `1h0m0s`, `1.5ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut u = self.nanos.unsigned_abs();
        let sign = if self.nanos < 0 { "-" } else { "" };
        if u < NANOS_PER_SECOND as u64 {
            // Under a second Go switches to the largest unit that keeps an integer part.
            let (prec, unit) = match u {
                0 => return f.write_str("0s"),
                u if u < NANOS_PER_MICRO as u64 => (0, "ns"),
                u if u < NANOS_PER_MILLI as u64 => (3, "\u{b5}s"),
                _ => (6, "ms"),
            };
            let mut frac = String::new();
            let whole = push_fraction(&mut frac, u, prec);
            return write!(f, "{sign}{whole}{frac}{unit}");
        }
        let mut frac = String::new();
        u = push_fraction(&mut frac, u, 9);
        let (seconds, minutes, hours) = (u % 60, (u / 60) % 60, u / 3600);
        f.write_str(sign)?;
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{seconds}{frac}s")
    }
}

/// A guest link as stored, with the number of files uploaded through it.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestLink {
    /// Its ID (the secret part of the link).
    pub id: GuestLinkId,
    /// The owner's label (never shown to guests); empty if none.
    pub label: String,
    /// Largest file a guest may upload, `None` for no limit.
    pub max_file_bytes: Option<u64>,
    /// How many files the link accepts in total, `None` for no limit.
    pub max_file_uploads: Option<u64>,
    /// When it was created.
    pub creation_time: DateTime<Utc>,
    /// When the link stops working, `None` for never.
    pub url_expiration: Option<DateTime<Utc>>,
    /// How long uploaded files live at most.
    pub file_lifetime: FileLifetime,
    /// Whether the owner has switched it off.
    pub is_disabled: bool,
    /// Files currently stored that came through this link, plus its
    /// unfinished resumable uploads.
    pub files_uploaded: u64,
}

impl GuestLink {
    /// Whether the link's own expiration has passed at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.url_expiration.is_some_and(|t| now > t)
    }

    /// Whether the upload count still allows another file (ignoring uploads
    /// that are in progress; the HTTP layer accounts for those).
    pub fn can_accept_more_files(&self) -> bool {
        match self.max_file_uploads {
            None => true,
            Some(max) => self.files_uploaded < max,
        }
    }

    /// Whether a guest may upload through it at `now`: not expired, not
    /// disabled, and not used up.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.is_expired(now) && !self.is_disabled && self.can_accept_more_files()
    }
}

/// A guest link about to be created (already validated).
#[derive(Debug, Clone)]
pub struct NewGuestLink {
    /// Label, possibly empty.
    pub label: String,
    /// Largest file, `None` for no limit.
    pub max_file_bytes: Option<u64>,
    /// Number of files, `None` for no limit.
    pub max_file_uploads: Option<u64>,
    /// Creation time.
    pub creation_time: DateTime<Utc>,
    /// When the link stops working, `None` for never.
    pub url_expiration: Option<DateTime<Utc>>,
    /// Lifetime of uploaded files.
    pub file_lifetime: FileLifetime,
}

/// Columns of a [`GuestLink`], in the order [`guest_link_from_row`] reads them.
/// `files_uploaded` is counted through `idx_entries_guest_link_id` (and
/// counts unfinished resumable uploads, which hold their slots).
const SELECT_GUEST_LINK: &str = "SELECT g.id, g.label, g.max_file_bytes, g.max_file_uploads,
        g.creation_time, g.url_expiration_time, g.file_expiration_time, g.is_disabled,
        (SELECT count(*) FROM entries e WHERE e.guest_link_id = g.id)
            + (SELECT count(*) FROM picoshare_tus_uploads t
               WHERE t.guest_link_id = g.id AND t.completed = 0)
     FROM guest_links g";

/// Reads one row of [`SELECT_GUEST_LINK`]. The outer error is SQLite's; the
/// inner one reports a row this server cannot make sense of, rather than
/// guessing at it.
fn guest_link_from_row(row: &Row<'_>) -> rusqlite::Result<Result<GuestLink, StoreError>> {
    let id: String = row.get(0)?;
    let label: Option<String> = row.get(1)?;
    let max_file_bytes: Option<i64> = row.get(2)?;
    let max_file_uploads: Option<i64> = row.get(3)?;
    let creation_time: String = row.get(4)?;
    let url_expiration: Option<String> = row.get(5)?;
    let lifetime: Option<String> = row.get(6)?;
    let is_disabled: i64 = row.get(7)?;
    let files_uploaded: i64 = row.get(8)?;

    let id = match GuestLinkId::parse(&id) {
        Ok(id) => id,
        Err(e) => return Ok(Err(StoreError::Corrupt(format!("guest link {id:?}: {e}")))),
    };
    // The original reads a missing lifetime as "never expires".
    let file_lifetime = match lifetime.as_deref().map(FileLifetime::parse_go) {
        None => FileLifetime::INFINITE,
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            return Ok(Err(StoreError::Corrupt(format!(
                "guest link {id}: file lifetime: {e}"
            ))))
        }
    };
    // The schema only allows positive limits; NULL means no limit.
    let limit = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0);
    Ok(Ok(GuestLink {
        id,
        label: label.unwrap_or_default(),
        max_file_bytes: limit(max_file_bytes),
        max_file_uploads: limit(max_file_uploads),
        creation_time: db_time_to_utc(&creation_time),
        url_expiration: expiration_from_db(url_expiration),
        file_lifetime,
        is_disabled: is_disabled != 0,
        files_uploaded: u64::try_from(files_uploaded).unwrap_or(0),
    }))
}

impl SqliteStore {
    /// Creates a guest link with a new random ID and returns the ID.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_guest_link(&self, link: NewGuestLink) -> Result<GuestLinkId, StoreError> {
        let id = GuestLinkId::generate();
        let stored_id = id.clone();
        // SQLite integers are signed; a byte limit beyond i64::MAX is no limit
        // in practice, so it is stored as the largest value the column holds.
        let max_bytes = link
            .max_file_bytes
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let max_uploads = link
            .max_file_uploads
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO guest_links (id, label, max_file_bytes, max_file_uploads,
                     creation_time, url_expiration_time, file_expiration_time, is_disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![
                    stored_id.as_str(),
                    link.label,
                    max_bytes,
                    max_uploads,
                    db_time(link.creation_time),
                    expiration_to_db(link.url_expiration),
                    link.file_lifetime.to_string(),
                ],
            )
            .map_err(StoreError::classify)?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Looks up a guest link, with its live upload count.
    ///
    /// # Errors
    /// Storage failures, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub async fn guest_link(&self, id: &GuestLinkId) -> Result<Option<GuestLink>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            conn.query_row(
                &format!("{SELECT_GUEST_LINK} WHERE g.id = ?1"),
                [id.as_str()],
                guest_link_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    /// Every guest link, newest first (as the original's list page shows them).
    ///
    /// # Errors
    /// Storage failures, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "{SELECT_GUEST_LINK} ORDER BY g.creation_time DESC"
            ))?;
            let rows = stmt.query_map([], guest_link_from_row)?;
            let mut links = Vec::new();
            for row in rows {
                links.push(row??);
            }
            Ok(links)
        })
        .await
    }

    /// The number of stored files that came through guest link `id`.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn guest_link_files_uploaded(&self, id: &GuestLinkId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.read(move |conn| count_uploads(conn, &id)).await
    }

    /// Deletes a guest link (nothing if absent). Files uploaded through it stay;
    /// they only lose the reference to it, in the same transaction.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute(
                "UPDATE entries SET guest_link_id = NULL WHERE guest_link_id = ?1",
                [id.as_str()],
            )
            .map_err(StoreError::classify)?;
            conn.execute("DELETE FROM guest_links WHERE id = ?1", [id.as_str()])
                .map_err(StoreError::classify)?;
            Ok(())
        })
        .await
    }

    /// Disables or re-enables a guest link. Returns whether it exists; setting
    /// the state it already has is not an error.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn set_guest_link_disabled(
        &self,
        id: &GuestLinkId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            // `changes()` counts matched rows even when the value does not change,
            // so this also tells whether the link exists.
            let n = conn
                .execute(
                    "UPDATE guest_links SET is_disabled = ?2 WHERE id = ?1",
                    params![id.as_str(), i64::from(disabled)],
                )
                .map_err(StoreError::classify)?;
            Ok(n > 0)
        })
        .await
    }
}

/// Files stored through a link, plus its unfinished resumable uploads: each
/// holds its slot from creation until it completes (and becomes a file) or
/// expires.
fn count_uploads(conn: &Connection, id: &GuestLinkId) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM entries WHERE guest_link_id = ?1)
            + (SELECT count(*) FROM picoshare_tus_uploads WHERE guest_link_id = ?1 AND completed = 0)",
        [id.as_str()],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EntryId;
    use crate::store::{NewEntry, StoreConfig};
    use bytes::Bytes;

    fn lifetime(text: &str) -> Result<String, InvalidDuration> {
        FileLifetime::parse_go(text).map(|l| l.to_string())
    }

    #[test]
    fn go_durations_parse_and_print_in_canonical_form() {
        for (input, canonical) in [
            ("24h", "24h0m0s"),
            ("24h0m0s", "24h0m0s"),
            ("168h", "168h0m0s"),
            ("876000h0m0s", "876000h0m0s"),
            ("876000h", "876000h0m0s"),
            ("1h30m", "1h30m0s"),
            ("90m", "1h30m0s"),
            ("1.5h", "1h30m0s"),
            ("+2h", "2h0m0s"),
            ("-90m", "-1h30m0s"),
            ("61s", "1m1s"),
            ("1m0.25s", "1m0.25s"),
            ("0", "0s"),
            ("0s", "0s"),
            ("1500ms", "1.5s"),
            ("1.5ms", "1.5ms"),
            ("2us", "2\u{b5}s"),
            ("2\u{b5}s", "2\u{b5}s"),
            ("2\u{3bc}s", "2\u{b5}s"),
            ("7ns", "7ns"),
            (".5h", "30m0s"),
            ("5.h", "5h0m0s"),
            ("1h1h", "2h0m0s"),
            ("2562047h47m16.854775807s", "2562047h47m16.854775807s"),
            ("-2562047h47m16.854775808s", "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(lifetime(input).as_deref(), Ok(canonical), "{input}");
        }
    }

    #[test]
    fn malformed_go_durations_are_rejected() {
        for bad in [
            "",
            "-",
            "+",
            "24",
            "h",
            "1d",
            "1H",
            "24 h",
            " 24h",
            "1h ",
            ".h",
            "1.2.3h",
            "1e3h",
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "99999999999999999999h",
            "forever",
        ] {
            assert!(FileLifetime::parse_go(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn infinite_lifetime_never_expires() {
        let now = crate::validate::rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert!(FileLifetime::parse_go("876000h").unwrap().is_infinite());
        assert_eq!(FileLifetime::INFINITE.expiration_from(now), None);
        assert_eq!(
            FileLifetime::parse_go("168h").unwrap().expiration_from(now),
            Some(crate::validate::rfc3339("2030-01-08T00:00:00Z").unwrap())
        );
        // Longer than "never" is a real, distant date: only the sentinel means never.
        assert!(FileLifetime::parse_go("876001h")
            .unwrap()
            .expiration_from(now)
            .is_some());
    }

    /// The store's guest-link calls against a real database: create, read back,
    /// count uploads, list, disable, and delete (which keeps the files).
    #[tokio::test]
    async fn guest_links_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(StoreConfig::new(dir.path().join("store.db"))).unwrap();
        let now = crate::validate::rfc3339("2030-01-01T00:00:00Z").unwrap();
        let id = store
            .create_guest_link(NewGuestLink {
                label: "For Maurice".into(),
                max_file_bytes: Some(1 << 20),
                max_file_uploads: Some(2),
                creation_time: now,
                url_expiration: None,
                file_lifetime: FileLifetime::parse_go("168h").unwrap(),
            })
            .await
            .unwrap();
        let link = store.guest_link(&id).await.unwrap().unwrap();
        assert_eq!(link.label, "For Maurice");
        assert_eq!(link.max_file_bytes, Some(1 << 20));
        assert_eq!(link.max_file_uploads, Some(2));
        assert_eq!(link.creation_time, now);
        assert_eq!(link.url_expiration, None);
        assert_eq!(link.file_lifetime.to_string(), "168h0m0s");
        assert_eq!(link.files_uploaded, 0);
        assert!(link.is_active(now));

        let entry = EntryId::generate();
        let mut sink = store.begin_upload(entry.clone());
        sink.write(Bytes::from_static(b"hello")).await.unwrap();
        sink.finish(NewEntry {
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
            upload_time: now,
            expiration: None,
            note: None,
            guest_link_id: Some(id.as_str().to_owned()),
            limits: None,
        })
        .await
        .unwrap();
        assert_eq!(store.guest_link_files_uploaded(&id).await.unwrap(), 1);
        let listed = store.guest_links().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].files_uploaded, 1);

        assert!(store.set_guest_link_disabled(&id, true).await.unwrap());
        assert!(store.set_guest_link_disabled(&id, true).await.unwrap());
        let link = store.guest_link(&id).await.unwrap().unwrap();
        assert!(link.is_disabled && !link.is_active(now));
        let unknown = GuestLinkId::generate();
        assert!(!store
            .set_guest_link_disabled(&unknown, false)
            .await
            .unwrap());

        store.delete_guest_link(&id).await.unwrap();
        store.delete_guest_link(&id).await.unwrap();
        assert_eq!(store.guest_link(&id).await.unwrap(), None);
        let kept = store.entry(&entry).await.unwrap().expect("the file stays");
        assert_eq!(kept.guest_link_id, None);
        store.shutdown().await;
    }
}
