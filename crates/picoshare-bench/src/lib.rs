//! picoshare-bench as a library: everything the binary runs, laid out by
//! role (see ARCHITECTURE.md): [`cli`] and [`cmd`] (the subcommands),
//! `plan` (what to run), `run` (running it), `sut` (the server under
//! test and the machine), [`results`] (the result file), `stats`,
//! `analysis` (a result file into rows) and [`report`].
#![warn(missing_docs)]
//!
//! Public is what the binary and the integration tests use: the command
//! line and its dispatch, the doctor, the result file, the load's result,
//! and the report and comparison of result files. Everything else is
//! `pub(crate)`.

pub(crate) mod analysis;
pub mod cli;
pub mod cmd;
pub(crate) mod plan;
pub mod report;
pub mod results;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod sut;
