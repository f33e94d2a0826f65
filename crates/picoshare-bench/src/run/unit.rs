//! One unit: one variant in one block. A fresh data directory and server,
//! the upload (by every client at once when concurrency > 1), then the
//! download and range workloads on what was uploaded; the server is stopped
//! and its data directory deleted. Every sample records the server's own
//! cost (CPU, bytes written, peak memory) beside its time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::plan::options::{RunOptions, Workload};
use crate::plan::variants::{Target, UploadVia, Variant};
use crate::results::{ConfigKey, Sample};
use crate::sut::client::{phase_deltas, Api, RequestError};
use crate::sut::proc::ProcCounters;
use crate::sut::server::{Limits, Server, Tool, SECRET};

use super::gates::steal_share;
use crate::sut::proc::{cpu_times, ticks_per_second, CpuTimes};

/// One variant in one block.
pub(crate) struct Unit<'a> {
    pub(crate) opts: &'a RunOptions,
    pub(crate) variant: &'a Variant,
    pub(crate) file: &'a Path,
    pub(crate) size_bytes: u64,
    pub(crate) config: ConfigKey,
    pub(crate) iteration: u32,
    pub(crate) dir: PathBuf,
    pub(crate) cgroup_name: String,
    pub(crate) seed: u64,
}

/// The running server of a unit: one we started, or one given by URL.
enum Running {
    Started(Box<Server>),
    External,
}

