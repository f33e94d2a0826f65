//! The samples of a result file: one timed transfer ([`Sample`]), one
//! counted server lifetime ([`CountSample`]), and the samples of `small`,
//! `entries` and `stall`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::GroupKey;

/// One phase of `picoshare-bench stall`: a file downloaded again and again,
/// read in 64 KiB pieces, on a quiet server or while a large upload runs;
/// the gaps are the times between consecutive pieces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StallSample {
    /// `quiet` (no upload running) or `upload` (while one runs).
    pub phase: String,
    /// Size of the upload running beside (0 for `quiet`).
    pub upload_bytes: u64,
    /// Size of the file downloaded.
    pub download_bytes: u64,
    /// Pieces read (gaps measured).
    pub reads: u64,
    /// The longest gap, seconds.
    pub longest_gap_s: f64,
    /// The 99th percentile gap (nearest rank), seconds.
    pub p99_gap_s: f64,
    /// The median gap, seconds.
    pub median_gap_s: f64,
}

/// One phase of the small-files workload: one kind of request on a number
/// of keep-alive connections for a fixed time, in one unit (a variant in a
/// block, on a fresh server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmallSample {
    /// Variant name.
    pub variant: String,
    /// Block number (warm-ups first, from 0): variants are paired within a block.
    pub block: u32,
    /// Warm-up: recorded, not counted.
    pub warmup: bool,
    /// In a block left out because the machine was busy: not counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disturbed: bool,
    /// `upload`, `download` or `trivial` (a request for a path neither
    /// server has, `/robots.txt`: the rate the client and the server's
    /// bare request handling allow).
    pub workload: String,
    /// File size in bytes (0 for `trivial`).
    pub size_bytes: u64,
    /// Keep-alive connections, each sending one request after another.
    pub connections: u32,
    /// Requests answered as expected.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds the phase lasted.
    pub seconds: f64,
    /// `requests / seconds`.
    pub requests_per_s: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Server CPU seconds (user + system) during the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// Bytes the server caused to be written to storage during the phase
    /// (and the quarter second after it, for writes it delays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_written_bytes: Option<u64>,
    /// How busy the machine's CPUs were before the unit (fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_busy_before: Option<f64>,
    /// The share of the machine's CPU time the hypervisor gave to other
    /// guests during the unit (steal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_during: Option<f64>,
}

/// One unit of the entries workload: a server started on a database of
/// `entries` files (a tenth of them expired) and one file downloaded
/// `history` times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntriesSample {
    /// Variant name.
    pub variant: String,
    /// Block number (warm-ups first): variants are paired within a block.
    pub block: u32,
    /// Warm-up: recorded, not counted.
    pub warmup: bool,
    /// Files in the database.
    pub entries: u64,
    /// Downloads recorded for one of them.
    pub history: u64,
    /// Whether everything worked.
    pub ok: bool,
    /// What went wrong otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds from starting the process to its first HTTP answer.
    pub startup_s: Option<f64>,
    /// Seconds from that answer until the expired tenth was collected
    /// (servers that collect at start-up and list through `GET
    /// /api/entries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_s: Option<f64>,
    /// `GET /files` (its first page, if it has pages): median seconds.
    pub list_page_s: Option<f64>,
    /// Its bytes on the wire with `Accept-Encoding: gzip`.
    pub list_page_bytes: Option<u64>,
    /// `GET /api/entries?limit=100`, median seconds (servers that have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_api_s: Option<f64>,
    /// The busy file's download-history page, median seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_page_s: Option<f64>,
    /// Its bytes on the wire with `Accept-Encoding: gzip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_page_bytes: Option<u64>,
}

/// The lifetimes counted per variant, tool and block, in order (what
/// `CountSample::run` names; see `crate::run::counting`).
pub(crate) const COUNTED_RUNS: [&str; 6] = [
    "empty",
    "empty-reopen",
    "upload",
    "upload-reopen",
    "reopen",
    "download",
];

