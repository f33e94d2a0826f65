//! Memory limits for the server under test: finding out how they can be
//! enforced on this machine, and the child cgroup that enforces them.
//!
//! The original harness limited memory by sizing a Firecracker VM. Here the
//! server runs on the host, so a limit needs a memory cgroup. In order of
//! preference:
//!
//! 1. **cgroup v2**: a child of this process's own cgroup on the unified
//!    hierarchy, with `memory.max` and `memory.swap.max = 0`. The kernel's
//!    "no internal processes" rule only lets a non-root cgroup hand the memory
//!    controller to children when it holds no processes itself, and this
//!    process lives in it, so in practice this works when the bench runs in the
//!    root cgroup (for example in a VM) or in a cgroup where `memory` is
//!    already delegated to children.
//! 2. **cgroup v1**: a child of this process's memory cgroup, with
//!    `memory.limit_in_bytes` and (when swap accounting exists)
//!    `memory.memsw.limit_in_bytes`, so swapping cannot dodge the limit.
//! 3. **systemd-run**: where systemd is PID 1, the runner wraps the server's
//!    command line with [`systemd_run_prefix`]; systemd creates the scope.
//! 4. **not enforced**: limits are recorded as such, never silently assumed.
//!
//! [`detect`] tries each method for real (create a probe, set a limit, remove
//! it), so "available" means "works here". Nothing else on the machine is
//! touched: the only cgroups this module creates are its own children, named
//! `picoshare-bench-<pid>-<n>`, and they are removed again.
//!
//! Note for readers of the numbers: a memory cgroup charges page cache too, as
//! the RAM of the original's VM did. A server writing a 5 GiB file under a
//! 256 MiB limit is not killed for its page cache (the kernel reclaims it), but
//! it is slowed when reclaim has to wait for writeback; anonymous memory above
//! the limit gets the process OOM-killed.

mod memory;

use std::ffi::CStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sut::mounts::{read_mounts, Mount};
use crate::sut::proc::{self, Cgroup};
pub use memory::MemoryCgroup;

/// Which hierarchy a [`MemoryCgroup`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// Numbers the cgroups of this process, so names never collide.
pub(super) static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// v2 parents where this process enabled `+memory` in `cgroup.subtree_control`,
/// with the number of live children relying on it. When the last one goes,
/// the setting is switched back, leaving the cgroup as found.
pub(super) static ENABLED_BY_US: Mutex<Vec<(PathBuf, usize)>> = Mutex::new(Vec::new());

/// How memory limits can be enforced on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitMethod {
    /// Child cgroups on the unified (v2) hierarchy, under `parent`.
    CgroupV2 {
        /// Directory of this process's cgroup; children are created in it.
        parent: PathBuf,
    },
    /// Child cgroups on the v1 memory hierarchy, under `parent`.
    CgroupV1 {
        /// Directory of this process's memory cgroup; children are created in it.
        parent: PathBuf,
    },
    /// `systemd-run --scope -p MemoryMax=…` wraps the server's command line;
    /// see [`systemd_run_prefix`].
    SystemdRun,
    /// No way to enforce a limit here; limits are recorded as not enforced.
    NotEnforced,
}

impl LimitMethod {
    /// The name used in results and reports: `cgroup-v2`, `cgroup-v1`,
    /// `systemd-run` or `not enforced`.
    pub fn label(&self) -> &'static str {
        match self {
            LimitMethod::CgroupV2 { .. } => "cgroup-v2",
            LimitMethod::CgroupV1 { .. } => "cgroup-v1",
            LimitMethod::SystemdRun => "systemd-run",
            LimitMethod::NotEnforced => "not enforced",
        }
    }

    /// Whether a limit set with this method is really enforced.
    pub fn enforces(&self) -> bool {
        !matches!(self, LimitMethod::NotEnforced)
    }
}

