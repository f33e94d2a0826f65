//! `picoshare-bench load`: many parallel clients for a bounded time
//! ([`crate::run::load`]).

use std::process::ExitCode;

use anyhow::Context;

use super::{checked_machine, created_data_dir, out_dir};
use crate::cli::LoadArgs;
use crate::plan::{options, units};
use crate::run::load;

pub(crate) async fn run(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let duration = units::parse_duration(&a.duration)?;
    let mix = options::parse_mix(&a.mix)?;
    let data_dir = created_data_dir(&a.places)?;
    let binary = super::given_binary(&a.binary.binary)?;
    let need = units::parse_size(&a.need, units::Bare::Bytes)?;
    let environment = checked_machine(&data_dir, need, &a.guard)?;
    let seed = super::seed_or_clock(a.seed.seed);
    let out = out_dir(&a.places, "load");
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
        progress: !a.guard.quiet,
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
