//! Guest links: what they are, how a stored row reads, and the statements
//! both backends run on them.
//!
//! A guest link lets someone without the passphrase upload files, within limits
//! the owner chose: until when the link works, how long uploaded files live, how
//! large a file may be and how many files the link accepts.
//!
//! The number of files a link has taken is never stored: it is counted live
//! ([`link_uploads!`]): its stored files (`entries.guest_link_id`), as the
//! original counts them, so deleting a guest's file gives the link its slot
//! back, plus its unfinished resumable uploads, each of which holds its slot
//! from creation until it completes (and becomes a file) or expires. Uploads
//! in progress hold slots too; each backend counts those its own way (see
//! `reserve_guest_slot` in `sqlite/guest_links.rs` and `remote/guest_links.rs`).
//!
//! The file lifetime is stored as the original stores it, a Go `time.Duration` in
//! Go's own text form (`168h0m0s`), so [`GuestFileLifetime`] parses and prints that
//! form exactly.

use std::fmt;

use chrono::{DateTime, Utc};

use super::sql::{shared_sql, unsigned, Row};
use super::time::{db_time_to_utc, expiration_from_db};
use crate::ids::GuestLinkId;
use crate::store::StoreError;

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;

/// How long files uploaded through a guest link live: a Go `time.Duration`
/// (whole nanoseconds, signed 64-bit), exactly as the original keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GuestFileLifetime {
    nanos: i64,
}

/// A text that is not a Go duration (`time.ParseDuration` would reject it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub(crate) struct InvalidDuration(pub(crate) String);

impl GuestFileLifetime {
    /// "Never": the original's sentinel of 100 × 365 days (`876000h0m0s`).
    pub(crate) const INFINITE: GuestFileLifetime = GuestFileLifetime {
        nanos: 876_000 * NANOS_PER_HOUR,
    };

    /// One day, the shortest lifetime a guest link may have.
    pub(crate) const ONE_DAY: GuestFileLifetime = GuestFileLifetime {
        nanos: 24 * NANOS_PER_HOUR,
    };

    /// A lifetime of `nanos` nanoseconds.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// The length in nanoseconds.
    pub(crate) const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Whether this is the "never expires" sentinel.
    pub(crate) fn is_infinite(self) -> bool {
        self == Self::INFINITE
    }

    /// When a file uploaded at `t` expires: `None` (never) for the infinite
    /// lifetime, otherwise `t` plus the lifetime (plain arithmetic, no calendar).
    pub(crate) fn expiration_from(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
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
    pub(crate) fn parse_go(text: &str) -> Result<Self, InvalidDuration> {
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

impl fmt::Display for GuestFileLifetime {
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
pub(crate) struct GuestLink {
    /// Its ID (the secret part of the link).
    pub(crate) id: GuestLinkId,
    /// The owner's label (never shown to guests); empty if none.
    pub(crate) label: String,
    /// Largest file a guest may upload, `None` for no limit.
    pub(crate) max_file_bytes: Option<u64>,
    /// How many files the link accepts in total, `None` for no limit.
    pub(crate) max_file_uploads: Option<u64>,
    /// When it was created.
    pub(crate) creation_time: DateTime<Utc>,
    /// When the link stops working, `None` for never.
    pub(crate) url_expiration: Option<DateTime<Utc>>,
    /// How long uploaded files live at most.
    pub(crate) file_lifetime: GuestFileLifetime,
    /// Whether the owner has switched it off.
    pub(crate) is_disabled: bool,
    /// Files currently stored that came through this link, plus its
    /// unfinished resumable uploads.
    pub(crate) files_uploaded: u64,
}

impl GuestLink {
    /// Whether the link's own expiration has passed at `now`.
    pub(crate) fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.url_expiration.is_some_and(|t| now > t)
    }

    /// Whether the upload count still allows another file (ignoring uploads
    /// that are in progress; the store counts those when it reserves a slot).
    fn can_accept_more_files(&self) -> bool {
        match self.max_file_uploads {
            None => true,
            Some(max) => self.files_uploaded < max,
        }
    }

    /// Whether a guest may upload through it at `now`: not expired, not
    /// disabled, and not used up.
    pub(crate) fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.is_expired(now) && !self.is_disabled && self.can_accept_more_files()
    }
}

/// A guest link about to be created (already validated).
#[derive(Debug, Clone)]
pub(crate) struct NewGuestLink {
    /// Label, possibly empty.
    pub(crate) label: String,
    /// Largest file, `None` for no limit.
    pub(crate) max_file_bytes: Option<u64>,
    /// Number of files, `None` for no limit.
    pub(crate) max_file_uploads: Option<u64>,
    /// Creation time.
    pub(crate) creation_time: DateTime<Utc>,
    /// When the link stops working, `None` for never.
    pub(crate) url_expiration: Option<DateTime<Utc>>,
    /// Lifetime of uploaded files.
    pub(crate) file_lifetime: GuestFileLifetime,
}

impl GuestLink {
    /// Reads a row of [`GUEST_LINK`] or [`GUEST_LINKS`]. A row this server
    /// cannot make sense of is reported rather than guessed at.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a malformed ID or lifetime; a column of
    /// the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<GuestLink, StoreError> {
        let id = r.text(0)?;
        let id = GuestLinkId::parse(&id)
            .map_err(|e| StoreError::Corrupt(format!("guest link {id:?}: {e}")))?;
        // The original reads a missing lifetime as "never expires".
        let file_lifetime = match r.opt_text(6)?.as_deref().map(GuestFileLifetime::parse_go) {
            None => GuestFileLifetime::INFINITE,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                return Err(StoreError::Corrupt(format!(
                    "guest link {id}: file lifetime: {e}"
                )))
            }
        };
        // The schema only allows positive limits; NULL means no limit.
        let limit = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0);
        Ok(GuestLink {
            id,
            label: r.opt_text(1)?.unwrap_or_default(),
            max_file_bytes: limit(r.opt_int(2)?),
            max_file_uploads: limit(r.opt_int(3)?),
            creation_time: db_time_to_utc(&r.text(4)?),
            url_expiration: expiration_from_db(r.opt_text(5)?),
            file_lifetime,
            is_disabled: r.int(7)? != 0,
            files_uploaded: unsigned(r.int(8)?),
        })
    }
}

