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

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{RemoteConfig, RemoteStore};
use crate::ids::{hex, EntryId};
use crate::store::model::settings::SETTINGS;
use crate::store::model::time::{db_time, db_time_to_utc, expiration_from_db, expiration_to_db};
use crate::store::model::{Entry, NewEntry};
use crate::store::sqlite::open_read_only;

/// What the copy did.
#[derive(Debug, Default)]
struct Summary {
    copied: u64,
    bytes: u64,
    skipped_present: u64,
    /// Files already copied whose details (name, note, expiration…) changed.
    updated: u64,
    /// Files deleted from the source since the last copy.
    removed: u64,
    skipped_empty: u64,
    failed: u64,
}

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

/// One row of any table, as text, integers, blobs or nulls.
type Row = Vec<rusqlite::types::Value>;

fn read_rows(conn: &Connection, sql: &str) -> anyhow::Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Row>>()
        })?
        .collect::<rusqlite::Result<Vec<Row>>>()?;
    Ok(rows)
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl tokio_postgres::types::ToSql for Null {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        _: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(tokio_postgres::types::IsNull::Yes)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Turns SQLite values into PostgreSQL parameters (TEXT, BIGINT, BYTEA, NULL).
fn to_params(row: &Row) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> {
    use rusqlite::types::Value;
    row.iter()
        .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
            match v {
                Value::Null => Box::new(Null),
                Value::Integer(i) => Box::new(*i),
                // No column of PicoShare's holds a real; keep it as text.
                Value::Real(f) => Box::new(f.to_string()),
                Value::Text(t) => Box::new(t.clone()),
                Value::Blob(b) => Box::new(b.clone()),
            }
        })
        .collect()
}

/// Runs a prepared statement with one source row's values as parameters.
async fn insert_row(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &tokio_postgres::Statement,
    row: &Row,
) -> Result<u64, tokio_postgres::Error> {
    let params = to_params(row);
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    tx.execute(stmt, &refs).await
}

/// How one table is made equal to the source's.
#[derive(Clone)]
struct Mirror {
    table: &'static str,
    /// Reads the source's rows, the key first.
    select: &'static str,
    /// Inserts one row, or updates the row with its key (only rows whose
    /// entry exists, for tables that refer to entries).
    upsert: &'static str,
    /// Deletes the destination's rows whose key is not in `$1` (a text
    /// array): those the source no longer has. `None`: every row is
    /// deleted first, then the source's inserted (tables without a
    /// one-column key).
    prune: Option<&'static str>,
}

