//! What a run is asked to do: the workloads, the block plan, every option
//! of a run, the matrix of configurations (sizes × memory limits × disk
//! limits) and the parsers of the options that are not sizes or durations
//! (those are [`super::units`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::plan::units::{self, parse_size, Bare};
use crate::plan::variants::Variant;
use crate::results::{CalibrationRecord, ConfigKey, Environment, ResultFile, RunConfig, SizeClass};
use crate::sut::cgroup::LimitMethod;
use crate::sut::disk::DiskMethod;

/// A workload measured in each unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Multipart upload of the whole file.
    Upload,
    /// Download of the whole file.
    Download,
    /// Many ranged reads at random offsets (video seeking, resumed downloads).
    Range,
}

impl Workload {
    /// Its name in result files.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Upload => "upload",
            Workload::Download => "download",
            Workload::Range => "range",
        }
    }
}

/// The order of variants within a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// The same order in every block: A B A B …
    Interleaved,
    /// A random order in each block, from the recorded seed.
    Randomized,
}

/// How many blocks each configuration gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Blocks {
    /// Exactly this many.
    Fixed(u32),
    /// Adaptive: at least `min`, at most `max`, stopping once every
    /// comparison is decided or has an MDE below `target` (fraction).
    Adaptive {
        /// Target MDE (fraction).
        target: f64,
        /// Fewest blocks.
        min: u32,
        /// Most blocks.
        max: u32,
    },
}

/// What the block-paired subcommands `small` and `entries` share: the
/// variants, the blocks, the wait for a quiet machine, the seed, where data
/// and results go, and what is recorded of the run.
pub struct BlockPlan {
    /// Variants; the first is the baseline.
    pub variants: Vec<Variant>,
    /// Measured blocks.
    pub blocks: u32,
    /// Warm-up blocks (recorded, not counted).
    pub warmup: u32,
    /// Longest wait for an idle machine before each unit (zero: none).
    pub wait_idle: Duration,
    /// Seed of the block order (and of `small`'s files' bytes).
    pub seed: u64,
    /// Where servers' data goes.
    pub data_dir: PathBuf,
    /// Where results go.
    pub out_dir: PathBuf,
    /// The command line.
    pub command: Vec<String>,
    /// The machine.
    pub environment: Environment,
}

impl BlockPlan {
    /// Creates the output directory and starts the result file of a run of
    /// `workload` on up to `concurrency` connections.
    ///
    /// # Errors
    /// When the output directory cannot be made.
    pub fn start(&self, workload: &str, concurrency: u32) -> anyhow::Result<ResultFile> {
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("cannot create {}", self.out_dir.display()))?;
        Ok(ResultFile {
            config: RunConfig {
                workloads: vec![workload.into()],
                iterations: self.blocks,
                warmup: self.warmup,
                concurrency,
                data_dir: self.data_dir.display().to_string(),
                order: "randomized".into(),
                wait_idle_s: self.wait_idle.as_secs_f64(),
                ..RunConfig::default()
            },
            environment: self.environment.clone(),
            variants: self.variants.iter().map(|v| v.info.clone()).collect(),
            ..ResultFile::started(self.command.clone(), self.seed)
        })
    }
}

