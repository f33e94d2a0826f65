//! The file name of a multipart part in the extended notation:
//! `filename*=UTF-8''R%C3%A9sum%C3%A9.pdf` (RFC 7578 §4.2 allows it, with the
//! RFC 5987 / RFC 8187 encoding), and its RFC 2231 continuations
//! (`filename*0*=UTF-8''R%C3%A9; filename*1=sume.pdf`).
//!
//! Clients that send it: .NET's `HttpClient` and PowerShell's `-Form` send
//! `filename="=?utf-8?B?UsOpc3Vtw6kucGRm?="; filename*=utf-8''R%C3%A9sum%C3%A9.pdf`
//! for `Résumé.pdf`, some send `filename*` alone. The multipart parser
//! (multer) reads only `filename`, so this module reads the extended value
//! from the part's `Content-Disposition` itself, and the upload prefers it,
//! as the original does: the extended value, when it decodes, wins over
//! `filename`; when it does not (a charset other than UTF-8, US-ASCII or
//! ISO-8859-1, a broken `%` escape, bytes that are not text in their
//! charset, a gap in the continuations), it is ignored and `filename` is
//! used. (The original knows UTF-8 and US-ASCII only; ISO-8859-1 is decoded
//! here too.)
//!
//! Written here rather than taken from a crate: multer, the multipart parser
//! in use, reads only the plain `filename`, and what it misses is a few dozen
//! lines over `percent-encoding` (already a dependency), less than another
//! header-parsing dependency would bring. Pure; fuzzed through the
//! `multipart` target.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

/// The decoded extended file name of a part's `Content-Disposition` value,
/// or `None` when it has none that decodes to a non-empty name.
pub(crate) fn extended_filename(disposition: &str) -> Option<String> {
    let params = parameters(disposition);
    let single = params
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("filename*"))
        .and_then(|(_, value)| decode_extended(value));
    single
        .or_else(|| continuations(&params))
        .filter(|name| !name.is_empty())
}

/// The `name=value` parameters after the disposition type, names as sent,
/// quoted values unquoted (`\x` is `x`). Malformed pieces are skipped.
fn parameters(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = match value.split_once(';') {
        Some((_, rest)) => rest,
        None => return out,
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return out;
        }
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let (raw, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            text.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => text.push(c),
                }
            }
            let next = quoted[end..].find(';').map_or("", |i| &quoted[end + i..]);
            (text, next)
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if !name.is_empty() && !name.contains([' ', '"']) {
            out.push((name.to_owned(), raw));
        }
        rest = next;
    }
}

/// `charset'language'percent-encoded` decoded, or `None`.
fn decode_extended(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    decode_in(charset, &percent_decoded(encoded)?)
}

