//! `picoshare backup DEST`: the command line around the SQLite store's
//! online backup (`store/sqlite/backup.rs`): a progress bar on a terminal,
//! and one summary line.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::BackupArgs;
use crate::store::sqlite::backup::{backup, Progress};

/// Backs up the database at `db` as `args` say; prints a summary line on
/// stdout.
///
/// # Errors
/// Anything that stops the backup; nothing is left under the destination's
/// name then.
pub fn run(db: &Path, args: &BackupArgs) -> anyhow::Result<()> {
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        // Hidden by itself when stderr is not a terminal.
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("copying");
    let outcome = backup(db, &args.dest, |p| match p {
        Progress::Copying {
            done,
            total,
            page_size,
        } => {
            bar.set_length(total * page_size);
            bar.set_position(done * page_size);
        }
        Progress::Checking => {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("checking the copy (PRAGMA integrity_check)");
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    });
    bar.finish_and_clear();
    let outcome = outcome?;
    println!(
        "{}: {} files, {:.1} MiB, copied in {:.1} s, integrity check ok in {:.1} s",
        outcome.path.display(),
        outcome.entries,
        outcome.bytes as f64 / f64::from(1 << 20),
        outcome.copy_time.as_secs_f64(),
        outcome.check_time.as_secs_f64()
    );
    Ok(())
}
