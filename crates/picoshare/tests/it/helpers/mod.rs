//! The harness every test module shares.
//!
//! It starts the real `picoshare` binary as a child process (the contract with
//! the server: `--db PATH --listen 127.0.0.1:0`, secret in `PS_SHARED_SECRET`,
//! one `picoshare listening on http://127.0.0.1:PORT` line on stdout when
//! ready), talks to it over HTTP, and looks inside its SQLite database with a
//! read-only connection. Nothing here imports the server's own code: the
//! tests see the server only as a user or an HTTP client would.
//!
//! With `PICOSHARE_TEST_STORAGE=remote` the same servers keep their data in
//! PostgreSQL and S3 instead (see [`remote_storage`]); the database helpers
//! then read the PostgreSQL schema of the test's database path.
//!
//! One file per part, all re-exported here, so a test module takes the whole
//! harness with `use crate::helpers::*;`:
//! - [`server`]: starting and stopping the server ([`TestServer`],
//!   [`ServerOptions`], [`run_until_exit`] for a server that must refuse to start).
//! - [`http`]: HTTP clients, the server's login, upload and download
//!   conveniences, and checks of replies (errors, entry IDs, cookies).
//! - [`multipart`]: `multipart/form-data` bodies built byte by byte.
//! - [`data`]: test data: seeded random bytes, hashes, sizes, times.
//! - [`db`]: looking inside the store (the SQLite file, or a snapshot of the
//!   PostgreSQL tables) and setting up states no request can make.
//! - [`raw_http`]: raw HTTP over TCP, for what the HTTP client hides.
//! - [`parsers`]: strict parsers of Content-Disposition and
//!   `multipart/byteranges` replies.
//! - [`original_db`]: the database written by the original Go server.
//! - [`litestream`]: the real Litestream, replicating beside a server and
//!   restoring.
//! - [`nginx`]: a real reverse proxy (Debian's nginx) in front of the server.
//! - [`strace`]: `strace` attached to the server, and the calls it logged.
//!
//! The constants tests share (the secret, expirations, the shape of IDs) are
//! below.

mod data;
mod db;
mod http;
mod litestream;
mod multipart;
mod nginx;
mod original_db;
mod parsers;
mod raw_http;
mod server;
mod strace;

pub use data::*;
pub use db::*;
pub use http::*;
pub use litestream::*;
pub use multipart::*;
pub use nginx::*;
pub use original_db::*;
pub use parsers::*;
pub use raw_http::*;
pub use server::*;
pub use strace::*;

/// The admin passphrase every test server gets unless a test says otherwise.
pub const SECRET: &str = "it-secret correct horse battery staple";
/// An expiration far enough away that nothing in a test run expires.
pub const FAR_FUTURE: &str = "2040-01-01T00:00:00Z";
/// How PicoShare stores "never expires".
pub const NEVER_EXPIRES: &str = "2999-12-31T00:00:00Z";
/// Entry IDs are drawn from this alphabet (no look-alike characters).
pub const ID_ALPHABET: &str = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// The chunk size of databases written by the Go server.
pub const GO_CHUNK_SIZE: usize = 327_680;
/// A well-formed entry ID that no test ever uploads.
pub const UNKNOWN_ID: &str = "aaaaaaaaaa";
