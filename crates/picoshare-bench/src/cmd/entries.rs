//! `picoshare-bench entries`: a server with many files ([`crate::run::entries`]).

use std::process::ExitCode;

use super::{block_plan, finish_block_run};
use crate::cli::EntriesArgs;
use crate::plan::units;
use crate::run::entries;

pub(crate) async fn run(a: EntriesArgs) -> anyhow::Result<ExitCode> {
    let counts = a
        .counts
        .iter()
        .map(|s| units::parse_count(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(counts.iter().all(|&n| n >= 10), "--counts are at least 10");
    let history = units::parse_count(&a.history)?;
    let plan = block_plan(&a.common, "entries")?;
    let out = plan.out_dir.clone();
    let results = entries::run(entries::EntriesOptions {
        plan,
        counts,
        history,
    })
    .await?;
    finish_block_run(&results, &out)
}
