//! picoshare-bench as a library: the result format, statistics, reports,
//! charts and comparisons, shared by the binary and the integration tests.
#![warn(missing_docs)]

pub mod compare;
pub mod report;
pub mod results;
pub mod stats;
pub mod svg;
pub mod cgroup;
pub mod doctor;
pub mod client;
pub mod files;
pub mod runner;
pub mod server;
pub mod variants;
