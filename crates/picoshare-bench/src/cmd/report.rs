//! `picoshare-bench report`: the report, CSV files and charts rebuilt from a
//! result file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::read_results;
use crate::report;

pub(crate) fn run(path: &PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let results = read_results(path)?;
    let dir = out.unwrap_or_else(|| path.parent().map(PathBuf::from).unwrap_or_default());
    for p in report::write_all(&results, &dir)? {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
