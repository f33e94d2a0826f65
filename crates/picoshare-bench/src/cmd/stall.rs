//! `picoshare-bench stall`: how long downloads stall while a large upload
//! runs ([`crate::run::stall`]); the figures go into `results.json` and the
//! report.

use std::process::ExitCode;

use super::{checked_machine, created_data_dir, given_binary, out_dir};
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
    let data_dir = created_data_dir(&a.places)?;
    let binary = given_binary(&a.binary.binary)?;
    // The test files (if not made yet) and the database holding both.
    let need = (upload_mib + download_mib) << 21;
    let environment = checked_machine(&data_dir, need, &a.guard)?;
    let out = out_dir(&a.places, "stall");
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
