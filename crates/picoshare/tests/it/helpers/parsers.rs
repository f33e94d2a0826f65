//! Strict parsers of what downloads reply: Content-Disposition (RFC 6266, with
//! RFC 8187 `filename*`) and `multipart/byteranges` bodies, so that a test
//! fails on a malformed header rather than reading past it.

use std::collections::HashSet;

use reqwest::header::HeaderMap;

use super::find;

/// A parsed Content-Disposition header.
#[derive(Debug, Default, Clone)]
pub struct ContentDisposition {
    /// `inline`, `attachment`, ... (lower-cased); PicoShare's original sent none.
    pub disposition: Option<String>,
    /// The `filename` parameter, unquoted.
    pub filename: Option<String>,
    /// The `filename*` parameter, percent-decoded.
    pub filename_star: Option<String>,
}

impl ContentDisposition {
    /// The name a browser would use: `filename*` wins over `filename`.
    pub fn effective_filename(&self) -> Option<&str> {
        self.filename_star.as_deref().or(self.filename.as_deref())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// Parses a Content-Disposition value strictly: optional disposition type,
/// then `; name=value` parameters whose values are tokens or quoted-strings,
/// nothing left over, no duplicate parameters, `filename*` as RFC 8187
/// `UTF-8''percent-encoded`.
pub fn parse_content_disposition(value: &str) -> Result<ContentDisposition, String> {
    let b = value.as_bytes();
    let mut i = 0usize;
    fn skip_ows(b: &[u8], i: &mut usize) {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    }
    fn token(value: &str, i: &mut usize) -> Option<String> {
        let b = value.as_bytes();
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (start != *i).then(|| value[start..*i].to_string())
    }
    let mut cd = ContentDisposition::default();
    skip_ows(b, &mut i);
    let save = i;
    if let Some(t) = token(value, &mut i) {
        let mut j = i;
        skip_ows(b, &mut j);
        if j < b.len() && b[j] == b'=' {
            i = save; // it was a parameter name, not a disposition type
        } else {
            cd.disposition = Some(t.to_ascii_lowercase());
        }
    }
    let mut need_semicolon = cd.disposition.is_some();
    let mut seen = HashSet::new();
    loop {
        skip_ows(b, &mut i);
        if i == b.len() {
            break;
        }
        if need_semicolon {
            if b[i] != b';' {
                return Err(format!("expected ';' at byte {i} of {value:?}"));
            }
            i += 1;
            skip_ows(b, &mut i);
        }
        need_semicolon = true;
        let name = token(value, &mut i)
            .ok_or_else(|| format!("expected a parameter name at byte {i} of {value:?}"))?
            .to_ascii_lowercase();
        skip_ows(b, &mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("expected '=' after {name:?} in {value:?}"));
        }
        i += 1;
        skip_ows(b, &mut i);
        let quoted = i < b.len() && b[i] == b'"';
        let raw = if quoted {
            i += 1;
            let mut out = Vec::new();
            loop {
                if i >= b.len() {
                    return Err(format!("unterminated quoted-string in {value:?}"));
                }
                match b[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        if i + 1 >= b.len() {
                            return Err(format!("dangling backslash in {value:?}"));
                        }
                        out.push(b[i + 1]);
                        i += 2;
                    }
                    c if c == b'\t' || (c >= 0x20 && c != 0x7f) => {
                        out.push(c);
                        i += 1;
                    }
                    c => return Err(format!("control byte {c:#x} in quoted-string of {value:?}")),
                }
            }
            String::from_utf8(out).map_err(|e| e.to_string())?
        } else {
            token(value, &mut i)
                .ok_or_else(|| format!("expected a value for {name:?} in {value:?}"))?
        };
        if !seen.insert(name.clone()) {
            return Err(format!("duplicate parameter {name:?} in {value:?}"));
        }
        match name.as_str() {
            "filename" => cd.filename = Some(raw),
            "filename*" => {
                if quoted {
                    return Err(format!("filename* must not be a quoted-string: {value:?}"));
                }
                cd.filename_star = Some(decode_ext_value(&raw)?);
            }
            _ => {}
        }
    }
    Ok(cd)
}

