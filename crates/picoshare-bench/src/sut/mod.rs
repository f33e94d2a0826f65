//! The server under test and the machine it runs on: starting and stopping
//! the server, the HTTP client that measures it, its memory and disk limits
//! (cgroups), and the one reader of `/proc`.

pub mod cgroup;
pub mod client;
pub mod disk;
pub mod mounts;
pub mod proc;
pub mod server;

/// A small text file (in `/proc` or `/sys`), trimmed; `None` if missing or
/// empty.
pub(crate) fn read_trimmed(path: impl AsRef<std::path::Path>) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
