//! picoshare-bench as a library: the result format, statistics, reports,
//! charts and comparisons, shared by the binary and the integration tests.
#![warn(missing_docs)]

pub mod analysis;
pub mod calibrate;
pub mod cgroup;
pub mod client;
pub mod compare;
pub mod counting;
pub mod disk;
pub mod doctor;
pub mod entries;
pub mod files;
pub mod load;
pub mod paired;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod sections;
pub mod server;
pub mod small;
pub mod stats;
pub mod sut;
pub mod svg;
pub mod variants;