/// Finds out how memory limits can be enforced here, by trying: each cgroup
/// method creates a probe child with a 64 MiB limit, reads the limit back and
/// removes the child; systemd-run (only where systemd is PID 1) starts a
/// `sleep` in a scope and checks that its cgroup carries the limit.
///
/// Takes a few milliseconds with cgroups, up to a few seconds with systemd.
pub fn detect() -> LimitMethod {
    let mounts = read_mounts();
    let own = proc::own_cgroups();
    let own_pid = std::process::id();

    if let Some(parent) = v2_dir(&mounts, &own).filter(|d| dir_lists_pid(d, own_pid)) {
        let method = LimitMethod::CgroupV2 { parent };
        if probe(&method) {
            remove_stale_children(&method);
            return method;
        }
    }
    if let Some(parent) = v1_memory_dir(&mounts, &own).filter(|d| dir_lists_pid(d, own_pid)) {
        let method = LimitMethod::CgroupV1 { parent };
        if probe(&method) {
            remove_stale_children(&method);
            return method;
        }
    }
    if systemd_is_init() && systemd_run_works() {
        return LimitMethod::SystemdRun;
    }
    LimitMethod::NotEnforced
}

/// The arguments to put before the server's command line when the method is
/// [`LimitMethod::SystemdRun`]:
/// `systemd-run [--user] --scope --quiet -p MemoryMax=<bytes> -p MemorySwapMax=0 --`.
///
/// `--user` is added when not running as root (the user's systemd instance
/// then owns the scope). With `--scope`, systemd-run puts itself in a new
/// scope and then *execs* the command, so the spawned child's pid is the
/// server's pid: VmHWM, signals and exit status work as without the prefix.
/// A kill by the OOM killer shows as death by SIGKILL. Peak memory of the
/// scope is not available after exit, so rely on the server's VmHWM.
///
/// The prefix starts with `systemd-run` and ends with `--`: the server's
/// command line follows it (`prefix[0]` is the program, the rest its
/// arguments). The test `systemd_prefix_sets_limit_and_swap` checks it.
pub fn systemd_run_prefix(limit_mib: u64) -> Vec<String> {
    let mut prefix = vec!["systemd-run".to_owned()];
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        prefix.push("--user".to_owned());
    }
    // MemorySwapMax keeps swap from dodging the limit, as memsw does in v1.
    prefix.extend([
        "--scope".to_owned(),
        "--quiet".to_owned(),
        "-p".to_owned(),
        format!("MemoryMax={}", limit_mib << 20),
        "-p".to_owned(),
        "MemorySwapMax=0".to_owned(),
        "--".to_owned(),
    ]);
    prefix
}

/// The memory limit, in bytes, of the cgroup that process `pid` is in, or
/// `None` if it has no limit or it cannot be read. Lets a runner check that a
/// limit really applies to the server it started (with any method).
pub fn memory_limit_of_pid(pid: u32) -> Option<u64> {
    let mounts = read_mounts();
    let cgroups = proc::cgroups(pid);
    if let Some(dir) = v2_dir(&mounts, &cgroups) {
        if let Some(limit) = read_limit(&dir.join("memory.max")) {
            return Some(limit);
        }
    }
    let dir = v1_memory_dir(&mounts, &cgroups)?;
    read_limit(&dir.join("memory.limit_in_bytes"))
}

/// `picoshare-bench-<pid>-<n>[-<name>]`.
pub(crate) fn unique_dir_name(name: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut dir = format!("picoshare-bench-{}-{n}", std::process::id());
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if !clean.is_empty() {
        dir.push('-');
        dir.push_str(&clean);
    }
    dir
}

/// Runs in the forked child: writes its own pid to `cgroup.procs`.
pub(crate) fn join_cgroup_in_child(procs: &CStr) -> io::Result<()> {
    // Decimal digits of the pid, formatted without allocating.
    // SAFETY (all calls below): plain syscalls on a valid NUL-terminated
    // path and a stack buffer of the stated length.
    let mut pid = unsafe { libc::getpid() } as u32;
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    let text = &digits[start..];
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
    let result = if written < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    };
    unsafe { libc::close(fd) };
    result
}

