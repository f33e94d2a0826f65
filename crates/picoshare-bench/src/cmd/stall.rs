//! `picoshare-bench stall`: how long downloads stall while a large upload
//! runs ([`crate::run::stall`]); the figures go into `results.json` and the
//! report.

use std::process::ExitCode;

use anyhow::Context;

use super::{checked_machine, default_out, given_binary};
use crate::cli::StallArgs;
use crate::plan::units;
use crate::run::stall;

pub(crate) async fn run(a: StallArgs) -> anyhow::Result<ExitCode> {
    let upload_mib = units::parse_size_mib(&a.upload_size)?;
    let download_mib = units::parse_size_mib(&a.download_size)?;
    anyhow::ensure!(
        upload_mib >= 1 && download_mib >= 1,
        "--upload-size and --download-size are at least 1 MiB"
    );
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
    let data_dir = a.data_dir.canonicalize()?;
    let binary = given_binary(&a.binary)?;
    // The test files (if not made yet) and the database holding both.
    let need = (upload_mib + download_mib) << 21;
    let environment = checked_machine(&data_dir, need, a.quiet, a.force)?;
    let out = a.out.clone().unwrap_or_else(|| default_out("stall"));
    let results = stall::run(stall::StallOptions {
        binary,
        server_args: a.server_args.split_whitespace().map(String::from).collect(),
        upload_mib,
        download_mib,
        data_dir,
        out_dir: out.clone(),
        command: std::env::args().collect(),
        environment,
    })
    .await?;
    let written = crate::report::write_all(&results, &out)?;
    print!("{}", crate::report::stall::stall_markdown(&results));
    eprintln!("wrote:");
    for p in written {
        eprintln!("  {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
