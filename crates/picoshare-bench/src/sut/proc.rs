//! The bench's one reader of `/proc`: a process's files (CPU time, I/O
//! counters, memory, state, children, name, cgroups, mounts), the
//! machine's (CPU time and memory, the clock tick, other processes' CPU
//! time) and what the doctor records of the machine.
//!
//! Read through the procfs crate wherever it parses the value the bench
//! uses. Four small files are read as text, for reasons procfs cannot
//! meet: the host name (procfs has no reader for it), the kernel release
//! (procfs's `KernelVersion` keeps only its numbers, and the release is
//! recorded whole, as `6.1.0-28-amd64`), the load average (procfs parses it
//! into an `f32`, which would record `1.44` as `1.440000057220459`) and the
//! CPU's name from `/proc/cpuinfo` (procfs's `CpuInfo` skips the lines
//! outside a processor's block, such as ARM's `Hardware`, and cuts a value
//! at its second colon). Mountinfo's octal escapes (`\040` for a space),
//! which procfs leaves in its paths, are undone in [`super::mounts`].

use std::collections::HashMap;

use procfs::process::{Io, MountInfo, Process, Stat};
use procfs::{Current as _, CurrentSI as _};

use super::read_trimmed;

/// CPU time and I/O counters of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcCounters {
    /// User + system CPU seconds of all its threads.
    pub cpu_seconds: f64,
    /// Bytes it caused to be written to storage (minus cancelled writeback).
    pub written_bytes: u64,
    /// Bytes it caused to be read from storage.
    pub read_bytes: u64,
    /// Bytes it passed to write-like system calls (files and sockets):
    /// what it asked to be written, whatever the page cache then did.
    pub write_call_bytes: u64,
    /// Read-like system calls (`syscr`).
    pub syscalls_read: u64,
    /// Write-like system calls (`syscw`).
    pub syscalls_write: u64,
}

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// CPU time (`/proc/PID/stat`, all threads, exited ones included) and I/O
/// counters (`/proc/PID/io`) of a process.
pub fn counters(pid: u32) -> Option<ProcCounters> {
    let p = process(pid)?;
    let (stat, io) = (p.stat().ok()?, p.io().ok()?);
    Some(from_parts(&stat, &io, ticks_per_second()))
}

fn from_parts(stat: &Stat, io: &Io, ticks_per_second: f64) -> ProcCounters {
    ProcCounters {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks_per_second,
        written_bytes: io.write_bytes.saturating_sub(io.cancelled_write_bytes),
        read_bytes: io.read_bytes,
        write_call_bytes: io.wchar,
        syscalls_read: io.syscr,
        syscalls_write: io.syscw,
    }
}

/// Clock ticks per second, the unit of `/proc/stat` and `/proc/PID/stat`.
pub fn ticks_per_second() -> f64 {
    procfs::ticks_per_second().max(1) as f64
}

/// Whether process `pid` exists (its `/proc/PID` directory).
pub fn exists(pid: u32) -> bool {
    process(pid).is_some()
}

/// The name of process `pid` (`comm`: its program's name, cut to 15 bytes).
pub fn name(pid: u32) -> Option<String> {
    Some(process(pid)?.stat().ok()?.comm)
}

/// The cgroups of process `pid`, as `/proc/PID/cgroup` lists them; empty if
/// unreadable.
pub fn cgroups(pid: u32) -> Vec<Cgroup> {
    process(pid)
        .and_then(|p| p.cgroups().ok())
        .map(|c| c.0.into_iter().map(Cgroup::from).collect())
        .unwrap_or_default()
}

/// This process's cgroups.
pub fn own_cgroups() -> Vec<Cgroup> {
    cgroups(std::process::id())
}

/// Parses the text of a `/proc/PID/cgroup` file (for tests).
#[cfg(test)]
pub fn parse_cgroups(text: &str) -> Vec<Cgroup> {
    use procfs::FromBufRead as _;
    procfs::ProcessCGroups::from_buf_read(text.as_bytes())
        .map(|c| c.0.into_iter().map(Cgroup::from).collect())
        .unwrap_or_default()
}

