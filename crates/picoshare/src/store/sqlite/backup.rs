//! `picoshare backup`: a consistent copy of a live SQLite database, taken
//! while the server keeps running.
//!
//! SQLite's online backup API copies the database a few thousand pages at a
//! time. Used from a connection of its own it starts over whenever another
//! connection commits between two steps, so under steady uploads a large
//! database could be copied again and again without end (the `sqlite3`
//! shell's `.backup` took 67 s instead of 3 s on a 927 MiB database). Here the
//! source connection holds one read transaction for the whole copy: every
//! step reads the same snapshot, nothing can make it start over, and the time
//! is proportional to the database. In WAL mode the server keeps writing
//! meanwhile (readers never block the writer); its checkpoints cannot pass
//! the snapshot until the copy ends, so its WAL grows by what arrives during
//! the copy.
//!
//! The copy is written next to the destination as `DEST.partial`, switched
//! to a rollback journal (so that it is one self-contained file, which the
//! server switches back to WAL when it opens it), checked with
//! `PRAGMA integrity_check` and a count of its files against the snapshot,
//! synced, and only then renamed over `DEST` (after removing any journal an
//! earlier database there left beside it, which would otherwise be played
//! back into the new copy): an interrupted or failed backup never leaves a
//! half-written file under the destination's name, nor destroys an older
//! backup there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use anyhow::{anyhow, bail, Context};

/// Bytes copied per step of the backup: large enough that the per-step
/// overhead vanishes, small enough for a smooth progress bar.
const STEP_BYTES: i64 = 32 << 20;

/// How far a backup has come.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Progress {
    /// Pages copied of the pages in the snapshot, and the page size.
    Copying {
        done: u64,
        total: u64,
        page_size: u64,
    },
    /// The copy is complete and being checked.
    Checking,
}

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub(crate) struct BackupOutcome {
    /// The file written.
    pub(crate) path: PathBuf,
    /// Its size in bytes.
    pub(crate) bytes: u64,
    /// Files (entries) in it.
    pub(crate) entries: u64,
    /// How long the copy took, and then the check.
    pub(crate) copy_time: Duration,
    pub(crate) check_time: Duration,
}

