//! Pure protocol logic: parsers and writers of HTTP (and tus, and ZIP) that
//! know nothing of the server's state, each with unit tests, and fuzzed
//! where they read untrusted input (`crate::fuzz_targets`).

pub mod conditional;
pub mod disposition;
pub mod mime;
pub mod multipart_ranges;
pub mod proxy;
pub mod ranges;
pub mod tus_headers;
pub mod zipstream;
