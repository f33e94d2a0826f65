//! Fuzz targets for the parsers of untrusted input, written once and run two ways:
//!
//! - by `cargo fuzz` (nightly, libFuzzer): each `fuzz/fuzz_targets/NAME.rs` is a
//!   one-line wrapper around the function of the same name here, written in
//!   `NAME.rs` of this folder (`scripts/fuzz` runs them all for a bounded time);
//! - by `cargo test` on the stable toolchain: the tests of `replay.rs` replay
//!   the committed seed corpus (`fuzz/corpus/NAME/`) and a few thousand seeded
//!   random mutations of it through the same functions, so CI exercises every
//!   target without nightly or libFuzzer.
//!
//! Every target takes arbitrary bytes, must not panic, and asserts the
//! properties its parser promises (ranges inside the file, header values without
//! control characters, round trips, ...). The module is compiled for tests and
//! with the `fuzzing` feature only; it is not part of the server.
//!
//! # Adding a target
//!
//! 1. write `pub fn NAME(data: &[u8])` in `NAME.rs` here, asserting the
//!    parser's properties, and export it below;
//! 2. add `("NAME", NAME)` to [`TARGETS`];
//! 3. add `fuzz/fuzz_targets/NAME.rs` (copy another wrapper) and its `[[bin]]`
//!    in `fuzz/Cargo.toml`;
//! 4. put a few valid and invalid inputs in `fuzz/corpus/NAME/`, one per file.
//!
//! `scripts/fuzz` and the replay tests find it from there; the tests fail if
//! one of the four pieces is missing.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};

mod conditional;
mod expiration;
mod filename;
mod lifetime;
mod multipart;
mod proxy;
mod range;
#[cfg(test)]
mod replay;
mod tus;

pub use conditional::conditional;
pub use expiration::expiration;
pub use filename::filename;
pub use lifetime::lifetime;
pub use multipart::multipart;
pub use proxy::proxy;
pub use range::range;
pub use tus::tus;

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

/// The input cut into at most `n` lines (the last one keeps any further
/// newlines), each read as lossy UTF-8: the targets that read several
/// headers take one per line.
fn lines(data: &[u8], n: usize) -> Vec<Cow<'_, str>> {
    data.splitn(n, |&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .collect()
}