/// Makes one table equal to the source's (a table the source does not have
/// counts as empty), in one transaction. Returns the source's rows.
async fn mirror_table(src: &Connection, store: &RemoteStore, m: &Mirror) -> anyhow::Result<usize> {
    let rows = if table_exists(src, m.table)? {
        read_rows(src, m.select)?
    } else {
        Vec::new()
    };
    let mut client = store.pg().await?;
    let tx = client.transaction().await?;
    if m.prune.is_none() {
        tx.execute(&format!("DELETE FROM {}", m.table), &[]).await?;
    }
    let stmt = tx.prepare(m.upsert).await?;
    for row in &rows {
        insert_row(&tx, &stmt, row)
            .await
            .with_context(|| format!("could not copy a row of {}", m.table))?;
    }
    if let Some(prune) = m.prune {
        let keys: Vec<String> = rows
            .iter()
            .map(|r| match &r[0] {
                rusqlite::types::Value::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        tx.execute(prune, &[&keys]).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// The tables that do not refer to entries, read from `src`.
///
/// # Errors
/// The source's schema cannot be read.
fn independent(src: &Connection) -> rusqlite::Result<Vec<Mirror>> {
    let mut tables = INDEPENDENT.to_vec();
    // Sessions carry the tag of their passphrase since the SQLite schema's
    // addition 8; rows from before have none, and end at the first start.
    if !column_exists(src, "picoshare_sessions", "secret_tag")? {
        for m in &mut tables {
            if m.table == "picoshare_sessions" {
                m.select = "SELECT token_sha256, created_time, expiration_time, NULL, NULL, NULL,
                    NULL FROM picoshare_sessions";
            }
        }
    }
    Ok(tables)
}

/// The tables that do not refer to entries (as the current SQLite schema has them).
const INDEPENDENT: &[Mirror] = &[
    Mirror {
        table: "guest_links",
        select: "SELECT id, label, max_file_bytes, max_file_uploads, creation_time,
            url_expiration_time, file_expiration_time, is_disabled FROM guest_links",
        upsert: "INSERT INTO guest_links (id, label, max_file_bytes, max_file_uploads, creation_time,
                url_expiration_time, file_expiration_time, is_disabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET label = excluded.label,
                max_file_bytes = excluded.max_file_bytes, max_file_uploads = excluded.max_file_uploads,
                creation_time = excluded.creation_time,
                url_expiration_time = excluded.url_expiration_time,
                file_expiration_time = excluded.file_expiration_time, is_disabled = excluded.is_disabled",
        prune: Some("DELETE FROM guest_links WHERE id <> ALL($1)"),
    },
    Mirror {
        table: "picoshare_sessions",
        select: "SELECT token_sha256, created_time, expiration_time, id, secret_tag, client_ip,
            user_agent FROM picoshare_sessions",
        upsert: "INSERT INTO picoshare_sessions (token_sha256, created_time, expiration_time, id,
                secret_tag, client_ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (token_sha256) DO UPDATE SET created_time = excluded.created_time,
                expiration_time = excluded.expiration_time, id = excluded.id,
                secret_tag = excluded.secret_tag, client_ip = excluded.client_ip,
                user_agent = excluded.user_agent",
        prune: Some("DELETE FROM picoshare_sessions WHERE token_sha256 <> ALL($1)"),
    },
    Mirror {
        table: "picoshare_api_tokens",
        select: "SELECT id, name, token_sha256, prefix, created_time, last_used_time
             FROM picoshare_api_tokens",
        upsert: "INSERT INTO picoshare_api_tokens (id, name, token_sha256, prefix, created_time,
                last_used_time) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                token_sha256 = excluded.token_sha256, prefix = excluded.prefix,
                created_time = excluded.created_time, last_used_time = excluded.last_used_time",
        prune: Some("DELETE FROM picoshare_api_tokens WHERE id <> ALL($1)"),
    },
    Mirror {
        table: "picoshare_server_keys",
        select: "SELECT name, value FROM picoshare_server_keys",
        upsert: "INSERT INTO picoshare_server_keys (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        prune: Some("DELETE FROM picoshare_server_keys WHERE name <> ALL($1)"),
    },
];

/// The tables that refer to entries: only rows of entries that exist are
/// copied.
const DEPENDENT: &[Mirror] = &[
    Mirror {
        table: "picoshare_entry_limits",
        select: "SELECT entry_id, max_downloads, downloads_used, password_hash
             FROM picoshare_entry_limits",
        upsert: "INSERT INTO picoshare_entry_limits
                (entry_id, max_downloads, downloads_used, reserved, password_hash)
             SELECT $1, $2, $3, 0, $4 WHERE EXISTS (SELECT 1 FROM entries WHERE id = $1)
             ON CONFLICT (entry_id) DO UPDATE SET max_downloads = excluded.max_downloads,
                downloads_used = excluded.downloads_used, password_hash = excluded.password_hash",
        prune: Some("DELETE FROM picoshare_entry_limits WHERE entry_id <> ALL($1)"),
    },
    Mirror {
        table: "picoshare_shares",
        select: "SELECT id, title, created_time, note FROM picoshare_shares",
        upsert:
            "INSERT INTO picoshare_shares (id, title, created_time, note) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                created_time = excluded.created_time, note = excluded.note",
        prune: Some("DELETE FROM picoshare_shares WHERE id <> ALL($1)"),
    },
    Mirror {
        table: "picoshare_share_entries",
        select: "SELECT share_id, entry_id, position, path FROM picoshare_share_entries",
        upsert: "INSERT INTO picoshare_share_entries (share_id, entry_id, position, path)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM entries WHERE id = $2)",
        prune: None,
    },
    Mirror {
        table: "downloads",
        select: "SELECT entry_id, download_timestamp, client_ip, user_agent FROM downloads
             ORDER BY rowid",
        upsert: "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM entries WHERE id = $1)",
        prune: None,
    },
    // The history of replaced contents; the old contents themselves are
    // not copied (SQLite frees them when no download reads them).
    Mirror {
        table: "picoshare_replacements",
        select: "SELECT entry_id, replaced_time, old_upload_time, old_filename, old_size,
            new_filename, new_size FROM picoshare_replacements",
        upsert: "INSERT INTO picoshare_replacements (entry_id, replaced_time, old_upload_time,
                old_filename, old_size, new_filename, new_size)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM entries WHERE id = $1)",
        prune: None,
    },
];

async fn copy_all(db: &Path, src: &Connection, store: &RemoteStore) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!(
        "copying {} into PostgreSQL and object storage",
        db.display()
    );

    // Settings: the destination takes the source's.
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
    for m in &independent(src)? {
        let n = mirror_table(src, store, m).await?;
        if n > 0 {
            eprintln!("  {}: {n} rows", m.table);
        }
    }

    let entries = read_rows(
        src,
        "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time, e.note,
            e.guest_link_id,
            (SELECT coalesce(sum(length(chunk)), 0) FROM entries_data d WHERE d.id = e.id)
         FROM entries e ORDER BY e.upload_time, e.rowid",
    )?;
    let total = entries.len();
    let mut summary = Summary {
        removed: remove_deleted_entries(store, &entries).await?,
        ..Summary::default()
    };
    for (n, row) in entries.iter().enumerate() {
        let text = |i: usize| match &row[i] {
            rusqlite::types::Value::Text(t) => Some(t.clone()),
            _ => None,
        };
        let id_text = text(0).unwrap_or_default();
        let Ok(id) = EntryId::parse(&id_text) else {
            eprintln!(
                "  [{}/{total}] skipped {id_text:?}: not a valid entry ID",
                n + 1
            );
            summary.failed += 1;
            continue;
        };
        let size = match row[7] {
            rusqlite::types::Value::Integer(i) => u64::try_from(i).unwrap_or(0),
            _ => 0,
        };
        let filename = text(1).unwrap_or_default();
        let label = format!("[{}/{total}] {id} {filename:?} ({})", n + 1, human(size));
        if size == 0 {
            // The server treats entries without data as missing.
            eprintln!("  {label}: skipped, it has no data");
            summary.skipped_empty += 1;
            continue;
        }
        let entry = NewEntry {
            filename,
            content_type: text(2).unwrap_or_default(),
            upload_time: db_time_to_utc(&text(3).unwrap_or_default()),
            expiration: expiration_from_db(text(4)),
            note: text(5),
            guest_link_id: text(6).filter(|g| !g.is_empty()),
            limits: None,
        };
        if let Some(hash) = store
            .copied_sha256(&id, &db_time(entry.upload_time))
            .await?
        {
            if store.update_copied_entry(&id, &entry).await? {
                eprintln!(
                    "  {label}: already copied (sha256 {}), details updated",
                    &hash[..16]
                );
                summary.updated += 1;
            } else {
                eprintln!("  {label}: already copied (sha256 {})", &hash[..16]);
            }
            summary.skipped_present += 1;
            continue;
        }
        match copy_entry(db, store, &id, entry, size).await {
            Ok(hash) => {
                eprintln!("  {label}: copied, sha256 {} verified", &hash[..16]);
                summary.copied += 1;
                summary.bytes += size;
            }
            Err(e) => {
                eprintln!("  {label}: FAILED: {e:#}");
                summary.failed += 1;
            }
        }
    }

    // Rows that refer to entries: only for entries that now exist.
    for m in DEPENDENT {
        let n = mirror_table(src, store, m).await?;
        if n > 0 {
            eprintln!("  {}: {n} rows", m.table);
        }
    }
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
    store
        .execute(
            "UPDATE picoshare_store_state SET copied_from = $1, copied = now()",
            &[&std::fs::canonicalize(db)
                .unwrap_or_else(|_| db.to_owned())
                .display()
                .to_string()],
        )
        .await?;
    eprintln!(
        "done in {:.1} s: {} files copied ({}), {} already there ({} updated), {} removed, \
         {} without data skipped, {} failed",
        started.elapsed().as_secs_f64(),
        summary.copied,
        human(summary.bytes),
        summary.skipped_present,
        summary.updated,
        summary.removed,
        summary.skipped_empty,
        summary.failed
    );
    if summary.failed > 0 {
        bail!(
            "{} files could not be copied; run the command again to retry them",
            summary.failed
        );
    }
    Ok(())
}

