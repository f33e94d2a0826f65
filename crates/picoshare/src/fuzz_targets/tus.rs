//! The `tus` target: the tus protocol's request headers (sizes, metadata,
//! checksums).

use super::lines;
use crate::http::proto::tus_headers;

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
