//! `picoshare-bench calibrate`: the base server against its A/A twin and a
//! planted slowdown, repeated; the summary is [`crate::report::calibration`].

use std::process::ExitCode;

use anyhow::bail;

use super::{calibration_path, parse_variants, prepare};
use crate::cli::CalibrateArgs;
use crate::plan::options::{
    self, parse_disk_limits, parse_steal_gap, parse_wait, Blocks, RunOptions,
};
use crate::plan::{files, units, variants};
use crate::report::{self, calibration};
use crate::results::ConfigKey;

pub(crate) async fn run(a: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let size = units::parse_size_mib(&a.size)?;
    let disk = parse_disk_limits(std::slice::from_ref(&a.disk_limit))?[0];
    anyhow::ensure!(
        a.plant > 0.0 && a.plant < 50.0,
        "--plant is a percentage between 0 and 50"
    );
    anyhow::ensure!(a.repeat >= 1, "--repeat must be at least 1");
    anyhow::ensure!(
        a.min_iterations >= 2 && a.max_iterations >= a.min_iterations,
        "--min-iterations must be at least 2 and at most --max-iterations"
    );
    let files_dir = a.common.places.data_dir.join("files");
    let need = options::space_needed(size, 1)
        + if files::path_for(&files_dir, size).exists() {
            0
        } else {
            size << 20
        };
    let p = prepare(&a.common, need, disk.is_some())?;
    let base = parse_variants(
        std::slice::from_ref(&a.variant),
        &a.common.binary.binary,
        &p.data_dir,
    )?
    .remove(0);
    super::no_reference(std::slice::from_ref(&base), "calibrate")?;
    if base.info.kind == "url" {
        bail!("calibrate starts its own servers: give a build (args:, bin: or git:), not a url:");
    }
    let twins = variants::self_check(&base, a.plant / 100.0);
    let variants = vec![base, twins[0].clone(), twins[1].clone()];
    let command: Vec<String> = std::env::args().collect();
    let started = std::time::Instant::now();
    let mut repeats = Vec::new();
    for k in 1..=a.repeat {
        eprintln!("calibration run {k} of {}", a.repeat);
        let out = p.out.join(format!("run-{k}"));
        let run_started = std::time::Instant::now();
        let opts = RunOptions {
            variants: variants.clone(),
            configs: vec![ConfigKey {
                size_mib: size,
                memory_limit_mib: None,
                disk_limit_mbps: disk,
            }],
            workloads: a.common.workloads.clone(),
            blocks: Blocks::Adaptive {
                target: a.target_mde / 100.0,
                min: a.min_iterations,
                max: a.max_iterations,
            },
            max_time: None,
            warmup: a.common.pacing.warmup,
            wait_idle: parse_wait(&a.common.pacing.wait_idle)?,
            steal_gap: parse_steal_gap(&a.common.steal_gap.steal_gap)?,
            concurrency: 1,
            order: a.common.order,
            seed: p.seed.wrapping_add(u64::from(k)),
            data_dir: p.data_dir.clone(),
            out_dir: out.clone(),
            url_passphrase: None,
            range_count: 64,
            range_len: 1 << 20,
            count_blocks: 0,
            count_size_mib: 0,
            command: command.clone(),
            environment: p.environment.clone(),
            limit_method: p.limit_method.clone(),
            disk_method: p.disk_method.clone(),
            calibration: None,
            progress: !a.common.guard.quiet,
        };
        let results = crate::run::run(opts).await?;
        report::write_all(&results, &out)?;
        let interrupted = results.interrupted;
        repeats.push((results, run_started.elapsed().as_secs_f64()));
        if interrupted {
            break;
        }
    }
    let summary = calibration::summarize(
        &repeats,
        a.plant / 100.0,
        command,
        started.elapsed().as_secs_f64(),
    );
    std::fs::create_dir_all(&p.out)?;
    let md = calibration::markdown(&summary);
    std::fs::write(p.out.join("calibration.md"), &md)?;
    std::fs::write(
        p.out.join("calibration.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    std::fs::write(
        calibration_path(&p.data_dir),
        serde_json::to_string_pretty(&summary.record)? + "\n",
    )?;
    print!("{md}");
    eprintln!(
        "wrote {} and {} (and {} for later reports)",
        p.out.join("calibration.md").display(),
        p.out.join("calibration.json").display(),
        calibration_path(&p.data_dir).display()
    );
    Ok(if repeats.iter().any(|(r, _)| r.interrupted) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
