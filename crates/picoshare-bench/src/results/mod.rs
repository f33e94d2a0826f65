//! The result file: everything a run measured, as written to `results.json`.
//!
//! This is the one format every other part reads: the report, the charts, the
//! CSV files and `compare` are all computed from it, so a result file can be
//! re-reported or compared long after the run. Units are in the field names:
//! `_bytes`, `_s` (seconds), `_mbps` (10^6 bytes per second), `_mib` (2^20 bytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::paired::StopReason;

mod load;
mod samples;

pub use load::{Latency, LoadResult, SizeClass, Totals};
pub(crate) use samples::COUNTED_RUNS;
pub use samples::{CountSample, EntriesSample, Sample, SmallSample, StallSample};

/// Version of this format. Version 2 added blocks (adaptive stopping), disk
/// limits, server CPU time and system calls per sample, instruction counts,
/// planted variants and the sensitivity record; files of version 1 still load
/// (the new fields take their defaults).
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// A whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResultFile {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Version of picoshare-bench that wrote it.
    pub tool_version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time (also set when interrupted).
    pub finished_at: Option<String>,
    /// The command line that produced the run.
    pub command: Vec<String>,
    /// Seed of every random choice (order of blocks, bootstrap).
    pub seed: u64,
    /// What was asked for.
    pub config: RunConfig,
    /// The machine, as the doctor saw it before the run.
    pub environment: Environment,
    /// The variants compared; the first is the baseline of comparisons.
    pub variants: Vec<VariantInfo>,
    /// Every measurement, warm-ups included, in the order they ran.
    pub samples: Vec<Sample>,
    /// True if the run was stopped early (Ctrl-C); samples so far are kept.
    pub interrupted: bool,
    /// How each configuration ended: blocks run and why it stopped.
    #[serde(default)]
    pub outcomes: Vec<ConfigOutcome>,
    /// Counted runs (`--count-instructions`): instructions, system calls and
    /// disk bytes of whole server lifetimes.
    #[serde(default)]
    pub counts: Vec<CountSample>,
    /// The latest calibration of this machine found before the run (see
    /// `picoshare-bench calibrate`), for the report's sensitivity header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationRecord>,
    /// The small-files workload (`picoshare-bench small`): many requests on
    /// keep-alive connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub small: Vec<SmallSample>,
    /// The entries workload (`picoshare-bench entries`): start-up, the file
    /// list, garbage collection and a long history at a number of entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntriesSample>,
    /// Download stalls during a large upload (`picoshare-bench stall`): a
    /// quiet phase and an upload phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stall: Vec<StallSample>,
}

/// One configuration of the matrix (what a block repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConfigKey {
    /// File size in MiB.
    pub size_mib: u64,
    /// Server memory limit in MiB (`None` = unlimited).
    pub memory_limit_mib: Option<u64>,
    /// Server disk bandwidth limit in MB/s, reads and writes each (`None` = unlimited).
    pub disk_limit_mbps: Option<u64>,
}

/// How one configuration ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigOutcome {
    /// The configuration.
    pub config: ConfigKey,
    /// Measured blocks (warm-ups and disturbed blocks not counted).
    pub blocks: u32,
    /// Blocks left out because a unit had to start while other work kept
    /// the machine busy (see `--wait-idle`).
    #[serde(default)]
    pub disturbed_blocks: u32,
    /// Why no further block ran.
    pub reason: StopReason,
    /// Wall-clock seconds the configuration took, warm-ups included.
    pub seconds: f64,
}

/// A calibration of the machine's sensitivity (summary of `calibrate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    /// RFC 3339 time it finished.
    pub finished_at: String,
    /// Host it ran on.
    pub hostname: String,
    /// Its data directory's device.
    pub device: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Planted slowdown (fraction, e.g. 0.05).
    pub plant: f64,
    /// Target MDE of its runs (fraction).
    pub target_mde: Option<f64>,
    /// The server's disk limit during the calibration, MB/s (`None`: unthrottled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_limit_mbps: Option<u64>,
    /// Per workload: how often the plant was called and A/A stayed clean.
    pub workloads: Vec<CalibrationLine>,
}

/// Calibration results of one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationLine {
    /// Workload.
    pub workload: String,
    /// Repeated runs.
    pub runs: u32,
    /// Runs in which the plant was called "slower".
    pub plant_called: u32,
    /// Runs in which A/A said "no detectable difference".
    pub aa_clean: u32,
    /// Median blocks per run.
    pub blocks_median: f64,
    /// Median paired MDE reached (fraction).
    pub mde_median: f64,
    /// Median ratio measured for the plant (expected `1 − plant`).
    pub plant_ratio_median: f64,
}