/// One line of `/proc/PID/cgroup`: a hierarchy, its controllers and the
/// process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The v1 hierarchy's ID; 0 for the v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// The v1 hierarchy's controllers (`memory`, `blkio`, `name=systemd`);
    /// none on v2.
    pub controllers: Vec<String>,
    /// The cgroup's path in the hierarchy.
    pub path: String,
}

impl From<procfs::ProcessCGroup> for Cgroup {
    fn from(c: procfs::ProcessCGroup) -> Self {
        Cgroup {
            hierarchy: c.hierarchy,
            controllers: c.controllers,
            path: c.pathname,
        }
    }
}

/// This process's mounts (`/proc/self/mountinfo`), in order; empty if
/// unreadable.
pub fn own_mounts() -> Vec<MountInfo> {
    Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|m| m.0)
        .unwrap_or_default()
}

/// Parses mountinfo text, skipping malformed lines (for tests).
#[cfg(test)]
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| MountInfo::from_line(l).ok())
        .collect()
}

/// User + system CPU ticks of every process, with its name.
pub fn all_cpu_ticks() -> HashMap<u32, (String, u64)> {
    let Ok(all) = procfs::process::all_processes() else {
        return HashMap::new();
    };
    all.flatten()
        .filter_map(|p| {
            let stat = p.stat().ok()?;
            Some((
                u32::try_from(stat.pid).ok()?,
                (stat.comm, stat.utime + stat.stime),
            ))
        })
        .collect()
}

/// The machine's CPU time so far, in jiffies, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// Everything but idle and I/O wait (steal included: it is time the
    /// machine wanted to run and could not).
    pub busy: u64,
    /// All time.
    pub total: u64,
    /// Time the hypervisor gave this virtual machine's CPUs to someone else.
    pub steal: u64,
}

/// The machine's CPU time so far (`/proc/stat`).
pub(crate) fn cpu_times() -> Option<CpuTimes> {
    let t = procfs::KernelStats::current().ok()?.total;
    Some(cpu_times_from([
        t.user,
        t.nice,
        t.system,
        t.idle,
        t.iowait?,
        t.irq.unwrap_or(0),
        t.softirq.unwrap_or(0),
        t.steal.unwrap_or(0),
    ]))
}

/// From `user nice system idle iowait irq softirq steal`, in jiffies (a
/// kernel without a steal column counts it as none).
fn cpu_times_from(f: [u64; 8]) -> CpuTimes {
    let total: u64 = f.iter().sum();
    CpuTimes {
        busy: total - (f[3] + f[4]),
        total,
        steal: f[7],
    }
}

/// The machine's memory (`/proc/meminfo`).
pub fn meminfo() -> Option<procfs::Meminfo> {
    procfs::Meminfo::current().ok()
}

/// Dirty page-cache bytes (written but not yet on disk, or being written),
/// from `/proc/meminfo`.
pub fn dirty_bytes() -> Option<u64> {
    let m = meminfo()?;
    Some(m.dirty + m.writeback)
}

/// The host name (`/proc/sys/kernel/hostname`, as text: see the module
/// header); empty if unreadable.
pub fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default()
}

/// The kernel's release, whole (`/proc/sys/kernel/osrelease`, as text); empty
/// if unreadable.
pub fn kernel_release() -> String {
    read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default()
}

/// The one-minute load average, as the kernel writes it
/// (`/proc/loadavg`, as text); 0 if unreadable.
pub fn load_average() -> f64 {
    read_trimmed("/proc/loadavg")
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The CPU's name from `/proc/cpuinfo` (as text: see the module header).
pub fn cpu_model() -> String {
    cpu_model_in(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// The CPU's name in a `/proc/cpuinfo` text (x86 `model name`, else the ARM
/// and other spellings).
fn cpu_model_in(cpuinfo: &str) -> String {
    for key in ["model name", "Hardware", "cpu model", "cpu", "uarch"] {
        let value = cpuinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        });
        if let Some(value) = value {
            return value;
        }
    }
    "unknown".to_owned()
}

/// Whether the process has exited but is not yet reaped (state `Z`).
pub fn is_zombie(pid: u32) -> Option<bool> {
    Some(process(pid)?.stat().ok()?.state == 'Z')
}

/// The first child of process `pid` (the program a tool such as strace
/// started), from `/proc/PID/task/PID/children`.
pub fn first_child(pid: u32) -> Option<u32> {
    process(pid)?
        .task_main_thread()
        .ok()?
        .children()
        .ok()?
        .first()
        .copied()
}

/// Peak resident memory (VmHWM) of a process, bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    Some(process(pid)?.status().ok()?.vmhwm? * 1024)
}

