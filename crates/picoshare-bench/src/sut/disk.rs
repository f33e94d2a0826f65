//! Disk bandwidth limits for the server under test.
//!
//! The original's users run on hard disks and network storage; this machine
//! has a fast, noisy virtual disk. Throttling the server's reads and writes
//! with the block-I/O controller reproduces the slow disks and, as a bonus,
//! makes the disk deterministic: at 100 MB/s the host's other tenants no
//! longer decide how long a write takes.
//!
//! In order of preference:
//!
//! 1. **cgroup v2**: `io.max` (`MAJ:MIN rbps=… wbps=…`) in the server's own
//!    v2 cgroup (the one [`crate::sut::cgroup::MemoryCgroup`] makes), when the
//!    `io` controller is already enabled for children of the parent. The
//!    bench does not enable it itself (that would change how the machine's
//!    cgroups are set up).
//! 2. **cgroup v1**: a child of this process's `blkio` cgroup with
//!    `blkio.throttle.read_bps_device` and `blkio.throttle.write_bps_device`.
//!    Caveat of v1, stated in every report: writeback of dirty pages by the
//!    kernel's flusher threads is charged to the root cgroup, so only the I/O
//!    the server issues itself (its `fsync`s, `sync_file_range`, direct and
//!    read I/O) is throttled. A server that fsyncs what it writes (both
//!    PicoShares do) is throttled; the share of its writes that went through
//!    the throttle is measured ([`DiskThrottle::serviced_bytes`]) and
//!    reported, so an escape is visible rather than assumed away.
//! 3. **systemd-run**: `IOReadBandwidthMax` and `IOWriteBandwidthMax` on the
//!    scope, when memory limits use systemd-run too.
//! 4. **not enforced**, with the reason.
//!
//! The limit applies to the whole disk holding the data directory (for a
//! partition, its disk), in MB/s = 10^6 bytes per second, reads and writes
//! each.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sut::cgroup::{self, LimitMethod};
use crate::sut::mounts::{existing_ancestor, mount_of, read_mounts, Mount};

/// A block device as sysfs shows it: always a whole disk (a partition is
/// resolved to the disk it is on), since that is what the block-I/O
/// controller throttles and what says whether it is rotational.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Kernel name of the whole disk (`vda`, `sda`, `dm-0`, `loop3`).
    pub name: String,
    /// Its sysfs directory.
    pub sys: PathBuf,
}

