//! Conditional request handling for GET and HEAD (RFC 9110 §13).
//!
//! This module owns evaluation of `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range`, plus formatting and
//! parsing of HTTP dates. Callers pass raw header values; repeated header
//! lines should be joined with `", "` before calling.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

/// IMF-fixdate, the preferred HTTP date format.
const IMF_FIXDATE: &str = "%a, %d %b %Y %H:%M:%S GMT";
/// Obsolete RFC 850 format with a two-digit year.
const RFC850_DATE: &str = "%A, %d-%b-%y %H:%M:%S GMT";
/// Obsolete ANSI C `asctime()` format.
const ASCTIME_DATE: &str = "%a %b %e %H:%M:%S %Y";

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

/// Inputs are raw header values (`None` if absent). `etag` is the full strong `ETag` including quotes, e.g. `"\"abc\""`. `last_modified` is whole seconds UTC.
///
/// Follows the order of RFC 9110 §13.2.2. Unparseable dates are ignored; an
/// unparseable `If-Match` never matches and an unparseable `If-None-Match`
/// never matches.
pub(crate) fn evaluate(
    if_match: Option<&str>,
    if_unmodified_since: Option<&str>,
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    last_modified: DateTime<Utc>,
) -> Precondition {
    let last_modified = whole_seconds(last_modified);
    if let Some(value) = if_match {
        if !list_matches(value, etag, strong_eq) {
            return Precondition::Failed;
        }
    } else if let Some(date) = if_unmodified_since.and_then(parse_http_date) {
        if last_modified > date {
            return Precondition::Failed;
        }
    }
    if let Some(value) = if_none_match {
        if list_matches(value, etag, weak_eq) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = if_modified_since.and_then(parse_http_date) {
        if last_modified <= date {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether a Range request should be honoured given an If-Range value (an `ETag` — strong comparison — or an HTTP-date that must equal `last_modified` exactly). `None` → true.
///
/// A weak or malformed validator never allows the range.
pub(crate) fn if_range_allows(
    if_range: Option<&str>,
    etag: &str,
    last_modified: DateTime<Utc>,
) -> bool {
    let Some(value) = if_range.map(str::trim) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return match (parse_etag_list(value).as_deref(), EntityTag::parse(etag)) {
            (Some([theirs]), Some(ours)) => strong_eq(theirs, &ours),
            _ => false,
        };
    }
    parse_http_date(value) == Some(whole_seconds(last_modified))
}

/// Format as IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format(IMF_FIXDATE).to_string()
}

/// Parse IMF-fixdate (also accept RFC 850 and asctime forms if easy); None if invalid.
///
/// The weekday must agree with the date. RFC 850 two-digit years map to
/// 1970–2069.
pub(crate) fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    [IMF_FIXDATE, RFC850_DATE, ASCTIME_DATE]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(s, format).ok())
        .map(|naive| naive.and_utc())
}

/// Drop any sub-second part so comparisons with HTTP dates are exact.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// An entity tag: its opaque quoted value (quotes included) and weakness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// Parse exactly one entity tag, allowing surrounding whitespace.
    fn parse(s: &'a str) -> Option<Self> {
        let (tag, rest) = EntityTag::parse_prefix(s.trim())?;
        rest.is_empty().then_some(tag)
    }

    /// Parse an entity tag at the start of `s`, returning it and the remainder.
    fn parse_prefix(s: &'a str) -> Option<(Self, &'a str)> {
        let (weak, s) = match s.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let body = s.strip_prefix('"')?;
        let close = body.find('"')?;
        if !body[..close].bytes().all(is_etagc) {
            return None;
        }
        let (opaque, rest) = s.split_at(close + 2);
        Some((EntityTag { weak, opaque }, rest))
    }
}

/// `etagc` from RFC 9110 §8.8.3: visible ASCII except `"`, or obs-text.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Strong comparison: both tags strong and opaque values identical.
fn strong_eq(a: &EntityTag, b: &EntityTag) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// Weak comparison: opaque values identical, weakness ignored.
fn weak_eq(a: &EntityTag, b: &EntityTag) -> bool {
    a.opaque == b.opaque
}

/// Whether an `If-Match` / `If-None-Match` value (`*` or a list of tags)
/// matches our current `ETag` under the given comparison.
fn list_matches(value: &str, etag: &str, eq: fn(&EntityTag, &EntityTag) -> bool) -> bool {
    if value.trim() == "*" {
        return true;
    }
    let (Some(theirs), Some(ours)) = (parse_etag_list(value), EntityTag::parse(etag)) else {
        return false;
    };
    theirs.iter().any(|t| eq(t, &ours))
}