/// Streams one entry's chunks into a new object (computing its SHA-256),
/// writes its row and download history, reads the object back and compares
/// checksums. On a mismatch the entry is deleted again. Returns the hex SHA-256.
async fn copy_entry(
    db: &Path,
    store: &RemoteStore,
    id: &EntryId,
    entry: NewEntry,
    size: u64,
) -> anyhow::Result<String> {
    // Chunks are read on a blocking thread, a few at a time (bounded memory).
    let (tx, rx) = flume::bounded::<anyhow::Result<Bytes>>(4);
    let path = db.to_owned();
    let id_text = id.as_str().to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let run = || -> anyhow::Result<()> {
            let conn = open_read_only(&path)?;
            let mut stmt =
                conn.prepare("SELECT chunk FROM entries_data WHERE id = ?1 ORDER BY chunk_index")?;
            let mut rows = stmt.query([&id_text])?;
            while let Some(r) = rows.next()? {
                let chunk: Vec<u8> = r.get(0)?;
                if tx.send(Ok(Bytes::from(chunk))).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.send(Err(e));
        }
    });
    store.clear_interrupted_copy(id).await?;
    let mut sink = store.begin_upload(id.clone(), Some(size));
    let mut hasher = Sha256::new();
    while let Ok(chunk) = rx.recv_async().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        sink.write(chunk).await?;
    }
    reader.await?;
    if sink.bytes_received() != size {
        bail!(
            "read {} bytes but the database says {size}",
            sink.bytes_received()
        );
    }
    let source_hash = hex(&hasher.finalize());
    let upload_time = entry.upload_time;
    sink.finish(entry).await?;

    // Read the object back.
    let stored = Entry {
        id: id.clone(),
        filename: String::new(),
        content_type: String::new(),
        upload_time,
        expiration: None,
        note: None,
        guest_link_id: None,
        size,
        chunk_size: 0,
        pin: None,
    };
    let mut range = store.read_range(&stored, 0, size - 1);
    let mut check = Sha256::new();
    let mut read = 0u64;
    while let Some(b) = range.next().await? {
        read += b.len() as u64;
        check.update(&b);
    }
    let stored_hash = hex(&check.finalize());
    if read != size || stored_hash != source_hash {
        store.delete_entry(id).await?;
        bail!("the stored object differs from the database (sha256 {stored_hash} after the copy, {source_hash} before); it was removed");
    }
    store.set_copied_sha256(id, &source_hash).await?;
    Ok(source_hash)
}

