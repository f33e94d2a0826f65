//! The `filename` target: filenames as clients send them, through the
//! upload's rules, `Content-Disposition` and the download's content type.
//! Its disposition check serves the `multipart` target as well.

use axum::http::HeaderValue;

use crate::http::proto::disposition::content_disposition;
use crate::http::proto::mime::effective_content_type;
use crate::validate;

/// Filenames as clients send them. Input: the name (lossy UTF-8); for the
/// download's content type, the text before the first NUL is also used as the
/// stored type and the rest as the name.
///
/// Properties: the base name is a suffix of the raw name without `/`; an
/// accepted name breaks no filename rule (no control character at all); `Content-Disposition` and
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
            !name.contains(['/', '\\']) && !name.chars().any(char::is_control),
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
pub(super) fn check_disposition(name: &str) {
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
