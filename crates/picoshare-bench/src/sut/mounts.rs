//! Mounts: `/proc/self/mountinfo` (parsed by procfs, through
//! [`super::proc`]), and which mount holds a path. The cgroup hierarchies
//! are found through it ([`super::cgroup`]), and so is the disk behind the
//! data directory ([`super::disk::device_for`]).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use procfs::process::MountInfo;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `major:minor` of the filesystem's device.
    pub(crate) dev: String,
    /// The directory of the filesystem that is mounted (its own root, for most).
    pub(crate) root: PathBuf,
    /// Where it is mounted.
    pub(crate) mount_point: PathBuf,
    /// Filesystem type (`ext4`, `cgroup2`…).
    pub(crate) fstype: String,
    /// Mount source (`/dev/vda1`, `tmpfs`…).
    pub(crate) source: String,
    /// Superblock options (for v1 cgroups, the controllers), with their
    /// values.
    pub(crate) super_options: HashMap<String, Option<String>>,
}

impl From<MountInfo> for Mount {
    fn from(m: MountInfo) -> Self {
        Mount {
            dev: m.majmin,
            root: PathBuf::from(unescape_octal(&m.root)),
            mount_point: PathBuf::from(unescape_octal(&m.mount_point.to_string_lossy())),
            fstype: m.fs_type,
            // procfs reads `none` as no source; it is kept as written.
            source: unescape_octal(m.mount_source.as_deref().unwrap_or("none")),
            super_options: m.super_options,
        }
    }
}

/// This process's mounts; empty if unreadable. Order is kept: a later
/// mount on the same point hides an earlier one.
pub(crate) fn read_mounts() -> Vec<Mount> {
    super::proc::own_mounts()
        .into_iter()
        .map(Mount::from)
        .collect()
}

/// Parses mountinfo text, skipping malformed lines (for tests).
#[cfg(test)]
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    super::proc::parse_mountinfo(text)
        .into_iter()
        .map(Mount::from)
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash),
/// which procfs leaves in.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match code {
            Some(d) if bytes[i] == b'\\' => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path itself if it exists, else its nearest existing ancestor, made
/// absolute and canonical (symlinks resolved) so mount lookup is right.
pub(crate) fn existing_ancestor(path: &Path) -> PathBuf {
    let absolute = absolute(path);
    let mut candidate = absolute.as_path();
    loop {
        if let Ok(real) = fs::canonicalize(candidate) {
            return real;
        }
        match candidate.parent() {
            Some(parent) => candidate = parent,
            None => return PathBuf::from("/"),
        }
    }
}

/// `path` made absolute against the current directory.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    }
}

/// The mount holding `path`: the longest mount point that is a prefix of it
/// (by whole components); among equal ones the last, which hides the others.
pub(crate) fn mount_of(mounts: &[Mount], path: &Path) -> Option<Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .fold(None::<&Mount>, |best, m| match best {
            Some(b) if b.mount_point.components().count() > m.mount_point.components().count() => {
                Some(b)
            }
            _ => Some(m),
        })
        .cloned()
}