impl BlockDevice {
    /// `MAJ:MIN`, as cgroup files want it.
    pub fn numbers(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    /// Whether the disk is rotational. Device-mapper and md devices are
    /// judged by the disks under them (`slaves/`) when they have any:
    /// rotational if any is.
    pub fn rotational(&self) -> Option<bool> {
        rotational(&self.sys, 0)
    }
}

/// The whole disk holding `dir`, by the one rule of the bench (the doctor's
/// report and the disk throttle both use it):
///
/// 1. the mount that holds `dir` (or its nearest existing ancestor, with
///    symlinks resolved): the longest mount point in `/proc/self/mountinfo`
///    that is a prefix of it, the last of equals;
/// 2. that mount's device: by its `major:minor` in `/sys/dev/block`, or,
///    for filesystems with anonymous device numbers (btrfs), by its source
///    when that is a device node (`/dev/…`), through `/sys/class/block`;
/// 3. a partition resolved to its whole disk, whose `dev` file gives the
///    numbers.
///
/// `None` for filesystems without a block device (tmpfs, overlay, …).
pub fn device_for(dir: &Path) -> Option<BlockDevice> {
    let mount = mount_of(&read_mounts(), &existing_ancestor(dir))?;
    block_device(&mount)
}

/// The disk behind a mount (steps 2 and 3 of [`device_for`]).
pub(crate) fn block_device(mount: &Mount) -> Option<BlockDevice> {
    let by_number = fs::canonicalize(format!("/sys/dev/block/{}", mount.dev)).ok();
    let sys = by_number.or_else(|| {
        if !mount.source.starts_with("/dev/") {
            return None;
        }
        let node = fs::canonicalize(&mount.source).ok()?;
        fs::canonicalize(Path::new("/sys/class/block").join(node.file_name()?)).ok()
    })?;
    let disk = whole_disk(sys);
    let numbers = fs::read_to_string(disk.join("dev")).ok()?;
    let (major, minor) = numbers.trim().split_once(':')?;
    Some(BlockDevice {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        name: disk.file_name()?.to_string_lossy().into_owned(),
        sys: disk,
    })
}

/// A partition's sysfs directory is inside its disk's (`…/vda/vda1`) and
/// has a `partition` file.
fn whole_disk(sys: PathBuf) -> PathBuf {
    match sys.parent() {
        Some(parent) if sys.join("partition").exists() => parent.to_path_buf(),
        _ => sys,
    }
}

/// [`BlockDevice::rotational`], `depth` levels of `slaves/` down.
fn rotational(sys: &Path, depth: u32) -> Option<bool> {
    let slaves: Vec<PathBuf> = fs::read_dir(sys.join("slaves"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| fs::canonicalize(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if slaves.is_empty() || depth > 4 {
        let text = fs::read_to_string(sys.join("queue/rotational")).ok()?;
        let text = text.trim();
        return (!text.is_empty()).then(|| text == "1");
    }
    let answers: Vec<Option<bool>> = slaves
        .into_iter()
        .map(|s| rotational(&whole_disk(s), depth + 1))
        .collect();
    if answers.contains(&Some(true)) {
        Some(true)
    } else if answers.iter().all(|a| *a == Some(false)) {
        Some(false)
    } else {
        None
    }
}

/// How disk limits can be enforced on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskMethod {
    /// `io.max` in the server's v2 cgroup.
    CgroupV2 {
        /// The device to throttle.
        device: BlockDevice,
    },
    /// A child of this process's v1 `blkio` cgroup, under `parent`.
    CgroupV1 {
        /// Directory of this process's blkio cgroup.
        parent: PathBuf,
        /// The device to throttle.
        device: BlockDevice,
    },
    /// Properties of the systemd-run scope.
    SystemdRun {
        /// The device to throttle.
        device: BlockDevice,
    },
    /// Not possible here, and why.
    NotEnforced(String),
}

impl DiskMethod {
    /// How reports name it.
    pub fn label(&self) -> String {
        match self {
            DiskMethod::CgroupV2 { device } => format!("cgroup-v2 io.max on {}", device.name),
            DiskMethod::CgroupV1 { device, .. } => format!("cgroup-v1 blkio on {}", device.name),
            DiskMethod::SystemdRun { device } => format!("systemd-run on {}", device.name),
            DiskMethod::NotEnforced(why) => format!("not enforced ({why})"),
        }
    }

    /// Whether a limit set with this method is applied.
    pub fn enforces(&self) -> bool {
        !matches!(self, DiskMethod::NotEnforced(_))
    }
}

/// Finds out how the server's disk bandwidth can be limited here, for data
/// in `data_dir` and a server whose memory is handled by `memory` (a v2
/// limit lives in the same cgroup as the memory one). The v1 method is
/// tried for real: a probe child is created, limited, read back and removed.
pub fn detect(data_dir: &Path, memory: &LimitMethod) -> DiskMethod {
    let Some(device) = device_for(data_dir) else {
        return DiskMethod::NotEnforced(format!("no block device behind {}", data_dir.display()));
    };
    if let LimitMethod::CgroupV2 { parent } = memory {
        let enabled = fs::read_to_string(parent.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
        if enabled {
            return DiskMethod::CgroupV2 { device };
        }
    }
    if matches!(memory, LimitMethod::SystemdRun) {
        return DiskMethod::SystemdRun { device };
    }
    let own = crate::sut::proc::own_cgroups();
    let parent = cgroup::v1_controller_dir(&read_mounts(), &own, "blkio")
        .filter(|d| d.join("blkio.throttle.write_bps_device").exists())
        .filter(|d| cgroup::dir_lists_pid(d, std::process::id()));
    let Some(parent) = parent else {
        return DiskMethod::NotEnforced(
            "no blkio (v1) hierarchy with throttling, and no io controller delegated on v2"
                .to_owned(),
        );
    };
    cgroup::remove_stale_in(&parent);
    match DiskThrottle::create(&parent, &device, "probe", 1) {
        Ok(probe) => {
            let applied = fs::read_to_string(probe.path.join("blkio.throttle.write_bps_device"))
                .is_ok_and(|t| t.contains(&format!("{} 1000000", device.numbers())));
            let removed = probe.remove().is_ok();
            if applied && removed {
                DiskMethod::CgroupV1 { parent, device }
            } else {
                DiskMethod::NotEnforced("the blkio throttle did not read back".to_owned())
            }
        }
        Err(e) => DiskMethod::NotEnforced(format!("cannot create a blkio cgroup: {e}")),
    }
}

/// Bytes per second for a limit in MB/s.
fn bytes_per_second(mbps: u64) -> u64 {
    mbps * 1_000_000
}

/// Writes `io.max` for `device` into a v2 cgroup directory.
///
/// # Errors
/// The error of the write (e.g. the io controller is not enabled there).
pub fn set_io_max(cgroup_dir: &Path, device: &BlockDevice, mbps: u64) -> io::Result<()> {
    let bps = bytes_per_second(mbps);
    fs::write(
        cgroup_dir.join("io.max"),
        format!("{} rbps={bps} wbps={bps}", device.numbers()),
    )
}

/// Bytes read and written through a v2 cgroup on `device`, from `io.stat`.
pub fn io_stat_bytes(cgroup_dir: &Path, device: &BlockDevice) -> Option<(u64, u64)> {
    let text = fs::read_to_string(cgroup_dir.join("io.stat")).ok()?;
    parse_io_stat(&text, device)
}

fn parse_io_stat(text: &str, device: &BlockDevice) -> Option<(u64, u64)> {
    let numbers = device.numbers();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(numbers.as_str()))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("rbytes")?, field("wbytes")?))
}

/// The `systemd-run` properties for a limit: `-p IOReadBandwidthMax=… -p IOWriteBandwidthMax=…`.
pub fn systemd_properties(device: &BlockDevice, mbps: u64) -> Vec<String> {
    let bps = bytes_per_second(mbps);
    let dev = format!("/dev/{}", device.name);
    vec![
        "-p".to_owned(),
        format!("IOReadBandwidthMax={dev} {bps}"),
        "-p".to_owned(),
        format!("IOWriteBandwidthMax={dev} {bps}"),
    ]
}

/// A child blkio (v1) cgroup throttling one device, for one server process.
/// Removed by [`DiskThrottle::remove`], or best-effort when dropped.
#[derive(Debug)]
pub struct DiskThrottle {
    path: PathBuf,
    parent: PathBuf,
    device: BlockDevice,
    removed: bool,
}

impl DiskThrottle {
    /// Creates `picoshare-bench-<pid>-<n>-<name>` under `parent` with reads
    /// and writes on `device` limited to `mbps` MB/s.
    ///
    /// # Errors
    /// The failing file operation (nothing is left behind).
    pub fn create(
        parent: &Path,
        device: &BlockDevice,
        name: &str,
        mbps: u64,
    ) -> io::Result<DiskThrottle> {
        let path = parent.join(cgroup::unique_dir_name(name));
        fs::create_dir(&path)?;
        let throttle = DiskThrottle {
            path,
            parent: parent.to_owned(),
            device: device.clone(),
            removed: false,
        };
        let line = format!("{} {}", device.numbers(), bytes_per_second(mbps));
        // On error, dropping `throttle` removes the directory again.
        fs::write(throttle.path.join("blkio.throttle.read_bps_device"), &line)?;
        fs::write(throttle.path.join("blkio.throttle.write_bps_device"), &line)?;
        Ok(throttle)
    }

