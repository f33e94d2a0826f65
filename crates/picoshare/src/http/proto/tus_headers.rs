//! Parsing of the tus protocol's request headers (pure; fuzzed and unit-tested).
//!
//! The protocol is tus 1.0.0: `Upload-Offset` and `Upload-Length` are plain
//! non-negative decimal integers, `Upload-Metadata` is a comma-separated list
//! of `key base64(value)` pairs, and `Upload-Checksum` is `algorithm
//! base64(digest)`.

use base64::Engine;
use sha1::Digest;

/// The only protocol version this server speaks.
pub(crate) const TUS_VERSION: &str = "1.0.0";

/// The extensions this server implements, as `Tus-Extension` lists them.
pub(crate) const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,termination,expiration,checksum";

/// Checksum algorithms accepted in `Upload-Checksum`.
pub(crate) const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";

/// The largest offset or length accepted (SQLite integers are signed 64-bit).
const MAX_BYTES: u64 = i64::MAX as u64;

/// Parses `Upload-Offset` or `Upload-Length`. Errors name the header.
pub(crate) fn parse_size(header: &str, raw: &str) -> Result<u64, String> {
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{header} must be a whole number of bytes, not {:?}",
            shorten(raw)
        ));
    }
    match raw.parse::<u64>() {
        Ok(n) if n <= MAX_BYTES => Ok(n),
        _ => Err(format!("{header} is too large")),
    }
}

/// One `Upload-Metadata` pair; a key may come without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataPair {
    /// The key.
    pub(crate) key: String,
    /// The decoded value, if any.
    pub(crate) value: Option<Vec<u8>>,
}

/// Largest `Upload-Metadata` header accepted.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Parses `Upload-Metadata`. Keys must be unique, non-empty and free of
/// spaces and commas; values must be base64 (padding optional).
pub(crate) fn parse_metadata(raw: &str) -> Result<Vec<MetadataPair>, String> {
    if raw.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes"
        ));
    }
    let mut pairs: Vec<MetadataPair> = Vec::new();
    if raw.trim().is_empty() {
        return Ok(pairs);
    }
    for item in raw.split(',') {
        let item = item.trim_matches([' ', '\t']);
        let (key, value) = match item.split_once(' ') {
            Some((k, v)) => (k, Some(v.trim_matches([' ', '\t']))),
            None => (item, None),
        };
        if key.is_empty() {
            return Err("Upload-Metadata has an empty key".into());
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "Upload-Metadata key {:?} has characters keys may not contain",
                shorten(key)
            ));
        }
        if pairs.iter().any(|p| p.key == key) {
            return Err(format!("Upload-Metadata has the key {key:?} twice"));
        }
        let value =
            match value {
                None => None,
                Some(v) => Some(decode_base64(v).ok_or_else(|| {
                    format!("Upload-Metadata value of {key:?} is not valid base64")
                })?),
            };
        pairs.push(MetadataPair {
            key: key.to_owned(),
            value,
        });
    }
    Ok(pairs)
}

/// The value of the first of `keys` present in `pairs`, as text.
pub(crate) fn metadata_text(
    pairs: &[MetadataPair],
    keys: &[&str],
) -> Result<Option<String>, String> {
    for key in keys {
        if let Some(p) = pairs.iter().find(|p| p.key == *key) {
            let bytes = p.value.clone().unwrap_or_default();
            return String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("Upload-Metadata value of {key:?} is not UTF-8 text"));
        }
    }
    Ok(None)
}

fn decode_base64(v: &str) -> Option<Vec<u8>> {
    let e = &base64::engine::general_purpose::STANDARD;
    e.decode(v).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(v)
            .ok()
    })
}

/// A checksum algorithm of `Upload-Checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// Why an `Upload-Checksum` header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChecksumError {
    /// The algorithm is not one of [`CHECKSUM_ALGORITHMS`].
    Unsupported(String),
    /// The header is malformed.
    Malformed(String),
}

impl std::fmt::Display for ChecksumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChecksumError::Unsupported(a) => write!(
                f,
                "checksum algorithm {:?} is not supported (use one of {CHECKSUM_ALGORITHMS})",
                shorten(a)
            ),
            ChecksumError::Malformed(why) => write!(f, "Upload-Checksum {why}"),
        }
    }
}

/// An expected checksum: the algorithm and the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checksum {
    /// Algorithm.
    pub(crate) algorithm: Algorithm,
    /// Expected digest.
    pub(crate) digest: Vec<u8>,
}

