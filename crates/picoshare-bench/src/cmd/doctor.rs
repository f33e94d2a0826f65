//! The preflight ("doctor"): what machine the benchmark runs on, and what on
//! it could make the numbers noisy or wrong.
//!
//! The original harness ran on a RAID-1 of hard disks, through a loop-mounted
//! image, with CPU frequency scaling on, and let temp files pile up until
//! uploads failed; its results had 28–35 % variation and it could not say
//! why. The doctor looks for each of these before a run, and its findings go
//! into the result file ([`Environment`]) so every report shows the
//! conditions its numbers were taken under.
//!
//! Everything is read from `/proc` and `/sys`; nothing is changed. The only
//! side effect is `cgroup::detect`'s probe cgroup, created and removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::results::{Check, Environment};
use crate::sut::cgroup::{self, LimitMethod};
use crate::sut::disk::{block_device, BlockDevice};
use crate::sut::mounts::{absolute, existing_ancestor, mount_of, read_mounts, Mount};
use crate::sut::{proc, read_trimmed};

/// Check status: nothing to worry about.
const OK: &str = "ok";
/// Check status: the run can go on, but numbers may suffer.
const WARN: &str = "warn";
/// Check status: the run cannot succeed.
const FAIL: &str = "fail";

/// Bytes in a GiB, for messages.
const GIB: f64 = (1u64 << 30) as f64;

/// How long CPU use of other processes is sampled.
const CPU_SAMPLE: Duration = Duration::from_millis(200);

/// A process using more than this share of one CPU counts as other load.
const BUSY_PERCENT: f64 = 20.0;

/// Looks at the machine and the data directory (which need not exist yet:
/// its nearest existing ancestor is inspected). `needed_bytes` is how much
/// free space the run needs there.
///
/// Takes a little over 200 ms (CPU use of other processes is sampled).
pub fn inspect(data_dir: &Path, needed_bytes: u64) -> Environment {
    let dir = existing_ancestor(data_dir);
    let meminfo = proc::meminfo();
    let cpus = cpu_count();
    let mount = mount_of(&read_mounts(), &dir);
    let disk = mount.as_ref().and_then(block_device);
    let device = device_name(mount.as_ref(), disk.as_ref());
    let rotational = disk.as_ref().and_then(BlockDevice::rotational);
    let free = crate::sut::disk::free_bytes(&dir).unwrap_or(0);
    let governor = read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    let load = proc::load_average();
    let method = cgroup::detect();
    let filesystem = mount
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |m| m.fstype.clone());

    let checks = vec![
        check_rotational(&filesystem, disk.as_ref(), rotational),
        check_loop(disk.as_ref()),
        check_governor(governor.as_deref()),
        check_free_space(free, needed_bytes),
        // The data dir itself, not its ancestor: a directory that does not
        // exist yet holds no leftovers.
        check_leftovers(&absolute(data_dir)),
        check_load(load, cpus),
        check_memory_limits(&method),
        check_swap(meminfo.as_ref().map(|m| m.swap_total)),
    ];

    Environment {
        hostname: proc::hostname(),
        kernel: proc::kernel_release(),
        cpu_model: proc::cpu_model(),
        cpus,
        memory_bytes: meminfo.as_ref().map_or(0, |m| m.mem_total),
        filesystem,
        device,
        rotational,
        free_bytes: free,
        cpu_governor: governor,
        load_average: load,
        disk_limit_method: String::new(),
        memory_limit_method: method.label().to_owned(),
        checks,
    }
}

/// The doctor's findings for people: the machine in a few lines, then one
/// line per check, marked `ok`, `WARN` or `FAIL`.
pub fn print(env: &Environment) -> String {
    let rotational = match env.rotational {
        Some(true) => "rotational",
        Some(false) => "not rotational",
        None => "rotational: unknown",
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<10} {value}\n"));
    line("host", env.hostname.clone());
    line("kernel", env.kernel.clone());
    line(
        "cpu",
        format!("{} ({} logical CPUs)", env.cpu_model, env.cpus),
    );
    line(
        "memory",
        format!("{:.1} GiB", env.memory_bytes as f64 / GIB),
    );
    line(
        "data dir",
        format!(
            "{} on {} ({rotational}), {:.1} GiB free",
            env.filesystem,
            env.device,
            env.free_bytes as f64 / GIB
        ),
    );
    line(
        "governor",
        env.cpu_governor
            .clone()
            .unwrap_or_else(|| "not exposed".to_owned()),
    );
    line(
        "load",
        format!("{:.2} (1-minute average)", env.load_average),
    );
    line("mem limit", env.memory_limit_method.clone());
    out.push_str("checks:\n");
    for check in &env.checks {
        let status = match check.status.as_str() {
            OK => "ok",
            WARN => "WARN",
            FAIL => "FAIL",
            other => other,
        };
        out.push_str(&format!(
            "  {status:<4}  {}: {}\n",
            check.name, check.detail
        ));
    }
    out
}

