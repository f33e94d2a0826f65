//! What every test of the bench needs: the server binary, running the bench
//! binary, reading a JSON file, a median, and the lock that keeps the
//! doctor's load check apart from the tests that keep the machine busy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

/// The `picoshare` server binary of this workspace's profile (built if missing).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/picoshare
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
    let bin = profile_dir.join("picoshare");
    if !bin.exists() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "picoshare"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("run cargo").success(),
            "building picoshare failed"
        );
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// Runs `picoshare-bench ARGS…` to the end; fails the test, with its
/// standard error, unless it succeeds.
pub fn bench(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_picoshare-bench"))
        .args(args)
        .output()
        .expect("run picoshare-bench");
    assert!(
        out.status.success(),
        "picoshare-bench {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `picoshare-bench COMMAND --quiet --force` against `server`, with
/// the idle and steal gates off (`--wait-idle 0 --steal-gap none`: a test
/// must not depend on an idle machine), then `args`.
pub fn bench_gates_off(command: &str, server: &Path, args: &[&str]) -> Output {
    let server = server.to_str().unwrap();
    let mut all = vec![
        command,
        "--quiet",
        "--force",
        "--wait-idle",
        "0",
        "--steal-gap",
        "none",
        "--binary",
        server,
    ];
    all.extend_from_slice(args);
    bench(&all)
}

/// The JSON document in a file.
pub fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The median, computed here independently of the bench's own.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Held for reading by every test that runs servers (they may run side by
/// side, as they did when they were separate binaries), and for writing by
/// a test that needs the machine without them: the doctor's busy-process
/// check, which names only the three busiest processes.
static MACHINE: RwLock<()> = RwLock::new(());

/// A share of the machine, for a test that runs servers and the bench.
pub fn busy_machine() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// The machine without this binary's server tests running beside.
pub fn quiet_machine() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}
