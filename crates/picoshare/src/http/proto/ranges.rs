//! Parsing of the `Range` request header (RFC 9110 §14) into byte ranges.
//!
//! This module owns the decision between a full response (200), a partial
//! response (206) and an unsatisfiable request (416). It performs no I/O.

/// The most ranges we are willing to serve in one request; anything beyond
/// this is treated as abuse and answered with the whole representation.
const MAX_RANGES: usize = 100;

/// An inclusive byte range within a representation of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    /// Offset of the first byte in the range.
    pub(crate) start: u64,
    /// Offset of the last byte in the range (inclusive).
    pub(crate) end: u64,
}

// A resolved range always holds at least one byte, so `is_empty` would be
// meaningless.
#[allow(clippy::len_without_is_empty)]
impl ByteRange {
    /// Number of bytes covered by the range (`end - start + 1`).
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// What the caller should do with a request, given its `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No Range header, or one we must ignore (not "bytes=" unit, or syntactically invalid): serve the full body with 200.
    Full,
    /// One or more satisfiable ranges (already clipped to the length, in request order). Serve 206.
    Partial(Vec<ByteRange>),
    /// Syntactically valid but none satisfiable: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// One `range-spec` as written by the client, before resolving it against
/// the representation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last`
    Closed(u64, u64),
    /// `first-`
    From(u64),
    /// `-count`
    Suffix(u64),
}

impl Spec {
    /// The concrete range this spec selects in `len` bytes, if any.
    fn resolve(self, len: u64) -> Option<ByteRange> {
        let last = len.checked_sub(1)?;
        let (start, end) = match self {
            Spec::Closed(first, end) => (first, end.min(last)),
            Spec::From(first) => (first, last),
            Spec::Suffix(0) => return None,
            Spec::Suffix(count) => (len.saturating_sub(count), last),
        };
        (start <= last).then_some(ByteRange { start, end })
    }
}

/// Parse a Range header value (RFC 9110 §14) against a representation of `len` bytes.
pub(crate) fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(specs) = parse_specs(header) else {
        return RangeRequest::Full;
    };
    let ranges: Vec<ByteRange> = specs.iter().filter_map(|s| s.resolve(len)).collect();
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(coalesce(ranges))
}

/// Split `bytes=<list>` into specs; `None` if the header must be ignored.
fn parse_specs(header: &str) -> Option<Vec<Spec>> {
    let (unit, list) = header.split_once('=')?;
    if !trim_ows(unit).eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
    for element in list.split(',').map(trim_ows).filter(|e| !e.is_empty()) {
        if specs.len() == MAX_RANGES {
            return None;
        }
        specs.push(parse_spec(element)?);
    }
    (!specs.is_empty()).then_some(specs)
}

/// Parse a single `range-spec` such as `0-99`, `100-` or `-500`.
fn parse_spec(element: &str) -> Option<Spec> {
    let (first, last) = element.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(parse_digits(last)?));
    }
    let first = parse_digits(first)?;
    if last.is_empty() {
        return Some(Spec::From(first));
    }
    let last = parse_digits(last)?;
    (last >= first).then_some(Spec::Closed(first, last))
}

/// Parse a non-empty run of ASCII digits; `None` on anything else or overflow.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Strip optional whitespace (spaces and tabs) from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// If any ranges overlap or touch, sort and merge them all; otherwise keep
/// them exactly as requested.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    if !sorted.windows(2).any(|w| touches(w[0], w[1])) {
        return ranges;
    }
    ranges.clear();
    for r in sorted {
        match ranges.last_mut() {
            Some(prev) if touches(*prev, r) => prev.end = prev.end.max(r.end),
            _ => ranges.push(r),
        }
    }
    ranges
}