    /// Makes `cmd`'s child join this cgroup between fork and exec, so all
    /// its I/O is throttled from the start. If joining fails, `spawn` fails.
    pub fn attach_on_exec(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let procs = CString::new(self.path.join("cgroup.procs").as_os_str().as_bytes()).ok();
        // SAFETY: runs in the forked child before exec; only async-signal-safe
        // calls, no allocation (the path was prepared here).
        unsafe {
            cmd.pre_exec(move || match &procs {
                Some(path) => cgroup::join_cgroup_in_child(path),
                None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            });
        }
    }

    /// Bytes read and written on the device through this cgroup so far
    /// (`blkio.throttle.io_service_bytes`).
    pub fn serviced_bytes(&self) -> Option<(u64, u64)> {
        let text = fs::read_to_string(self.path.join("blkio.throttle.io_service_bytes")).ok()?;
        parse_service_bytes(&text, &self.device)
    }

    /// Moves any process left back to the parent and removes the directory.
    ///
    /// # Errors
    /// The error of `rmdir`.
    pub fn remove(mut self) -> io::Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        if let Ok(pids) = fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in pids.split_whitespace() {
                let _ = fs::write(self.parent.join("cgroup.procs"), pid);
            }
        }
        match fs::remove_dir(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for DiskThrottle {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// Parses `MAJ:MIN Read N` / `MAJ:MIN Write N` lines.
fn parse_service_bytes(text: &str, device: &BlockDevice) -> Option<(u64, u64)> {
    let numbers = device.numbers();
    let (mut read, mut write) = (None, None);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some(numbers.as_str()) {
            continue;
        }
        match (
            words.next(),
            words.next().and_then(|v| v.parse::<u64>().ok()),
        ) {
            (Some("Read"), Some(v)) => read = Some(v),
            (Some("Write"), Some(v)) => write = Some(v),
            _ => {}
        }
    }
    Some((read?, write?))
}

/// Bytes an unprivileged user can still write (`f_bavail × f_frsize`).
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail * st.f_frsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vda() -> BlockDevice {
        BlockDevice {
            major: 254,
            minor: 0,
            name: "vda".into(),
            sys: PathBuf::from("/sys/block/vda"),
        }
    }

    #[test]
    fn parses_v1_and_v2_counters() {
        let v1 = "254:0 Read 4096\n254:0 Write 1048576\n254:0 Sync 0\n254:0 Total 1052672\n8:0 Read 7\n8:0 Write 9\nTotal 1052688\n";
        assert_eq!(parse_service_bytes(v1, &vda()), Some((4096, 1_048_576)));
        assert_eq!(parse_service_bytes("Total 0\n", &vda()), None);
        let v2 = "8:0 rbytes=1 wbytes=2 rios=1 wios=1\n254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n";
        assert_eq!(parse_io_stat(v2, &vda()), Some((4096, 8192)));
    }

    #[test]
    fn systemd_properties_name_the_device() {
        assert_eq!(
            systemd_properties(&vda(), 50),
            [
                "-p",
                "IOReadBandwidthMax=/dev/vda 50000000",
                "-p",
                "IOWriteBandwidthMax=/dev/vda 50000000"
            ]
        );
    }

    #[test]
    fn tmpfs_has_no_device() {
        assert_eq!(device_for(Path::new("/proc")), None);
    }

    /// Where a directory's filesystem has a real device number, the mount
    /// rule finds the disk that `stat` and `/sys/dev/block` name directly:
    /// the same device, or the whole disk of the partition.
    #[test]
    fn the_mount_rule_finds_the_disk_stat_names() {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let dev = rustix::fs::stat(dir.path()).unwrap().st_dev;
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        let Some(device) = device_for(dir.path()) else {
            assert_eq!(major, 0, "{major}:{minor} has a device but none was found");
            return;
        };
        let by_stat = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).unwrap();
        assert!(
            by_stat == device.sys || by_stat.parent() == Some(device.sys.as_path()),
            "{} is not {}",
            by_stat.display(),
            device.sys.display()
        );
        assert_eq!(
            fs::read_to_string(device.sys.join("dev")).unwrap().trim(),
            device.numbers()
        );
        // A path that does not exist yet is judged by its nearest ancestor.
        assert_eq!(device_for(&dir.path().join("not/yet")), Some(device));
    }

