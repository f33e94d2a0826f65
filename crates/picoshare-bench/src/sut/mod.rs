//! The server under test and the machine it runs on: starting and stopping
//! the server, the HTTP client that measures it, its memory and disk limits
//! (cgroups), and the one reader of `/proc`.

pub mod cgroup;
pub mod client;
pub mod disk;
pub mod mounts;
pub mod proc;
pub mod server;
