//! The `range` target: `Range` headers against a file length, and the
//! multipart layout of the ranges they select.

use crate::http::proto::multipart_ranges::MultipartLayout;
use crate::http::proto::ranges::{parse_range, RangeRequest};

/// `Range` header against a file length. Input: one byte choosing the length
/// (below 0x80: that many bytes; otherwise the next 8 bytes, little-endian),
/// then the header value.
///
/// Properties: every range lies inside the file, is non-empty, and no two
/// overlap or touch; at most 100 ranges; whether the header is ignored does not
/// depend on the length; a request satisfiable in `n` bytes stays satisfiable
/// in `n + 1`; the multipart layout announces exactly the bytes it frames.
pub fn range(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (len, header) = if selector < 0x80 {
        (u64::from(selector), rest)
    } else if rest.len() >= 8 {
        let (n, header) = rest.split_at(8);
        (u64::from_le_bytes(n.try_into().expect("8 bytes")), header)
    } else {
        (u64::MAX, rest)
    };
    let header = String::from_utf8_lossy(header);
    let result = parse_range(&header, len);
    let other_len = if len == 0 { 1 << 40 } else { len / 2 };
    assert_eq!(
        matches!(result, RangeRequest::Full),
        matches!(parse_range(&header, other_len), RangeRequest::Full),
        "ignoring {header:?} depends on the length"
    );
    let RangeRequest::Partial(ranges) = result else {
        return;
    };
    if let Some(longer) = len.checked_add(1) {
        assert!(
            matches!(parse_range(&header, longer), RangeRequest::Partial(_)),
            "{header:?} is satisfiable in {len} bytes but not in {longer}"
        );
    }
    assert!(!ranges.is_empty() && ranges.len() <= 100, "{ranges:?}");
    let mut total: u64 = 0;
    for r in &ranges {
        assert!(
            r.start <= r.end && r.end < len,
            "{r:?} is not inside {len} bytes ({header:?})"
        );
        total = total.saturating_add(r.len());
    }
    assert!(total <= len, "{total} bytes selected of {len}");
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            let (lo, hi) = if a.start <= b.start { (a, b) } else { (b, a) };
            assert!(
                hi.start > lo.end.saturating_add(1),
                "{a:?} and {b:?} overlap or touch ({header:?})"
            );
        }
    }
    // Entry sizes are SQLite integers, so at most i64::MAX: the multipart
    // layout's length arithmetic only has to hold up to there.
    if ranges.len() > 1 && i64::try_from(len).is_ok() {
        let layout = MultipartLayout::new(
            &ranges,
            len,
            "application/octet-stream",
            "0123456789abcdef".into(),
        );
        let mut framed = layout.trailer.len() as u64;
        for ((head, r), want) in layout.parts.iter().zip(&ranges) {
            assert_eq!(r, want);
            let head = std::str::from_utf8(head).expect("part headers are ASCII");
            assert!(
                head.contains(&format!("bytes {}-{}/{len}", r.start, r.end)),
                "{head:?}"
            );
            framed += head.len() as u64 + r.len();
        }
        assert_eq!(layout.content_length(), framed);
    }
}
