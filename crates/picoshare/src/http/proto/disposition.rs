//! Construction of the `Content-Disposition` response header for downloads.
//!
//! This module owns turning an arbitrary, user-supplied filename into a header
//! value that is always well-formed (visible ASCII and spaces only), using an
//! ASCII `filename` fallback plus an RFC 8187 / RFC 5987 `filename*` parameter
//! that preserves the real name for clients that understand it.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes that may appear literally in an RFC 5987 `value-chars` (`attr-char`);
/// everything else is percent-encoded.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A Content-Disposition header value that no filename can break: `inline; filename="<ascii fallback>"; filename*=UTF-8''<pct-encoded>`.
///
/// `filename*` is omitted when the name is already safe ASCII; an empty name
/// yields plain `inline`.
pub(crate) fn content_disposition(filename: &str) -> String {
    if filename.is_empty() {
        return "inline".to_string();
    }
    let fallback = ascii_fallback(filename);
    if fallback == filename {
        return format!("inline; filename=\"{fallback}\"");
    }
    let encoded = utf8_percent_encode(filename, ATTR_CHAR_ESCAPES);
    format!("inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The filename with every character that is unsafe inside a quoted-string
/// (or confusing to naive parsers) replaced by `_`.
fn ascii_fallback(filename: &str) -> String {
    filename
        .chars()
        .map(|c| if is_safe_fallback_char(c) { c } else { '_' })
        .collect()
}

/// Printable ASCII or space, excluding `"`, `\`, `;` and `%`.
fn is_safe_fallback_char(c: char) -> bool {
    (c == ' ' || c.is_ascii_graphic()) && !matches!(c, '"' | '\\' | ';' | '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Visible ASCII and space only: nothing that can end or split a header.
    fn assert_valid_header_value(v: &str) {
        assert!(
            v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
            "invalid header value: {v:?}"
        );
    }

    /// Decode the `filename*` parameter, if present.
    fn decoded_ext_value(v: &str) -> Option<String> {
        let encoded = v.split("filename*=UTF-8''").nth(1)?;
        Some(
            percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .unwrap()
                .into_owned(),
        )
    }

    #[test]
    fn empty_name_is_plain_inline() {
        assert_eq!(content_disposition(""), "inline");
    }

    #[test]
    fn safe_ascii_omits_extended_param() {
        assert_eq!(
            content_disposition("report-2024 final.pdf"),
            "inline; filename=\"report-2024 final.pdf\""
        );
    }

    #[test]
    fn quotes_are_replaced() {
        let v = content_disposition("say \"hi\".txt");
        assert!(v.starts_with("inline; filename=\"say _hi_.txt\"; filename*=UTF-8''"));
        assert_eq!(decoded_ext_value(&v).unwrap(), "say \"hi\".txt");
    }

    #[test]
    fn semicolons_and_percent_are_replaced() {
        let v = content_disposition("a;b%41.txt");
        assert!(v.starts_with("inline; filename=\"a_b_41.txt\";"));
        assert!(v.ends_with("filename*=UTF-8''a%3Bb%2541.txt"));
    }

    #[test]
    fn backslash_is_replaced() {
        let v = content_disposition("C:\\temp\\x.txt");
        assert!(v.contains("filename=\"C:_temp_x.txt\""));
        assert_eq!(decoded_ext_value(&v).unwrap(), "C:\\temp\\x.txt");
    }

    #[test]
    fn header_injection_is_neutralised() {
        let name = "a\r\nSet-Cookie: x";
        let v = content_disposition(name);
        assert_valid_header_value(&v);
        assert!(v.contains("filename=\"a__Set-Cookie: x\""));
        assert!(v.ends_with("filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x"));
        assert_eq!(decoded_ext_value(&v).unwrap(), name);
    }

    #[test]
    fn control_characters_are_replaced() {
        let v = content_disposition("n\0u\x7fl\tl");
        assert!(v.contains("filename=\"n_u_l_l\""));
        assert_valid_header_value(&v);
    }

    #[test]
    fn accented_name() {
        let v = content_disposition("Résumé final (v2).pdf");
        assert_eq!(
            v,
            "inline; filename=\"R_sum_ final (v2).pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20final%20%28v2%29.pdf"
        );
    }

    #[test]
    fn emoji_name() {
        let v = content_disposition("🎉party🎉.png");
        assert!(v.contains("filename=\"_party_.png\""));
        assert!(v.ends_with("filename*=UTF-8''%F0%9F%8E%89party%F0%9F%8E%89.png"));
        assert_valid_header_value(&v);
    }

    #[test]
    fn attr_chars_stay_literal() {
        let v = content_disposition("é!#$&+-.^_`|~");
        assert!(v.ends_with("filename*=UTF-8''%C3%A9!#$&+-.^_`|~"));
    }

    #[test]
    fn very_long_names_stay_valid() {
        let name = "ü\"\r\n;%\\x".repeat(5000);
        let v = content_disposition(&name);
        assert_valid_header_value(&v);
        assert_eq!(decoded_ext_value(&v).unwrap(), name);
        let plain = "a".repeat(100_000);
        assert_eq!(
            content_disposition(&plain),
            format!("inline; filename=\"{plain}\"")
        );
    }

    #[test]
    fn fallback_never_contains_unsafe_chars() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let v = content_disposition(&all);
        assert_valid_header_value(&v);
        let fallback = v.split('"').nth(1).unwrap();
        assert!(!fallback.contains(['\\', ';', '%']));
        assert_eq!(decoded_ext_value(&v).unwrap(), all);
    }
}