/// One counted server lifetime: start, log in, (upload), (download), stop,
/// under valgrind (instructions) or strace (system calls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CountSample {
    /// Variant name.
    pub variant: String,
    /// Block number (0, 1, …): variants are paired within a block.
    pub block: u32,
    /// One of `COUNTED_RUNS`: `empty`, `empty-reopen`, `upload`,
    /// `upload-reopen`, `reopen`, `download`.
    pub run: String,
    /// `instructions` (valgrind) or `syscalls` (strace).
    pub tool: String,
    /// Bytes of the file uploaded (and downloaded).
    pub size_bytes: u64,
    /// Whether the run completed.
    pub ok: bool,
    /// What went wrong otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Instructions executed by the server process over its whole life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
    /// System calls by name over its whole life (all threads).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub syscalls: BTreeMap<String, u64>,
    /// Bytes it caused to be written to storage over its whole life (read
    /// once it had exited; not for runs under strace). This depends on the
    /// page cache: a page rewritten before writeback counts once, one
    /// truncated before writeback not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_written_bytes: Option<u64>,
    /// Bytes it passed to write-like system calls over its whole life
    /// (`wchar`: files and sockets), which does not depend on the page cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_call_bytes: Option<u64>,
}

/// One measurement: one transfer (or, with concurrency N, N transfers at once).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Order in the run (0, 1, 2…).
    pub seq: u64,
    /// RFC 3339 time the measurement started.
    pub timestamp: String,
    /// Variant name.
    pub variant: String,
    /// `upload`, `download` or `range`.
    pub workload: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Memory limit in MiB, `None` = unlimited.
    pub memory_limit_mib: Option<u64>,
    /// Whether the limit was really enforced (`false` also when unlimited).
    pub memory_limit_enforced: bool,
    /// Iteration number within its configuration (warm-ups first, from 0).
    pub iteration: u32,
    /// Warm-up: recorded but excluded from statistics.
    pub warmup: bool,
    /// Parallel clients.
    pub concurrency: u32,
    /// Whether every transfer succeeded.
    pub ok: bool,
    /// Error text when not ok.
    pub error: Option<String>,
    /// HTTP status of the (last) reply.
    pub http_status: Option<u16>,
    /// Payload bytes moved (all clients together).
    pub bytes: u64,
    /// Wall-clock seconds from the first request byte to the last reply byte.
    pub seconds: f64,
    /// `bytes / seconds / 1e6`.
    pub throughput_mbps: f64,
    /// Uploads: seconds between sending the last body byte and receiving the reply.
    pub reply_wait_s: Option<f64>,
    /// Server peak resident memory (VmHWM) over its whole life so far, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Bytes the server process caused to be written to storage during this sample.
    pub disk_written_bytes: Option<u64>,
    /// Server-side phase timings during this sample (seconds), from its /metrics.
    pub phases: BTreeMap<String, f64>,
    /// Server disk bandwidth limit in MB/s, `None` = unlimited.
    #[serde(default)]
    pub disk_limit_mbps: Option<u64>,
    /// Whether the disk limit was really applied (`false` also when unlimited).
    #[serde(default)]
    pub disk_limit_enforced: bool,
    /// Bytes of this sample that passed through the disk throttle (read + write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_bytes: Option<u64>,
    /// Bytes the server caused to be read from storage during this sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_read_bytes: Option<u64>,
    /// Server CPU time (user + system, all threads) during this sample, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Read-like system calls of the server during this sample (`syscr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_read: Option<u64>,
    /// Write-like system calls of the server during this sample (`syscw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_write: Option<u64>,
    /// Seconds the bench waited, before this sample's unit, for the machine
    /// to be idle (`--wait-idle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_for_idle_s: Option<f64>,
    /// How busy the machine's CPUs were (fraction of all) in the quarter
    /// second before the unit started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_busy_before: Option<f64>,
    /// CPU used during the sample by anything but the server and the bench
    /// (other programs, kernel threads), as a fraction of all CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_cpu_during: Option<f64>,
    /// CPU time the hypervisor gave to other guests during the sample
    /// (steal), as a fraction of all the machine's CPU time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_during: Option<f64>,
    /// Part of a block in which some unit had to start on a busy machine:
    /// recorded, excluded from statistics (like a warm-up), and re-run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disturbed: bool,
}

impl Sample {
    /// The key of the configuration this sample belongs to.
    pub(crate) fn group_key(&self) -> GroupKey {
        GroupKey {
            variant: self.variant.clone(),
            workload: self.workload.clone(),
            size_bytes: self.size_bytes,
            memory_limit_mib: self.memory_limit_mib,
            disk_limit_mbps: self.disk_limit_mbps,
            concurrency: self.concurrency,
        }
    }
}
