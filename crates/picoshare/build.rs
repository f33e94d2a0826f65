//! Bakes the git revision into the binary for `GET /api/system`.
//!
//! Sets `PICOSHARE_REVISION` (12 hex digits of `HEAD`, or `unknown` outside a
//! git checkout or without git) and `PICOSHARE_REVISION_TIME` (the commit's
//! time, RFC 3339, or empty). Builds without `.git` (a source tarball, a Docker
//! context) can pass both in the environment instead.
//!
//! No build timestamp: it would make every build different and force a
//! rebuild each time. The script reruns only when `HEAD` moves.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PICOSHARE_REVISION");
    println!("cargo:rerun-if-env-changed=PICOSHARE_REVISION_TIME");

    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let revision = from_env("PICOSHARE_REVISION")
        .or_else(|| git(&dir, &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let time = from_env("PICOSHARE_REVISION_TIME")
        .or_else(|| git(&dir, &["show", "-s", "--format=%cI", "HEAD"]))
        .unwrap_or_default();
    println!("cargo:rustc-env=PICOSHARE_REVISION={revision}");
    println!("cargo:rustc-env=PICOSHARE_REVISION_TIME={time}");

    // Rerun when HEAD moves: a checkout changes HEAD itself, a commit changes
    // the branch's ref (loose, or in packed-refs). Only existing files are
    // watched, since Cargo reruns every time for a missing one.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(p) = git(&dir, &["rev-parse", "--git-path", &name]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}