/// Whether any check failed (the run cannot succeed as configured).
pub fn has_failures(env: &Environment) -> bool {
    env.checks.iter().any(|c| c.status == FAIL)
}

/// Builds a check.
fn check(name: &str, status: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        status: status.to_owned(),
        detail: detail.into(),
    }
}

fn check_rotational(
    filesystem: &str,
    disk: Option<&BlockDevice>,
    rotational: Option<bool>,
) -> Check {
    const NAME: &str = "rotational disk";
    if matches!(filesystem, "tmpfs" | "ramfs") {
        return check(
            NAME,
            WARN,
            format!(
                "data dir is on {filesystem} (memory): no disk is measured, and stored files \
                 count against the server's memory limit"
            ),
        );
    }
    let Some(disk) = disk else {
        return check(
            NAME,
            OK,
            format!("no block device behind {filesystem}; cannot tell"),
        );
    };
    match rotational {
        Some(true) => {
            let mut detail = format!(
                "{} is rotational. HDD: expect high variance (the original's 26-hour run saw \
                 28–35 % CV on one)",
                disk.name
            );
            if disk.name.starts_with("vd") || disk.name.starts_with("xvd") {
                detail.push_str(
                    "; note: virtual disks (virtio vd*) often report rotational=1 whatever \
                     the host's storage is, so this may be false",
                );
            }
            check(NAME, WARN, detail)
        }
        Some(false) => check(NAME, OK, format!("{} is not rotational", disk.name)),
        None => check(
            NAME,
            OK,
            format!("{} does not say whether it is rotational", disk.name),
        ),
    }
}

fn check_loop(disk: Option<&BlockDevice>) -> Check {
    const NAME: &str = "loop device";
    match disk {
        Some(d) if d.name.starts_with("loop") => {
            let backing = read_trimmed(d.sys.join("loop/backing_file"))
                .map(|f| format!(" backed by {f}"))
                .unwrap_or_default();
            check(
                NAME,
                WARN,
                format!(
                    "data dir is on /dev/{}{backing}: a filesystem in a file adds a second \
                     layer of caching and I/O (the original measured through one)",
                    d.name
                ),
            )
        }
        _ => check(NAME, OK, "not on a loop device"),
    }
}

fn check_governor(governor: Option<&str>) -> Check {
    const NAME: &str = "CPU frequency governor";
    match governor {
        None => check(NAME, OK, "not exposed (no cpufreq driver, e.g. a VM); cannot check"),
        Some("performance") => check(NAME, OK, "performance"),
        Some(other) => check(
            NAME,
            WARN,
            format!("{other}: the clock speed varies with load, adding variance; the `performance` governor avoids that"),
        ),
    }
}

fn check_free_space(free: u64, needed: u64) -> Check {
    const NAME: &str = "free space";
    let detail = format!(
        "{:.2} GiB free, {:.2} GiB needed",
        free as f64 / GIB,
        needed as f64 / GIB
    );
    if free < needed {
        check(NAME, FAIL, detail)
    } else if free < needed.saturating_mul(2) {
        check(
            NAME,
            WARN,
            format!("{detail} (less than twice what is needed)"),
        )
    } else {
        check(NAME, OK, detail)
    }
}

fn check_leftovers(data_dir: &Path) -> Check {
    const NAME: &str = "leftover temp files";
    let temp = std::env::temp_dir();
    let mut found: Vec<PathBuf> = Vec::new();
    let mut scan = |dir: &Path, multipart_too: bool| {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let leftover = (is_dir && name.starts_with("picoshare-bench-"))
                || (multipart_too && !is_dir && name.starts_with("multipart-"));
            if leftover && !found.contains(&entry.path()) {
                found.push(entry.path());
            }
        }
    };
    scan(data_dir, false);
    scan(&temp, true);
    if found.is_empty() {
        return check(
            NAME,
            OK,
            format!("none in {} or {}", data_dir.display(), temp.display()),
        );
    }
    found.sort();
    let total: u64 = found.iter().map(|p| tree_size(p, 0)).sum();
    let mut listed: Vec<String> = found
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    if found.len() > 5 {
        listed.push(format!("and {} more", found.len() - 5));
    }
    check(
        NAME,
        WARN,
        format!(
            "{} found, {:.2} GiB in all (from earlier or interrupted runs; remove them): {}",
            found.len(),
            total as f64 / GIB,
            listed.join(", ")
        ),
    )
}

