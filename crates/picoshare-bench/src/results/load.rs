//! The result of a load run (`load.json`, [`LoadResult`]): what
//! `crate::run::load` measured and `crate::report::load` reports.

use serde::{Deserialize, Serialize};

use super::Environment;

/// One class of the size mix: sizes between `min` and `max`, drawn with
/// relative weight `weight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClass {
    /// Name in reports (`small`, `medium`, `large`).
    pub name: String,
    /// Smallest size, bytes.
    pub min: u64,
    /// Largest size, bytes.
    pub max: u64,
    /// Relative share of uploads.
    pub weight: u32,
}

/// Count, bytes and errors of one kind of request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Requests that succeeded.
    pub ok: u64,
    /// Payload bytes of those.
    pub bytes: u64,
    /// Requests that failed.
    pub errors: u64,
}

/// Latency percentiles of one group of requests, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// What was measured, e.g. `download small, during a large upload`.
    pub label: String,
    /// Requests in the group.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The result of a load run (`load.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadResult {
    /// `picoshare-bench-load/1`.
    pub schema: String,
    /// Version of the bench.
    pub tool_version: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// The command line.
    pub command: Vec<String>,
    /// Seed of every random choice.
    pub seed: u64,
    /// The server binary and its extra arguments.
    pub server: Vec<String>,
    /// Parallel uploaders.
    pub uploaders: u32,
    /// Parallel downloaders.
    pub downloaders: u32,
    /// Seconds during which new requests started.
    pub duration_s: f64,
    /// The size mix.
    pub mix: Vec<SizeClass>,
    /// Entries uploaded before the timed phase.
    pub preload: u32,
    /// Upload limit of the timed phase.
    pub max_uploads: Option<u32>,
    /// The machine.
    pub environment: Environment,
    /// Seconds from the start of the timed phase until the last transfer ended.
    pub wall_s: f64,
    /// False if the run was interrupted (Ctrl-C).
    pub completed: bool,
    /// Whether the server was still running at the end.
    pub server_alive_at_end: bool,
    /// The server's peak resident memory (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Uploads (preload included).
    pub uploads: Totals,
    /// Downloads.
    pub downloads: Totals,
    /// Downloaded bytes compared with the uploaded bytes and found equal.
    pub verified_bytes: u64,
    /// Every failed request.
    pub error_count: u64,
    /// The first failures' messages.
    pub errors: Vec<String>,
    /// Latency percentiles per group.
    pub latency: Vec<Latency>,
}
