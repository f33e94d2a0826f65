//! `picoshare rollback-check`: what going back to the original PicoShare on
//! this database would expose and what it would leave behind, read from the
//! file alone (read-only; the server may be running or stopped).
//!
//! The original reads its own tables only (`entries`, `entries_data`,
//! `downloads`, `guest_links`, `settings`). Everything this server adds lives
//! in tables of its own, which the original neither reads nor removes, with
//! one exception: its garbage collection deletes chunks that belong to no
//! `entries` row, which are the bytes of unfinished resumable uploads.
//! [`inspect`] reads what follows from that: files whose password or download
//! limit the original would not know, expired files it would serve until its
//! garbage collection, and the rows of the features it lacks (among them the
//! history of replaced contents; the old contents still kept for downloads
//! in progress are chunks its garbage collection deletes).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

/// A file that the original would serve to anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExposedFile {
    /// Entry ID.
    pub(crate) id: String,
    /// Its name.
    pub(crate) filename: String,
    /// Whether it needs a password here.
    pub(crate) password: bool,
    /// Its download limit here, if it has one.
    pub(crate) max_downloads: Option<u64>,
    /// Downloads counted against the limit.
    pub(crate) downloads_used: u64,
}

/// An expired file not yet collected: refused here (410), served by the
/// original until its garbage collection deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpiredFile {
    /// Entry ID.
    pub(crate) id: String,
    /// Its name.
    pub(crate) filename: String,
    /// When it expired, as stored.
    pub(crate) expiration: String,
}

/// A share: its ID, title and number of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShareRow {
    /// Share ID (the `/s/{id}` link).
    pub(crate) id: String,
    /// Its title, if it has one.
    pub(crate) title: Option<String>,
    /// Files in it.
    pub(crate) files: u64,
}

/// A resumable upload that has not completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnfinishedUpload {
    /// The file's name.
    pub(crate) filename: String,
    /// Bytes received.
    pub(crate) received: u64,
    /// The file's full length.
    pub(crate) length: u64,
    /// Whether a guest sends it.
    pub(crate) guest: bool,
}

/// A file whose content was replaced (`picoshare_replacements`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplacedFile {
    /// Entry ID.
    pub(crate) id: String,
    /// Its current name.
    pub(crate) filename: String,
    /// How many times its content was replaced.
    pub(crate) replacements: u64,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RollbackFindings {
    /// Whether this server ever opened the database (its bookkeeping
    /// table exists).
    pub(crate) opened_by_us: bool,
    /// Files the original would serve without their password or limit.
    pub(crate) exposed: Vec<ExposedFile>,
    /// Expired files the original would serve until its garbage collection.
    pub(crate) expired: Vec<ExpiredFile>,
    /// Names of the API tokens.
    pub(crate) api_tokens: Vec<String>,
    /// The shares.
    pub(crate) shares: Vec<ShareRow>,
    /// Unfinished resumable uploads.
    pub(crate) unfinished_uploads: Vec<UnfinishedUpload>,
    /// Login sessions not yet expired.
    pub(crate) sessions: u64,
    /// Files whose content was replaced: the original keeps each one's
    /// current content, but not the history of its replacements.
    pub(crate) replaced: Vec<ReplacedFile>,
    /// Old contents still kept for downloads in progress (chunks under an
    /// ID no entry has: the original's garbage collection deletes them).
    pub(crate) old_contents_kept: u64,
    /// Names of the notification destinations, and the events waiting.
    pub(crate) notifications: (Vec<String>, u64),
}

