//! The `conditional` target: the conditional request headers (`If-Match`,
//! `If-None-Match`, the dates, `If-Range`) against an entry's `ETag` and time.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use super::{lines, time_from};
use crate::http::proto::conditional::{self, Precondition};

/// `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and
/// `If-Range`, one per line after a first line that sets the entry's size and
/// upload time. A missing line is an absent header.
///
/// Properties: nothing panics; our own `ETag` and date always validate
/// (`If-None-Match: <etag>` gives 304, `If-Match: <etag>` or `*` proceeds,
/// `If-Range` with our `ETag` or date allows the range, a weak `ETag` never
/// does; our `Last-Modified` date gives a 304 as `If-Modified-Since`).
pub fn conditional(data: &[u8]) {
    let parts = lines(data, 6);
    let meta = parts.first().map(|s| s.as_bytes()).unwrap_or_default();
    let modified = time_from(meta);
    let size = meta.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let etag = format!("\"aB3dE5gH7k-{size:x}\"");
    let header = |i: usize| parts.get(i).map(|s| &**s);
    // A line that is not a valid header value is an absent header.
    let request = |pairs: &[(HeaderName, Option<&str>)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                map.append(name.clone(), v);
            }
        }
        map
    };
    let sent = request(&[
        (header::IF_MATCH, header(1)),
        (header::IF_UNMODIFIED_SINCE, header(2)),
        (header::IF_NONE_MATCH, header(3)),
        (header::IF_MODIFIED_SINCE, header(4)),
        (header::IF_RANGE, header(5)),
    ]);
    let outcome = conditional::evaluate(&sent, &etag, modified);
    if !sent.contains_key(header::IF_MATCH) && !sent.contains_key(header::IF_UNMODIFIED_SINCE) {
        assert_ne!(outcome, Precondition::Failed);
    }
    let _ = conditional::if_range_allows(&sent, &etag, modified);

    let date = conditional::http_date(modified);
    let eval = |im: Option<&str>, inm: Option<&str>| {
        let h = request(&[(header::IF_MATCH, im), (header::IF_NONE_MATCH, inm)]);
        conditional::evaluate(&h, &etag, modified)
    };
    assert_eq!(eval(None, Some(&*etag)), Precondition::NotModified);
    assert_eq!(eval(Some(&*etag), None), Precondition::Proceed);
    assert_eq!(eval(Some("*"), None), Precondition::Proceed);
    let range_allowed = |value: &str| {
        conditional::if_range_allows(
            &request(&[(header::IF_RANGE, Some(value))]),
            &etag,
            modified,
        )
    };
    assert!(range_allowed(&etag));
    if (1970..=9999).contains(&chrono::Datelike::year(&modified)) {
        assert!(range_allowed(&date), "{date}");
        let h = request(&[(header::IF_MODIFIED_SINCE, Some(&date))]);
        assert_eq!(
            conditional::evaluate(&h, &etag, modified),
            Precondition::NotModified
        );
    }
    assert!(!range_allowed(&format!("W/{etag}")));
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