/// The number of files that count against guest link `$link` (an SQL
/// expression: a placeholder or a column): its stored files plus its
/// unfinished resumable uploads. Counted through `idx_entries_guest_link_id`
/// and `idx_tus_uploads_guest_link`.
macro_rules! link_uploads {
    ($link:literal) => {
        concat!(
            "(SELECT count(*) FROM entries e WHERE e.guest_link_id = ",
            $link,
            ") + (SELECT count(*) FROM picoshare_tus_uploads t WHERE t.guest_link_id = ",
            $link,
            " AND t.completed = 0)"
        )
    };
}
pub(crate) use link_uploads;

/// The columns [`GuestLink::decode`] reads, in its order.
macro_rules! select_guest_link {
    () => {
        concat!(
            "SELECT g.id, g.label, g.max_file_bytes, g.max_file_uploads, g.creation_time,
                g.url_expiration_time, g.file_expiration_time, g.is_disabled, ",
            link_uploads!("g.id"),
            " FROM guest_links g"
        )
    };
}

shared_sql! {
    /// Guest link `$1`, with its upload count.
    pub(crate) const GUEST_LINK = concat!(select_guest_link!(), " WHERE g.id = $1");
    /// Every guest link, newest first (as the original's list page shows them).
    pub(crate) const GUEST_LINKS = concat!(select_guest_link!(), " ORDER BY g.creation_time DESC");
    /// Guest link `$1`'s upload count.
    pub(crate) const COUNT_LINK_UPLOADS = concat!("SELECT ", link_uploads!("$1"));
    /// Creates a guest link (enabled).
    pub(crate) const INSERT_GUEST_LINK =
        "INSERT INTO guest_links (id, label, max_file_bytes, max_file_uploads,
             creation_time, url_expiration_time, file_expiration_time, is_disabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0)";
    /// Files uploaded through link `$1` lose the reference to it (it is
    /// being deleted; they stay).
    pub(crate) const FORGET_GUEST_LINK =
        "UPDATE entries SET guest_link_id = NULL WHERE guest_link_id = $1";
    /// Deletes guest link `$1`.
    pub(crate) const DELETE_GUEST_LINK = "DELETE FROM guest_links WHERE id = $1";
    /// Disables (`$2` = 1) or enables (0) guest link `$1`. The count of
    /// changed rows counts matched rows in both databases, so it also says
    /// whether the link exists.
    pub(crate) const SET_GUEST_LINK_DISABLED =
        "UPDATE guest_links SET is_disabled = $2 WHERE id = $1";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(text: &str) -> Result<String, InvalidDuration> {
        GuestFileLifetime::parse_go(text).map(|l| l.to_string())
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
            assert!(GuestFileLifetime::parse_go(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn infinite_lifetime_never_expires() {
        let now = crate::validate::rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert!(GuestFileLifetime::parse_go("876000h")
            .unwrap()
            .is_infinite());
        assert_eq!(GuestFileLifetime::INFINITE.expiration_from(now), None);
        assert_eq!(
            GuestFileLifetime::parse_go("168h")
                .unwrap()
                .expiration_from(now),
            Some(crate::validate::rfc3339("2030-01-08T00:00:00Z").unwrap())
        );
        // Longer than "never" is a real, distant date: only the sentinel means never.
        assert!(GuestFileLifetime::parse_go("876001h")
            .unwrap()
            .expiration_from(now)
            .is_some());
    }
}