/// Parses `Upload-Checksum: <algorithm> <base64 digest>`.
pub(crate) fn parse_checksum(raw: &str) -> Result<Checksum, ChecksumError> {
    let (name, digest) = raw
        .trim()
        .split_once(' ')
        .ok_or_else(|| ChecksumError::Malformed("must be an algorithm and a digest".into()))?;
    let (algorithm, len) = match name.to_ascii_lowercase().as_str() {
        "sha1" => (Algorithm::Sha1, 20),
        "sha256" => (Algorithm::Sha256, 32),
        _ => return Err(ChecksumError::Unsupported(name.to_owned())),
    };
    let digest = decode_base64(digest.trim())
        .ok_or_else(|| ChecksumError::Malformed("digest is not valid base64".into()))?;
    if digest.len() != len {
        return Err(ChecksumError::Malformed(format!(
            "digest has {} bytes; {name} digests have {len}",
            digest.len()
        )));
    }
    Ok(Checksum { algorithm, digest })
}

/// Computes a checksum over a request body as it streams in.
pub(crate) enum Hasher {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// Adds bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// Whether the bytes seen match `expected`.
    pub(crate) fn matches(self, expected: &[u8]) -> bool {
        let got: Vec<u8> = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        got.len() == expected.len() && subtle::ConstantTimeEq::ct_eq(&got[..], expected).into()
    }
}

/// Encodes a metadata value the way clients do (for tests and the UI's docs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encode_base64(value: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_plain_decimal() {
        assert_eq!(parse_size("Upload-Offset", "0"), Ok(0));
        assert_eq!(parse_size("Upload-Offset", "1048576"), Ok(1 << 20));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "0x10",
            "1e3",
            "99999999999999999999",
        ] {
            let e = parse_size("Upload-Offset", bad).unwrap_err();
            assert!(e.starts_with("Upload-Offset"), "{bad:?}: {e}");
        }
        assert!(parse_size("Upload-Length", "9223372036854775808").is_err());
        assert_eq!(
            parse_size("Upload-Length", "9223372036854775807"),
            Ok(i64::MAX as u64)
        );
    }

    #[test]
    fn metadata_pairs_decode() {
        let pairs = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            metadata_text(&pairs, &["name", "filename"])
                .unwrap()
                .as_deref(),
            Some("world_domination_plan.pdf")
        );
        assert_eq!(pairs[1].value, None);
        assert_eq!(
            metadata_text(&pairs, &["is_confidential"])
                .unwrap()
                .as_deref(),
            Some("")
        );
        assert_eq!(metadata_text(&pairs, &["missing"]).unwrap(), None);
        // Padding is optional; spaces around items are tolerated.
        let pairs = parse_metadata(" a YQ , b YmI").unwrap();
        assert_eq!(pairs[0].value.as_deref(), Some(&b"a"[..]));
        assert_eq!(pairs[1].value.as_deref(), Some(&b"bb"[..]));
        assert!(parse_metadata("").unwrap().is_empty());
    }

    #[test]
    fn bad_metadata_is_refused_with_a_reason() {
        assert!(parse_metadata("a YQ==,a YQ==")
            .unwrap_err()
            .contains("twice"));
        assert!(parse_metadata("a !!!").unwrap_err().contains("base64"));
        assert!(parse_metadata(",a").unwrap_err().contains("empty key"));
        assert!(parse_metadata("k\u{e9} YQ==")
            .unwrap_err()
            .contains("characters"));
        assert!(parse_metadata(&"a".repeat(MAX_METADATA_BYTES + 1))
            .unwrap_err()
            .contains("longer"));
        let pairs = parse_metadata("filename /w==").unwrap();
        assert!(metadata_text(&pairs, &["filename"])
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn checksums_parse_and_verify() {
        // SHA-1 of "hello".
        let c = parse_checksum("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=").unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha1);
        let mut h = Hasher::new(c.algorithm);
        h.update(b"hel");
        h.update(b"lo");
        assert!(h.matches(&c.digest));
        let mut h = Hasher::new(c.algorithm);
        h.update(b"hellO");
        assert!(!h.matches(&c.digest));
        // SHA-256 of "".
        let c = parse_checksum("sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap();
        assert!(Hasher::new(c.algorithm).matches(&c.digest));
        assert!(matches!(
            parse_checksum("md5 AAAA"),
            Err(ChecksumError::Unsupported(_))
        ));
        assert!(matches!(
            parse_checksum("sha1"),
            Err(ChecksumError::Malformed(_))
        ));
        assert!(matches!(
            parse_checksum("sha1 AAAA"),
            Err(ChecksumError::Malformed(_))
        ));
    }
}