/// Deletes the files of the destination that the source no longer has
/// (deleted since the last copy): their rows, and their objects. Returns
/// how many.
async fn remove_deleted_entries(store: &RemoteStore, source: &[Row]) -> anyhow::Result<u64> {
    let keep: Vec<String> = source
        .iter()
        .filter_map(|r| match &r[0] {
            rusqlite::types::Value::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let gone = store
        .query("SELECT id FROM entries WHERE id <> ALL($1)", &[&keep])
        .await?;
    for row in &gone {
        let id: String = row.get(0);
        let Ok(id) = EntryId::parse(&id) else {
            continue;
        };
        store.delete_entry(&id).await?;
        eprintln!("  {id}: removed, it was deleted from the source");
    }
    Ok(gone.len() as u64)
}

impl RemoteStore {
    /// The recorded SHA-256 of an entry the migration already copied, if
    /// its copy is of the source's content (`upload_time` as stored here).
    async fn copied_sha256(
        &self,
        id: &EntryId,
        upload_time: &str,
    ) -> anyhow::Result<Option<String>> {
        let row = self
            .query_opt(
                "SELECT sha256, upload_time FROM entries WHERE id = $1",
                &[&id.as_str()],
            )
            .await?;
        match row {
            None => Ok(None),
            Some(r) => match r.get::<_, Option<String>>(0) {
                // The same upload time: the same content (replacing a
                // file's content moves it forward; nothing else changes it).
                Some(h) if r.get::<_, &str>(1) == upload_time => Ok(Some(h)),
                // Its content was replaced in the source since the last
                // copy: copy it again.
                Some(_) => {
                    self.delete_entry(id).await?;
                    Ok(None)
                }
                // Present but never verified (an earlier run stopped between
                // the copy and the check): copy it again.
                None => {
                    self.delete_entry(id).await?;
                    Ok(None)
                }
            },
        }
    }

    /// Gives a copied entry the details its source has now (stored as a
    /// new entry's are); returns whether any changed.
    async fn update_copied_entry(&self, id: &EntryId, e: &NewEntry) -> anyhow::Result<bool> {
        let n = self
            .execute(
                "UPDATE entries SET filename = $2, content_type = $3, upload_time = $4,
                    expiration_time = $5, note = $6, guest_link_id = $7
                 WHERE id = $1 AND (filename, content_type, upload_time, expiration_time, note,
                    guest_link_id) IS DISTINCT FROM ($2, $3, $4, $5, $6, $7)",
                &[
                    &id.as_str(),
                    &e.filename,
                    &e.content_type,
                    &db_time(e.upload_time),
                    &expiration_to_db(e.expiration),
                    &e.note,
                    &e.guest_link_id,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// Clears what an interrupted earlier run left of its copy of `id`
    /// before it is copied again under the same ID: its upload's row (its
    /// multipart upload is aborted) and a queued deletion of its object,
    /// which would otherwise delete the new copy.
    async fn clear_interrupted_copy(&self, id: &EntryId) -> anyhow::Result<()> {
        let key = self.object_key(id.as_str());
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1 RETURNING multipart_id",
                &[&id.as_str()],
            )
            .await?;
        tx.execute(
            "DELETE FROM picoshare_deleted_objects WHERE key = $1 AND multipart_id = ''",
            &[&key],
        )
        .await?;
        for row in &rows {
            if let Some(m) = row.get::<_, Option<&str>>(0) {
                super::gc::queue_deletion(&tx, &key, m).await?;
            }
        }
        tx.commit().await?;
        drop(client);
        if !rows.is_empty() {
            self.drain_deletions(Some(key)).await;
        }
        Ok(())
    }

    async fn set_copied_sha256(&self, id: &EntryId, hash: &str) -> anyhow::Result<()> {
        self.execute(
            "UPDATE entries SET sha256 = $2 WHERE id = $1",
            &[&id.as_str(), &hash],
        )
        .await?;
        Ok(())
    }
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