/// Current resident memory (VmRSS) of a process, bytes.
pub fn current_rss(pid: u32) -> Option<u64> {
    Some(process(pid)?.status().ok()?.vmrss? * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead;

    #[test]
    fn counters_from_proc_texts() {
        let stat = "4242 (pico share) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 \
                    1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let io = "rchar: 10\nwchar: 20\nsyscr: 7\nsyscw: 9\nread_bytes: 0\nwrite_bytes: 8192\ncancelled_write_bytes: 4096\n";
        let stat = Stat::from_read(stat.as_bytes()).unwrap();
        assert_eq!(stat.comm, "pico share");
        let c = from_parts(&stat, &Io::from_read(io.as_bytes()).unwrap(), 100.0);
        assert_eq!(
            c,
            ProcCounters {
                cpu_seconds: 3.0,
                written_bytes: 4096,
                read_bytes: 0,
                write_call_bytes: 20,
                syscalls_read: 7,
                syscalls_write: 9
            }
        );
        assert!(Stat::from_read("garbage".as_bytes()).is_err());
    }

    #[test]
    fn reads_cpuinfo() {
        assert_eq!(
            cpu_model_in("processor\t: 0\nmodel name\t: AMD EPYC\n"),
            "AMD EPYC"
        );
        // ARM: the board's name after the processors' blocks.
        assert_eq!(
            cpu_model_in("processor\t: 0\nBogoMIPS\t: 38.40\n\nHardware\t: BCM2835\n"),
            "BCM2835"
        );
        assert_eq!(cpu_model_in(""), "unknown");
        assert!(!cpu_model().is_empty());
    }

    #[test]
    fn reads_the_machine_as_text() {
        assert!(!hostname().is_empty());
        assert!(kernel_release().contains('.'), "{}", kernel_release());
        assert!(load_average() >= 0.0);
    }

    #[test]
    fn reads_busy_total_and_steal_from_proc_stat() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let t = cpu_times_from([100, 5, 50, 800, 20, 0, 10, 15]);
        assert_eq!(
            t,
            CpuTimes {
                busy: 100 + 5 + 50 + 10 + 15,
                total: 1000,
                steal: 15,
            }
        );
        let live = cpu_times().expect("/proc/stat is readable");
        assert!(live.total > 0 && live.busy <= live.total && live.steal <= live.busy);
        assert!(dirty_bytes().is_some());
    }

    #[test]
    fn a_live_process() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5; true"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        // The child is `sleep` once sh has forked and it has exec'd.
        let mut child = None;
        for _ in 0..500 {
            child = first_child(pid).filter(|c| name(*c).as_deref() == Some("sleep"));
            if child.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(child.is_some(), "sh's child sleep not found");
        assert_eq!(name(pid).as_deref(), Some("sh"));
        assert!(exists(pid) && !own_cgroups().is_empty());
        assert_eq!(
            cgroups(pid),
            own_cgroups(),
            "a child starts in its parent's cgroups"
        );
        assert!(peak_rss(pid).unwrap() >= current_rss(pid).unwrap());
        assert!(current_rss(pid).unwrap() > 0);
        assert_eq!(is_zombie(pid), Some(false));
        assert!(counters(pid).is_some());
        sh.kill().unwrap();
        for _ in 0..200 {
            if is_zombie(pid) == Some(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(is_zombie(pid), Some(true));
        sh.wait().unwrap();
        assert_eq!(peak_rss(pid), None);
        assert!(!exists(pid) && name(pid).is_none() && cgroups(pid).is_empty());
    }
}
