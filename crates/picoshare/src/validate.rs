//! Validation rules for user input, with the original PicoShare's messages.
//!
//! The web UI shows these messages to people verbatim, so the texts match the
//! original server word for word. Everything here is pure: "now" is a parameter.

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};

/// The timestamp that means "never expires" in the database.
pub(crate) const NEVER_EXPIRE: &str = "2999-12-31T00:00:00Z";

/// Longest accepted filename, in bytes.
pub(crate) const MAX_FILENAME_BYTES: usize = 255;
/// Longest accepted note, in bytes.
pub(crate) const MAX_NOTE_BYTES: usize = 500;

/// Checks a filename; returns it unchanged when acceptable.
///
/// # Errors
/// The original's message for each broken rule.
pub(crate) fn filename(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        return Err("filename must be non-empty".into());
    }
    if name.len() > MAX_FILENAME_BYTES {
        return Err("filename too long".into());
    }
    if name == "." || name.starts_with("..") {
        return Err("filename cannot begin with dots".into());
    }
    // The original refuses `\`, `/` and seven control characters; every
    // other control character (NUL, ESC, DEL, the C1 range) is refused here
    // as well, whatever the upload path: a NUL cuts the name short in the
    // tools that unpack a share's ZIP (`invoice.pdf\0.exe`), and ESC can
    // rewrite a terminal that shows the name.
    if name.contains(['\\', '/']) || name.chars().any(char::is_control) {
        return Err("illegal characters in filename".into());
    }
    Ok(name)
}

/// Reduces a client-supplied multipart filename to its last path component, as
/// browsers on Windows may still send `C:\path\name`. Mirrors taking the base name.
pub(crate) fn upload_basename(raw: &str) -> &str {
    let trimmed = raw.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None if trimmed.is_empty() && !raw.is_empty() => "/",
        None => trimmed,
    }
}

/// Checks a note. An empty note means "no note" and yields `None`.
///
/// # Errors
/// The original's message for each broken rule.
pub(crate) fn note(raw: &str) -> Result<Option<String>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_NOTE_BYTES {
        return Err("note is too long".into());
    }
    if raw == "null" || raw == "undefined" {
        return Err(format!("value of '{raw}' is not allowed"));
    }
    if contains_script_or_iframe_tag(raw) {
        return Err("note must not contain HTML tags".into());
    }
    Ok(Some(raw.to_owned()))
}

/// Looks for `<script>`, `</script>`, `<iframe>` or `</iframe>`, with optional
/// whitespace after `<`, around `/` and before `>` (case-sensitive, as the original).
fn contains_script_or_iframe_tag(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(off) = s[i..].find('<') {
        let mut j = i + off + 1;
        let skip_ws = |mut j: usize| {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        };
        j = skip_ws(j);
        if j < bytes.len() && bytes[j] == b'/' {
            j += 1;
        }
        for word in ["script", "iframe"] {
            if s[j..].starts_with(word) {
                let k = skip_ws(j + word.len());
                if k < bytes.len() && bytes[k] == b'>' {
                    return true;
                }
            }
        }
        i += off + 1;
    }
    false
}

/// Message for an expiration that is not RFC 3339.
pub(crate) const EXPIRATION_FORMAT_ERROR: &str =
    "unrecognized format for expiration time, must be in 2006-01-02T15:04:05Z07:00 format";
/// Message for an expiration less than an hour away.
pub(crate) const EXPIRATION_TOO_SOON: &str = "expire time must be at least one hour in the future";

/// Parses an RFC 3339 timestamp.
///
/// The time must fall in the years 0000 to 9999 once converted to UTC, as the
/// database stores it in that form: `9999-12-31T23:59:59-23:59` is in the year
/// 10000, would be stored as `+10000-…`, and read back as no valid time.
///
/// # Errors
/// [`EXPIRATION_FORMAT_ERROR`].
pub(crate) fn rfc3339(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| EXPIRATION_FORMAT_ERROR.to_owned())
}

