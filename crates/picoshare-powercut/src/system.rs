//! The host's pieces: the preflight check (root, `/dev/fuse`, loop devices,
//! the tools), `mkfs.ext4`, loop devices (`losetup`) and ext4 mounts, each
//! held by a guard that undoes it when dropped, so that nothing stays
//! attached or mounted when a run ends or fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The tools a run needs, with the Debian package that has each.
const TOOLS: [(&str, &str); 5] = [
    ("losetup", "mount"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("mkfs.ext4", "e2fsprogs"),
    ("sqlite3", "sqlite3"),
];

/// Fails with a message saying what is missing unless this process can run
/// the test: root, `/dev/fuse`, `/dev/loop-control`, and the tools.
///
/// # Errors
/// The first thing missing.
pub fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the power-cut test needs root (it mounts a FUSE filesystem, attaches loop devices and mounts ext4)");
    }
    for dev in ["/dev/fuse", "/dev/loop-control"] {
        if !Path::new(dev).exists() {
            bail!("the power-cut test needs {dev}, which this machine does not have");
        }
    }
    for (name, package) in TOOLS {
        if find(name).is_none() {
            bail!("the power-cut test needs `{name}` (Debian package `{package}`; scripts/test installs it)");
        }
    }
    Ok(())
}

/// Where the tool `name` is: on `PATH`, or in `/usr/sbin` or `/sbin`
/// (where Debian keeps `losetup` and `mkfs.ext4`, not always on a
/// non-login `PATH`).
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A command for the tool `name`, found on `PATH` or in `/usr/sbin` or `/sbin`.
pub fn tool(name: &str) -> Command {
    Command::new(find(name).unwrap_or_else(|| PathBuf::from(name)))
}

/// Runs a command; fails with its output unless it succeeds. Returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes a sparse file of `size` bytes at `path` and an ext4 filesystem in
/// it, with its inode tables and journal written now (not by a background
/// thread later, which would add writes to every recording).
///
/// # Errors
/// The file cannot be made or `mkfs.ext4` fails.
pub fn make_ext4_image(path: &Path, size: u64) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    f.set_len(size)?;
    drop(f);
    run(tool("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E"])
        .arg("lazy_itable_init=0,lazy_journal_init=0,nodiscard")
        .arg(path))?;
    Ok(())
}

/// An attached loop device, detached when dropped.
pub struct LoopDevice {
    path: Option<PathBuf>,
}

impl LoopDevice {
    /// Attaches a free loop device to `file` (buffered I/O, loop's default).
    ///
    /// # Errors
    /// `losetup` fails.
    pub fn attach(file: &Path) -> Result<LoopDevice> {
        let out = run(tool("losetup")
            .args(["--find", "--show", "--direct-io=off"])
            .arg(file))?;
        let dev = out.trim();
        if !dev.starts_with("/dev/loop") {
            bail!("losetup printed {dev:?}, not a loop device");
        }
        Ok(LoopDevice {
            path: Some(PathBuf::from(dev)),
        })
    }

    /// The device node, `/dev/loopN`.
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("attached")
    }

    /// Detaches the device now.
    ///
    /// # Errors
    /// `losetup -d` fails (the device is still in use).
    pub fn detach(mut self) -> Result<()> {
        match self.path.take() {
            Some(p) => detach(&p),
            None => Ok(()),
        }
    }
}

fn detach(dev: &Path) -> Result<()> {
    // A device just unmounted can be busy for a moment (udev probing it).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run(tool("losetup").arg("-d").arg(dev)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if let Err(e) = detach(&p) {
                eprintln!("picoshare-powercut: {e:#}");
            }
        }
    }
}

/// A mounted ext4 filesystem, unmounted when dropped.
pub struct Ext4Mount {
    dir: Option<PathBuf>,
}

impl Ext4Mount {
    /// Mounts the ext4 filesystem on `dev` at `dir` (which must exist); a
    /// filesystem left by a power cut replays its journal here.
    ///
    /// # Errors
    /// `mount` fails.
    pub fn mount(dev: &Path, dir: &Path) -> Result<Ext4Mount> {
        run(tool("mount")
            .args(["-t", "ext4", "-o", "nodev,nosuid"])
            .arg(dev)
            .arg(dir))?;
        Ok(Ext4Mount {
            dir: Some(dir.to_path_buf()),
        })
    }

    /// The mount point.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().expect("mounted")
    }

    /// Unmounts now.
    ///
    /// # Errors
    /// `umount` fails.
    pub fn unmount(mut self) -> Result<()> {
        match self.dir.take() {
            Some(d) => unmount(&d),
            None => Ok(()),
        }
    }
}

fn unmount(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run(tool("umount").arg(dir)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                // Last resort: detach it from the tree so that nothing is
                // left mounted where the temp dir was; the kernel finishes
                // once the last user lets go.
                let _ = run(tool("umount").arg("-l").arg(dir));
                return Err(e);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for Ext4Mount {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            if let Err(e) = unmount(&d) {
                eprintln!("picoshare-powercut: {e:#}");
            }
        }
    }
}

/// The name every run's temp dir starts with.
pub const RUN_DIR_PREFIX: &str = "picoshare-powercut-";

/// Undoes what an earlier run that was killed (and so could not clean up)
/// left mounted or attached: only under run directories whose `pid` file
/// names a process that no longer exists, so that runs going on at the same
/// time (other worktrees) are never touched.
pub fn sweep_stale() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    let mut dead = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(RUN_DIR_PREFIX) {
            continue;
        }
        let Some(pid) = std::fs::read_to_string(e.path().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            dead.push(e.path());
        }
    }
    for dir in dead {
        let prefix = format!("{}/", dir.display());
        // Mounts under it, deepest first: the ext4 ones, then the images.
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let (images, others): (Vec<_>, Vec<_>) =
            mounts.into_iter().partition(|m| m.ends_with("/images"));
        for m in &others {
            let _ = run(tool("umount").arg("-l").arg(m));
        }
        if let Ok(list) =
            run(tool("losetup").args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"]))
        {
            for line in list.lines() {
                let mut parts = line.split_whitespace();
                if let (Some(dev), Some(back)) = (parts.next(), parts.next()) {
                    if back.starts_with(&prefix) {
                        let _ = run(tool("losetup").arg("-d").arg(dev));
                    }
                }
            }
        }
        for m in &images {
            let _ = run(tool("umount").arg("-l").arg(m));
        }
        eprintln!(
            "picoshare-powercut: cleaned up after an earlier run that was killed: {}",
            dir.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
