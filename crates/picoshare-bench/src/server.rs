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

use crate::cgroup::{LimitMethod, MemoryCgroup};

/// Passphrase of the servers the bench starts.
pub const SECRET: &str = "picoshare-bench-passphrase";

/// A running server the bench started.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory (removed by [`Server::stop`]).
    pub dir: PathBuf,
    cgroup: Option<MemoryCgroup>,
    /// Whether its memory limit is enforced.
    pub limit_enforced: bool,
}

/// What is known after the server stopped.
#[derive(Debug, Default)]
pub struct StopReport {
    /// OOM kills in its cgroup.
    pub oom_kills: Option<u64>,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `binary` with `args` on a fresh data directory `dir`, optionally
    /// under a memory limit, and waits until it answers HTTP.
    ///
    /// # Errors
    /// If it does not start, or exits, within 60 s (the error shows its log).
    pub async fn start(
        binary: &Path,
        args: &[String],
        dir: &Path,
        limit_mib: Option<u64>,
        method: &LimitMethod,
        cgroup_name: &str,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let (program, mut argv): (PathBuf, Vec<String>) = match (limit_mib, method) {
            (Some(mib), LimitMethod::SystemdRun) => {
                let mut prefix = crate::cgroup::systemd_run_prefix(mib);
                let program = PathBuf::from(prefix.remove(0));
                prefix.push(binary.display().to_string());
                (program, prefix)
            }
            _ => (binary.to_owned(), Vec::new()),
        };
        argv.push("-db".into());
        argv.push(dir.join("store.db").display().to_string());
        argv.extend(args.iter().cloned());
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
        // The server joins its cgroup between fork and exec, so that every byte
        // it ever allocates is charged (and limited) there.
        let cgroup = if method.enforces() && !matches!(method, LimitMethod::SystemdRun) {
            let cg = MemoryCgroup::create(method, cgroup_name, limit_mib)
                .with_context(|| format!("cannot create a memory cgroup ({})", method.label()))?;
            cg.attach_on_exec(cmd.as_std_mut());
            Some(cg)
        } else {
            None
        };
        let limit_enforced = limit_mib.is_some() && method.enforces();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            base,
            dir: dir.to_owned(),
            cgroup,
            limit_enforced,
        };
        server.wait_ready().await?;
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

    /// Its process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Bytes it has caused to be written to storage so far.
    pub fn disk_written(&self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/io", self.pid()?)).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Some(field("write_bytes:")?.saturating_sub(field("cancelled_write_bytes:").unwrap_or(0)))
    }

    /// Its peak resident memory so far (VmHWM).
    pub fn peak_rss(&self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it (SIGTERM, then SIGKILL after 30 s), removes its cgroup and its
    /// data directory, temp files included.
    pub async fn stop(mut self) -> StopReport {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let mut report = StopReport::default();
        if let Some(cg) = self.cgroup.take() {
            report.oom_kills = cg.oom_kills();
            let _ = cg.remove();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        report
    }

    /// Out-of-memory kills so far in its cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        self.cgroup.as_ref().and_then(MemoryCgroup::oom_kills)
    }
}
