//! `picoshare-bench`: the performance test suite for PicoShare-compatible servers.
//!
//! Subcommands: `run` (measure a matrix and write results, report and charts),
//! `calibrate` (what this machine lets the bench see: A/A and a planted
//! slowdown), `load` (many parallel clients for a bounded time), `small`
//! (many small files over keep-alive connections), `entries` (a server with
//! many files), `stall` (how long downloads stall during a large upload),
//! `report` (rebuild report and charts from a result file),
//! `compare` (two result files) and `doctor` (check the machine before
//! measuring). This file only parses the command line and dispatches: the
//! subcommands are in the library's `cmd` module.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    picoshare_bench::cmd::dispatch(picoshare_bench::cli::Cli::parse()).await
}
