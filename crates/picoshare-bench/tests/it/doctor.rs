//! The doctor on the real machine: it finds the machine's facts, and each
//! check reacts to the condition it is about.

use std::process::{Child, Command};
use std::time::Duration;

use picoshare_bench::cmd::doctor::{has_failures, inspect, print};
use picoshare_bench::results::{Check, Environment};

use crate::helpers::quiet_machine;

/// Every check the doctor must run.
const CHECK_NAMES: [&str; 8] = [
    "rotational disk",
    "loop device",
    "CPU frequency governor",
    "free space",
    "leftover temp files",
    "other load",
    "memory limits",
    "swap",
];

#[track_caller]
fn find<'a>(env: &'a Environment, name: &str) -> &'a Check {
    env.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?}"))
}

/// A CPU-burning shell loop, killed when dropped.
struct BusyLoop(Child);

impl Drop for BusyLoop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The machine's facts are found for an ordinary temp directory.
#[test]
fn inspects_machine_facts() {
    let dir = tempfile::tempdir().unwrap();
    let env = inspect(dir.path(), 0);
    assert!(!env.kernel.is_empty());
    assert!(env.cpus > 0);
    assert!(env.memory_bytes > 0);
    assert!(!env.cpu_model.is_empty());
    assert_ne!(env.filesystem, "unknown");
    assert!(!env.filesystem.is_empty());
    assert!(!env.device.is_empty());
    assert!(env.free_bytes > 0);
    assert!(env.load_average >= 0.0);
    assert!(
        ["cgroup-v2", "cgroup-v1", "systemd-run", "not enforced"]
            .contains(&env.memory_limit_method.as_str()),
        "{}",
        env.memory_limit_method
    );
    for name in CHECK_NAMES {
        let check = find(&env, name);
        assert!(
            ["ok", "warn", "fail"].contains(&check.status.as_str()),
            "{check:?}"
        );
        assert!(!check.detail.is_empty(), "{check:?}");
    }
    // The environment round-trips through the result file format.
    let json = serde_json::to_string(&env).unwrap();
    assert_eq!(serde_json::from_str::<Environment>(&json).unwrap(), env);
}

/// Free space fails when the run needs more than there is, passes when it needs nothing.
#[test]
fn free_space_check_follows_needed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let env = inspect(dir.path(), 1 << 60);
    let check = find(&env, "free space");
    assert_eq!(check.status, "fail", "{check:?}");
    assert!(check.detail.contains("GiB free") && check.detail.contains("GiB needed"));
    assert!(has_failures(&env));

    let env = inspect(dir.path(), 0);
    assert_eq!(find(&env, "free space").status, "ok");
}

/// A directory left by an earlier run in the data directory is reported.
#[test]
fn leftover_directory_warns() {
    let dir = tempfile::tempdir().unwrap();
    let leftover = dir.path().join("picoshare-bench-leftover");
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("blob"), vec![0u8; 4096]).unwrap();
    let env = inspect(dir.path(), 0);
    let check = find(&env, "leftover temp files");
    assert_eq!(check.status, "warn", "{check:?}");
    assert!(
        check.detail.contains("picoshare-bench-leftover"),
        "{check:?}"
    );
}

/// A process burning a CPU is found and named.
#[test]
fn busy_process_warns() {
    let _machine = quiet_machine();
    let busy = BusyLoop(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let env = inspect(dir.path(), 0);
    drop(busy);
    let check = find(&env, "other load");
    assert_eq!(check.status, "warn", "{check:?}");
    assert!(check.detail.contains("sh (pid"), "{check:?}");
}

/// The printed report has a line for every check.
#[test]
fn print_lists_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let env = inspect(dir.path(), 0);
    let text = print(&env);
    for name in CHECK_NAMES {
        assert!(
            text.contains(&format!("{name}: ")),
            "{name} missing in:\n{text}"
        );
    }
    assert!(text.contains(&env.kernel));
}
