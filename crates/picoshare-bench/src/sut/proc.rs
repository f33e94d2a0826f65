//! A process's `/proc` files (CPU time, I/O counters, memory, state,
//! children), read through the procfs crate.

use procfs::process::{Io, Process, Stat};

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
    Some(from_parts(&stat, &io, procfs::ticks_per_second() as f64))
}

fn from_parts(stat: &Stat, io: &Io, ticks_per_second: f64) -> ProcCounters {
    ProcCounters {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks_per_second.max(1.0),
        written_bytes: io.write_bytes.saturating_sub(io.cancelled_write_bytes),
        read_bytes: io.read_bytes,
        write_call_bytes: io.wchar,
        syscalls_read: io.syscr,
        syscalls_write: io.syscw,
    }
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
    fn a_live_process() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5; true"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        // The child is `sleep` once sh has forked and it has exec'd.
        let comm = |c: u32| std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
        let mut child = None;
        for _ in 0..500 {
            child = first_child(pid).filter(|c| comm(*c).trim() == "sleep");
            if child.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(child.is_some(), "sh's child sleep not found");
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
    }
}