fn check_load(load: f64, cpus: u32) -> Check {
    const NAME: &str = "other load";
    let mut problems = Vec::new();
    if load > 0.5 * f64::from(cpus) {
        problems.push(format!("1-minute load average {load:.2} on {cpus} CPUs"));
    }
    let busy = busy_processes();
    if !busy.is_empty() {
        let top: Vec<String> = busy
            .iter()
            .take(3)
            .map(|(name, pct)| format!("{name} {pct:.0} %"))
            .collect();
        problems.push(format!("busy processes: {}", top.join(", ")));
    }
    if problems.is_empty() {
        check(
            NAME,
            OK,
            format!("load average {load:.2}, no other process above {BUSY_PERCENT:.0} % CPU"),
        )
    } else {
        check(
            NAME,
            WARN,
            format!(
                "{}: they compete with the server and the client",
                problems.join("; ")
            ),
        )
    }
}

fn check_memory_limits(method: &LimitMethod) -> Check {
    const NAME: &str = "memory limits";
    match method {
        LimitMethod::NotEnforced => check(
            NAME,
            WARN,
            "not enforced: memory limits will be recorded as not enforced (needs root or a \
             delegated memory cgroup, or systemd)",
        ),
        LimitMethod::CgroupV1 { parent } | LimitMethod::CgroupV2 { parent } => check(
            NAME,
            OK,
            format!(
                "{} (child cgroups under {})",
                method.label(),
                parent.display()
            ),
        ),
        LimitMethod::SystemdRun => check(NAME, OK, "systemd-run (a scope per server)"),
    }
}

fn check_swap(swap_total: Option<u64>) -> Check {
    const NAME: &str = "swap";
    match swap_total {
        Some(bytes) if bytes > 0 => check(
            NAME,
            WARN,
            format!(
                "{:.1} GiB of swap is on: limits and timing are less predictable",
                bytes as f64 / GIB
            ),
        ),
        _ => check(NAME, OK, "off"),
    }
}

/// The device to show: the mount source when it is a device node (it is
/// the name people know, e.g. `/dev/mapper/vg-home`), else the disk, else
/// whatever the source says (`tmpfs`, `overlay`).
fn device_name(mount: Option<&Mount>, disk: Option<&BlockDevice>) -> String {
    match (mount, disk) {
        (Some(m), _) if m.source.starts_with("/dev/") => m.source.clone(),
        (_, Some(d)) => format!("/dev/{}", d.name),
        (Some(m), None) => m.source.clone(),
        (None, None) => "unknown".to_owned(),
    }
}

/// Logical CPUs online.
fn cpu_count() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 {
        return u32::try_from(online).unwrap_or(u32::MAX);
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Total size of the files in a tree (symlinks not followed, depth capped).
fn tree_size(path: &Path, depth: u32) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    if depth > 16 {
        return 0;
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| tree_size(&e.path(), depth + 1))
                .sum()
        })
        .unwrap_or(0)
}

/// Other processes using more than [`BUSY_PERCENT`] of a CPU over a short
/// window, busiest first, as (name, percent of one CPU).
fn busy_processes() -> Vec<(String, f64)> {
    let ticks = proc::ticks_per_second();
    let before = proc::all_cpu_ticks();
    let start = Instant::now();
    std::thread::sleep(CPU_SAMPLE);
    let after = proc::all_cpu_ticks();
    let elapsed = start.elapsed().as_secs_f64();
    let own = std::process::id();

    let mut busy: Vec<(String, f64)> = after
        .into_iter()
        .filter(|(pid, _)| *pid != own)
        .filter_map(|(pid, (name, t1))| {
            let (_, t0) = before.get(&pid)?;
            let percent = t1.saturating_sub(*t0) as f64 / ticks / elapsed * 100.0;
            (percent > BUSY_PERCENT).then_some((format!("{name} (pid {pid})"), percent))
        })
        .collect();
    busy.sort_by(|a, b| b.1.total_cmp(&a.1));
    busy
}

