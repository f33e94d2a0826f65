//! Starting and stopping the server under test.
//!
//! Every measurement gets a fresh server process and a fresh data directory,
//! so nothing carries over between samples: no page reuse in the database, no
//! warm caches in the process, no temp files of earlier uploads. The server is
//! started the way PicoShare is (`-db PATH`, `PORT`, `PS_SHARED_SECRET`), so the
//! original Go server can be started the same way. Its memory is limited with a
//! cgroup (or `systemd-run`) when a limit is asked for and the machine allows it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::sut::cgroup::{LimitMethod, MemoryCgroup};
use crate::sut::disk::{BlockDevice, DiskMethod, DiskThrottle};
use crate::sut::proc::{self, ProcCounters};

/// Passphrase of the servers the bench starts.
pub const SECRET: &str = "picoshare-bench-passphrase";

/// A running server the bench started.
pub struct Server {
    child: Child,
    /// The server's own process ID, when a tool (strace) runs it as its child.
    inner_pid: Option<u32>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory (removed by [`Server::stop`]).
    pub dir: PathBuf,
    cgroup: Option<MemoryCgroup>,
    throttle: Option<Throttle>,
    /// Whether its memory limit is enforced.
    pub limit_enforced: bool,
    /// Whether its disk limit is enforced.
    pub disk_limit_enforced: bool,
    tool: Tool,
}

/// What limits a server runs under, and how they are enforced here.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    /// Memory limit in MiB.
    pub memory_mib: Option<u64>,
    /// How memory limits are enforced.
    pub memory_method: &'a LimitMethod,
    /// Disk bandwidth limit in MB/s.
    pub disk_mbps: Option<u64>,
    /// How disk limits are enforced.
    pub disk_method: &'a DiskMethod,
}

/// A tool the server runs under, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// Nothing: the server alone.
    None,
    /// `valgrind --tool=cachegrind --cache-sim=no`: instructions executed.
    Cachegrind,
    /// `strace -f -c`: system calls by name.
    Strace,
}

/// The disk throttle of one server.
enum Throttle {
    /// A v1 blkio child cgroup.
    V1(DiskThrottle),
    /// `io.max` in its v2 memory cgroup (this directory).
    V2(PathBuf, BlockDevice),
}

