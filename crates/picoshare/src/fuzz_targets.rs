//! Fuzz targets for the parsers of untrusted input, written once and run two ways:
//!
//! - by `cargo fuzz` (nightly, libFuzzer): each `fuzz/fuzz_targets/NAME.rs` is a
//!   one-line wrapper around the function of the same name here
//!   (`scripts/fuzz` runs them all for a bounded time);
//! - by `cargo test` on the stable toolchain: the tests at the end of this file
//!   replay the committed seed corpus (`fuzz/corpus/NAME/`) and a few thousand
//!   seeded random mutations of it through the same functions, so CI exercises
//!   every target without nightly or libFuzzer.
//!
//! Every target takes arbitrary bytes, must not panic, and asserts the
//! properties its parser promises (ranges inside the file, header values without
//! control characters, round trips, ...). The module is compiled for tests and
//! with the `fuzzing` feature only; it is not part of the server.
//!
//! # Adding a target
//!
//! 1. write `pub fn NAME(data: &[u8])` here, asserting the parser's properties;
//! 2. add `("NAME", NAME)` to [`TARGETS`];
//! 3. add `fuzz/fuzz_targets/NAME.rs` (copy another wrapper) and its `[[bin]]`
//!    in `fuzz/Cargo.toml`;
//! 4. put a few valid and invalid inputs in `fuzz/corpus/NAME/`, one per file.
//!
//! `scripts/fuzz` and the replay tests find it from there; the tests fail if
//! one of the four pieces is missing.

use std::borrow::Cow;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::http::api::guest_links::new_guest_link;
use crate::http::proto::conditional::{self, Precondition};
use crate::http::proto::disposition::content_disposition;
use crate::http::proto::mime::effective_content_type;
use crate::http::proto::multipart_ranges::MultipartLayout;
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};
use crate::http::proto::ranges::{parse_range, RangeRequest};
use crate::http::proto::tus_headers;
use crate::http::uploads::guest::guest_expiration;
use crate::http::uploads::multipart::{field_role, FieldRole, NOTE_READ_LIMIT};
use crate::store::model::GuestFileLifetime;
use crate::validate;

/// A fuzz target: takes any bytes, panics only on a broken property.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `cargo fuzz` binary and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("range", range),
    ("multipart", multipart),
    ("filename", filename),
    ("expiration", expiration),
    ("lifetime", lifetime),
    ("conditional", conditional),
    ("tus", tus),
    ("proxy", proxy),
];

// ---------------------------------------------------------------------------
// Range
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Multipart upload bodies
// ---------------------------------------------------------------------------

/// What an upload body yields when read the way `POST /api/entry` reads it.
#[derive(Debug, PartialEq, Eq)]
struct Form {
    filename: String,
    content_type: String,
    file: Vec<u8>,
    note: Option<String>,
}

/// Multipart upload bodies, read with the upload's parser (multer), its field
/// rules ([`field_role`]) and its filename and note validation. Input: one
/// byte choosing how the body is cut into network reads, the request's
/// `Content-Type` up to the first newline, then the body.
///
/// Properties: the outcome does not depend on how the body is cut into reads;
/// an accepted file has a valid base name (no `/`, no control characters, at
/// most 255 bytes) whose `Content-Disposition` is a safe header value; an
/// accepted note passes the note rules.
pub fn multipart(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(content_type) = std::str::from_utf8(&rest[..newline]) else {
        return;
    };
    let body = &rest[newline + 1..];
    // The upload refuses a Content-Type without a boundary with a 400.
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return;
    };
    let whole = read_form(&boundary, vec![Bytes::copy_from_slice(body)]);
    let piece = usize::from(cut % 64) + 1;
    let pieces = body.chunks(piece).map(Bytes::copy_from_slice).collect();
    let split = read_form(&boundary, pieces);
    assert_eq!(
        whole.as_ref().ok(),
        split.as_ref().ok(),
        "reading in {piece}-byte pieces changed the outcome: {whole:?} vs {split:?}"
    );
    let Ok(form) = whole else {
        return;
    };
    assert_eq!(validate::filename(&form.filename), Ok(&*form.filename));
    assert!(!form.filename.contains('/'), "{:?}", form.filename);
    assert!(!form.file.is_empty());
    check_disposition(&form.filename);
    if let Some(note) = &form.note {
        assert!(note.len() <= validate::MAX_NOTE_BYTES);
    }
}

