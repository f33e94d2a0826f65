//! `picoshare-bench entries`: a server with many files ([`crate::run::entries`]).

use std::process::ExitCode;

use super::{block_setup, finish_block_run};
use crate::cli::EntriesArgs;
use crate::run::entries;

pub(crate) async fn run(a: EntriesArgs) -> anyhow::Result<ExitCode> {
    let counts = a
        .counts
        .iter()
        .map(|s| entries::parse_count(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(counts.iter().all(|&n| n >= 10), "--counts are at least 10");
    let history = entries::parse_count(&a.history)?;
    let setup = block_setup(&a.common, "entries")?;
    let results = entries::run(entries::EntriesOptions {
        variants: setup.variants,
        counts,
        history,
        blocks: a.common.blocks,
        warmup: a.common.pacing.warmup,
        wait_idle: setup.wait_idle,
        seed: setup.seed,
        data_dir: setup.data_dir,
        out_dir: setup.out.clone(),
        command: std::env::args().collect(),
        environment: setup.environment,
    })
    .await?;
    finish_block_run(&results, &setup.out)
}