/// `picoshare-bench doctor`: prints the checks; fails when one fails.
pub(crate) fn run(data_dir: &PathBuf, need: &str) -> anyhow::Result<std::process::ExitCode> {
    std::fs::create_dir_all(data_dir)?;
    let need = crate::plan::units::parse_size_mib(need)? << 20;
    let env = inspect(data_dir, need);
    print!("{}", print(&env));
    Ok(if has_failures(&env) {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(text: &str) -> Vec<Mount> {
        crate::sut::mounts::parse_mountinfo(text)
    }

    #[test]
    fn longest_mount_prefix_wins_by_component() {
        let m = mounts(
            "1 0 254:0 / / rw - ext4 /dev/vda rw\n\
             2 1 8:1 / /data rw - xfs /dev/sda1 rw\n\
             3 1 8:2 / /data2 rw - ext4 /dev/sda2 rw\n\
             4 2 0:50 / /data rw - tmpfs tmpfs rw\n",
        );
        assert_eq!(
            mount_of(&m, Path::new("/data2/x")).unwrap().source,
            "/dev/sda2"
        );
        // /data is over-mounted by tmpfs: the later mount wins.
        assert_eq!(mount_of(&m, Path::new("/data/x")).unwrap().fstype, "tmpfs");
        assert_eq!(
            mount_of(&m, Path::new("/datax")).unwrap().source,
            "/dev/vda"
        );
    }

    #[test]
    fn free_space_thresholds() {
        const G: u64 = 1 << 30;
        assert_eq!(check_free_space(10 * G, 11 * G).status, FAIL);
        assert_eq!(check_free_space(10 * G, 6 * G).status, WARN);
        assert_eq!(check_free_space(10 * G, 5 * G).status, OK);
        assert_eq!(check_free_space(0, 0).status, OK);
        assert_eq!(
            check_free_space(10 * G, 6 * G).detail,
            "10.00 GiB free, 6.00 GiB needed (less than twice what is needed)"
        );
    }

    #[test]
    fn rotational_virtio_disk_is_flagged_as_possibly_false() {
        let disk = BlockDevice {
            major: 254,
            minor: 0,
            name: "vda".to_owned(),
            sys: PathBuf::from("/sys/block/vda"),
        };
        let c = check_rotational("ext4", Some(&disk), Some(true));
        assert_eq!(c.status, WARN);
        assert!(
            c.detail.contains("HDD") && c.detail.contains("virtio"),
            "{}",
            c.detail
        );
        let sda = BlockDevice {
            major: 8,
            minor: 0,
            name: "sda".to_owned(),
            sys: PathBuf::from("/sys/block/sda"),
        };
        assert!(!check_rotational("ext4", Some(&sda), Some(true))
            .detail
            .contains("virtio"));
        assert_eq!(check_rotational("ext4", Some(&sda), Some(false)).status, OK);
        assert_eq!(check_rotational("tmpfs", None, None).status, WARN);
        assert_eq!(check_rotational("overlay", None, None).status, OK);
    }

    #[test]
    fn governor_and_swap_and_limits() {
        assert_eq!(check_governor(None).status, OK);
        assert!(check_governor(None).detail.contains("not exposed"));
        assert_eq!(check_governor(Some("performance")).status, OK);
        assert_eq!(check_governor(Some("schedutil")).status, WARN);
        assert_eq!(check_swap(Some(0)).status, OK);
        assert_eq!(check_swap(Some(1 << 30)).status, WARN);
        let c = check_memory_limits(&LimitMethod::NotEnforced);
        assert_eq!(c.status, WARN);
        assert!(c
            .detail
            .starts_with("not enforced: memory limits will be recorded as not enforced"));
    }

    #[test]
    fn loop_device_warns() {
        let lp = BlockDevice {
            major: 7,
            minor: 3,
            name: "loop3".to_owned(),
            sys: PathBuf::from("/nonexistent/loop3"),
        };
        let c = check_loop(Some(&lp));
        assert_eq!(c.status, WARN);
        assert!(c.detail.contains("/dev/loop3"));
        assert_eq!(check_loop(None).status, OK);
    }

    #[test]
    fn missing_data_dir_is_judged_by_its_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("not/yet/created");
        assert_eq!(
            existing_ancestor(&missing),
            fs::canonicalize(tmp.path()).unwrap()
        );
    }

    #[test]
    fn has_failures_sees_fail_only() {
        let mut env = Environment::default();
        env.checks.push(check("a", WARN, "x"));
        assert!(!has_failures(&env));
        env.checks.push(check("b", FAIL, "y"));
        assert!(has_failures(&env));
        let text = print(&env);
        assert!(
            text.contains("WARN  a: x") && text.contains("FAIL  b: y"),
            "{text}"
        );
    }
}
