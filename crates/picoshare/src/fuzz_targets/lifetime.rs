//! The `lifetime` target: guest-link file lifetimes in Go's duration syntax.

use super::time_from;
use crate::store::model::GuestFileLifetime;

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
