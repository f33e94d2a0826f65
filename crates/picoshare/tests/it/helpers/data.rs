//! Test data: seeded pseudo-random bytes, SHA-256 digests, hex, sizes in MiB
//! and times in the form the server stores.

use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// `len` pseudo-random bytes, the same for the same seed (splitmix64: fast
/// even in a debug build, and incompressible enough for storage tests).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = vec![0u8; len];
    // Filled in place: in an unoptimized build, growing the vector by 8
    // bytes at a time cost half again as much.
    for word in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bytes = z.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn mib(n: usize) -> usize {
    n * MIB
}

/// Now + `offset`, in the RFC 3339 form the server stores (UTC, seconds).
pub fn rfc3339_from_now(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