impl Unit<'_> {
    /// A sample of this unit, before it is measured.
    pub(crate) fn sample(&self, seq: u64, workload: &str) -> Sample {
        Sample {
            seq,
            timestamp: chrono::Utc::now().to_rfc3339(),
            variant: self.variant.info.name.clone(),
            workload: workload.to_owned(),
            size_bytes: self.size_bytes,
            memory_limit_mib: self.config.memory_limit_mib,
            disk_limit_mbps: self.config.disk_limit_mbps,
            iteration: self.iteration,
            warmup: self.iteration < self.opts.warmup,
            concurrency: self.opts.concurrency,
            ..Sample::default()
        }
    }

    /// Runs every workload; failures become failed samples.
    pub(crate) async fn run(self, first_seq: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        let (running, base, passphrase) = match &self.variant.target {
            Target::Binary { path, args } => {
                let limits = Limits {
                    memory_mib: self.config.memory_limit_mib,
                    memory_method: &self.opts.limit_method,
                    disk_mbps: self.config.disk_limit_mbps,
                    disk_method: &self.opts.disk_method,
                };
                match Server::start(path, args, &self.dir, limits, &self.cgroup_name, Tool::None)
                    .await
                {
                    Ok(s) => {
                        let base = s.base.clone();
                        (Running::Started(Box::new(s)), base, SECRET.to_owned())
                    }
                    Err(e) => {
                        let mut s = self.sample(first_seq, "upload");
                        s.error = Some(format!("server did not start: {e:#}"));
                        out.push(s);
                        let _ = std::fs::remove_dir_all(&self.dir);
                        return out;
                    }
                }
            }
            Target::Reference => return super::reference::run(&self, first_seq).await,
            Target::Url(url) => (
                Running::External,
                url.clone(),
                self.opts.url_passphrase.clone().unwrap_or_default(),
            ),
        };
        let result = self
            .workloads(&running, &base, &passphrase, first_seq, &mut out)
            .await;
        if let Err(e) = result {
            let mut s = self.sample(first_seq + out.len() as u64, "upload");
            s.error = Some(format!("{e:#}"));
            out.push(s);
        }
        if let Running::Started(server) = running {
            let report = server.stop().await;
            if report.oom_kills.is_some_and(|n| n > 0) {
                for s in &mut out {
                    if !s.ok && s.error.is_some() {
                        let e = s.error.take().unwrap_or_default();
                        s.error = Some(format!(
                            "{e} (the server was killed for exceeding its memory limit)"
                        ));
                    }
                }
            }
        }
        out
    }

    async fn workloads(
        &self,
        running: &Running,
        base: &str,
        passphrase: &str,
        first_seq: u64,
        out: &mut Vec<Sample>,
    ) -> anyhow::Result<()> {
        let api = Api::login(base, passphrase).await?;
        let server = match running {
            Running::Started(s) => Some(&**s),
            Running::External => None,
        };
        let n = self.opts.concurrency.max(1);
        let padding = self.variant.padding(self.size_bytes);

        // Upload: every client uploads the file at once.
        let mut s = self.sample(first_seq, "upload");
        let before = Before::take(&api, server).await;
        let started = Instant::now();
        let via = self.variant.upload;
        let uploads = futures_util::future::join_all((0..n).map(|_| async {
            match via {
                UploadVia::Multipart => {
                    api.upload_padded(self.file, self.size_bytes, padding).await
                }
                UploadVia::Tus(request) => {
                    api.upload_tus(self.file, self.size_bytes, request).await
                }
            }
        }))
        .await;
        s.seconds = started.elapsed().as_secs_f64();
        let mut ids = Vec::new();
        let mut waits = Vec::new();
        for u in uploads {
            match u {
                Ok(u) => {
                    ids.push(u.id);
                    waits.push(u.reply_wait_s);
                }
                Err(e) => record_error(&mut s, &e),
            }
        }
        s.ok = s.error.is_none();
        s.bytes = self.size_bytes * ids.len() as u64;
        s.reply_wait_s = waits.iter().copied().reduce(f64::max);
        self.finish_sample(&mut s, &api, server, before).await;
        out.push(s);
        if ids.len() as u32 != n {
            return Ok(());
        }

        for (k, w) in self
            .opts
            .workloads
            .iter()
            .filter(|w| **w != Workload::Upload)
            .enumerate()
        {
            let mut s = self.sample(first_seq + 1 + k as u64, w.name());
            let before = Before::take(&api, server).await;
            let started = Instant::now();
            let transfers =
                futures_util::future::join_all(ids.iter().enumerate().map(|(i, id)| {
                    let api = api.clone();
                    let seed = self.seed.wrapping_add(i as u64);
                    let (opts, size, variant) = (self.opts, self.size_bytes, self.variant);
                    async move {
                        match w {
                            // Counted: the nominal bytes (a plant moves more).
                            Workload::Range => {
                                let len = opts.range_len + variant.padding(opts.range_len);
                                api.ranges(id, size + padding, opts.range_count, len, seed)
                                    .await
                                    .map(|_| u64::from(opts.range_count) * opts.range_len.min(size))
                            }
                            _ => api.download(id, size + padding).await.map(|_| size),
                        }
                    }
                }))
                .await;
            s.seconds = started.elapsed().as_secs_f64();
            for t in transfers {
                match t {
                    Ok(nominal) => s.bytes += nominal,
                    Err(e) => record_error(&mut s, &e),
                }
            }
            s.ok = s.error.is_none();
            self.finish_sample(&mut s, &api, server, before).await;
            out.push(s);
        }
        if server.is_none() {
            for id in &ids {
                let _ = api.delete(id).await;
            }
        }
        Ok(())
    }

    async fn finish_sample(
        &self,
        s: &mut Sample,
        api: &Api,
        server: Option<&Server>,
        before: Before,
    ) {
        if s.ok && s.seconds > 0.0 {
            s.throughput_mbps = s.bytes as f64 / s.seconds / 1e6;
            s.http_status = Some(if s.workload == "range" { 206 } else { 200 });
        }
        if let (Some(b), Some(a)) = (before.metrics, api.metrics().await) {
            s.phases = phase_deltas(&b, &a);
        }
        if let Some(server) = server {
            // Give the server a moment to settle its last writes' accounting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.memory_limit_enforced = server.limit_enforced;
            s.disk_limit_enforced = server.disk_limit_enforced;
            s.peak_rss_bytes = server.peak_rss();
            if let (Some(a), Some(b)) = (before.counters, server.counters()) {
                s.disk_written_bytes = Some(b.written_bytes.saturating_sub(a.written_bytes));
                s.disk_read_bytes = Some(b.read_bytes.saturating_sub(a.read_bytes));
                s.cpu_seconds = Some((b.cpu_seconds - a.cpu_seconds).max(0.0));
                s.syscalls_read = Some(b.syscalls_read.saturating_sub(a.syscalls_read));
                s.syscalls_write = Some(b.syscalls_write.saturating_sub(a.syscalls_write));
            }
            if let (Some(a), Some(b)) = (before.throttled, server.throttled_bytes()) {
                s.throttled_bytes = Some(b.saturating_sub(a));
            }
            // CPU used by anything but the server and the bench during the
            // sample (other programs, and kernel threads such as writeback).
            let now = cpu_times();
            if let (Some(a), Some(b)) = (before.machine, now) {
                s.steal_during = steal_share(a, b);
            }
            if let (Some(a), Some(b), Some(server_cpu), Some(c0), Some(c1)) = (
                before.machine,
                now,
                s.cpu_seconds,
                before.bench_cpu,
                own_cpu_seconds(),
            ) {
                let busy = b.busy.saturating_sub(a.busy) as f64 / ticks_per_second();
                let capacity = b.total.saturating_sub(a.total) as f64 / ticks_per_second();
                if capacity > 0.0 {
                    s.other_cpu_during =
                        Some(((busy - server_cpu - (c1 - c0)) / capacity).max(0.0));
                }
            }
        }
    }
}

/// Counters taken just before a measurement.
struct Before {
    metrics: Option<BTreeMap<String, f64>>,
    counters: Option<ProcCounters>,
    throttled: Option<u64>,
    machine: Option<CpuTimes>,
    bench_cpu: Option<f64>,
}

impl Before {
    async fn take(api: &Api, server: Option<&Server>) -> Before {
        let metrics = api.metrics().await;
        Before {
            metrics,
            counters: server.and_then(Server::counters),
            throttled: server.and_then(Server::throttled_bytes),
            machine: cpu_times(),
            bench_cpu: own_cpu_seconds(),
        }
    }
}

/// CPU seconds (user + system, all threads) of this bench process so far.
fn own_cpu_seconds() -> Option<f64> {
    crate::sut::proc::counters(std::process::id()).map(|c| c.cpu_seconds)
}

fn record_error(s: &mut Sample, e: &anyhow::Error) {
    if let Some(re) = e.downcast_ref::<RequestError>() {
        s.http_status = re.status.or(s.http_status);
    }
    if s.error.is_none() {
        s.error = Some(format!("{e:#}"));
    }
}
