//! Conditional request handling for GET and HEAD (RFC 9110 §13).
//!
//! The headers (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`, `If-Range`) and our `ETag` are parsed and compared
//! by the `headers` crate: strong comparison for `If-Match` and `If-Range`,
//! weak for `If-None-Match`; HTTP dates in all three formats, a wrong
//! weekday refused. What is ours is the order of evaluation, which the crate
//! leaves to its caller (RFC 9110 §13.2.2: `If-Match`, else
//! `If-Unmodified-Since`; then `If-None-Match`, else `If-Modified-Since`;
//! a header that is present but malformed still overrides its fallback),
//! and two things the crate cannot do:
//!
//! - `If-Range` with a date must equal `Last-Modified` exactly (RFC 9110
//!   §13.1.5), while the crate's `IfRange::is_modified` allows a range for
//!   any date not earlier than it; exact equality is checked by comparing
//!   with `IfRange::date(last_modified)`.
//! - The crate debug-asserts (a panic in a debug build) when a quoted
//!   entity tag holds a space or a tab, which a header value may carry but
//!   an entity tag may not (`etagc`, RFC 9110 §8.8.3): such a value is
//!   malformed, and is treated as such before the crate sees it
//!   ([`tags_checkable`]).
//! - The crate's HTTP dates hold the years 1970 to 9999 and panic on a time
//!   outside them; an entry whose time is outside them (none is, written by
//!   this server's clock) has its date validators ignored.
//!
//! Formatting a date for a response (`http_date`) stays here: other headers
//! than `Last-Modified` use it (tus's `Upload-Expires`).

use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderName};
use chrono::{DateTime, Datelike, Utc};
use headers::{
    ETag, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfRange, IfUnmodifiedSince,
};

/// IMF-fixdate, the preferred HTTP date format.
const IMF_FIXDATE: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// Outcome of evaluating the preconditions of a GET or HEAD request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// proceed normally
    Proceed,
    /// 304 Not Modified
    NotModified,
    /// 412 Precondition Failed
    Failed,
}

/// Evaluates the request's conditional headers against the entry's `etag`
/// (the full `ETag` value, quotes included, e.g. `"\"abc\""`) and its
/// `last_modified` time (compared in whole seconds), in the order of RFC
/// 9110 §13.2.2. Unparseable dates are ignored; an unparseable `If-Match`
/// never matches (412), an unparseable `If-None-Match` never matches.
pub(crate) fn evaluate(
    headers: &HeaderMap,
    etag: &str,
    last_modified: DateTime<Utc>,
) -> Precondition {
    let etag = etag.parse::<ETag>().ok();
    let modified = http_time(last_modified);
    let if_match = match tags_checkable(headers, &header::IF_MATCH) {
        true => headers.typed_try_get::<IfMatch>(),
        false => Err(headers::Error::invalid()),
    };
    match if_match {
        Ok(Some(if_match)) => {
            if !etag
                .as_ref()
                .is_some_and(|e| if_match.precondition_passes(e))
            {
                return Precondition::Failed;
            }
        }
        Err(_) => return Precondition::Failed,
        Ok(None) => {
            let since = headers.typed_get::<IfUnmodifiedSince>();
            if let (Some(since), Some(modified)) = (since, modified) {
                if !since.precondition_passes(modified) {
                    return Precondition::Failed;
                }
            }
        }
    }
    let if_none_match = match tags_checkable(headers, &header::IF_NONE_MATCH) {
        true => headers.typed_try_get::<IfNoneMatch>(),
        false => Err(headers::Error::invalid()),
    };
    match if_none_match {
        Ok(Some(if_none_match)) => {
            if etag
                .as_ref()
                .is_some_and(|e| !if_none_match.precondition_passes(e))
            {
                return Precondition::NotModified;
            }
        }
        Err(_) => {}
        Ok(None) => {
            let since = headers.typed_get::<IfModifiedSince>();
            if let (Some(since), Some(modified)) = (since, modified) {
                if !since.is_modified(modified) {
                    return Precondition::NotModified;
                }
            }
        }
    }
    Precondition::Proceed
}