/// Reads a multipart body the way `http::uploads::multipart::receive` does, with the
/// file's bytes kept in memory instead of a store sink.
fn read_form(boundary: &str, chunks: Vec<Bytes>) -> Result<Form, String> {
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let mut multipart = multer::Multipart::new(stream, boundary);
    complete(async move {
        let mut file: Option<(String, String, Vec<u8>)> = None;
        let mut note: Option<String> = None;
        let broken = |e: multer::Error| format!("could not read the multipart body: {e}");
        while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
            match field_role(
                field.name(),
                field.file_name(),
                file.is_some(),
                note.is_some(),
            )? {
                FieldRole::File(name) => {
                    let ctype = field
                        .headers()
                        .get(axum::http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        bytes.extend_from_slice(&chunk);
                    }
                    file = Some((name, ctype, bytes));
                }
                FieldRole::Note => {
                    let mut buf = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        buf.extend_from_slice(&chunk);
                        if buf.len() > NOTE_READ_LIMIT {
                            return Err("note is too long".to_owned());
                        }
                    }
                    note = Some(String::from_utf8_lossy(&buf).into_owned());
                }
                FieldRole::MaxDownloads | FieldRole::Password | FieldRole::Skip => {
                    while field.chunk().await.map_err(broken)?.is_some() {}
                }
            }
        }
        let (filename, content_type, file) = file.ok_or("http: no such file")?;
        if file.is_empty() {
            return Err("file must be non-empty".into());
        }
        let note = validate::note(note.as_deref().unwrap_or(""))?;
        Ok(Form {
            filename,
            content_type,
            file,
            note,
        })
    })
}

/// Runs a future whose input is all in memory to completion. Nothing it
/// waits on can be pending for long, so polling it again is all it needs; a
/// future that never finishes is a parser stuck on a complete body.
fn complete<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the multipart parser stalled on a body that is all there");
}

// ---------------------------------------------------------------------------
// Filenames
// ---------------------------------------------------------------------------

