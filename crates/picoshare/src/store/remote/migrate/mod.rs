//! `picoshare --copy-to-remote`: copies a SQLite database (ours, or one the
//! original PicoShare wrote) into PostgreSQL and object storage, and checks
//! every file's SHA-256 after the copy by reading the object back.
//!
//! The SQLite file is only read (opened read-only), so the server can keep
//! serving from it until the copy is done.
//!
//! Running the command again makes the destination equal to the source once
//! more: files added since are copied (files already copied and verified
//! are not copied again, only their details updated), files deleted since
//! are deleted (rows and objects), and every other table (settings, guest
//! links, sessions, API tokens, server keys, download limits and counts,
//! passwords, shares, download history) is replaced by the source's: a
//! revoked token, a logout, a disabled link or a used-up download carries
//! over. That is only right while no server has used the destination, since
//! what a server changed there would be undone (its uploads deleted): once
//! one has (`picoshare_store_state.served_since`, set when a server opens the
//! store), the command refuses to run and says why.
//!
//! Here: the command's steps ([`copy_all`]); the files are copied by
//! [`entries`], the other tables by [`tables`].

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use rusqlite::{Connection, OptionalExtension};

use super::{RemoteConfig, RemoteStore};
use crate::store::model::settings::SETTINGS;
use crate::store::sqlite::open_read_only;

mod entries;
mod tables;

use entries::copy_entries;
use tables::{independent, mirror_tables, DEPENDENT};

/// Copies the database at `db` into the scale-out store described by `remote`.
///
/// # Errors
/// The database cannot be read, the destination cannot be used, or any
/// file's checksum differs after the copy.
pub async fn copy_sqlite(db: &Path, remote: RemoteConfig) -> anyhow::Result<()> {
    if !db.exists() {
        bail!("there is no database at {}", db.display());
    }
    let src = open_source(db)?;
    let store = RemoteStore::open_for_copy(remote)
        .await
        .context("could not open the destination (PostgreSQL and S3)")?;
    let result = match refuse_if_served(&store).await {
        Ok(()) => copy_all(db, &src, &store).await,
        Err(e) => Err(e),
    };
    store.shutdown().await;
    result
}

/// Refuses to copy into a store that a server has used: copying would undo
/// what the server changed there.
async fn refuse_if_served(store: &RemoteStore) -> anyhow::Result<()> {
    let row = store
        .query_one(
            "SELECT served_since::TEXT, copied::TEXT, copied_from FROM picoshare_store_state",
            &[],
        )
        .await?;
    let served: Option<String> = row.get(0);
    let copied: Option<String> = row.get(1);
    let from: Option<String> = row.get(2);
    if let Some(since) = served {
        bail!(
            "the destination has been used by a PicoShare server since {since}: copying \
             again would undo what was changed there (files uploaded to it would be \
             deleted). --copy-to-remote only copies into a PostgreSQL schema and bucket \
             prefix that no server has used yet; to copy this database anyway, copy it \
             into an empty schema (PS_POSTGRES_SCHEMA) and prefix (PS_S3_PREFIX)"
        );
    }
    if let (Some(when), Some(from)) = (copied, from) {
        eprintln!("the destination is a copy of {from} made at {when}: bringing it up to date");
    }
    Ok(())
}

fn open_source(db: &Path) -> anyhow::Result<Connection> {
    let conn =
        open_read_only(db).with_context(|| format!("could not open {} read-only", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    if !table_exists(&conn, "entries")? || !table_exists(&conn, "entries_data")? {
        bail!(
            "{} is not a PicoShare database (no entries table)",
            db.display()
        );
    }
    Ok(conn)
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn column_exists(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Makes the destination equal to the source (see the module header), step
/// by step, and says what it did.
async fn copy_all(db: &Path, src: &Connection, store: &RemoteStore) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!(
        "copying {} into PostgreSQL and object storage",
        db.display()
    );
    copy_settings(src, store).await?;
    mirror_tables(src, store, &independent(src)?).await?;
    let summary = copy_entries(db, src, store).await?;
    // Rows that refer to entries: only for entries that now exist.
    mirror_tables(src, store, DEPENDENT).await?;
    tell_unfinished_uploads(src)?;
    record_copy(db, store).await?;
    summary.tell(started);
    if summary.failed > 0 {
        bail!(
            "{} files could not be copied; run the command again to retry them",
            summary.failed
        );
    }
    Ok(())
}

/// Settings: the destination takes the source's.
async fn copy_settings(src: &Connection, store: &RemoteStore) -> anyhow::Result<()> {
    if let Some(days) = src
        .query_row(SETTINGS.sqlite(), [], |r| r.get::<_, Option<i64>>(0))
        .optional()?
    {
        store
            .execute(
                "UPDATE settings SET default_expiration_in_days = $1 WHERE id = 1",
                &[&days],
            )
            .await?;
    }
    Ok(())
}

/// Says how many resumable uploads were left behind: they are not copied.
fn tell_unfinished_uploads(src: &Connection) -> anyhow::Result<()> {
    if table_exists(src, "picoshare_tus_uploads")? {
        let unfinished: i64 = src.query_row(
            "SELECT count(*) FROM picoshare_tus_uploads WHERE completed = 0",
            [],
            |r| r.get(0),
        )?;
        if unfinished > 0 {
            eprintln!(
                "  {unfinished} unfinished resumable uploads were not copied: their clients start them again"
            );
        }
    }
    Ok(())
}

/// Records in the destination what it is a copy of, and when it was made.
async fn record_copy(db: &Path, store: &RemoteStore) -> anyhow::Result<()> {
    let from = std::fs::canonicalize(db)
        .unwrap_or_else(|_| db.to_owned())
        .display()
        .to_string();
    store
        .execute(
            "UPDATE picoshare_store_state SET copied_from = $1, copied = now()",
            &[&from],
        )
        .await?;
    Ok(())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", b / f64::from(1u32 << 30))
    } else if b >= f64::from(1u32 << 20) {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
