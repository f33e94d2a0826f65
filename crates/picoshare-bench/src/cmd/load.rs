//! `picoshare-bench load`: many parallel clients for a bounded time
//! ([`crate::run::load`]).

use std::process::ExitCode;

use anyhow::Context;

use super::{checked_machine, default_out};
use crate::cli::LoadArgs;
use crate::plan::units;
use crate::run::load;

pub(crate) async fn run(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let duration = units::parse_duration(&a.duration)?;
    let mix = load::parse_mix(&a.mix)?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
    let data_dir = a.data_dir.canonicalize()?;
    let binary = super::given_binary(&a.binary)?;
    let need = units::parse_size(&a.need, units::Bare::Bytes)?;
    let environment = checked_machine(&data_dir, need, a.quiet, a.force)?;
    let seed = super::seed_or_clock(a.seed);
    let out = a.out.clone().unwrap_or_else(|| default_out("load"));
    let result = load::run(load::LoadOptions {
        binary,
        server_args: a.server_args.split_whitespace().map(String::from).collect(),
        uploaders: a.uploaders,
        downloaders: a.downloaders,
        duration,
        mix,
        preload: a.preload,
        max_uploads: a.max_uploads,
        seed,
        data_dir,
        out_dir: out.clone(),
        command: std::env::args().collect(),
        environment,
        progress: !a.quiet,
    })
    .await?;
    let md = crate::report::load::markdown(&result);
    std::fs::write(out.join("load.md"), &md)
        .with_context(|| format!("cannot write {}", out.join("load.md").display()))?;
    print!("{md}");
    eprintln!(
        "wrote {} and {}",
        out.join("load.json").display(),
        out.join("load.md").display()
    );
    Ok(if !result.completed {
        ExitCode::from(130)
    } else if result.error_count > 0 || !result.server_alive_at_end {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
