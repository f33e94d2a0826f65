//! PicoShare in Rust: a minimalist, self-hosted file-sharing server that keeps
//! everything in one SQLite file and opens the original PicoShare's databases in place.
//!
//! # Layout
//! - [`config`]: command-line flags and environment variables.
//! - [`server`]: building, running and stopping the HTTP server.
//! - [`backup`]: `picoshare backup`, a consistent copy of the live database.
//! - `http`: routes, handlers and the mapping to status codes; the only module
//!   that knows HTTP.
//! - `store`: storage, the only module that knows SQL: one model and two
//!   backends (one SQLite file, or PostgreSQL with S3) behind one handle.
//! - `validate`, `ids`, `useragent`: input rules, identifiers and the
//!   User-Agent classifier of the download history; pure functions.
//! - `clock`: the injectable source of "now".
//! - `gc`: the periodic garbage collection of expired files.
//! - `hooks`: delivery of notifications (webhooks, pushes) from the outbox.
//! - `rollback`: `picoshare rollback-check`, what going back to the original
//!   would expose and lose.
//! - `fuzz_targets` (tests and the `fuzzing` feature only): the fuzz targets of
//!   the parsers of untrusted input, shared by `cargo fuzz` and the replay tests.
//!
//! # What is public
//! The binary (`main.rs`) uses [`config`], [`server`], [`backup`],
//! [`copy_to_remote`] and [`rollback_check`];
//! the fuzz crate (`fuzz/`) uses `fuzz_targets`. Everything else is
//! `pub(crate)` or private, so that the compiler finds what nothing uses
//! (the modules above in code font are private; `cargo doc
//! --document-private-items` shows them).

pub mod backup;
pub(crate) mod clock;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_targets;
pub(crate) mod gc;
pub(crate) mod hooks;
pub(crate) mod http;
pub(crate) mod ids;
pub(crate) mod rollback;
pub mod server;
pub(crate) mod store;
pub(crate) mod useragent;
pub(crate) mod validate;

/// `--copy-to-remote`: copies a SQLite database (ours or the original's)
/// into PostgreSQL and object storage and checks every file.
pub use store::remote::migrate::copy_sqlite as copy_to_remote;

/// `picoshare rollback-check`: what going back to the original PicoShare
/// would expose and lose, as a report for people.
pub use rollback::rollback_check;