/// Everything a run needs.
pub struct RunOptions {
    /// Variants; the first is the baseline.
    pub variants: Vec<Variant>,
    /// Configurations, in the order they run.
    pub configs: Vec<ConfigKey>,
    /// Workloads (upload always runs: the others need its file).
    pub workloads: Vec<Workload>,
    /// Blocks per configuration.
    pub blocks: Blocks,
    /// Time budget of the whole run (timed blocks), shared among configurations.
    pub max_time: Option<Duration>,
    /// Warm-up blocks per configuration.
    pub warmup: u32,
    /// Before each unit, wait up to this long for the machine to be idle
    /// (zero: do not wait).
    pub wait_idle: Duration,
    /// A block is left out and run again when the share of the machine's
    /// CPU time the hypervisor stole differs between its units by more than
    /// this (`None`: keep every block).
    pub steal_gap: Option<f64>,
    /// Parallel clients.
    pub concurrency: u32,
    /// Variant order.
    pub order: Order,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where test files and server data go.
    pub data_dir: PathBuf,
    /// Where results go.
    pub out_dir: PathBuf,
    /// Passphrase of `url:` variants.
    pub url_passphrase: Option<String>,
    /// Ranged reads per range sample.
    pub range_count: u32,
    /// Bytes per ranged read.
    pub range_len: u64,
    /// Counted blocks (instructions, system calls); 0 for none.
    pub count_blocks: u32,
    /// File size of counted runs, MiB.
    pub count_size_mib: u64,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// The machine, from the doctor.
    pub environment: Environment,
    /// How memory limits are enforced.
    pub limit_method: LimitMethod,
    /// How disk limits are enforced.
    pub disk_method: DiskMethod,
    /// The machine's latest calibration, for the report.
    pub calibration: Option<CalibrationRecord>,
    /// Show progress bars.
    pub progress: bool,
}

impl RunOptions {
    /// The fewest blocks of a configuration.
    pub(crate) fn min_blocks(&self) -> u32 {
        match self.blocks {
            Blocks::Fixed(n) => n,
            Blocks::Adaptive { min, .. } => min,
        }
    }

    /// The most blocks of a configuration.
    pub(crate) fn max_blocks(&self) -> u32 {
        match self.blocks {
            Blocks::Fixed(n) => n,
            Blocks::Adaptive { max, .. } => max,
        }
    }
}

/// Free space a unit needs: the database (file + WAL) per client, plus margin.
pub fn space_needed(size_mib: u64, concurrency: u32) -> u64 {
    (size_mib << 20) * 3 * u64::from(concurrency) + (256 << 20)
}

/// `--steal-gap`: percentage points in (0, 100], or `none`; as a fraction.
pub fn parse_steal_gap(raw: &str) -> anyhow::Result<Option<f64>> {
    let s = raw.trim().trim_end_matches('%');
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(pct) if pct > 0.0 && pct <= 100.0 => Ok(Some(pct / 100.0)),
        _ => bail!("--steal-gap wants percentage points above 0 and at most 100 (like 4), or `none`; got {raw:?}"),
    }
}

/// `--wait-idle`: a duration, or `0` for no wait.
pub fn parse_wait(raw: &str) -> anyhow::Result<std::time::Duration> {
    if raw.trim().trim_end_matches('s') == "0" {
        Ok(std::time::Duration::ZERO)
    } else {
        units::parse_duration(raw)
    }
}

/// Parses limits: numbers (MiB or MB/s; a unit suffix of `M`, `MB/s` or
/// `MiB` is allowed) or `none`, each at least `min`.
pub fn parse_limits(raw: &[String], what: &str, min: u64) -> anyhow::Result<Vec<Option<u64>>> {
    raw.iter()
        .map(|l| {
            let l = l.trim();
            if l.eq_ignore_ascii_case("none") || l.eq_ignore_ascii_case("unlimited") {
                Ok(None)
            } else {
                let n: u64 = l
                    .trim_end_matches("/s")
                    .trim_end_matches(['B', 'b', 'i'])
                    .trim_end_matches(['M', 'm'])
                    .parse()
                    .with_context(|| format!("bad {what} {l:?}: a number or `none`"))?;
                anyhow::ensure!(
                    n >= min,
                    "{what} {n} is below the smallest that works ({min})"
                );
                Ok(Some(n))
            }
        })
        .collect()
}

/// `--memory-limit`: MiB (at least 16) or `none`.
pub fn parse_memory_limits(raw: &[String]) -> anyhow::Result<Vec<Option<u64>>> {
    parse_limits(raw, "memory limit (MiB)", 16)
}

/// `--disk-limit`: MB/s (at least 1) or `none`.
pub fn parse_disk_limits(raw: &[String]) -> anyhow::Result<Vec<Option<u64>>> {
    parse_limits(raw, "disk limit (MB/s)", 1)
}

