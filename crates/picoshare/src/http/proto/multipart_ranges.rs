//! Layout of `multipart/byteranges` bodies (RFC 9110 §14.6) for responses
//! that carry several ranges.
//!
//! This module owns the framing bytes only: it never touches file data, so a
//! caller can stream each range straight from storage between the headers
//! computed here, and still announce an exact `Content-Length` up front.
//!
//! Convention: the first part begins directly with `--BOUNDARY`; every later
//! part (and the closing delimiter) begins with `\r\n--BOUNDARY`.

use super::ranges::ByteRange;

/// Layout of a multipart/byteranges response: the boundary, and for each range the header bytes that precede it; plus the closing delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MultipartLayout {
    /// The boundary string, without the leading `--`.
    pub(crate) boundary: String,
    /// For each range, in order: the delimiter and part headers to send
    /// immediately before that range's bytes.
    pub(crate) parts: Vec<(Vec<u8>, ByteRange)>,
    /// The closing delimiter, sent after the last range's bytes.
    pub(crate) trailer: Vec<u8>,
}

impl MultipartLayout {
    /// `boundary`: caller supplies (random hex); `content_type` may be empty (then omit the Content-Type line in parts).
    ///
    /// `content_type` is copied verbatim into each part, so it must already
    /// be a safe header value. With no ranges the body is just the trailer.
    pub(crate) fn new(
        ranges: &[ByteRange],
        total_len: u64,
        content_type: &str,
        boundary: String,
    ) -> Self {
        let parts = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    part_header(i == 0, &boundary, content_type, *r, total_len),
                    *r,
                )
            })
            .collect();
        let trailer = format!("\r\n--{boundary}--\r\n").into_bytes();
        MultipartLayout {
            boundary,
            parts,
            trailer,
        }
    }

    /// Exact total body length = sum(part headers) + sum(range lengths) + trailer.
    pub(crate) fn content_length(&self) -> u64 {
        let parts: u64 = self
            .parts
            .iter()
            .map(|(header, range)| header.len() as u64 + range.len())
            .sum();
        parts + self.trailer.len() as u64
    }

    /// Value for the response Content-Type header: `multipart/byteranges; boundary=...`.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }
}

/// The delimiter line and headers that introduce one body part.
fn part_header(
    first: bool,
    boundary: &str,
    content_type: &str,
    r: ByteRange,
    total: u64,
) -> Vec<u8> {
    let lead = if first { "" } else { "\r\n" };
    let mut out = format!("{lead}--{boundary}\r\n");
    if !content_type.is_empty() {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str(&format!(
        "Content-Range: bytes {}-{}/{total}\r\n\r\n",
        r.start, r.end
    ));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "3d6b6a416f9b5";

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    /// Assemble the full body the way a streaming caller would.
    fn render(layout: &MultipartLayout, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (header, range) in &layout.parts {
            body.extend_from_slice(header);
            body.extend_from_slice(&data[range.start as usize..=range.end as usize]);
        }
        body.extend_from_slice(&layout.trailer);
        body
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// A deliberately small, independent parser: returns each part's headers
    /// and payload, relying on Content-Range to know the payload length.
    fn parse_back(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
        let delimiter = format!("--{boundary}");
        let close = format!("\r\n--{boundary}--\r\n");
        let mut rest = body;
        let mut parts = Vec::new();
        loop {
            if rest == close.as_bytes() {
                return parts;
            }
            let lead = if parts.is_empty() { "" } else { "\r\n" };
            let expected = format!("{lead}{delimiter}\r\n");
            assert!(rest.starts_with(expected.as_bytes()), "missing delimiter");
            rest = &rest[expected.len()..];
            let end = find(rest, b"\r\n\r\n").expect("end of part headers");
            let headers = String::from_utf8(rest[..end].to_vec()).unwrap();
            rest = &rest[end + 4..];
            let len = content_range_len(&headers);
            parts.push((headers, rest[..len].to_vec()));
            rest = &rest[len..];
        }
    }

    fn content_range_len(headers: &str) -> usize {
        let line = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: bytes "))
            .expect("Content-Range line");
        let (span, _total) = line.split_once('/').unwrap();
        let (a, b) = span.split_once('-').unwrap();
        b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1
    }

    #[test]
    fn content_type_names_boundary() {
        let layout = MultipartLayout::new(&[r(0, 1)], 10, "", BOUNDARY.into());
        assert_eq!(
            layout.content_type(),
            format!("multipart/byteranges; boundary={BOUNDARY}")
        );
    }

    #[test]
    fn part_headers_are_exact() {
        let layout = MultipartLayout::new(&[r(0, 1), r(5, 9)], 10, "text/plain", "XYZ".into());
        assert_eq!(
            layout.parts[0].0,
            b"--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n".to_vec()
        );
        assert_eq!(
            layout.parts[1].0,
            b"\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-9/10\r\n\r\n"
                .to_vec()
        );
        assert_eq!(layout.trailer, b"\r\n--XYZ--\r\n".to_vec());
    }

    #[test]
    fn empty_content_type_omits_line() {
        let layout = MultipartLayout::new(&[r(2, 3)], 4, "", "XYZ".into());
        assert_eq!(
            layout.parts[0].0,
            b"--XYZ\r\nContent-Range: bytes 2-3/4\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn rendered_body_matches_length_and_parses_back() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let ranges = [r(990, 999), r(0, 0), r(100, 199), r(500, 500)];
        let layout = MultipartLayout::new(&ranges, 1000, "application/pdf", BOUNDARY.into());
        let body = render(&layout, &data);
        assert_eq!(body.len() as u64, layout.content_length());
        let parts = parse_back(&body, BOUNDARY);
        assert_eq!(parts.len(), ranges.len());
        for ((headers, payload), range) in parts.iter().zip(&ranges) {
            assert!(headers.contains("Content-Type: application/pdf"));
            let want = format!("Content-Range: bytes {}-{}/1000", range.start, range.end);
            assert!(headers.contains(&want));
            assert_eq!(payload[..], data[range.start as usize..=range.end as usize]);
        }
    }

    #[test]
    fn payload_containing_boundary_text_still_round_trips() {
        let data = format!("--{BOUNDARY}\r\n\r\n--{BOUNDARY}--\r\n").into_bytes();
        let last = data.len() as u64 - 1;
        let ranges = [r(0, 5), r(6, last)];
        let layout = MultipartLayout::new(&ranges, last + 1, "", BOUNDARY.into());
        let body = render(&layout, &data);
        assert_eq!(body.len() as u64, layout.content_length());
        let joined: Vec<u8> = parse_back(&body, BOUNDARY)
            .into_iter()
            .flat_map(|p| p.1)
            .collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn no_ranges_is_just_trailer() {
        let layout = MultipartLayout::new(&[], 10, "", "B".into());
        assert!(layout.parts.is_empty());
        assert_eq!(layout.content_length(), layout.trailer.len() as u64);
    }

    #[test]
    fn content_length_counts_large_ranges_without_data() {
        let big = 1u64 << 40;
        let layout = MultipartLayout::new(
            &[r(0, big - 1), r(big, 2 * big - 1)],
            2 * big,
            "",
            "B".into(),
        );
        let framing: u64 = layout.parts.iter().map(|p| p.0.len() as u64).sum::<u64>()
            + layout.trailer.len() as u64;
        assert_eq!(layout.content_length(), 2 * big + framing);
    }
}
