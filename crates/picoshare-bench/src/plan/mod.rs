//! What to run: the options of a run and its matrix of configurations, the
//! variants compared, the test files, and the one parser of sizes and
//! durations every option is written in.

pub mod files;
pub mod options;
pub mod units;
pub mod variants;