/// Whether a Range request should be honoured given the request's
/// `If-Range`: true without one; with one, only if it is an `ETag` that
/// strongly matches `etag`, or an HTTP date equal to `last_modified` (in
/// whole seconds). A weak or malformed validator never allows the range.
pub(crate) fn if_range_allows(
    headers: &HeaderMap,
    etag: &str,
    last_modified: DateTime<Utc>,
) -> bool {
    if !tags_checkable(headers, &header::IF_RANGE) {
        return false;
    }
    let if_range = match headers.typed_try_get::<IfRange>() {
        Ok(None) => return true,
        Ok(Some(if_range)) => if_range,
        Err(_) => return false,
    };
    // A date variant is "modified" without a Last-Modified to compare with,
    // so this is true only for a strongly matching entity tag.
    let tag_matches = etag
        .parse::<ETag>()
        .is_ok_and(|e| !if_range.is_modified(Some(&e), None));
    tag_matches || http_time(last_modified).is_some_and(|t| if_range == IfRange::date(t))
}

/// Format as IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format(IMF_FIXDATE).to_string()
}

/// Whether the values of header `name` may be handed to the `headers`
/// crate: no space or tab inside a quoted string (see the module header).
/// The quotes are followed as the crate splits lists, so a tag the crate
/// would check is inside quotes here too.
fn tags_checkable(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(name).iter().all(|value| {
        let mut quoted = false;
        value.as_bytes().iter().all(|&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            !(quoted && (b == b' ' || b == b'\t'))
        })
    })
}

