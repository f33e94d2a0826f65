//! The child memory cgroup that holds one server process: created with its
//! limit (v1 or v2 file names), the server put in it before it runs, its
//! peak and OOM kills read back, and removed again (processes moved back to
//! the parent first).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// A child memory cgroup created by this process for one server process.
///
/// Removed by [`MemoryCgroup::remove`], or best-effort when dropped. Put the
/// server in it *before* it allocates anything with
/// [`MemoryCgroup::attach_on_exec`]: memory charged before a move stays
/// charged to the old cgroup, so moving a running process in after spawning
/// undercounts whatever the process allocated first.
#[derive(Debug)]
pub struct MemoryCgroup {
    /// The cgroup's directory.
    pub(super) path: PathBuf,
    /// The cgroup it was created in; processes go back there on removal.
    pub(super) parent: PathBuf,
    /// Which file names apply.
    pub(super) version: Version,
    /// Set once the directory is gone, so Drop does nothing.
    pub(super) removed: bool,
}

impl MemoryCgroup {
    /// Creates a child cgroup with the given memory limit in MiB (2^20
    /// bytes). With `None` there is no limit, but memory is still accounted,
    /// so the cgroup still sees the
    /// process's peak.
    ///
    /// The directory is `picoshare-bench-<pid>-<n>-<name>` under the method's
    /// parent (`name` is reduced to letters, digits, `-` and `_`; an empty
    /// name leaves the suffix out).
    ///
    /// # Errors
    ///
    /// `Unsupported` for [`LimitMethod::SystemdRun`] (use
    /// [`systemd_run_prefix`]) and [`LimitMethod::NotEnforced`]; otherwise
    /// the error of the failing file operation (nothing is left behind).
    pub fn create(
        method: &LimitMethod,
        name: &str,
        limit_mib: Option<u64>,
    ) -> io::Result<MemoryCgroup> {
        let (parent, version) = match method {
            LimitMethod::CgroupV2 { parent } => (parent.clone(), Version::V2),
            LimitMethod::CgroupV1 { parent } => (parent.clone(), Version::V1),
            LimitMethod::SystemdRun => return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "with systemd-run the limit is set by wrapping the command (systemd_run_prefix)",
            )),
            LimitMethod::NotEnforced => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "memory limits cannot be enforced on this machine",
                ))
            }
        };
        if version == Version::V2 {
            enable_memory_for_children(&parent)?;
        }
        let mut cgroup = MemoryCgroup {
            path: parent.join(unique_dir_name(name)),
            parent,
            version,
            // Not created yet: nothing to remove if mkdir fails.
            removed: true,
        };
        if let Err(e) = fs::create_dir(&cgroup.path) {
            if version == Version::V2 {
                release_memory_for_children(&cgroup.parent);
            }
            return Err(e);
        }
        cgroup.removed = false;
        // On error, dropping `cgroup` removes the directory again.
        cgroup.set_limit(limit_mib)?;
        Ok(cgroup)
    }

    /// Writes the limit files; called once on a fresh, empty cgroup.
    fn set_limit(&self, limit_mib: Option<u64>) -> io::Result<()> {
        match self.version {
            Version::V1 => {
                let Some(mib) = limit_mib else { return Ok(()) };
                let bytes = (mib << 20).to_string();
                // memory first: memsw may never be below it.
                fs::write(self.path.join("memory.limit_in_bytes"), &bytes)?;
                let memsw = self.path.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    fs::write(memsw, &bytes)?;
                }
                Ok(())
            }
            Version::V2 => {
                let max = self.path.join("memory.max");
                if !max.exists() {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("{} has no memory controller", self.path.display()),
                    ));
                }
                let Some(mib) = limit_mib else { return Ok(()) };
                fs::write(max, (mib << 20).to_string())?;
                let swap = self.path.join("memory.swap.max");
                if swap.exists() {
                    fs::write(swap, "0")?;
                }
                Ok(())
            }
        }
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves a running process (all its threads) into this cgroup. Only the
    /// tests use it (to check that removal moves processes back out): the
    /// bench starts servers inside with [`MemoryCgroup::attach_on_exec`].
    ///
    /// Memory the process already uses stays charged where it was; prefer
    /// [`MemoryCgroup::attach_on_exec`] for a process about to be started.
    ///
    /// # Errors
    ///
    /// The error of writing `cgroup.procs` (e.g. `ESRCH` if the process is gone).
    #[cfg(test)]
    pub fn add_pid(&self, pid: u32) -> io::Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Makes `cmd` put the child it spawns into this cgroup between fork and
    /// exec, so everything the program ever allocates is charged and limited.
    ///
    /// For a `tokio::process::Command`, pass `cmd.as_std_mut()`. If joining
    /// fails (for example because the cgroup was removed), `spawn` returns
    /// that error instead of starting the program outside the limit.
    pub fn attach_on_exec(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let procs = self.path.join("cgroup.procs");
        // Paths from our own directory names contain no NUL byte; if one
        // somehow did, the closure reports it instead of panicking here.
        let procs = CString::new(procs.as_os_str().as_bytes()).ok();
        // SAFETY: the closure runs in the forked child before exec. It only
        // calls async-signal-safe functions (getpid, open, write, close) and
        // does not allocate: the path was prepared here in the parent.
        unsafe {
            cmd.pre_exec(move || match &procs {
                Some(path) => join_cgroup_in_child(path),
                None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            });
        }
    }

    /// Highest memory use of the cgroup since creation, in bytes (v1
    /// `memory.max_usage_in_bytes`, v2 `memory.peak`, which needs Linux 5.19).
    /// Includes page cache, like the RAM of a VM. Only the tests read it (to
    /// check that the cgroup charges what the process allocates): the bench
    /// records the server's own peak (VmHWM), which outlives the cgroup.
    #[cfg(test)]
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        fs::read_to_string(self.path.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// How many processes the OOM killer killed in this cgroup (v1
    /// `memory.oom_control`, v2 `memory.events`, line `oom_kill`).
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = fs::read_to_string(self.path.join(file)).ok()?;
        keyed_value(&text, "oom_kill")
    }

    /// Moves any process still inside back to the parent cgroup and removes
    /// the directory.
    ///
    /// # Errors
    ///
    /// The last error of `rmdir` if the directory could not be removed within
    /// about a second (e.g. a process forking faster than it can be moved).
    pub fn remove(mut self) -> io::Result<()> {
        self.teardown()
    }

    /// The work of [`MemoryCgroup::remove`], shared with Drop.
    fn teardown(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let parent_procs = self.parent.join("cgroup.procs");
        loop {
            if let Ok(pids) = fs::read_to_string(self.path.join("cgroup.procs")) {
                for pid in pids.split_whitespace() {
                    // A process may exit meanwhile (ESRCH): nothing to move then.
                    let _ = fs::write(&parent_procs, pid);
                }
            }
            match fs::remove_dir(&self.path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                // EBUSY: a process was still inside, or is still exiting.
                Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
        self.removed = true;
        if self.version == Version::V2 {
            release_memory_for_children(&self.parent);
        }
        Ok(())
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
