//! One-time conversion of databases created without incremental auto-vacuum
//! (every database the original PicoShare created) so that deleted files give
//! their disk space back while the server runs.
//!
//! SQLite can only switch a database to `auto_vacuum = INCREMENTAL` by
//! rewriting it. We write the converted copy next to the original with
//! `VACUUM INTO` (which also applies the page size of new databases, and
//! drops the free pages the original left behind), check it, and atomically
//! rename it over the original. The original is untouched until the rename, so
//! a crash at any point leaves one complete database. It costs one read and one
//! write of the live data and needs that much free space; it happens at the
//! first start on such a database, before the server accepts connections.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;

use super::{StoreConfig, StoreError};

/// Converts the database at `cfg.path` if it needs it and there is room.
/// Returns whether it converted.
///
/// # Errors
/// SQLite or I/O failures; the original database is then left as it was.
pub(super) fn convert_if_needed(cfg: &StoreConfig) -> Result<bool, StoreError> {
    if !cfg.path.exists() || !cfg.convert_existing {
        return Ok(false);
    }
    let conn = Connection::open(&cfg.path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let auto: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if auto == 2 || tables == 0 {
        return Ok(false);
    }
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let live = ((pages - free).max(0) * page) as u64;
    let need = live + live / 10 + (64 << 20);
    let dir = cfg.path.parent().unwrap_or(Path::new("."));
    let available = free_space(dir).unwrap_or(u64::MAX);
    if available < need {
        tracing::warn!(
            needed_mib = need >> 20,
            available_mib = available >> 20,
            "not converting the database to incremental auto-vacuum: not enough free space; \
             deleted files' space is reused for new uploads but not returned to the filesystem"
        );
        return Ok(false);
    }
    tracing::info!(
        live_mib = live >> 20,
        reclaimed_mib = ((free * page) as u64) >> 20,
        "converting the database to incremental auto-vacuum (one time; the original stays until the copy is complete)"
    );
    let started = Instant::now();
    let tmp = sibling(&cfg.path, ".converting");
    let _ = std::fs::remove_file(&tmp);
    let result = (|| -> Result<(), StoreError> {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        conn.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA page_size = {};",
            cfg.page_size
        ))?;
        conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])?;
        let check = Connection::open(&tmp)?;
        let ok: String = check.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        let converted: i64 = check.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        let orig_entries: i64 = conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))?;
        let new_entries: i64 = check.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))?;
        drop(check);
        if ok != "ok" || converted != 2 || orig_entries != new_entries {
            return Err(StoreError::Schema(format!(
                "the converted copy failed its check ({ok}, auto_vacuum {converted}, {new_entries}/{orig_entries} entries)"
            )));
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        Ok(())
    })();
    drop(conn);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The original's WAL was checkpointed and truncated, and closing the last
    // connection removed it; remove leftovers so they cannot be applied to the
    // new file.
    for suffix in ["-wal", "-shm"] {
        let p = sibling(&cfg.path, suffix);
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::rename(&tmp, &cfg.path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "database converted"
    );
    Ok(true)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail * st.f_frsize)
}
