//! `picoshare-bench run`: a matrix of sizes, memory limits, disk limits and
//! variants, measured in blocks; then the report.

use std::process::ExitCode;

use anyhow::bail;

use super::{load_calibration, parse_variants, prepare};
use crate::cli::RunArgs;
use crate::plan::options::{
    self, matrix, parse_disk_limits, parse_extra_matrix, parse_memory_limits, parse_steal_gap,
    parse_wait, Blocks, RunOptions,
};
use crate::plan::{files, units, variants};
use crate::{report, run};

pub(crate) async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let sizes: Vec<u64> = a
        .sizes
        .iter()
        .map(|s| units::parse_size_mib(s))
        .collect::<anyhow::Result<_>>()?;
    let mut configs = matrix(
        &sizes,
        &parse_memory_limits(&a.memory_limits)?,
        &parse_disk_limits(&a.disk_limits)?,
    );
    for extra in &a.extra_matrix {
        for c in parse_extra_matrix(extra)? {
            if !configs.contains(&c) {
                configs.push(c);
            }
        }
    }
    let range_len = units::parse_size_mib(&a.range_size)? << 20;
    let count_size_mib = units::parse_size_mib(&a.count_size)?;
    let blocks = match a.target_mde {
        Some(pct) => {
            anyhow::ensure!(
                pct > 0.0 && pct < 100.0,
                "--target-mde is a percentage between 0 and 100"
            );
            anyhow::ensure!(
                a.min_iterations >= 2 && a.max_iterations >= a.min_iterations,
                "--min-iterations must be at least 2 and at most --max-iterations"
            );
            Blocks::Adaptive {
                target: pct / 100.0,
                min: a.min_iterations,
                max: a.max_iterations,
            }
        }
        None => {
            anyhow::ensure!(a.iterations >= 1, "--iterations must be at least 1");
            Blocks::Fixed(a.iterations)
        }
    };
    let max_time = a
        .max_time
        .as_deref()
        .map(units::parse_duration)
        .transpose()?;
    anyhow::ensure!(
        a.plant > 0.0 && a.plant < 50.0,
        "--plant is a percentage between 0 and 50"
    );

    let biggest = configs.iter().map(|c| c.size_mib).max().unwrap_or(0);
    let files_dir = super::created_data_dir(&a.common.places)?.join("files");
    let mut all_sizes: Vec<u64> = configs.iter().map(|c| c.size_mib).collect();
    all_sizes.sort_unstable();
    all_sizes.dedup();
    let files_bytes: u64 = all_sizes
        .iter()
        .filter(|s| !files::path_for(&files_dir, **s).exists())
        .map(|s| s << 20)
        .sum();
    let need = options::space_needed(biggest, a.concurrency) + files_bytes;
    let any_disk_limit = configs.iter().any(|c| c.disk_limit_mbps.is_some());
    let p = prepare(&a.common, need, any_disk_limit)?;

    let specs = if a.variants.is_empty() {
        vec!["default=".to_owned()]
    } else {
        a.variants.clone()
    };
    let mut vs = parse_variants(&specs, &a.common.binary.binary, &p.data_dir)?;
    if vs.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }
    if vs.iter().any(|v| v.target == variants::Target::Reference) {
        check_reference(&a, &configs, &vs)?;
    }
    if a.self_check {
        let twins = variants::self_check(&vs[0], a.plant / 100.0);
        vs.extend(twins);
    }
    if a.count_only {
        configs.clear();
    }
    let opts = RunOptions {
        variants: vs,
        configs,
        workloads: a.common.workloads.clone(),
        blocks,
        max_time,
        warmup: a.common.pacing.warmup,
        wait_idle: parse_wait(&a.common.pacing.wait_idle)?,
        steal_gap: parse_steal_gap(&a.common.steal_gap.steal_gap)?,
        concurrency: a.concurrency.max(1),
        order: a.common.order,
        seed: p.seed,
        data_dir: p.data_dir.clone(),
        out_dir: p.out.clone(),
        url_passphrase: a.url_passphrase.clone(),
        range_count: a.range_count.max(1),
        range_len,
        count_blocks: if a.count_instructions || a.count_only {
            a.count_blocks.max(1)
        } else {
            0
        },
        count_size_mib,
        command: std::env::args().collect(),
        environment: p.environment,
        limit_method: p.limit_method,
        disk_method: p.disk_method,
        calibration: load_calibration(&p.data_dir),
        progress: !a.common.guard.quiet,
    };
    let started = std::time::Instant::now();
    let results = run::run(opts).await?;
    let written = report::write_all(&results, &p.out)?;
    if a.remove_files {
        for s in &all_sizes {
            let _ = std::fs::remove_file(files::path_for(&p.data_dir.join("files"), *s));
        }
    }
    let failed = results.samples.iter().filter(|s| !s.ok).count();
    eprintln!(
        "{} samples ({} failed){} in {:.0} s; wrote:",
        results.samples.len(),
        failed,
        if results.interrupted {
            ", interrupted"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    for p in written {
        eprintln!("  {}", p.display());
    }
    Ok(if results.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// A `ref:` variant runs outside limits, alone, and only uploads and
/// downloads whole files: refuses a run that asks it for more.
fn check_reference(
    a: &RunArgs,
    configs: &[crate::results::ConfigKey],
    vs: &[variants::Variant],
) -> anyhow::Result<()> {
    if configs
        .iter()
        .any(|c| c.memory_limit_mib.is_some() || c.disk_limit_mbps.is_some())
    {
        bail!("a ref: variant runs outside memory and disk limits: run it without --memory-limits, --disk-limits and --extra-matrix limits");
    }
    if a.concurrency > 1 {
        bail!("a ref: variant has one client: run it without --concurrency");
    }
    if a.common.workloads.contains(&options::Workload::Range) {
        bail!("a ref: variant's static file server answers no ranges: drop the range workload");
    }
    if a.self_check && vs[0].target == variants::Target::Reference {
        bail!("--self-check needs a server as the first variant, not a ref: reference");
    }
    Ok(())
}
