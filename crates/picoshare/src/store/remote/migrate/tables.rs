//! The tables other than the files': how each is made equal to the
//! source's ([`Mirror`], [`mirror_tables`]), and SQLite rows turned into
//! PostgreSQL parameters.

use anyhow::Context;
use rusqlite::Connection;

use super::table_exists;
use super::{column_exists, RemoteStore};

/// One row of any table, as text, integers, blobs or nulls.
pub(super) type Row = Vec<rusqlite::types::Value>;

pub(super) fn read_rows(conn: &Connection, sql: &str) -> anyhow::Result<Vec<Row>> {
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
pub(super) struct Mirror {
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
pub(super) fn independent(src: &Connection) -> rusqlite::Result<Vec<Mirror>> {
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
pub(super) const DEPENDENT: &[Mirror] = &[
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
];

/// Makes each of `tables` equal to the source's, in order.
pub(super) async fn mirror_tables(
    src: &Connection,
    store: &RemoteStore,
    tables: &[Mirror],
) -> anyhow::Result<()> {
    for m in tables {
        let n = mirror_table(src, store, m).await?;
        if n > 0 {
            eprintln!("  {}: {n} rows", m.table);
        }
    }
    Ok(())
}