/// Reads the findings from the SQLite database at `path`, opened read-only;
/// `now` is the current time as stored (`2026-12-05T10:00:00Z`).
///
/// # Errors
/// A missing file, a file that is not a PicoShare database, SQLite failures.
pub(crate) fn inspect(path: &Path, now: &str) -> Result<RollbackFindings, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Schema(format!(
            "there is no database file at {}",
            path.display()
        )));
    }
    let conn = super::open_read_only(path)?;
    if !has_table(&conn, "entries")? {
        return Err(StoreError::Schema(format!(
            "{} is not a PicoShare database (it has no entries table)",
            path.display()
        )));
    }
    let mut f = RollbackFindings {
        opened_by_us: has_table(&conn, "picoshare_rs_migrations")?,
        ..RollbackFindings::default()
    };
    f.expired = rows(
        &conn,
        "SELECT id, filename, expiration_time FROM entries
         WHERE expiration_time IS NOT NULL AND expiration_time < ?1
         ORDER BY expiration_time, id",
        [now],
        |r| {
            Ok(ExpiredFile {
                id: r.get(0)?,
                filename: r.get(1)?,
                expiration: r.get(2)?,
            })
        },
    )?;
    if has_table(&conn, "picoshare_entry_limits")? {
        f.exposed = rows(
            &conn,
            "SELECT e.id, e.filename, l.password_hash IS NOT NULL, l.max_downloads, l.downloads_used
             FROM picoshare_entry_limits l JOIN entries e ON e.id = l.entry_id
             WHERE l.password_hash IS NOT NULL OR l.max_downloads IS NOT NULL
             ORDER BY e.upload_time, e.id",
            [],
            |r| {
                Ok(ExposedFile {
                    id: r.get(0)?,
                    filename: r.get(1)?,
                    password: r.get(2)?,
                    max_downloads: r.get::<_, Option<i64>>(3)?.map(|n| n.max(0) as u64),
                    downloads_used: r.get::<_, i64>(4)?.max(0) as u64,
                })
            },
        )?;
    }
    if has_table(&conn, "picoshare_api_tokens")? {
        f.api_tokens = rows(
            &conn,
            "SELECT name FROM picoshare_api_tokens ORDER BY created_time, id",
            [],
            |r| r.get(0),
        )?;
    }
    if has_table(&conn, "picoshare_hook_destinations")? {
        f.notifications.0 = rows(
            &conn,
            "SELECT name FROM picoshare_hook_destinations ORDER BY created_time, id",
            [],
            |r| r.get(0),
        )?;
        f.notifications.1 = conn
            .query_row(
                "SELECT count(*) FROM picoshare_hook_outbox WHERE delivered_time IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64;
    }
    if has_table(&conn, "picoshare_shares")? {
        f.shares = rows(
            &conn,
            "SELECT s.id, s.title,
                    (SELECT count(*) FROM picoshare_share_entries se
                     JOIN entries e ON e.id = se.entry_id WHERE se.share_id = s.id)
             FROM picoshare_shares s ORDER BY s.created_time, s.id",
            [],
            |r| {
                Ok(ShareRow {
                    id: r.get(0)?,
                    title: r.get::<_, Option<String>>(1)?.filter(|t| !t.is_empty()),
                    files: r.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )?;
    }
    if has_table(&conn, "picoshare_tus_uploads")? {
        f.unfinished_uploads = rows(
            &conn,
            "SELECT filename, upload_offset, upload_length, guest_link_id IS NOT NULL
             FROM picoshare_tus_uploads WHERE completed = 0
             ORDER BY created_time, id",
            [],
            |r| {
                Ok(UnfinishedUpload {
                    filename: r.get(0)?,
                    received: r.get::<_, i64>(1)?.max(0) as u64,
                    length: r.get::<_, i64>(2)?.max(0) as u64,
                    guest: r.get(3)?,
                })
            },
        )?;
    }
    if has_table(&conn, "picoshare_replacements")? {
        f.replaced = rows(
            &conn,
            "SELECT e.id, e.filename, count(*) FROM picoshare_replacements r
             JOIN entries e ON e.id = r.entry_id
             GROUP BY e.id ORDER BY max(r.replaced_time), e.id",
            [],
            |r| {
                Ok(ReplacedFile {
                    id: r.get(0)?,
                    filename: r.get(1)?,
                    replacements: r.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )?;
        f.old_contents_kept = conn
            .query_row(
                "SELECT count(*) FROM picoshare_replacements WHERE old_content_id IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64;
    }
    if has_table(&conn, "picoshare_sessions")? {
        f.sessions = conn
            .query_row(
                "SELECT count(*) FROM picoshare_sessions WHERE expiration_time > ?1",
                [now],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64;
    }
    Ok(f)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn rows<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    decode: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt
        .query_map(params, decode)?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(out)
}