/// Parses an expiration that must lie at least one hour after `now`.
///
/// # Errors
/// The original's message for a bad format or a time too soon.
pub(crate) fn expiration(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = rfc3339(raw)?;
    if t < now + Duration::hours(1) {
        return Err(EXPIRATION_TOO_SOON.into());
    }
    Ok(t)
}

/// Formats a time the way the database stores it: UTC, whole seconds, `Z`.
pub(crate) fn db_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_rules() {
        assert!(filename("report.pdf").is_ok());
        assert!(filename(".hidden").is_ok());
        assert_eq!(filename("").unwrap_err(), "filename must be non-empty");
        assert_eq!(
            filename(".").unwrap_err(),
            "filename cannot begin with dots"
        );
        assert_eq!(
            filename("..x").unwrap_err(),
            "filename cannot begin with dots"
        );
        assert_eq!(
            filename("a/b").unwrap_err(),
            "illegal characters in filename"
        );
        assert_eq!(
            filename("a\nb").unwrap_err(),
            "illegal characters in filename"
        );
        for bad in [
            "invoice.pdf\0.exe",
            "a\x1b[2Jb",
            "a\x7fb",
            "a\u{85}b",
            "a\\b",
        ] {
            assert_eq!(
                filename(bad).unwrap_err(),
                "illegal characters in filename",
                "{bad:?}"
            );
        }
        assert!(filename("naïve résumé \u{202e}fdp.exe").is_ok());
        assert_eq!(filename(&"Ö".repeat(128)).unwrap_err(), "filename too long");
        assert!(filename(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn basename_takes_the_last_component() {
        assert_eq!(upload_basename("dir/sub/x.txt"), "x.txt");
        assert_eq!(upload_basename("x.txt"), "x.txt");
    }

    #[test]
    fn note_rules() {
        assert_eq!(note(""), Ok(None));
        assert_eq!(note("hello"), Ok(Some("hello".into())));
        assert_eq!(note(&"Ö".repeat(251)).unwrap_err(), "note is too long");
        assert!(note(&"Ö".repeat(250)).is_ok());
        assert_eq!(note("null").unwrap_err(), "value of 'null' is not allowed");
        assert_eq!(
            note("undefined").unwrap_err(),
            "value of 'undefined' is not allowed"
        );
        for bad in [
            "<script>",
            "< script >",
            "</script>",
            "x<iframe>y",
            "< /iframe >",
        ] {
            assert_eq!(
                note(bad).unwrap_err(),
                "note must not contain HTML tags",
                "{bad}"
            );
        }
        for ok in ["<b>", "<SCRIPT>", "a < b > c", "<scripts>", "< / iframe >"] {
            assert!(note(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn expiration_rules() {
        let now = rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert!(expiration("2026-01-01T01:00:00Z", now).is_ok());
        assert_eq!(
            expiration("2026-01-01T00:59:59Z", now).unwrap_err(),
            EXPIRATION_TOO_SOON
        );
        assert_eq!(
            expiration("tomorrow", now).unwrap_err(),
            EXPIRATION_FORMAT_ERROR
        );
        assert_eq!(
            db_time(rfc3339("2030-05-06T07:08:09+02:00").unwrap()),
            "2030-05-06T05:08:09Z"
        );
    }

    /// Found by the `expiration` fuzz target: a time that an offset pushes into
    /// the year 10000 was accepted, then stored as text that reads back as no
    /// valid time (so the file looked expired at once).
    #[test]
    fn times_the_database_cannot_store_are_refused() {
        let now = rfc3339("2026-01-01T00:00:00Z").unwrap();
        for raw in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01"] {
            assert_eq!(rfc3339(raw).unwrap_err(), EXPIRATION_FORMAT_ERROR, "{raw}");
        }
        let last = expiration("9999-12-31T23:59:59Z", now).unwrap();
        assert_eq!(rfc3339(&db_time(last)).unwrap(), last);
        assert!(rfc3339("0000-01-01T00:00:00Z").is_ok());
    }
}
