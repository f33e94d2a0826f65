//! `picoshare-bench small`: many small files over keep-alive connections
//! ([`crate::run::small`]).

use std::process::ExitCode;

use anyhow::bail;

use super::{block_setup, finish_block_run};
use crate::cli::SmallArgs;
use crate::plan::options::parse_steal_gap;
use crate::plan::units;
use crate::run::small;

pub(crate) async fn run(a: SmallArgs) -> anyhow::Result<ExitCode> {
    let sizes = a
        .sizes
        .iter()
        .map(|s| units::parse_size(s, units::Bare::Bytes))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        a.connections.iter().all(|&c| c >= 1),
        "--connections are at least 1"
    );
    anyhow::ensure!(
        a.seconds > 0.0 && a.seconds.is_finite(),
        "--seconds must be positive"
    );
    let setup = block_setup(&a.common, "small")?;
    if setup.variants.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }
    let results = small::run(small::SmallOptions {
        variants: setup.variants,
        sizes,
        connections: a.connections.clone(),
        phase: std::time::Duration::from_secs_f64(a.seconds),
        blocks: a.common.blocks,
        warmup: a.common.pacing.warmup,
        wait_idle: setup.wait_idle,
        steal_gap: parse_steal_gap(&a.steal_gap.steal_gap)?,
        seed: setup.seed,
        data_dir: setup.data_dir,
        out_dir: setup.out.clone(),
        url_passphrase: a.url_passphrase.clone(),
        command: std::env::args().collect(),
        environment: setup.environment,
        progress: true,
    })
    .await?;
    finish_block_run(&results, &setup.out)
}