/// Makes sure children of a v2 `parent` get the memory controller, enabling
/// it if needed (and allowed), and counts the child relying on that.
fn enable_memory_for_children(parent: &Path) -> io::Result<()> {
    let mut enabled = ENABLED_BY_US.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = enabled.iter_mut().find(|(p, _)| p == parent) {
        entry.1 += 1;
        return Ok(());
    }
    let control = parent.join("cgroup.subtree_control");
    let current = fs::read_to_string(&control)?;
    if current.split_whitespace().any(|c| c == "memory") {
        return Ok(());
    }
    // The root cgroup has no cgroup.type. Enabling a controller there would
    // change the whole machine's setup, which the bench must not do.
    if !parent.join("cgroup.type").exists() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "memory controller not enabled in the root cgroup; not changing it",
        ));
    }
    // Fails with EBUSY when the parent holds processes (no internal
    // processes rule), which is the usual case: then the caller falls back.
    fs::write(&control, "+memory")?;
    enabled.push((parent.to_path_buf(), 1));
    Ok(())
}

/// Undoes [`enable_memory_for_children`] for one child; switches `memory`
/// off again when the last child that needed our enabling is gone.
fn release_memory_for_children(parent: &Path) {
    let mut enabled = ENABLED_BY_US.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = enabled.iter().position(|(p, _)| p == parent) {
        enabled[i].1 -= 1;
        if enabled[i].1 == 0 {
            let _ = fs::write(parent.join("cgroup.subtree_control"), "-memory");
            enabled.remove(i);
        }
    }
}

/// Creates a probe child with a 64 MiB limit, checks it reads back, removes it.
fn probe(method: &LimitMethod) -> bool {
    const PROBE_MIB: u64 = 64;
    let Ok(cgroup) = MemoryCgroup::create(method, "probe", Some(PROBE_MIB)) else {
        return false;
    };
    let file = match cgroup.version {
        Version::V1 => "memory.limit_in_bytes",
        Version::V2 => "memory.max",
    };
    let applied = read_limit(&cgroup.path.join(file)) == Some(PROBE_MIB << 20);
    cgroup.remove().is_ok() && applied
}

/// Removes empty child cgroups left by bench processes that no longer exist
/// (killed before they could clean up). A cgroup that still holds a process
/// cannot be removed, so a server that outlived its bench is left alone.
fn remove_stale_children(method: &LimitMethod) {
    if let LimitMethod::CgroupV1 { parent } | LimitMethod::CgroupV2 { parent } = method {
        remove_stale_in(parent);
    }
}

