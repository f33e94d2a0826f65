//! The `expiration` target: expiration times (uploads, guest uploads), their
//! stored text form, and guest-link creation requests.

use chrono::{Duration, TimeZone, Utc};

use super::lines;
use crate::http::api::guest_links::new_guest_link;
use crate::http::uploads::guest::guest_expiration;
use crate::store::model::GuestFileLifetime;
use crate::validate;

/// Expiration times (upload `?expiration=`, guest uploads) and guest-link
/// creation requests. Input, by lines: the expiration, a file lifetime, and
/// the rest is the JSON body of `POST /api/guest-links`; "now" is a day in
/// 2025 chosen by the input's length.
///
/// Properties: an accepted expiration is at least an hour after now, and
/// survives being stored (the database's text format parses back to the same
/// second); a guest upload's expiration stays within the link's lifetime; an
/// accepted guest link keeps every limit the rules set.
pub fn expiration(data: &[u8]) {
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + Duration::days((data.len() % 365) as i64)
        + Duration::nanoseconds(123_456_789);
    let parts = lines(data, 3);
    let raw = parts.first().map(|s| &**s).unwrap_or("");
    if let Ok(t) = validate::rfc3339(raw) {
        let stored = validate::db_time(t);
        let back = validate::rfc3339(&stored)
            .unwrap_or_else(|e| panic!("{raw:?} is stored as {stored:?}, which reads back as {e}"));
        assert_eq!(back.timestamp(), t.timestamp(), "{raw:?} → {stored:?}");
    }
    if let Ok(t) = validate::expiration(raw, now) {
        assert!(t >= now + Duration::hours(1), "{raw:?} accepted at {now}");
    }
    let lifetime = parts
        .get(1)
        .and_then(|l| GuestFileLifetime::parse_go(l).ok())
        .unwrap_or(GuestFileLifetime::INFINITE);
    match guest_expiration(Some(raw), lifetime, now) {
        Ok(Some(t)) => {
            if !raw.is_empty() {
                assert!(t >= now + Duration::hours(1), "{raw:?}");
            }
            if let Some(latest) = lifetime.expiration_from(now) {
                assert!(t <= latest, "{raw:?} beyond {lifetime}");
            }
        }
        Ok(None) => {}
        Err(message) => assert!(!message.is_empty()),
    }
    let body = parts.get(2).map(|s| s.as_bytes()).unwrap_or_default();
    if let Ok(link) = new_guest_link(body, now) {
        assert!(link.label.len() <= 200, "{:?}", link.label);
        assert!(
            link.file_lifetime.is_infinite() || link.file_lifetime >= GuestFileLifetime::ONE_DAY
        );
        assert!(link.max_file_bytes.is_none_or(|n| n >= 1 << 20));
        assert!(link.max_file_uploads.is_none_or(|n| n > 0));
        if let Some(t) = link.url_expiration {
            assert!(t >= now + Duration::hours(1));
            let stored = validate::db_time(t);
            assert!(validate::rfc3339(&stored).is_ok(), "{stored:?}");
        }
    }
}
