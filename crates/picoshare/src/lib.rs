//! PicoShare in Rust: a minimalist, self-hosted file-sharing server that keeps
//! everything in one SQLite file and opens the original PicoShare's databases in place.
//!
//! # Layout
//! - [`config`]: command-line flags and environment variables.
//! - [`server`]: building, running and stopping the HTTP server.
//! - [`http`]: routes, handlers and the mapping to status codes; the only module
//!   that knows HTTP.
//! - [`store`]: storage, the only module that knows SQL: one model and two
//!   backends (one SQLite file, or PostgreSQL with S3) behind one handle.
//! - [`validate`], [`ids`], [`useragent`]: input rules, identifiers and the
//!   User-Agent classifier of the download history; pure functions.
//! - [`clock`]: the injectable source of "now".
//! - [`gc`]: the periodic garbage collection of expired files.
//! - `fuzz_targets` (tests and the `fuzzing` feature only): the fuzz targets of
//!   the parsers of untrusted input, shared by `cargo fuzz` and the replay tests.

pub mod clock;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_targets;
pub mod gc;
pub mod http;
pub mod ids;
pub mod server;
pub mod store;
pub mod useragent;
pub mod validate;