/// Removes the empty `picoshare-bench-<pid>-…` children of `parent` whose
/// bench process is gone (any controller's hierarchy).
pub(crate) fn remove_stale_in(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("picoshare-bench-"))
        else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if !proc::exists(pid) {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Whether systemd is the init system (as `sd_booted` decides, plus PID 1's name).
pub(crate) fn systemd_is_init() -> bool {
    Path::new("/run/systemd/system").is_dir() && proc::name(1).is_some_and(|c| c == "systemd")
}

/// Starts `sleep` under [`systemd_run_prefix`] and checks that the scope it
/// lands in carries the limit (a user manager without the memory controller
/// delegated would accept MemoryMax and ignore it).
fn systemd_run_works() -> bool {
    const PROBE_MIB: u64 = 64;
    let prefix = systemd_run_prefix(PROBE_MIB);
    let Ok(mut child) = Command::new(&prefix[0])
        .args(&prefix[1..])
        .args(["sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut works = false;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            break;
        }
        // Once systemd-run has exec'd, the process is `sleep` in its scope.
        if proc::name(pid).is_some_and(|c| c == "sleep") {
            works = memory_limit_of_pid(pid) == Some(PROBE_MIB << 20);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    works
}

/// Reads a limit file: a number of bytes, or `max`/a huge v1 value for none.
fn read_limit(file: &Path) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let value: u64 = text.trim().parse().ok()?;
    // v1 reports "unlimited" as a value near i64::MAX, rounded to pages.
    (value < 1 << 62).then_some(value)
}

/// The value of a `key value` line, as in `memory.events` or `memory.oom_control`.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Whether a cgroup directory lists `pid` in `cgroup.procs`: confirms that
/// the directory found really is the process's cgroup.
pub(crate) fn dir_lists_pid(dir: &Path, pid: u32) -> bool {
    let wanted = pid.to_string();
    fs::read_to_string(dir.join("cgroup.procs"))
        .is_ok_and(|procs| procs.split_whitespace().any(|p| p == wanted))
}

/// The directory of a cgroup `path` (as in [`proc::Cgroup`]) inside a
/// cgroupfs mount, which may show only a subtree (`root`).
fn cgroup_dir(mount: &Mount, path: &str) -> PathBuf {
    let path = Path::new(path);
    let relative = path.strip_prefix(&mount.root).unwrap_or(path);
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    mount.mount_point.join(relative)
}

/// The v2 cgroup directory among a process's `cgroups`, on a unified mount
/// whose cgroup there offers the memory controller.
fn v2_dir(mounts: &[Mount], cgroups: &[Cgroup]) -> Option<PathBuf> {
    let path = &cgroups
        .iter()
        .find(|c| c.hierarchy == 0 && c.controllers.is_empty())?
        .path;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .map(|m| cgroup_dir(m, path))
        .find(|dir| {
            fs::read_to_string(dir.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
        })
}

/// The v1 memory cgroup directory among a process's `cgroups`, if a v1
/// memory hierarchy is mounted.
fn v1_memory_dir(mounts: &[Mount], cgroups: &[Cgroup]) -> Option<PathBuf> {
    v1_controller_dir(mounts, cgroups, "memory")
}

/// The directory of the v1 cgroup of `controller` (e.g. `memory`, `blkio`)
/// among a process's `cgroups`, if a v1 hierarchy with that controller is
/// mounted.
pub(crate) fn v1_controller_dir(
    mounts: &[Mount],
    cgroups: &[Cgroup],
    controller: &str,
) -> Option<PathBuf> {
    let path = &cgroups
        .iter()
        .find(|c| c.controllers.iter().any(|c| c == controller))?
        .path;
    let mount = mounts
        .iter()
        .rev()
        .find(|m| m.fstype == "cgroup" && m.super_options.contains_key(controller))?;
    Some(cgroup_dir(mount, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sut::mounts::parse_mountinfo;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::ExitStatusExt;

    const MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 8:1 /data /mnt/my\\040disk rw shared:1 - xfs /dev/sda1 rw
51 27 0:40 /docker/abc /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory
";

    /// Whether this machine is one where memory cgroups must work: root, with
    /// a writable v1 memory hierarchy. This is a fact of the CI machine (and
    /// the development VM): cgroup v1 at /sys/fs/cgroup/memory, tests run as
    /// root. Elsewhere the cgroup tests say why they do not apply.
    fn cgroup_v1_expected() -> bool {
        let Some(dir) = v1_memory_dir(&read_mounts(), &proc::own_cgroups()) else {
            return false;
        };
        let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: geteuid has no preconditions; access gets a valid C string.
        unsafe { libc::geteuid() == 0 && libc::access(c.as_ptr(), libc::W_OK) == 0 }
    }

    /// The method cgroup tests use, or `None` (with a message) where the
    /// machine cannot enforce limits with a cgroup.
    fn method_or_skip() -> Option<LimitMethod> {
        let method = detect();
        if cgroup_v1_expected() {
            assert!(
                matches!(method, LimitMethod::CgroupV1 { .. }),
                "this machine has a writable v1 memory cgroup and runs as root, \
                 yet detect() returned {method:?}"
            );
        }
        match method {
            LimitMethod::CgroupV1 { .. } | LimitMethod::CgroupV2 { .. } => Some(method),
            other => {
                eprintln!("skipped: memory cgroups unusable here ({})", other.label());
                None
            }
        }
    }

    /// Runs `dd` with a buffer of `mib` MiB (it fills the buffer from
    /// /dev/zero, so all of it is resident) inside `cgroup`.
    fn run_dd(cgroup: &MemoryCgroup, mib: u64) -> std::process::ExitStatus {
        let mut cmd = Command::new("dd");
        cmd.args([
            "if=/dev/zero",
            "of=/dev/null",
            "count=1",
            &format!("bs={mib}M"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cgroup.attach_on_exec(&mut cmd);
        cmd.status().expect("dd runs")
    }

    #[test]
    fn labels() {
        assert_eq!(
            LimitMethod::CgroupV2 {
                parent: "/x".into()
            }
            .label(),
            "cgroup-v2"
        );
        assert_eq!(
            LimitMethod::CgroupV1 {
                parent: "/x".into()
            }
            .label(),
            "cgroup-v1"
        );
        assert_eq!(LimitMethod::SystemdRun.label(), "systemd-run");
        assert_eq!(LimitMethod::NotEnforced.label(), "not enforced");
        assert!(!LimitMethod::NotEnforced.enforces());
    }

    #[test]
    fn parses_mountinfo_with_escapes() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].source, "/dev/vda");
        assert_eq!(mounts[0].dev, "254:0");
        assert_eq!(mounts[3].mount_point, Path::new("/mnt/my disk"));
        assert_eq!(mounts[3].root, Path::new("/data"));
        assert_eq!(mounts[3].fstype, "xfs");
        assert_eq!(mounts[2].fstype, "cgroup2");
        assert!(parse_mountinfo("garbage\n").is_empty());
    }

    #[test]
    fn finds_v1_memory_dir_respecting_mount_root() {
        let mounts = parse_mountinfo(MOUNTINFO);
        // The last memory mount (with root /docker/abc) wins.
        let cgroups = |text| proc::parse_cgroups(text);
        let dir = v1_memory_dir(&mounts, &cgroups("4:cpu,memory:/docker/abc/sub\n0::/\n")).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/cpu,memory/sub"));
        let only_first = &mounts[..3];
        let systemd_and_memory = cgroups("9:name=systemd:/\n4:memory:/process_api/x\n");
        let dir = v1_memory_dir(only_first, &systemd_and_memory).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/process_api/x"));
        assert_eq!(
            v1_memory_dir(only_first, &cgroups("0::/user.slice\n")),
            None
        );
    }

    #[test]
    fn reads_keyed_values_and_limits() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(oom, "oom_kill"), Some(3));
        assert_eq!(keyed_value(oom, "oom"), None);
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("limit");
        fs::write(&file, "9223372036854771712\n").unwrap();
        assert_eq!(read_limit(&file), None);
        fs::write(&file, "max\n").unwrap();
        assert_eq!(read_limit(&file), None);
        fs::write(&file, "67108864\n").unwrap();
        assert_eq!(read_limit(&file), Some(64 << 20));
    }

    #[test]
    fn systemd_prefix_sets_limit_and_swap() {
        let prefix = systemd_run_prefix(256);
        assert_eq!(prefix[0], "systemd-run");
        assert!(prefix.contains(&"--scope".to_owned()));
        assert!(prefix.contains(&format!("MemoryMax={}", 256u64 << 20)));
        assert!(prefix.contains(&"MemorySwapMax=0".to_owned()));
        assert_eq!(prefix.last().map(String::as_str), Some("--"));
    }

    #[test]
    fn names_are_unique_and_clean() {
        let a = unique_dir_name("x y/z");
        let b = unique_dir_name("");
        let prefix = format!("picoshare-bench-{}-", std::process::id());
        assert!(a.starts_with(&prefix) && a.ends_with("-x_y_z"), "{a}");
        assert!(b.starts_with(&prefix));
        assert_ne!(a, b);
    }

    #[test]
    fn unsupported_methods_create_nothing() {
        for method in [LimitMethod::SystemdRun, LimitMethod::NotEnforced] {
            let err = MemoryCgroup::create(&method, "x", Some(64)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        }
    }

    /// The CI machine (root, cgroup v1) must enforce limits with a v1 cgroup.
    #[test]
    fn detects_v1_on_this_machine() {
        if !cgroup_v1_expected() {
            eprintln!("skipped: not root with a writable v1 memory cgroup");
            return;
        }
        let method = detect();
        let LimitMethod::CgroupV1 { parent } = &method else {
            panic!("expected cgroup-v1 on this machine, got {method:?}");
        };
        assert!(parent.starts_with("/sys/fs/cgroup"), "{}", parent.display());
        assert!(parent.join("memory.limit_in_bytes").exists());
    }

    /// A program allocating more than the limit is OOM-killed, and the kill
    /// and the peak are reported.
    #[test]
    fn over_limit_allocation_is_oom_killed() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let cgroup = MemoryCgroup::create(&method, "oom", Some(64)).unwrap();
        let status = run_dd(&cgroup, 200);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "dd should be killed: {status:?}"
        );
        assert_eq!(cgroup.oom_kills(), Some(1));
        let peak = cgroup.peak_bytes().expect("peak readable");
        assert!(peak > 32 << 20 && peak <= 64 << 20, "peak {peak}");
        let path = cgroup.path().to_path_buf();
        cgroup.remove().unwrap();
        assert!(!path.exists());
    }

    /// Within the limit a program runs normally and its peak is accounted.
    #[test]
    fn under_limit_allocation_runs_and_peak_is_reported() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let cgroup = MemoryCgroup::create(&method, "fits", Some(64)).unwrap();
        assert!(run_dd(&cgroup, 16).success());
        assert_eq!(cgroup.oom_kills(), Some(0));
        let peak = cgroup.peak_bytes().unwrap();
        assert!((16 << 20..64 << 20).contains(&peak), "peak {peak}");
        cgroup.remove().unwrap();
    }

    /// Without a limit, memory is accounted but not capped.
    #[test]
    fn unlimited_cgroup_still_accounts() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let cgroup = MemoryCgroup::create(&method, "unlimited", None).unwrap();
        assert!(run_dd(&cgroup, 100).success());
        assert!(cgroup.peak_bytes().unwrap() >= 100 << 20);
        cgroup.remove().unwrap();
    }

    /// add_pid moves a running process in; remove moves it back out and
    /// deletes the directory while the process keeps running.
    #[test]
    fn add_pid_and_remove_with_process_inside() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let cgroup = MemoryCgroup::create(&method, "sleep", Some(64)).unwrap();
        let mut sleep = Command::new("sleep").arg("5").spawn().unwrap();
        cgroup.add_pid(sleep.id()).unwrap();
        assert_eq!(memory_limit_of_pid(sleep.id()), Some(64 << 20));
        let name = cgroup
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let own = proc::cgroups(sleep.id());
        assert!(own.iter().any(|c| c.path.contains(&name)), "{own:?}");
        let path = cgroup.path().to_path_buf();
        cgroup.remove().unwrap();
        assert!(!path.exists());
        assert!(
            sleep.try_wait().unwrap().is_none(),
            "sleep must survive the removal"
        );
        sleep.kill().unwrap();
        sleep.wait().unwrap();
    }

    /// detect() removes empty cgroups of bench processes that are gone.
    #[test]
    fn detect_removes_stale_children() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let (LimitMethod::CgroupV1 { parent } | LimitMethod::CgroupV2 { parent }) = &method else {
            unreachable!("method_or_skip only returns cgroup methods")
        };
        // A pid above the kernel's maximum (4194304) never exists.
        let stale = parent.join("picoshare-bench-4999999-0-stale");
        fs::create_dir(&stale).unwrap();
        detect();
        assert!(!stale.exists());
    }

    /// Dropping a cgroup removes it too.
    #[test]
    fn drop_removes() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let path = {
            let cgroup = MemoryCgroup::create(&method, "dropped", None).unwrap();
            cgroup.path().to_path_buf()
        };
        assert!(!path.exists());
    }

    /// Joining a removed cgroup makes spawn fail instead of running unlimited.
    #[test]
    fn attach_to_removed_cgroup_fails_spawn() {
        let Some(method) = method_or_skip() else {
            return;
        };
        let cgroup = MemoryCgroup::create(&method, "gone", Some(64)).unwrap();
        let mut cmd = Command::new("true");
        cgroup.attach_on_exec(&mut cmd);
        let path = cgroup.path().to_path_buf();
        fs::remove_dir(&path).unwrap();
        assert!(cmd.status().is_err());
    }
}