/// Parse a comma-separated list of entity tags (empty elements allowed).
/// Commas inside a quoted tag do not split it. `None` if malformed or empty.
fn parse_etag_list(value: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = skip_separators(value);
    while !rest.is_empty() {
        let (tag, after) = EntityTag::parse_prefix(rest)?;
        let after = after.trim_start_matches([' ', '\t']);
        if !after.is_empty() && !after.starts_with(',') {
            return None;
        }
        tags.push(tag);
        rest = skip_separators(after);
    }
    (!tags.is_empty()).then_some(tags)
}

/// Skip any run of whitespace and commas.
fn skip_separators(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', ','])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ETAG: &str = "\"abc\"";

    fn lm() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap()
    }

    const AT: &str = "Sun, 10 Mar 2024 12:00:00 GMT";
    const BEFORE: &str = "Sun, 10 Mar 2024 11:59:59 GMT";
    const AFTER: &str = "Sun, 10 Mar 2024 12:00:01 GMT";

    fn eval(
        im: Option<&str>,
        ius: Option<&str>,
        inm: Option<&str>,
        ims: Option<&str>,
    ) -> Precondition {
        evaluate(im, ius, inm, ims, ETAG, lm())
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
        assert_eq!(eval(Some(" * "), None, None, None), Precondition::Proceed);
    }

    #[test]
    fn malformed_if_match_fails() {
        assert_eq!(eval(Some("abc"), None, None, None), Precondition::Failed);
        assert_eq!(eval(Some(""), None, None, None), Precondition::Failed);
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
        assert_eq!(
            evaluate(None, None, None, Some(AT), ETAG, precise),
            Precondition::NotModified
        );
        assert!(if_range_allows(Some(AT), ETAG, precise));
    }

    #[test]
    fn etag_lists_with_commas_inside_tags() {
        assert_eq!(
            eval(None, None, Some("\"a,b\", \"abc\""), None),
            Precondition::NotModified
        );
        let tags = parse_etag_list(" ,\"a,b\" ,, W/\"c\" ,").unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(
            tags[0],
            EntityTag {
                weak: false,
                opaque: "\"a,b\""
            }
        );
        assert_eq!(
            tags[1],
            EntityTag {
                weak: true,
                opaque: "\"c\""
            }
        );
    }

    #[test]
    fn malformed_etag_lists() {
        for v in [
            "",
            " , ",
            "\"abc",
            "abc",
            "\"a\" \"b\"",
            "w/\"a\"",
            "\"a b\"",
            "\"a\"x",
        ] {
            assert_eq!(parse_etag_list(v), None, "{v:?}");
        }
    }

    #[test]
    fn weak_server_etag_never_strongly_matches() {
        let weak = "W/\"abc\"";
        assert_eq!(
            evaluate(Some(weak), None, None, None, weak, lm()),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(None, None, Some(weak), None, weak, lm()),
            Precondition::NotModified
        );
    }

    #[test]
    fn if_range() {
        assert!(if_range_allows(None, ETAG, lm()));
        assert!(if_range_allows(Some("\"abc\""), ETAG, lm()));
        assert!(if_range_allows(Some(" \"abc\" "), ETAG, lm()));
        assert!(!if_range_allows(Some("\"xyz\""), ETAG, lm()));
        assert!(!if_range_allows(Some("W/\"abc\""), ETAG, lm()));
        assert!(!if_range_allows(Some("\"abc\", \"x\""), ETAG, lm()));
        assert!(if_range_allows(Some(AT), ETAG, lm()));
        assert!(!if_range_allows(Some(AFTER), ETAG, lm()));
        assert!(!if_range_allows(Some(BEFORE), ETAG, lm()));
        assert!(!if_range_allows(Some("garbage"), ETAG, lm()));
        assert!(!if_range_allows(Some(""), ETAG, lm()));
    }

    #[test]
    fn formats_imf_fixdate() {
        let t = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap();
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(lm()), AT);
    }

    #[test]
    fn parses_all_three_formats() {
        let want = Some(Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap());
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT "), want);
    }

    #[test]
    fn rejects_invalid_dates() {
        for s in [
            "",
            "garbage",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn round_trips() {
        for secs in [0i64, 784_111_777, 1_700_000_000, 4_102_444_800] {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            assert_eq!(parse_http_date(&http_date(t)), Some(t));
        }
    }
}