/// Sizes × memory limits × disk limits, in that nesting order.
pub fn matrix(sizes: &[u64], memory: &[Option<u64>], disk: &[Option<u64>]) -> Vec<ConfigKey> {
    let mut out = Vec::new();
    for &size_mib in sizes {
        for &memory_limit_mib in memory {
            for &disk_limit_mbps in disk {
                out.push(ConfigKey {
                    size_mib,
                    memory_limit_mib,
                    disk_limit_mbps,
                });
            }
        }
    }
    out
}

/// Parses `SIZES/MEMORY/DISK`.
pub fn parse_extra_matrix(raw: &str) -> anyhow::Result<Vec<ConfigKey>> {
    let parts: Vec<&str> = raw.split('/').collect();
    anyhow::ensure!(
        parts.len() == 3,
        "--extra-matrix {raw:?}: write SIZES/MEMORY/DISK, e.g. 100M,1G/none/50,200"
    );
    let list = |p: &str| p.split(',').map(str::to_owned).collect::<Vec<_>>();
    let sizes = list(parts[0])
        .iter()
        .map(|s| units::parse_size_mib(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(matrix(
        &sizes,
        &parse_memory_limits(&list(parts[1]))?,
        &parse_disk_limits(&list(parts[2]))?,
    ))
}

/// Parses a size mix: comma-separated `NAME=SIZE[-SIZE]:WEIGHT`, e.g.
/// `small=4K-1M:80,medium=16M-64M:15,large=256M:5`.
///
/// # Errors
/// A message naming the bad element.
pub(crate) fn parse_mix(raw: &str) -> anyhow::Result<Vec<SizeClass>> {
    let mut out = Vec::new();
    for element in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("bad size class {element:?}: use NAME=SIZE[-SIZE]:WEIGHT");
        let (name, rest) = element.split_once('=').with_context(bad)?;
        let (sizes, weight) = rest.rsplit_once(':').unwrap_or((rest, "1"));
        let (min, max) = match sizes.split_once('-') {
            Some((a, b)) => (parse_size(a, Bare::Bytes)?, parse_size(b, Bare::Bytes)?),
            None => (
                parse_size(sizes, Bare::Bytes)?,
                parse_size(sizes, Bare::Bytes)?,
            ),
        };
        anyhow::ensure!(min <= max, "{}: the smaller size comes first", bad());
        let weight: u32 = weight.trim().parse().with_context(bad)?;
        let name = name.trim();
        anyhow::ensure!(!name.is_empty(), "{}", bad());
        anyhow::ensure!(
            out.iter().all(|c: &SizeClass| c.name != name),
            "two size classes are named {name}"
        );
        out.push(SizeClass {
            name: name.to_owned(),
            min,
            max,
            weight,
        });
    }
    anyhow::ensure!(!out.is_empty(), "the size mix is empty");
    anyhow::ensure!(
        out.iter().any(|c| c.weight > 0),
        "every size class has weight 0"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_mixes_parse() {
        let mix = parse_mix("small=4K-1M:80, large=1G:5").unwrap();
        assert_eq!(mix.len(), 2);
        assert_eq!((mix[0].min, mix[0].max, mix[0].weight), (4096, 1 << 20, 80));
        assert_eq!(
            (mix[1].min, mix[1].max, mix[1].weight),
            (1 << 30, 1 << 30, 5)
        );
        assert!(parse_mix("a=2M-1M:1").is_err());
        assert!(parse_mix("a=1M:1,a=2M:1").is_err());
        assert!(parse_mix("a=1M:0").is_err());
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn steal_gap_is_percentage_points_or_none() {
        assert_eq!(parse_steal_gap("4").unwrap(), Some(0.04));
        assert_eq!(parse_steal_gap(" 2.5% ").unwrap(), Some(0.025));
        assert_eq!(parse_steal_gap("100").unwrap(), Some(1.0));
        assert_eq!(parse_steal_gap("none").unwrap(), None);
        assert_eq!(parse_steal_gap("None").unwrap(), None);
        for bad in ["0", "-1", "101", "four", ""] {
            let e = parse_steal_gap(bad).unwrap_err().to_string();
            assert!(e.contains("--steal-gap"), "{bad}: {e}");
        }
    }
}
