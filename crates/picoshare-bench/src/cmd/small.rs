//! `picoshare-bench small`: many small files over keep-alive connections
//! ([`crate::run::small`]).

use std::process::ExitCode;

use anyhow::bail;

use super::{block_plan, finish_block_run};
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
    let plan = block_plan(&a.common, "small")?;
    if plan.variants.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }
    let out = plan.out_dir.clone();
    let results = small::run(small::SmallOptions {
        plan,
        sizes,
        connections: a.connections.clone(),
        phase: std::time::Duration::from_secs_f64(a.seconds),
        steal_gap: parse_steal_gap(&a.steal_gap.steal_gap)?,
        url_passphrase: a.url_passphrase.clone(),
        progress: true,
    })
    .await?;
    finish_block_run(&results, &out)
}