/// Decodes an RFC 8187 ext-value (`UTF-8'lang'pct-encoded`).
fn decode_ext_value(raw: &str) -> Result<String, String> {
    let mut pieces = raw.splitn(3, '\'');
    let charset = pieces.next().unwrap_or_default();
    let _lang = pieces
        .next()
        .ok_or_else(|| format!("ext-value without language part: {raw:?}"))?;
    let encoded = pieces
        .next()
        .ok_or_else(|| format!("ext-value without value part: {raw:?}"))?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return Err(format!("ext-value charset is not UTF-8: {raw:?}"));
    }
    let b = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = encoded
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {raw:?}"))?;
            out.push(h);
            i += 3;
        } else if is_attr_char(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return Err(format!(
                "byte {:?} must be percent-encoded in {raw:?}",
                b[i] as char
            ));
        }
    }
    String::from_utf8(out).map_err(|e| format!("filename* is not UTF-8: {e}"))
}

/// Checks a download's Content-Disposition: exactly one header, ASCII, well
/// formed, naming `expected` (through `filename*` when it is not plain
/// ASCII).
pub fn assert_disposition_names(headers: &HeaderMap, expected: &str) -> ContentDisposition {
    let all: Vec<_> = headers.get_all("content-disposition").iter().collect();
    assert_eq!(
        all.len(),
        1,
        "expected exactly one Content-Disposition, got {all:?}"
    );
    let text = all[0].to_str().unwrap_or_else(|_| {
        panic!(
            "Content-Disposition has raw non-ASCII or control bytes: {:?}",
            String::from_utf8_lossy(all[0].as_bytes())
        )
    });
    let cd = parse_content_disposition(text)
        .unwrap_or_else(|e| panic!("Content-Disposition {text:?} is malformed: {e}"));
    assert_eq!(
        cd.effective_filename(),
        Some(expected),
        "Content-Disposition {text:?} does not name {expected:?}"
    );
    if !expected.is_ascii() {
        assert!(
            text.contains("filename*=UTF-8''") || text.contains("filename*=utf-8''"),
            "non-ASCII name needs filename*=UTF-8''...: {text:?}"
        );
    }
    cd
}

/// One part of a `multipart/byteranges` body.
#[derive(Debug)]
pub struct BytePart {
    pub content_range: String,
    pub data: Vec<u8>,
}

/// Splits a `multipart/byteranges` body into its parts.
pub fn parse_byteranges(content_type: &str, body: &[u8]) -> Result<Vec<BytePart>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .ok_or_else(|| format!("no boundary in {content_type:?}"))?
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}").into_bytes();
    let next_delim = format!("\r\n--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or("no opening delimiter")? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(format!("no CRLF after delimiter at byte {pos}"));
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part head not terminated")?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|e| e.to_string())?;
        let content_range = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-range"))
            .map(|(_, v)| v.trim().to_string())
            .ok_or_else(|| format!("part without Content-Range: {head:?}"))?;
        let data_start = head_end + 4;
        let data_end = find(body, &next_delim, data_start).ok_or("part not terminated")?;
        parts.push(BytePart {
            content_range,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + next_delim.len();
    }
}

#[cfg(test)]
mod self_tests {
    use super::*;

    /// The disposition parser accepts what RFC 6266 allows and rejects
    /// headers a hostile filename broke.
    #[test]
    fn content_disposition_parser() {
        let cd = parse_content_disposition(
            "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf",
        )
        .unwrap();
        assert_eq!(cd.effective_filename(), Some("Résumé.pdf"));
        let cd = parse_content_disposition(r#"filename="a\"b.txt""#).unwrap();
        assert_eq!(cd.filename.as_deref(), Some("a\"b.txt"));
        assert!(parse_content_disposition(r#"inline; filename="a"b.txt""#).is_err());
        assert!(parse_content_disposition("inline; filename=\"x\"; filename=\"y\"").is_err());
        assert!(parse_content_disposition("inline; filename*=UTF-8''a b").is_err());
    }
}