/// The run's parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    /// File sizes in MiB (2^20 bytes).
    pub sizes_mib: Vec<u64>,
    /// Memory limits for the server in MiB; `None` = unlimited.
    pub memory_limits_mib: Vec<Option<u64>>,
    /// Workloads: `upload`, `download`, `range`.
    pub workloads: Vec<String>,
    /// Measured iterations per configuration.
    pub iterations: u32,
    /// Warm-up iterations per configuration (run, recorded, excluded from statistics).
    pub warmup: u32,
    /// Parallel clients per measurement.
    pub concurrency: u32,
    /// Where data directories and test files were created.
    pub data_dir: String,
    /// `interleaved` (A B A B …) or `randomized` (random order within each block).
    pub order: String,
    /// Server disk bandwidth limits in MB/s; `None` = unlimited.
    #[serde(default = "unlimited")]
    pub disk_limits_mbps: Vec<Option<u64>>,
    /// Every configuration run, in order (the matrix and any extra matrices).
    #[serde(default)]
    pub configs: Vec<ConfigKey>,
    /// Adaptive stopping: blocks are added until every comparison's MDE is
    /// below this fraction (then `iterations` is the minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_mde: Option<f64>,
    /// Adaptive stopping: most blocks per configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// Time budget of the whole run in seconds, shared among configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_s: Option<f64>,
    /// Longest wait for an idle machine before each unit, seconds (0 = none).
    #[serde(default)]
    pub wait_idle_s: f64,
    /// Largest difference in steal (percentage points of the machine's CPU
    /// time) between the units of a block that keeps it; `None`: no limit
    /// (or a run from before the limit existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_gap_pct: Option<f64>,
    /// Counted blocks (instructions and system calls) per variant; 0 = none.
    #[serde(default)]
    pub count_blocks: u32,
    /// File size of counted runs in MiB.
    #[serde(default)]
    pub count_size_mib: u64,
}

fn unlimited() -> Vec<Option<u64>> {
    vec![None]
}

/// One check of the doctor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// Short name, e.g. `rotational disk`.
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: String,
    /// What was found.
    pub detail: String,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    /// Host name.
    pub hostname: String,
    /// `uname -r`-style kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Filesystem type of the data directory.
    pub filesystem: String,
    /// Block device behind the data directory (e.g. `/dev/vda`).
    pub device: String,
    /// Whether the device reports itself rotational (`None` if unknown).
    pub rotational: Option<bool>,
    /// Free bytes in the data directory's filesystem before the run.
    pub free_bytes: u64,
    /// CPU frequency governor (`None` if the machine exposes none).
    pub cpu_governor: Option<String>,
    /// 1-minute load average before the run.
    pub load_average: f64,
    /// How memory limits are enforced here: `cgroup-v2`, `cgroup-v1`, `systemd-run` or `not enforced`.
    pub memory_limit_method: String,
    /// How disk limits are enforced here: `cgroup-v2 io.max`, `cgroup-v1 blkio`,
    /// `systemd-run` or `not enforced`.
    #[serde(default)]
    pub disk_limit_method: String,
    /// Every check, with warnings.
    pub checks: Vec<Check>,
}

/// A server variant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VariantInfo {
    /// Name used in tables and charts.
    pub name: String,
    /// `binary` (a path), `git` (a revision built into a cache), `settings`
    /// (extra arguments to one build) or `url` (an already running server).
    pub kind: String,
    /// Path of the binary started, if any.
    pub binary: Option<String>,
    /// Extra server arguments.
    pub args: Vec<String>,
    /// Base URL, for `url` variants.
    pub url: Option<String>,
    /// Git revision of the build (`git describe`/hash), when known.
    pub git_revision: Option<String>,
    /// `--version` output of the binary, when known.
    pub version: Option<String>,
    /// How uploads are sent: absent for one multipart request, `tus` for a
    /// resumable upload in one PATCH, `tus/N MiB` for PATCHes of N MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// A planted slowdown (fraction): the client sends `1 / (1 − plant)`
    /// times the bytes but counts only the nominal ones (see `calibrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plant: Option<f64>,
    /// For the sensitivity self-check: the variant this one repeats (an A/A
    /// twin, or the base of a plant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin_of: Option<String>,
}

/// A configuration: samples with equal keys are repetitions of one measurement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// Variant name.
    pub variant: String,
    /// Workload.
    pub workload: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Memory limit in MiB.
    pub memory_limit_mib: Option<u64>,
    /// Disk limit in MB/s.
    #[serde(default)]
    pub disk_limit_mbps: Option<u64>,
    /// Parallel clients.
    pub concurrency: u32,
}

/// Formats a memory limit for people: `2048 MiB` or `unlimited`.
pub(crate) fn memory_label(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |m| format!("{m} MiB"))
}

/// Formats a disk limit for people: `100 MB/s` or `unlimited`.
pub(crate) fn disk_label(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |m| format!("{m} MB/s"))
}

/// Formats a size in bytes as MiB/GiB for people.
pub(crate) fn size_label(bytes: u64) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 && (mib / 1024.0).fract() == 0.0 {
        format!("{} GiB", mib / 1024.0)
    } else if mib.fract() == 0.0 {
        format!("{mib} MiB")
    } else {
        format!("{bytes} B")
    }
}

impl ResultFile {
    /// A result file started now by `command` with `seed`, in this
    /// version's schema; the caller fills in the rest.
    pub(crate) fn started(command: Vec<String>, seed: u64) -> ResultFile {
        ResultFile {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: chrono::Utc::now().to_rfc3339(),
            command,
            seed,
            ..ResultFile::default()
        }
    }

    /// Samples that count for statistics: measured (not warm-up, not in a
    /// disturbed block) and successful.
    pub(crate) fn measured(&self) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(|s| !s.warmup && !s.disturbed && s.ok)
    }

    /// Measured samples grouped by configuration, in key order.
    pub fn groups(&self) -> BTreeMap<GroupKey, Vec<&Sample>> {
        let mut map: BTreeMap<GroupKey, Vec<&Sample>> = BTreeMap::new();
        for s in self.measured() {
            map.entry(s.group_key()).or_default().push(s);
        }
        map
    }
}