/// Whether `b` (which starts no earlier than `a`) overlaps or is adjacent to `a`.
fn touches(a: ByteRange, b: ByteRange) -> bool {
    b.start <= a.end.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn partial(ranges: &[(u64, u64)]) -> RangeRequest {
        RangeRequest::Partial(ranges.iter().map(|&(s, e)| r(s, e)).collect())
    }

    #[test]
    fn len_is_inclusive() {
        assert_eq!(r(0, 0).len(), 1);
        assert_eq!(r(10, 19).len(), 10);
    }

    #[test]
    fn closed_range() {
        assert_eq!(parse_range("bytes=0-99", 1000), partial(&[(0, 99)]));
        assert_eq!(parse_range("bytes=5-5", 10), partial(&[(5, 5)]));
    }

    #[test]
    fn open_ended_range() {
        assert_eq!(parse_range("bytes=900-", 1000), partial(&[(900, 999)]));
    }

    #[test]
    fn suffix_range() {
        assert_eq!(parse_range("bytes=-100", 1000), partial(&[(900, 999)]));
        assert_eq!(parse_range("bytes=-5000", 1000), partial(&[(0, 999)]));
    }

    #[test]
    fn end_is_clipped() {
        assert_eq!(parse_range("bytes=500-5000", 1000), partial(&[(500, 999)]));
        let max = u64::MAX.to_string();
        assert_eq!(
            parse_range(&format!("bytes=0-{max}"), 10),
            partial(&[(0, 9)])
        );
    }

    #[test]
    fn unit_is_case_insensitive_and_whitespace_tolerated() {
        assert_eq!(parse_range("BYTES=0-1", 10), partial(&[(0, 1)]));
        assert_eq!(
            parse_range("Bytes = 0-1 ,\t 4-5 ", 10),
            partial(&[(0, 1), (4, 5)])
        );
    }

    #[test]
    fn other_units_are_ignored() {
        assert_eq!(parse_range("items=0-1", 10), RangeRequest::Full);
        assert_eq!(parse_range("bytesx=0-1", 10), RangeRequest::Full);
        assert_eq!(parse_range("0-1", 10), RangeRequest::Full);
    }

    #[test]
    fn garbage_is_ignored() {
        for h in [
            "",
            "bytes=",
            "bytes= ",
            "bytes=,",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-x",
            "bytes=+1-2",
            "bytes=1 - 2",
            "bytes=0x10-20",
            "bytes=1-2-3",
            "bytes=5",
            "bytes=0-1,garbage",
            "bytes=99999999999999999999-",
            "bytes=-99999999999999999999",
        ] {
            assert_eq!(parse_range(h, 10), RangeRequest::Full, "{h:?}");
        }
    }

    #[test]
    fn reversed_range_invalidates_whole_header() {
        assert_eq!(parse_range("bytes=5-1", 10), RangeRequest::Full);
        assert_eq!(parse_range("bytes=0-1,5-1", 10), RangeRequest::Full);
    }

    #[test]
    fn empty_elements_are_skipped() {
        assert_eq!(
            parse_range("bytes=0-1,,4-5,", 10),
            partial(&[(0, 1), (4, 5)])
        );
    }

    #[test]
    fn start_beyond_length_is_unsatisfiable() {
        assert_eq!(parse_range("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn unsatisfiable_ranges_are_dropped() {
        assert_eq!(parse_range("bytes=50-60,0-1", 10), partial(&[(0, 1)]));
    }

    #[test]
    fn zero_suffix_is_unsatisfiable() {
        assert_eq!(parse_range("bytes=-0", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0,2-3", 10), partial(&[(2, 3)]));
    }

    #[test]
    fn empty_representation_is_always_unsatisfiable() {
        for h in ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-0"] {
            assert_eq!(parse_range(h, 0), RangeRequest::Unsatisfiable, "{h:?}");
        }
        assert_eq!(parse_range("bytes=oops", 0), RangeRequest::Full);
    }

    #[test]
    fn non_overlapping_ranges_keep_request_order() {
        assert_eq!(
            parse_range("bytes=8-9,0-1,4-5", 10),
            partial(&[(8, 9), (0, 1), (4, 5)])
        );
    }

    #[test]
    fn overlapping_ranges_are_merged_sorted() {
        assert_eq!(parse_range("bytes=5-8,0-6", 10), partial(&[(0, 8)]));
        assert_eq!(
            parse_range("bytes=8-9,0-3,2-5", 10),
            partial(&[(0, 5), (8, 9)])
        );
        assert_eq!(
            parse_range("bytes=0-4,-3,1-2", 10),
            partial(&[(0, 4), (7, 9)])
        );
    }

    #[test]
    fn adjacent_ranges_are_merged() {
        assert_eq!(parse_range("bytes=5-9,0-4", 10), partial(&[(0, 9)]));
    }

    #[test]
    fn identical_ranges_are_merged() {
        assert_eq!(parse_range("bytes=0-0,0-0,0-0", 10), partial(&[(0, 0)]));
    }

    #[test]
    fn too_many_ranges_serves_everything() {
        let at_limit = vec!["0-0"; MAX_RANGES].join(",");
        assert_eq!(
            parse_range(&format!("bytes={at_limit}"), 10),
            partial(&[(0, 0)])
        );
        let over = vec!["0-0"; MAX_RANGES + 1].join(",");
        assert_eq!(
            parse_range(&format!("bytes={over}"), 10),
            RangeRequest::Full
        );
    }

    #[test]
    fn huge_representation() {
        let len = u64::MAX;
        assert_eq!(parse_range("bytes=-1", len), partial(&[(len - 1, len - 1)]));
        assert_eq!(parse_range("bytes=0-", len), partial(&[(0, len - 1)]));
    }
}