/// `t` as the `headers` crate's dates can hold it (years 1970 to 9999; see
/// the module header). The crate drops the sub-second part.
fn http_time(t: DateTime<Utc>) -> Option<SystemTime> {
    (1970..=9999)
        .contains(&t.year())
        .then(|| SystemTime::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeZone;

    const ETAG: &str = "\"abc\"";

    fn lm() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap()
    }

    const AT: &str = "Sun, 10 Mar 2024 12:00:00 GMT";
    const BEFORE: &str = "Sun, 10 Mar 2024 11:59:59 GMT";
    const AFTER: &str = "Sun, 10 Mar 2024 12:00:01 GMT";

    /// A request's headers, as an HTTP parser leaves them (the whitespace
    /// around a field value is not part of it).
    fn headers(pairs: &[(HeaderName, Option<&str>)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Some(v) = value {
                map.append(name.clone(), HeaderValue::from_str(v).unwrap());
            }
        }
        map
    }

    fn eval(
        im: Option<&str>,
        ius: Option<&str>,
        inm: Option<&str>,
        ims: Option<&str>,
    ) -> Precondition {
        let h = headers(&[
            (header::IF_MATCH, im),
            (header::IF_UNMODIFIED_SINCE, ius),
            (header::IF_NONE_MATCH, inm),
            (header::IF_MODIFIED_SINCE, ims),
        ]);
        evaluate(&h, ETAG, lm())
    }

    fn range_allowed(value: Option<&str>, last_modified: DateTime<Utc>) -> bool {
        if_range_allows(&headers(&[(header::IF_RANGE, value)]), ETAG, last_modified)
    }

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(eval(None, None, None, None), Precondition::Proceed);
    }

    #[test]
    fn if_match_strong_comparison() {
        assert_eq!(
            eval(Some("\"abc\""), None, None, None),
            Precondition::Proceed
        );
        assert_eq!(
            eval(Some("\"xyz\""), None, None, None),
            Precondition::Failed
        );
        assert_eq!(
            eval(Some("W/\"abc\""), None, None, None),
            Precondition::Failed
        );
        assert_eq!(
            eval(Some("\"x\" , \"abc\""), None, None, None),
            Precondition::Proceed
        );
        assert_eq!(eval(Some("*"), None, None, None), Precondition::Proceed);
    }

    #[test]
    fn malformed_if_match_fails() {
        for v in ["abc", "", "\"abc", "w/\"abc\"", "\"a\" \"abc\"", "\"a b\""] {
            assert_eq!(
                eval(Some(v), None, None, None),
                Precondition::Failed,
                "{v:?}"
            );
        }
    }

    /// A space or tab inside a quoted tag is malformed, wherever it stands
    /// (the crate would panic on it in a debug build).
    #[test]
    fn blanks_inside_tags_are_malformed() {
        for v in [
            "\"a b\"",
            "\"abc\", \" \"",
            "W/\"\tabc\"",
            "\"x\", \"ab c\"",
        ] {
            assert_eq!(
                eval(Some(v), None, None, None),
                Precondition::Failed,
                "{v:?}"
            );
            assert_eq!(
                eval(None, None, Some(v), Some(AT)),
                Precondition::Proceed,
                "{v:?}"
            );
            assert!(!range_allowed(Some(v), lm()), "{v:?}");
        }
        // Between the tags of a list they are fine.
        assert_eq!(
            eval(Some("\"x\" ,\t\"abc\""), None, None, None),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(eval(None, Some(AT), None, None), Precondition::Proceed);
        assert_eq!(eval(None, Some(AFTER), None, None), Precondition::Proceed);
        assert_eq!(eval(None, Some(BEFORE), None, None), Precondition::Failed);
        assert_eq!(
            eval(None, Some("garbage"), None, None),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_match_overrides_if_unmodified_since() {
        assert_eq!(
            eval(Some(ETAG), Some(BEFORE), None, None),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_none_match_weak_comparison() {
        assert_eq!(
            eval(None, None, Some("\"abc\""), None),
            Precondition::NotModified
        );
        assert_eq!(
            eval(None, None, Some("W/\"abc\""), None),
            Precondition::NotModified
        );
        assert_eq!(
            eval(None, None, Some("\"a\",W/\"abc\""), None),
            Precondition::NotModified
        );
        assert_eq!(
            eval(None, None, Some("\"xyz\""), None),
            Precondition::Proceed
        );
        assert_eq!(eval(None, None, Some("*"), None), Precondition::NotModified);
        assert_eq!(
            eval(None, None, Some("nonsense"), None),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(eval(None, None, None, Some(AT)), Precondition::NotModified);
        assert_eq!(
            eval(None, None, None, Some(AFTER)),
            Precondition::NotModified
        );
        assert_eq!(eval(None, None, None, Some(BEFORE)), Precondition::Proceed);
        assert_eq!(
            eval(None, None, None, Some("yesterday")),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        assert_eq!(
            eval(None, None, Some("\"xyz\""), Some(AT)),
            Precondition::Proceed
        );
        // Also when it cannot be parsed.
        assert_eq!(
            eval(None, None, Some("nonsense"), Some(AT)),
            Precondition::Proceed
        );
    }

    #[test]
    fn failure_beats_not_modified() {
        assert_eq!(
            eval(Some("\"xyz\""), None, Some(ETAG), None),
            Precondition::Failed
        );
        assert_eq!(
            eval(None, Some(BEFORE), None, Some(AT)),
            Precondition::Failed
        );
    }

    #[test]
    fn sub_second_last_modified_is_truncated() {
        let precise = lm() + chrono::Duration::milliseconds(500);
        let h = headers(&[(header::IF_MODIFIED_SINCE, Some(AT))]);
        assert_eq!(evaluate(&h, ETAG, precise), Precondition::NotModified);
        assert!(range_allowed(Some(AT), precise));
    }

    #[test]
    fn etag_lists_with_commas_inside_tags() {
        assert_eq!(
            eval(None, None, Some("\"a,b\", \"abc\""), None),
            Precondition::NotModified
        );
        assert_eq!(
            eval(None, None, Some(" ,\"a,b\" ,, W/\"abc\" ,"), None),
            Precondition::NotModified
        );
        assert_eq!(
            eval(None, None, Some("\"x,\"abc\"\""), None),
            Precondition::Proceed
        );
    }

    #[test]
    fn repeated_header_lines_are_one_list() {
        let h = headers(&[
            (header::IF_NONE_MATCH, Some("\"x\"")),
            (header::IF_NONE_MATCH, Some("\"abc\"")),
        ]);
        assert_eq!(evaluate(&h, ETAG, lm()), Precondition::NotModified);
    }

    #[test]
    fn weak_server_etag_never_strongly_matches() {
        let weak = "W/\"abc\"";
        let h = headers(&[(header::IF_MATCH, Some(weak))]);
        assert_eq!(evaluate(&h, weak, lm()), Precondition::Failed);
        let h = headers(&[(header::IF_NONE_MATCH, Some(weak))]);
        assert_eq!(evaluate(&h, weak, lm()), Precondition::NotModified);
    }

    #[test]
    fn if_range() {
        assert!(range_allowed(None, lm()));
        assert!(range_allowed(Some("\"abc\""), lm()));
        assert!(!range_allowed(Some("\"xyz\""), lm()));
        assert!(!range_allowed(Some("W/\"abc\""), lm()));
        assert!(!range_allowed(Some("\"abc\", \"x\""), lm()));
        assert!(range_allowed(Some(AT), lm()));
        assert!(!range_allowed(Some(AFTER), lm()));
        assert!(!range_allowed(Some(BEFORE), lm()));
        assert!(!range_allowed(Some("garbage"), lm()));
        assert!(!range_allowed(Some(""), lm()));
    }

    #[test]
    fn dates_in_all_three_formats() {
        let t = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap();
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let h = headers(&[(header::IF_MODIFIED_SINCE, Some(date))]);
            assert_eq!(evaluate(&h, ETAG, t), Precondition::NotModified, "{date:?}");
            assert!(range_allowed(Some(date), t), "{date:?}");
        }
    }

    #[test]
    fn invalid_dates_are_ignored() {
        let t = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap();
        for date in [
            "",
            "garbage",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
        ] {
            let h = headers(&[(header::IF_MODIFIED_SINCE, Some(date))]);
            assert_eq!(evaluate(&h, ETAG, t), Precondition::Proceed, "{date:?}");
            let h = headers(&[(header::IF_UNMODIFIED_SINCE, Some(date))]);
            assert_eq!(
                evaluate(&h, ETAG, t + chrono::Duration::days(1)),
                Precondition::Proceed,
                "{date:?}"
            );
            assert!(!range_allowed(Some(date), t), "{date:?}");
        }
    }

    #[test]
    fn times_the_crate_cannot_hold_ignore_date_validators() {
        for t in [
            Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
        ] {
            let date = http_date(t);
            let h = headers(&[
                (header::IF_MODIFIED_SINCE, Some(date.as_str())),
                (header::IF_UNMODIFIED_SINCE, Some(AT)),
            ]);
            assert_eq!(evaluate(&h, ETAG, t), Precondition::Proceed, "{t}");
            assert!(!range_allowed(Some(&date), t), "{t}");
            assert!(range_allowed(Some(ETAG), t), "{t}");
        }
    }

    #[test]
    fn formats_imf_fixdate() {
        let t = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap();
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(lm()), AT);
    }

    #[test]
    fn our_own_validators_always_validate() {
        for secs in [0i64, 784_111_777, 1_700_000_000, 4_102_444_800] {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let date = http_date(t);
            let h = headers(&[(header::IF_MODIFIED_SINCE, Some(date.as_str()))]);
            assert_eq!(evaluate(&h, ETAG, t), Precondition::NotModified, "{date}");
            assert!(range_allowed(Some(&date), t), "{date}");
        }
    }
}
