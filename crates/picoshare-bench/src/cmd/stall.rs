//! `picoshare-bench stall`: how long downloads stall while a large upload
//! runs ([`crate::run::stall`]); the figures go into `results.json` and the
//! report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::given_binary;
use crate::cli::StallArgs;
use crate::cmd::doctor;
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
    let environment = doctor::inspect(&data_dir, need);
    if !a.quiet {
        eprint!("{}", doctor::print(&environment));
    }
    if doctor::has_failures(&environment) && !a.force {
        bail!("the doctor found a problem that makes this run impossible or meaningless (see above); fix it, or pass --force");
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(format!(
            "stall-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
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
