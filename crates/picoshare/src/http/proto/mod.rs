//! Pure protocol logic: parsers and writers of HTTP (and tus, and ZIP) that
//! know nothing of the server's state, each with unit tests, and fuzzed
//! where they read untrusted input (`crate::fuzz_targets`).

pub(crate) mod conditional;
pub(crate) mod disposition;
pub(crate) mod mime;
pub(crate) mod multipart_ranges;
pub(crate) mod part_filename;
pub(crate) mod proxy;
pub(crate) mod ranges;
pub(crate) mod tus_headers;
pub(crate) mod zipstream;
