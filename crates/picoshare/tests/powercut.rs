//! The power-cut test against this build's server: a workload with uploads
//! of every kind, edits, deletes, vacuum, checkpoints and an outside
//! `sqlite3` reader runs on an ext4 filesystem whose disk records every
//! write and flush; then 200 cut points (a flush plus none, all or some of
//! the writes after it) are each rebuilt, mounted, and checked with the real
//! server: integrity, every acknowledged change, restart, reclamation.
//! The machinery is the `picoshare-powercut` crate, whose binary runs longer
//! soaks (docs/reliability.md, "Power cuts").
//!
//! Needs root, `/dev/fuse` and loop devices, and fails (never skips) without
//! them. The seed is fixed and printed; `PICOSHARE_POWERCUT_SEED` chooses
//! another (the workload's timing still varies from run to run, so a seed
//! repeats the files and the choice of cut points, not every write).

use std::path::PathBuf;

/// The seed CI uses.
const SEED: u64 = 20_261_205;

/// Cut points checked per run.
const CUTS: usize = 200;

#[test]
fn acknowledged_changes_survive_power_cuts() {
    let seed = match std::env::var("PICOSHARE_POWERCUT_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("PICOSHARE_POWERCUT_SEED={s:?} is not a number")),
        Err(_) => SEED,
    };
    let opts = picoshare_powercut::Options::new(
        PathBuf::from(env!("CARGO_BIN_EXE_picoshare")),
        CUTS,
        seed,
    );
    let report = picoshare_powercut::run(&opts, &|line| eprintln!("{line}"))
        .unwrap_or_else(|e| panic!("the power-cut test could not run (seed {seed}): {e:#}"));
    eprintln!("{}", report.summary());
    assert_eq!(report.outcomes.len(), CUTS, "every planned cut is checked");
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "{} of {} cut points lost or broke acknowledged data (seed {seed}; reproduce with \
         PICOSHARE_POWERCUT_SEED={seed}):\n{}",
        failures.len(),
        report.outcomes.len(),
        failures
            .iter()
            .map(|f| format!("{}\n  {}", f.description, f.problems.join("\n  ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