/// What is known after the server stopped.
#[derive(Debug, Default)]
pub struct StopReport {
    /// OOM kills in its cgroup.
    pub oom_kills: Option<u64>,
    /// Instructions executed over its life (under [`Tool::Cachegrind`]).
    pub instructions: Option<u64>,
    /// System calls by name over its life (under [`Tool::Strace`]).
    pub syscalls: std::collections::BTreeMap<String, u64>,
    /// Why the tool's output could not be read, if it could not.
    pub tool_error: Option<String>,
    /// Its counters over its whole life, read once it had exited (not for
    /// a server run under strace, which reaps it itself).
    pub final_counters: Option<ProcCounters>,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `binary` with `args` on a fresh data directory `dir`, under
    /// `limits` where they can be enforced and under `tool`, and waits until
    /// it answers HTTP.
    ///
    /// # Errors
    /// If it does not start, or exits, within 60 s (the error shows its log).
    pub async fn start(
        binary: &Path,
        args: &[String],
        dir: &Path,
        limits: Limits<'_>,
        cgroup_name: &str,
        tool: Tool,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut argv: Vec<String> = Vec::new();
        if let (Some(mib), LimitMethod::SystemdRun) = (limits.memory_mib, limits.memory_method) {
            argv = crate::sut::cgroup::systemd_run_prefix(mib);
            if let (Some(mbps), DiskMethod::SystemdRun { device }) =
                (limits.disk_mbps, limits.disk_method)
            {
                let end = argv.len() - 1; // before the final `--`
                argv.splice(end..end, crate::sut::disk::systemd_properties(device, mbps));
            }
        }
        match tool {
            Tool::None => {}
            Tool::Cachegrind => argv.extend([
                "valgrind".to_owned(),
                "--tool=cachegrind".to_owned(),
                "--cache-sim=no".to_owned(),
                "--quiet".to_owned(),
                format!(
                    "--cachegrind-out-file={}",
                    dir.join("cachegrind.out").display()
                ),
            ]),
            Tool::Strace => argv.extend([
                "strace".to_owned(),
                "-f".to_owned(),
                "-c".to_owned(),
                "-o".to_owned(),
                dir.join("strace.out").display().to_string(),
            ]),
        }
        argv.push(binary.display().to_string());
        argv.push("-db".into());
        argv.push(dir.join("store.db").display().to_string());
        argv.extend(args.iter().cloned());
        let program = argv.remove(0);
        let mut cmd = Command::new(&program);
        cmd.args(&argv)
            .env("PS_SHARED_SECRET", SECRET)
            .env("PORT", port.to_string())
            .env("PS_LISTEN", "127.0.0.1")
            .env("TMPDIR", dir.join("tmp"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // The server joins its cgroups between fork and exec, so that every
        // byte it ever allocates, reads or writes is charged (and limited) there.
        let method = limits.memory_method;
        let cgroup = if method.enforces() && !matches!(method, LimitMethod::SystemdRun) {
            let cg = MemoryCgroup::create(method, cgroup_name, limits.memory_mib)
                .with_context(|| format!("cannot create a memory cgroup ({})", method.label()))?;
            cg.attach_on_exec(cmd.as_std_mut());
            Some(cg)
        } else {
            None
        };
        let throttle = match (limits.disk_mbps, limits.disk_method) {
            (Some(mbps), DiskMethod::CgroupV1 { parent, device }) => {
                let t = DiskThrottle::create(parent, device, cgroup_name, mbps)
                    .context("cannot create a blkio cgroup")?;
                t.attach_on_exec(cmd.as_std_mut());
                Some(Throttle::V1(t))
            }
            (Some(mbps), DiskMethod::CgroupV2 { device }) => match &cgroup {
                Some(cg) => {
                    crate::sut::disk::set_io_max(cg.path(), device, mbps)
                        .context("cannot set io.max")?;
                    Some(Throttle::V2(cg.path().to_owned(), device.clone()))
                }
                None => None,
            },
            _ => None,
        };
        let limit_enforced = limits.memory_mib.is_some() && method.enforces();
        let disk_limit_enforced = limits.disk_mbps.is_some()
            && match limits.disk_method {
                DiskMethod::SystemdRun { .. } => limit_enforced,
                DiskMethod::NotEnforced(_) => false,
                _ => throttle.is_some(),
            };
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            inner_pid: None,
            base,
            dir: dir.to_owned(),
            cgroup,
            throttle,
            limit_enforced,
            disk_limit_enforced,
            tool,
        };
        server.wait_ready().await?;
        if server.tool == Tool::Strace {
            server.inner_pid = server.child.id().and_then(proc::first_child);
        }
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "the server exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if http.get(format!("{}/", self.base)).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer within 60 s; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's process ID (under strace, the traced process's).
    pub fn pid(&self) -> Option<u32> {
        self.inner_pid.or_else(|| self.child.id())
    }

    /// Its CPU time and I/O counters so far.
    pub fn counters(&self) -> Option<ProcCounters> {
        proc::counters(self.pid()?)
    }

    /// Bytes read and written through its disk throttle so far, if throttled.
    pub fn throttled_bytes(&self) -> Option<u64> {
        let (r, w) = match self.throttle.as_ref()? {
            Throttle::V1(t) => t.serviced_bytes()?,
            Throttle::V2(dir, device) => crate::sut::disk::io_stat_bytes(dir, device)?,
        };
        Some(r + w)
    }

    /// Its peak resident memory so far (VmHWM).
    pub fn peak_rss(&self) -> Option<u64> {
        proc::peak_rss(self.pid()?)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it (SIGTERM, then SIGKILL after 60 s), reads what its tool
    /// counted, removes its cgroups and its data directory, temp files included.
    pub async fn stop(self) -> StopReport {
        self.stop_and(true).await
    }

    /// Like [`Server::stop`], but keeps the data directory (its database)
    /// for a next server to start on.
    pub async fn stop_keeping_data(self) -> StopReport {
        self.stop_and(false).await
    }

    async fn stop_and(mut self, remove_data: bool) -> StopReport {
        let mut report = StopReport::default();
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child (or the tool's traced child), not yet reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            // Our own child stays a zombie until it is waited for: its
            // counters then cover its whole life, final checkpoint included.
            if self.inner_pid.is_none() {
                report.final_counters = final_counters(pid, Duration::from_secs(60)).await;
            }
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        match self.tool {
            Tool::None => {}
            Tool::Cachegrind => {
                match std::fs::read_to_string(self.dir.join("cachegrind.out")) {
                    Ok(text) => report.instructions = parse_cachegrind_total(&text),
                    Err(e) => report.tool_error = Some(format!("no cachegrind output: {e}")),
                }
                if report.instructions.is_none() && report.tool_error.is_none() {
                    report.tool_error = Some("cachegrind output has no summary".to_owned());
                }
            }
            Tool::Strace => match std::fs::read_to_string(self.dir.join("strace.out")) {
                Ok(text) => report.syscalls = parse_strace_summary(&text),
                Err(e) => report.tool_error = Some(format!("no strace output: {e}")),
            },
        }
        if report.tool_error.is_some() {
            let log = self.log_tail();
            if let Some(e) = report.tool_error.as_mut() {
                e.push_str(&format!("; server log:\n{log}"));
            }
        }
        if let Some(cg) = self.cgroup.take() {
            report.oom_kills = cg.oom_kills();
            let _ = cg.remove();
        }
        if let Some(Throttle::V1(t)) = self.throttle.take() {
            let _ = t.remove();
        }
        if remove_data {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        report
    }
}

/// Waits (up to `limit`) until our child `pid` has exited but is not yet
/// reaped, and reads its counters then, when they cover its whole life.
async fn final_counters(pid: u32, limit: Duration) -> Option<ProcCounters> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if proc::is_zombie(pid)? {
            return proc::counters(pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The total of a cachegrind output file (`summary: N`, the first event: `Ir`).
pub fn parse_cachegrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Calls per system call from the table `strace -c` writes:
/// `% time  seconds  usecs/call  calls  errors  syscall` rows, then a total.
pub fn parse_strace_summary(text: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = words.last() else { continue };
        if words.len() < 5 || *name == "total" || name.starts_with('-') || *name == "syscall" {
            continue;
        }
        // calls is the 4th column; errors (5th) may be empty.
        if let Ok(calls) = words[3].parse::<u64>() {
            *out.entry((*name).to_owned()).or_insert(0) += calls;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_outputs() {
        let cg = "desc: I1 cache: ...\ncmd: /bin/x\nevents: Ir\nfl=a.c\nfn=main\n1 5\nsummary: 468512345\n";
        assert_eq!(parse_cachegrind_total(cg), Some(468_512_345));
        assert_eq!(parse_cachegrind_total("events: Ir\n"), None);
        let st = "% time     seconds  usecs/call     calls    errors syscall\n\
------ ----------- ----------- --------- --------- ----------------\n\
 45.00    0.004500          10       450           read\n\
 30.00    0.003000          12       250        12 futex\n\
  0.10    0.000010           5         2           pwrite64\n\
------ ----------- ----------- --------- --------- ----------------\n\
100.00    0.010000          14       702        12 total\n";
        let m = parse_strace_summary(st);
        assert_eq!(m.len(), 3);
        assert_eq!((m["read"], m["futex"], m["pwrite64"]), (450, 250, 2));
    }
}