    /// On the development and CI machine (root, a v1 blkio hierarchy with
    /// throttling) a throttle must really slow a process's direct writes.
    #[test]
    fn throttles_direct_writes_where_blkio_v1_exists() {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let method = detect(dir.path(), &crate::sut::cgroup::detect());
        let blkio_v1 = Path::new("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device").exists()
            && unsafe { libc::geteuid() } == 0;
        let DiskMethod::CgroupV1 { parent, device } = method else {
            assert!(!blkio_v1, "blkio v1 is here but detect() said {method:?}");
            eprintln!("no v1 blkio here: {}", method.label());
            return;
        };
        // 8 MiB written with O_DIRECT at 20 MB/s takes at least 0.4 s.
        let throttle = DiskThrottle::create(&parent, &device, "test", 20).unwrap();
        let mut cmd = Command::new("dd");
        cmd.args([
            "if=/dev/zero",
            &format!("of={}", dir.path().join("f").display()),
            "bs=1M",
            "count=8",
            "oflag=direct",
            "status=none",
        ]);
        throttle.attach_on_exec(&mut cmd);
        let started = std::time::Instant::now();
        assert!(cmd.status().unwrap().success());
        let took = started.elapsed().as_secs_f64();
        let (_, written) = throttle.serviced_bytes().unwrap();
        assert!(written >= 8 << 20, "{written}");
        assert!(took > 0.3, "8 MiB at 20 MB/s took only {took} s");
        throttle.remove().unwrap();
    }
}
