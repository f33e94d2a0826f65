//! The machine's reference, a `ref:` variant: what the disk and the loopback
//! network give without PicoShare, measured in the same blocks as the
//! servers so that each server's paired ratio to it is taken under the same
//! conditions.
//!
//! - upload: the file's bytes read and written into a fresh file in the
//!   unit's directory (on the data disk) in 4 MiB pieces, then `fsync`:
//!   timed from the open to the end of the `fsync`;
//! - download: a GET of that file, over loopback with the same HTTP client
//!   as the servers, from a static file server (`python3 -m http.server`,
//!   a plain server any reader can run), started after the upload.
//!
//! A reference runs outside memory and disk limits and without ranges or
//! concurrency (`run` refuses those with a `ref:` variant).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::plan::options::Workload;
use crate::results::Sample;
use crate::sut::client::Api;
use crate::sut::proc;

use super::gates::steal_share;
use super::unit::Unit;
use crate::sut::proc::{cpu_times, CpuTimes};

/// Name of the copy in the unit's directory.
const COPY: &str = "ref.bin";

/// Runs the reference's upload and download; failures become failed samples.
pub(crate) async fn run(unit: &Unit<'_>, first_seq: u64) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut s = unit.sample(first_seq, "upload");
    let machine = cpu_times();
    let own = proc::counters(std::process::id());
    let (src, dir, size) = (unit.file.to_owned(), unit.dir.clone(), unit.size_bytes);
    let copied = tokio::task::spawn_blocking(move || write_fsync(&src, &dir, size)).await;
    match copied {
        Ok(Ok(seconds)) => {
            s.seconds = seconds;
            s.bytes = size;
            if let (Some(a), Some(b)) = (own, proc::counters(std::process::id())) {
                s.disk_written_bytes = Some(b.written_bytes.saturating_sub(a.written_bytes));
                s.cpu_seconds = Some((b.cpu_seconds - a.cpu_seconds).max(0.0));
            }
        }
        Ok(Err(e)) => s.error = Some(format!("write + fsync failed: {e:#}")),
        Err(e) => s.error = Some(format!("write + fsync task failed: {e}")),
    }
    finish(&mut s, machine);
    let uploaded = s.ok;
    out.push(s);
    if uploaded && unit.opts.workloads.contains(&Workload::Download) {
        let mut s = unit.sample(first_seq + 1, "download");
        match StaticServer::start(&unit.dir).await {
            Ok(server) => {
                let machine = cpu_times();
                let before = proc::counters(server.pid);
                let started = Instant::now();
                let got = match Api::anonymous(&server.base) {
                    Ok(api) => api.get(&format!("/{COPY}"), None).await,
                    Err(e) => Err(e),
                };
                s.seconds = started.elapsed().as_secs_f64();
                match got {
                    Ok(n) if n == size => {
                        s.bytes = n;
                        s.http_status = Some(200);
                    }
                    Ok(n) => s.error = Some(format!("downloaded {n} bytes, expected {size}")),
                    Err(e) => s.error = Some(format!("{e:#}")),
                }
                if let (Some(a), Some(b)) = (before, proc::counters(server.pid)) {
                    s.cpu_seconds = Some((b.cpu_seconds - a.cpu_seconds).max(0.0));
                    s.disk_read_bytes = Some(b.read_bytes.saturating_sub(a.read_bytes));
                }
                s.peak_rss_bytes = proc::peak_rss(server.pid);
                finish(&mut s, machine);
                server.stop().await;
            }
            Err(e) => s.error = Some(format!("the static file server did not start: {e:#}")),
        }
        out.push(s);
    }
    let _ = std::fs::remove_dir_all(&unit.dir);
    out
}

/// Marks `s` ok when it has no error, with its throughput and the steal
/// during it.
fn finish(s: &mut Sample, machine: Option<CpuTimes>) {
    s.ok = s.error.is_none();
    if s.ok && s.seconds > 0.0 {
        s.throughput_mbps = s.bytes as f64 / s.seconds / 1e6;
    }
    if let (Some(a), Some(b)) = (machine, cpu_times()) {
        s.steal_during = steal_share(a, b);
    }
}

/// Copies `src` (`size` bytes) into `dir/ref.bin` and fsyncs it; seconds.
fn write_fsync(src: &Path, dir: &Path, size: u64) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let mut buf = vec![0u8; 4 << 20];
    let started = Instant::now();
    let mut from = std::fs::File::open(src).with_context(|| format!("{}", src.display()))?;
    let mut to = std::fs::File::create(dir.join(COPY))?;
    let mut copied = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n])?;
        copied += n as u64;
    }
    to.sync_all()?;
    let seconds = started.elapsed().as_secs_f64();
    if copied != size {
        bail!("copied {copied} bytes, expected {size}");
    }
    Ok(seconds)
}

/// `python3 -m http.server` serving one directory on a free loopback port.
struct StaticServer {
    child: Child,
    pid: u32,
    base: String,
}

impl StaticServer {
    async fn start(dir: &Path) -> anyhow::Result<StaticServer> {
        let mut child = Command::new("python3")
            .args(["-m", "http.server", "0", "--bind", "127.0.0.1", "-d"])
            .arg(dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start python3 (needed by ref: variants)")?;
        let pid = child.id().context("python3 exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("python3 -m http.server did not say its port within 20 s")??;
        let port: u16 = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {:?}", line.trim()))?;
        Ok(StaticServer {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
