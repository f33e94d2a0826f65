//! The `conditional` target: the conditional request headers (`If-Match`,
//! `If-None-Match`, the dates, `If-Range`) against an entry's `ETag` and time.

use super::{lines, time_from};
use crate::http::proto::conditional::{self, Precondition};

/// `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and
/// `If-Range`, one per line after a first line that sets the entry's size and
/// upload time. A missing line is an absent header.
///
/// Properties: nothing panics; our own `ETag` and date always validate
/// (`If-None-Match: <etag>` gives 304, `If-Match: <etag>` or `*` proceeds,
/// `If-Range` with our `ETag` or date allows the range, a weak `ETag` never
/// does); HTTP dates round-trip.
pub fn conditional(data: &[u8]) {
    let parts = lines(data, 6);
    let meta = parts.first().map(|s| s.as_bytes()).unwrap_or_default();
    let modified = time_from(meta);
    let size = meta.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let etag = format!("\"aB3dE5gH7k-{size:x}\"");
    let header = |i: usize| parts.get(i).map(|s| &**s);
    let outcome =
        conditional::evaluate(header(1), header(2), header(3), header(4), &etag, modified);
    if header(1).is_none() && header(2).is_none() {
        assert_ne!(outcome, Precondition::Failed);
    }
    let _ = conditional::if_range_allows(header(5), &etag, modified);
    for value in parts.iter().skip(1) {
        if let Some(t) = conditional::parse_http_date(value) {
            let shown = conditional::http_date(t);
            if (1..=9999).contains(&chrono::Datelike::year(&t)) {
                assert_eq!(conditional::parse_http_date(&shown), Some(t), "{value:?}");
            }
        }
    }

    let date = conditional::http_date(modified);
    assert_eq!(conditional::parse_http_date(&date), Some(modified));
    let eval = |im, inm| conditional::evaluate(im, None, inm, None, &etag, modified);
    assert_eq!(eval(None, Some(&*etag)), Precondition::NotModified);
    assert_eq!(eval(Some(&*etag), None), Precondition::Proceed);
    assert_eq!(eval(Some("*"), None), Precondition::Proceed);
    assert!(conditional::if_range_allows(Some(&etag), &etag, modified));
    assert!(conditional::if_range_allows(Some(&date), &etag, modified));
    assert!(!conditional::if_range_allows(
        Some(&format!("W/{etag}")),
        &etag,
        modified
    ));
    if let Some(theirs) = header(3) {
        if outcome == Precondition::NotModified && header(1).is_none() && header(2).is_none() {
            // A 304 for If-None-Match must come from a matching tag or `*`.
            assert!(
                theirs.trim() == "*" || theirs.contains(&etag[1..etag.len() - 1]),
                "{theirs:?} matched {etag}"
            );
        }
    }
}