/// Copies the database at `source` to `dest` (a file, or an existing folder
/// to put a dated file in), reporting progress to `progress`.
///
/// # Errors
/// No database at `source`, `dest` is the database itself, SQLite or I/O
/// failures, or a copy that fails its check (it is then deleted).
pub(crate) fn backup(
    source: &Path,
    dest: &Path,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<BackupOutcome> {
    let dest = destination(dest, chrono::Utc::now())?;
    if same_file(source, &dest) {
        bail!(
            "the backup's destination {} is the database itself",
            dest.display()
        );
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the database {}", source.display()))?;
    src.busy_timeout(Duration::from_secs(30))?;
    // One read transaction for the whole copy: every step sees one snapshot.
    src.execute_batch("BEGIN DEFERRED")?;
    let entries: i64 = src
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .with_context(|| format!("{} is not a PicoShare database", source.display()))?;
    let page_size: i64 = src.query_row("PRAGMA page_size", [], |r| r.get(0))?;

    let partial = sibling(&dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    let started = Instant::now();
    let copied = copy(&src, &partial, page_size, &mut progress);
    // The snapshot is no longer needed, whatever happened.
    let _ = src.execute_batch("COMMIT");
    drop(src);
    let copy_time = started.elapsed();
    let result = copied.and_then(|()| {
        progress(Progress::Checking);
        let checked = Instant::now();
        check(&partial, entries)?;
        std::fs::File::open(&partial)?.sync_all()?;
        remove_leftovers(&dest)?;
        std::fs::rename(&partial, &dest)?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, anyhow::Error>(checked.elapsed())
    });
    match result {
        Ok(check_time) => Ok(BackupOutcome {
            bytes: std::fs::metadata(&dest)?.len(),
            path: dest,
            entries: entries.max(0) as u64,
            copy_time,
            check_time,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Copies the snapshot `src` holds into a new file at `partial`, switched
/// to a rollback journal.
fn copy(
    src: &Connection,
    partial: &Path,
    page_size: i64,
    progress: &mut impl FnMut(Progress),
) -> anyhow::Result<()> {
    let mut dst = Connection::open(partial)?;
    // The file is renamed into place only once complete and checked, so
    // it needs no journal and no syncs while it is written.
    dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    {
        let backup = Backup::new(src, &mut dst)?;
        let pages_per_step = (STEP_BYTES / page_size.max(512)).max(1) as i32;
        loop {
            let step = backup.step(pages_per_step)?;
            let p = backup.progress();
            progress(Progress::Copying {
                done: (p.pagecount - p.remaining).max(0) as u64,
                total: p.pagecount.max(0) as u64,
                page_size: page_size as u64,
            });
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                // The source is locked only while a writer commits in
                // rollback-journal mode; wait a little and go on.
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => bail!("the backup stopped for a reason SQLite did not name"),
            }
        }
    }
    let mode: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("the copy could not be switched to a rollback journal (it is {mode})");
    }
    Ok(())
}

/// Removes what an earlier database at `dest` may have left beside it. A
/// rollback journal left by a copy that was interrupted there (a killed
/// `sqlite3 .backup`, say) is "hot": the next program to open `dest` would
/// play it back into the new copy and damage it.
fn remove_leftovers(dest: &Path) -> anyhow::Result<()> {
    for suffix in ["-journal", "-wal", "-shm"] {
        let p = sibling(dest, suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(())
}

/// Checks the copy at `path`: SQLite's integrity check, and the files it
/// holds against the `entries` the snapshot held.
fn check(path: &Path, entries: i64) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if problems != ["ok"] {
        bail!(
            "the copy failed SQLite's integrity check: {}",
            problems.join("; ")
        );
    }
    let copied: i64 = conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))?;
    if copied != entries {
        bail!("the copy holds {copied} files, the database held {entries}");
    }
    Ok(())
}

/// The file to write: `dest` itself, or a dated name inside it when it is
/// an existing folder.
fn destination(dest: &Path, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<PathBuf> {
    if dest.is_dir() {
        return Ok(dest.join(format!("picoshare-{}.db", now.format("%Y%m%d-%H%M%S"))));
    }
    match dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(anyhow!("the folder {} does not exist", dir.display())),
        _ => Ok(dest.to_owned()),
    }
}

/// Whether `a` and `b` name the same existing file (only `stat`).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &Path) -> PathBuf {
        let path = dir.join("store.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE entries (id TEXT PRIMARY KEY, data BLOB);",
        )
        .unwrap();
        for i in 0..50 {
            conn.execute(
                "INSERT INTO entries VALUES (?1, zeroblob(100000))",
                [format!("e{i}")],
            )
            .unwrap();
        }
        path
    }

    #[test]
    fn a_copy_is_complete_checked_and_self_contained() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        // A connection that keeps writing between the steps of the copy.
        let writer = Connection::open(&db).unwrap();
        let mut steps = 0;
        let out = backup(&db, &dir.path().join("copy.db"), |p| {
            if let Progress::Copying { .. } = p {
                steps += 1;
                writer
                    .execute(
                        "INSERT INTO entries VALUES (?1, zeroblob(10))",
                        [format!("late{steps}")],
                    )
                    .unwrap();
            }
        })
        .unwrap();
        assert!(steps >= 1);
        assert_eq!(out.entries, 50, "the snapshot at the start");
        let copy = Connection::open(&out.path).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        let mode: String = copy
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        assert!(!sibling(&out.path, ".partial").exists());
    }

    /// A hot journal left at the destination by an interrupted writer would
    /// be played back into the new copy by the next program to open it.
    #[test]
    fn a_journal_left_at_the_destination_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let dest = dir.path().join("copy.db");
        {
            // An older database at the destination, left in the middle of a
            // transaction with its journal on disk (what a killed writer
            // leaves): the journal is kept as the process "dies".
            let old = Connection::open(&dest).unwrap();
            old.execute_batch(
                "PRAGMA journal_mode = DELETE; CREATE TABLE entries (id TEXT, data BLOB);",
            )
            .unwrap();
            for i in 0..40 {
                old.execute(
                    "INSERT INTO entries VALUES (?1, zeroblob(60000))",
                    [format!("old{i}")],
                )
                .unwrap();
            }
            // A cache of two pages makes SQLite spill, which first syncs
            // the journal: it is then hot.
            old.execute_batch(
                "PRAGMA cache_size = 2; BEGIN; UPDATE entries SET data = zeroblob(70000);",
            )
            .unwrap();
            let journal = sibling(&dest, "-journal");
            assert!(journal.exists(), "a journal is on disk mid-transaction");
            let kept = dir.path().join("journal.kept");
            std::fs::copy(&journal, &kept).unwrap();
            drop(old);
            std::fs::rename(&kept, &journal).unwrap();
        }
        let out = backup(&db, &dest, |_| {}).unwrap();
        assert_eq!(out.entries, 50);
        let copy = Connection::open(&dest).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50, "the copy is intact after opening");
        assert!(!sibling(&dest, "-journal").exists());
    }

    #[test]
    fn a_folder_gets_a_dated_file_and_the_database_itself_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path());
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T13:14:15Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            destination(dir.path(), now).unwrap(),
            dir.path().join("picoshare-20261205-131415.db")
        );
        assert!(destination(&dir.path().join("missing/x.db"), now).is_err());
        let err = backup(&db, &db, |_| {}).unwrap_err().to_string();
        assert!(err.contains("is the database itself"), "{err}");
        let err = backup(
            &dir.path().join("none.db"),
            &dir.path().join("c.db"),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot open the database"), "{err}");
    }
}
