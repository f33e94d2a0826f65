//! `picoshare-bench compare`: two result files side by side
//! ([`crate::report::compare`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::read_results;
use crate::report::compare;

pub(crate) fn run(a: &PathBuf, b: &PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let md = compare::compare_files(&read_results(a)?, &read_results(b)?);
    match out {
        Some(p) => {
            std::fs::write(&p, md).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}