/// `filename*0`, `filename*1*`, … put together, or `None` when there are
/// none, their numbers leave a gap, or a piece does not decode. Encoded
/// pieces (`*N*`) are percent-decoded, the first of them carrying the
/// charset; plain pieces are taken as they are.
fn continuations(params: &[(String, String)]) -> Option<String> {
    let mut pieces: BTreeMap<u32, (bool, &str)> = BTreeMap::new();
    for (name, value) in params {
        let Some(suffix) = name
            .get(..9)
            .filter(|p| p.eq_ignore_ascii_case("filename*"))
            .map(|_| &name[9..])
        else {
            continue;
        };
        let (digits, encoded) = match suffix.strip_suffix('*') {
            Some(d) => (d, true),
            None => (suffix, false),
        };
        // Section numbers have no leading zeros (RFC 2231 §3).
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            continue;
        }
        let n: u32 = digits.parse().ok()?;
        pieces.insert(n, (encoded, value.as_str()));
    }
    if pieces.is_empty() {
        return None;
    }
    let mut charset = "us-ascii";
    let mut bytes = Vec::new();
    for (expected, (n, (encoded, value))) in pieces.iter().enumerate() {
        if u32::try_from(expected).ok()? != *n {
            return None;
        }
        if *encoded {
            let mut value = *value;
            if *n == 0 {
                let (cs, rest) = value.split_once('\'')?;
                let (_language, rest) = rest.split_once('\'')?;
                charset = cs;
                value = rest;
            }
            bytes.extend(percent_decoded(value)?);
        } else {
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    decode_in(charset, &bytes)
}

/// The bytes of a percent-encoded value, or `None` if a `%` does not start
/// a two-digit hex escape.
fn percent_decoded(encoded: &str) -> Option<Vec<u8>> {
    let b = encoded.as_bytes();
    for (i, _) in encoded.match_indices('%') {
        let hex = b.get(i + 1..i + 3)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
    }
    Some(percent_decode_str(encoded).collect())
}

/// `bytes` as text in `charset`, if it is one we read and they are text in it.
fn decode_in(charset: &str, bytes: &[u8]) -> Option<String> {
    let charset = charset.trim().to_ascii_lowercase();
    match charset.as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes.to_vec()).ok(),
        "us-ascii" | "ascii" => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        "iso-8859-1" | "latin1" | "latin-1" => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_and_powershell_send_both_and_the_extended_one_wins() {
        let v = "form-data; name=\"file\"; filename=\"=?utf-8?B?UsOpc3Vtw6kucGRm?=\"; filename*=utf-8''R%C3%A9sum%C3%A9.pdf";
        assert_eq!(extended_filename(v).as_deref(), Some("Résumé.pdf"));
        // In either order, any case, unquoted or quoted.
        let v = "form-data; FILENAME*=UTF-8''R%C3%A9sum%C3%A9.pdf; filename=\"fallback.pdf\"; name=file";
        assert_eq!(extended_filename(v).as_deref(), Some("Résumé.pdf"));
        let v = "form-data; name=file; filename*=\"UTF-8'en'a%20b.txt\"";
        assert_eq!(extended_filename(v).as_deref(), Some("a b.txt"));
    }

    #[test]
    fn only_a_plain_filename_is_not_extended() {
        assert_eq!(
            extended_filename("form-data; name=\"file\"; filename=\"a.txt\""),
            None
        );
        assert_eq!(extended_filename("form-data"), None);
        assert_eq!(extended_filename(""), None);
        // A name that merely ends like the parameter.
        assert_eq!(
            extended_filename("form-data; xfilename*=utf-8''a.txt"),
            None
        );
    }

    #[test]
    fn charsets_read_and_refused() {
        let latin1 = "form-data; filename*=iso-8859-1'fr'R%E9sum%E9.pdf";
        assert_eq!(extended_filename(latin1).as_deref(), Some("Résumé.pdf"));
        let ascii = "form-data; filename*=us-ascii''plain.txt";
        assert_eq!(extended_filename(ascii).as_deref(), Some("plain.txt"));
        for refused in [
            "form-data; filename*=us-ascii''caf%E9.txt", // not ASCII
            "form-data; filename*=utf-8''caf%E9.txt",    // not UTF-8
            "form-data; filename*=utf-16''abc.txt",      // a charset we do not read
            "form-data; filename*=utf-8''bad%ZZ.txt",    // a broken escape
            "form-data; filename*=utf-8''cut%4",         // a cut escape
            "form-data; filename*=utf-8''",              // empty
            "form-data; filename*=no-quotes.txt",        // no charset part
        ] {
            assert_eq!(extended_filename(refused), None, "{refused}");
        }
    }

    #[test]
    fn continuations_are_put_together_in_order() {
        let v = "form-data; filename*1=sume.pdf; filename*0*=utf-8''R%C3%A9";
        assert_eq!(extended_filename(v).as_deref(), Some("Résume.pdf"));
        let v = "form-data; filename*0=\"long \"; filename*1=\"name.txt\"";
        assert_eq!(extended_filename(v).as_deref(), Some("long name.txt"));
        let v = "form-data; filename*0*=utf-8''%C3; filename*1*=%A9t%C3%A9.txt";
        assert_eq!(extended_filename(v).as_deref(), Some("été.txt"));
        // A gap, or a number with a leading zero, is not a name.
        assert_eq!(
            extended_filename("form-data; filename*0=a; filename*2=c"),
            None
        );
        assert_eq!(extended_filename("form-data; filename*00=a"), None);
        // The single extended parameter wins over continuations.
        let v = "form-data; filename*0=a; filename*=utf-8''b.txt";
        assert_eq!(extended_filename(v).as_deref(), Some("b.txt"));
    }

    #[test]
    fn quoted_values_may_hold_semicolons_and_escapes() {
        let ps = parameters(r#"form-data; name="a;b"; filename="x\"y.txt"; k=v"#);
        assert_eq!(
            ps,
            [
                ("name".to_owned(), "a;b".to_owned()),
                ("filename".to_owned(), "x\"y.txt".to_owned()),
                ("k".to_owned(), "v".to_owned()),
            ]
        );
        // An unterminated quote ends the value at the end of the header.
        assert_eq!(
            parameters("form-data; filename=\"open"),
            [("filename".to_owned(), "open".to_owned())]
        );
    }
}