/// Filenames as clients send them. Input: the name (lossy UTF-8); for the
/// download's content type, the text before the first NUL is also used as the
/// stored type and the rest as the name.
///
/// Properties: the base name is a suffix of the raw name without `/`; an
/// accepted name breaks no filename rule; `Content-Disposition` and
/// `Content-Type` are always safe header values, and the disposition's
/// `filename*` decodes back to the exact name; an accepted note is unchanged.
pub fn filename(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let base = validate::upload_basename(&raw);
    if base != "/" {
        assert!(
            raw.trim_end_matches('/').ends_with(base) && !base.contains('/'),
            "{raw:?} → {base:?}"
        );
    }
    if let Ok(name) = validate::filename(base) {
        assert!(!name.is_empty() && name.len() <= validate::MAX_FILENAME_BYTES);
        assert!(name != "." && !name.starts_with(".."), "{name:?}");
        assert!(
            !name.contains(['/', '\\', '\t', '\n', '\r', '\x07', '\x08', '\x0b', '\x0c']),
            "{name:?}"
        );
    }
    check_disposition(&raw);
    let (stored, name) = match raw.split_once('\0') {
        Some((stored, name)) => (stored, name),
        None => ("", &*raw),
    };
    let ctype = effective_content_type(stored, name);
    assert!(
        !ctype.is_empty() && HeaderValue::from_str(&ctype).is_ok(),
        "content type {ctype:?} of {stored:?} / {name:?}"
    );
    assert!(ctype.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
    if let Ok(Some(note)) = validate::note(&raw) {
        assert_eq!(note, raw);
        assert!(note.len() <= validate::MAX_NOTE_BYTES);
    }
}

/// `Content-Disposition` for `name`: visible ASCII and spaces only, an ASCII
/// fallback with one character per character of the name, and a `filename*`
/// that decodes to the name exactly.
fn check_disposition(name: &str) {
    let value = content_disposition(name);
    assert!(
        value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
        "unsafe header value {value:?} for {name:?}"
    );
    assert!(HeaderValue::from_str(&value).is_ok(), "{value:?}");
    if name.is_empty() {
        assert_eq!(value, "inline");
        return;
    }
    let rest = value
        .strip_prefix("inline; filename=\"")
        .unwrap_or_else(|| panic!("{value:?}"));
    let (fallback, tail) = rest.split_once('"').unwrap_or_else(|| panic!("{value:?}"));
    assert!(!fallback.contains(['\\', ';', '%']), "{value:?}");
    assert_eq!(fallback.chars().count(), name.chars().count(), "{value:?}");
    match tail.strip_prefix("; filename*=UTF-8''") {
        Some(encoded) => {
            assert!(!encoded.contains([' ', '"', ';', '\'']), "{value:?}");
            let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8();
            assert_eq!(decoded.as_deref(), Ok(name), "{value:?}");
        }
        None => {
            assert_eq!(tail, "", "{value:?}");
            assert_eq!(fallback, name);
        }
    }
}

// ---------------------------------------------------------------------------
// Expiration times and guest links
// ---------------------------------------------------------------------------

/// A time from up to 8 bytes: whole seconds between 1970 and 9999.
fn time_from(bytes: &[u8]) -> DateTime<Utc> {
    let mut raw = [0u8; 8];
    let n = bytes.len().min(8);
    raw[..n].copy_from_slice(&bytes[..n]);
    let secs = i64::from_le_bytes(raw).rem_euclid(253_402_300_800);
    Utc.timestamp_opt(secs, 0)
        .single()
        .expect("in chrono's range")
}

fn lines(data: &[u8], n: usize) -> Vec<Cow<'_, str>> {
    data.splitn(n, |&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .collect()
}

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
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
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

/// File lifetimes in Go's duration syntax (`168h0m0s`, `1.5h`, `-90m`).
/// Input: the text; its first 8 bytes also give a lifetime in nanoseconds.
///
/// Properties: every accepted text prints (Go's `Duration.String()`) as a text
/// that parses back to the same lifetime, and so does every 64-bit lifetime;
/// computing an expiration from it never panics.
pub fn lifetime(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = time_from(data);
    if let Ok(d) = GuestFileLifetime::parse_go(&text) {
        let shown = d.to_string();
        assert_eq!(
            GuestFileLifetime::parse_go(&shown),
            Ok(d),
            "{text:?} → {shown:?}"
        );
        let _ = d.expiration_from(now);
    }
    if data.len() >= 8 {
        let nanos = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let d = GuestFileLifetime::from_nanos(nanos);
        let shown = d.to_string();
        assert_eq!(
            GuestFileLifetime::parse_go(&shown),
            Ok(d),
            "{nanos} → {shown:?}"
        );
        let _ = d.expiration_from(now);
    }
}

// ---------------------------------------------------------------------------
// Conditional headers
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Replaying the corpus on the stable toolchain
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// tus headers
// ---------------------------------------------------------------------------

/// The tus request headers: `Upload-Offset`/`Upload-Length` (first line),
/// `Upload-Metadata` (second line), `Upload-Checksum` (third line).
///
/// Properties: nothing panics; an accepted size is exactly the decimal digits
/// given and at most `i64::MAX`; accepted metadata has unique, non-empty keys
/// of visible ASCII, and re-encoding it (values in base64) parses back to the
/// same pairs; an accepted checksum has a digest of its algorithm's length,
/// and a hasher fed nothing matches only the empty input's digest.
pub fn tus(data: &[u8]) {
    let parts = lines(data, 3);
    let size = parts.first().map(|s| s.as_ref()).unwrap_or("");
    if let Ok(n) = tus_headers::parse_size("Upload-Offset", size) {
        assert!(n <= i64::MAX as u64);
        let digits = size.trim_start_matches('0');
        assert_eq!(n.to_string(), if digits.is_empty() { "0" } else { digits });
    }
    let meta = parts.get(1).map(|s| s.as_ref()).unwrap_or("");
    if let Ok(pairs) = tus_headers::parse_metadata(meta) {
        let mut keys = std::collections::HashSet::new();
        for p in &pairs {
            assert!(!p.key.is_empty());
            assert!(p.key.bytes().all(|b| b.is_ascii_graphic()));
            assert!(keys.insert(p.key.clone()), "duplicate key {:?}", p.key);
        }
        let again: String = pairs
            .iter()
            .map(|p| match &p.value {
                Some(v) if !v.is_empty() => {
                    format!("{} {}", p.key, tus_headers::encode_base64(v))
                }
                _ => p.key.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let reparsed = tus_headers::parse_metadata(&again).expect("re-encoded metadata parses");
        // An empty value and no value read the same.
        let norm = |ps: &[tus_headers::MetadataPair]| -> Vec<(String, Vec<u8>)> {
            ps.iter()
                .map(|p| (p.key.clone(), p.value.clone().unwrap_or_default()))
                .collect()
        };
        assert_eq!(norm(&reparsed), norm(&pairs));
        for p in &pairs {
            let _ = tus_headers::metadata_text(&pairs, &[p.key.as_str()]);
        }
    }
    let checksum = parts.get(2).map(|s| s.as_ref()).unwrap_or("");
    if let Ok(c) = tus_headers::parse_checksum(checksum) {
        let len = match c.algorithm {
            tus_headers::Algorithm::Sha1 => 20,
            tus_headers::Algorithm::Sha256 => 32,
        };
        assert_eq!(c.digest.len(), len);
        let empty = tus_headers::Hasher::new(c.algorithm);
        let empty_digest: &[u8] = match c.algorithm {
            tus_headers::Algorithm::Sha1 => &[
                0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55, 0xbf, 0xef, 0x95, 0x60,
                0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09,
            ],
            tus_headers::Algorithm::Sha256 => &[
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
                0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
                0x78, 0x52, 0xb8, 0x55,
            ],
        };
        assert_eq!(empty.matches(&c.digest), c.digest == empty_digest);
    }
}

// ---------------------------------------------------------------------------
// Proxy headers
// ---------------------------------------------------------------------------

/// The forwarding headers of a reverse proxy, one per line: `X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`, then `Forwarded`
/// (the rest of the input). A missing line is an absent header.
///
/// Properties: nothing panics; untrusted headers say nothing; every fact is
/// trimmed and non-empty, the scheme lower-case; an `X-Forwarded-*` header
/// with a first element wins over `Forwarded`; the facts, written back as
/// one `Forwarded` element of quoted strings, read back the same.
pub fn proxy(data: &[u8]) {
    let parts = lines(data, 5);
    let line = |i: usize| parts.get(i).map(|s| s.as_ref());
    let headers = ProxyHeaders {
        forwarded_for: line(0),
        real_ip: line(1),
        forwarded_proto: line(2),
        forwarded_host: line(3),
        forwarded: line(4),
    };
    assert_eq!(Forwarded::read(headers, false), Forwarded::default());
    let seen = Forwarded::read(headers, true);
    for fact in [&seen.client, &seen.proto, &seen.host]
        .into_iter()
        .flatten()
    {
        assert!(!fact.is_empty() && fact.trim() == fact, "{seen:?}");
    }
    if let Some(proto) = &seen.proto {
        assert_eq!(*proto, proto.to_ascii_lowercase());
    }
    let first = |v: Option<&str>| {
        v.and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(client) = first(headers.forwarded_for) {
        assert_eq!(seen.client.as_deref(), Some(client.as_str()));
    }
    if let Some(proto) = first(headers.forwarded_proto) {
        assert_eq!(seen.proto, Some(proto.to_ascii_lowercase()));
    }
    if let Some(host) = first(headers.forwarded_host) {
        assert_eq!(seen.host.as_deref(), Some(host.as_str()));
    }
    // Written back as one element: an address with a colon (or a bracket)
    // as an IPv6 node in brackets, each value a quoted string.
    let quoted = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut element = Vec::new();
    let client = seen.client.as_deref().filter(|c| !c.contains(']'));
    if let Some(c) = client {
        let node = if c.contains(':') || c.starts_with('[') {
            format!("[{c}]")
        } else {
            c.to_owned()
        };
        element.push(format!("for={}", quoted(&node)));
    }
    if let Some(p) = &seen.proto {
        element.push(format!("proto={}", quoted(p)));
    }
    if let Some(h) = &seen.host {
        element.push(format!("host={}", quoted(h)));
    }
    let header = element.join(";");
    let again = Forwarded::read(
        ProxyHeaders {
            forwarded: Some(&header),
            ..ProxyHeaders::default()
        },
        true,
    );
    let want = Forwarded {
        client: client.map(str::to_owned),
        proto: seen.proto.clone(),
        host: seen.host.clone(),
    };
    assert_eq!(again, want, "{header:?}");
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::{Path, PathBuf};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::TARGETS;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = fuzz_dir().join("corpus").join(target);
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                (path.display().to_string(), data)
            })
            .collect();
        out.sort();
        out
    }

    /// Runs one input; on a panic, fails with the input in the message so
    /// that it can be added to the corpus and replayed.
    fn run(name: &str, target: super::Target, data: &[u8], origin: &str) {
        if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
            panic!(
                "fuzz target {name} failed on {origin}: input b\"{}\"",
                data.escape_ascii()
            );
        }
    }

    /// Every target has its `cargo fuzz` wrapper, its `[[bin]]` and a seed corpus.
    #[test]
    fn every_target_is_wired_into_cargo_fuzz() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        for (name, _) in TARGETS {
            let wrapper = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
            let text = std::fs::read_to_string(&wrapper)
                .unwrap_or_else(|e| panic!("{}: {e}", wrapper.display()));
            assert!(
                text.contains(&format!("fuzz_targets::{name}(")),
                "{} does not call fuzz_targets::{name}",
                wrapper.display()
            );
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
            assert!(!seeds(name).is_empty(), "fuzz/corpus/{name} is empty");
        }
    }

    /// The committed seed corpus (regressions included) passes every target.
    #[test]
    fn seed_corpus_replays_cleanly() {
        for (name, target) in TARGETS {
            for (path, data) in seeds(name) {
                run(name, *target, &data, &path);
            }
        }
    }

    /// Fragments that make mutated inputs reach deeper into the parsers.
    const TOKENS: &[&[u8]] = &[
        b"bytes=",
        b"-",
        b",",
        b", ",
        b"\r\n",
        b"\r\n\r\n",
        b"--",
        b"\"",
        b"W/",
        b"*",
        b"%",
        b"/",
        b"\\",
        b"..",
        b"\0",
        b"\n",
        b"18446744073709551615",
        b"9223372036854775808",
        b"0",
        b"9999",
        b"T23:59:59",
        b"-23:59",
        b"+23:59",
        b"Z",
        b" GMT",
        b"h",
        b"m",
        b"s",
        b"ns",
        b"\xc2\xb5s",
        b".5",
        b"filename=",
        b"filename*=UTF-8''",
        b"name=\"file\"",
        b"name=\"note\"",
        b"Content-Disposition: form-data; ",
        b"<script>",
        b"\xe2\x80\xae",
        b"\xff",
        b"for=",
        b";proto=https",
        b"host=",
        b"[2001:db8::1]:4711",
        b"\\\"",
    ];

    fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
        for _ in 0..rng.gen_range(1..=4) {
            let at = rng.gen_range(0..=input.len());
            match rng.gen_range(0..6) {
                0 if !input.is_empty() => {
                    let i = rng.gen_range(0..input.len());
                    input[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => input.insert(at, rng.gen()),
                2 if !input.is_empty() => {
                    let end = rng.gen_range(at..=input.len().min(at + 16));
                    input.drain(at..end);
                }
                3 => {
                    let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                    input.splice(at..at, token.iter().copied());
                }
                4 if !input.is_empty() => {
                    let start = rng.gen_range(0..input.len());
                    let end = rng.gen_range(start..=input.len().min(start + 32));
                    let piece = input[start..end].to_vec();
                    input.splice(at..at, piece);
                }
                _ => {
                    let digit = b'0' + rng.gen_range(0..10);
                    input.insert(at, digit);
                }
            }
        }
    }

    /// Seeded random mutations of the corpus (and some plain random bytes)
    /// through every target: 5000 per target, or
    /// `PICOSHARE_FUZZ_REPLAY_CASES`; the seed is printed and can be set with
    /// `PICOSHARE_FUZZ_REPLAY_SEED` to reproduce a failure.
    #[test]
    fn seeded_mutations_pass_every_target() {
        let cases: usize = std::env::var("PICOSHARE_FUZZ_REPLAY_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        let seed: u64 = std::env::var("PICOSHARE_FUZZ_REPLAY_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5049_434f_4655_5a5a);
        eprintln!("fuzz replay seed {seed}, {cases} cases per target");
        for (name, target) in TARGETS {
            let corpus: Vec<Vec<u8>> = seeds(name).into_iter().map(|(_, d)| d).collect();
            let mut rng = StdRng::seed_from_u64(seed ^ name.len() as u64);
            for case in 0..cases {
                let mut input = if case % 10 == 9 {
                    (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
                } else {
                    corpus[rng.gen_range(0..corpus.len())].clone()
                };
                mutate(&mut rng, &mut input);
                run(
                    name,
                    *target,
                    &input,
                    &format!("case {case} of seed {seed}"),
                );
            }
        }
    }
}
