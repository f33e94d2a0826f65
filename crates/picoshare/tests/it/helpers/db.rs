//! Looking inside the store: a read-only connection to the SQLite file, or on
//! the scale-out store an in-memory SQLite snapshot of its PostgreSQL tables,
//! so that the tests' SQL reads either; the rows tests compare; and
//! [`store_execute`], which sets up states no HTTP request can make.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{hex, TestServer};

/// Looking inside a running server's store.
impl TestServer {
    /// A read-only connection to the live database (WAL lets it read while
    /// the server writes). On the scale-out store: an in-memory SQLite copy
    /// of the PostgreSQL tables taken now (see [`remote_snapshot`]).
    pub fn db(&self) -> Connection {
        if remote_storage().is_some() {
            return remote_snapshot(&remote_names(&self.db_path).0);
        }
        open_db_read_only(&self.db_path)
    }

    pub fn entry(&self, id: &str) -> Option<EntryRow> {
        entry_row(&self.db(), id)
    }

    pub fn entry_count(&self) -> i64 {
        count(&self.db(), "SELECT count(*) FROM entries", [])
    }

    /// Chunk rows whose entry does not exist: leftovers of failed uploads.
    pub fn orphan_chunks(&self) -> i64 {
        count(
            &self.db(),
            "SELECT count(*) FROM entries_data WHERE id NOT IN (SELECT id FROM entries)",
            [],
        )
    }

    /// The bytes stored so far for an unfinished resumable upload (its
    /// chunks in order, then its tail), straight from the database.
    pub fn tus_stored_bytes(&self, upload_id: &str) -> Vec<u8> {
        let db = self.db();
        let (entry, tail): (String, Option<Vec<u8>>) = db
            .query_row(
                "SELECT entry_id, tail FROM picoshare_tus_uploads WHERE id = ?1",
                [upload_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("resumable upload row");
        let mut out = Vec::new();
        let mut stmt = db
            .prepare("SELECT chunk FROM entries_data WHERE id = ?1 ORDER BY chunk_index")
            .expect("prepare chunk query");
        for chunk in stmt
            .query_map([&entry], |r| r.get::<_, Vec<u8>>(0))
            .expect("query chunks")
        {
            out.extend_from_slice(&chunk.expect("chunk row"));
        }
        out.extend_from_slice(&tail.unwrap_or_default());
        out
    }

    pub fn chunk_rows(&self, id: &str) -> i64 {
        count(
            &self.db(),
            "SELECT count(*) FROM entries_data WHERE id = ?1",
            [id],
        )
    }

    pub fn download_rows(&self, id: &str) -> Vec<DownloadRow> {
        download_rows(&self.db(), id)
    }

    /// Names of whatever sits in the server's TMPDIR right now.
    pub fn tmp_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every byte the server keeps about its files apart from their data:
    /// the database file and its WAL, or on the scale-out store every row
    /// of its PostgreSQL tables (as JSON).
    pub fn metadata_bytes(&self) -> Vec<u8> {
        if remote_storage().is_some() {
            let parts: Vec<String> = SNAPSHOT_TABLES
                .iter()
                .map(|(t, _)| format!("'{t}', (SELECT coalesce(json_agg(x), '[]') FROM {t} x)"))
                .collect();
            let sql = format!("SELECT json_build_object({})", parts.join(", "));
            return pg_json(&remote_names(&self.db_path).0, &sql)
                .to_string()
                .into_bytes();
        }
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", self.db_path.display());
            if let Ok(bytes) = std::fs::read(&path) {
                all.extend_from_slice(&bytes);
            }
        }
        all
    }
}

/// Where the scale-out store's services are, when the tests run against it.
#[derive(Debug, Clone)]
pub struct RemoteStorage {
    pub postgres_url: String,
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// `Some` when this test run uses PostgreSQL and S3
/// (`PICOSHARE_TEST_STORAGE=remote` and the `PICOSHARE_TEST_*` settings that
/// `scripts/remote-services start` prints); `None` for SQLite.
pub fn remote_storage() -> Option<&'static RemoteStorage> {
    static REMOTE: std::sync::OnceLock<Option<RemoteStorage>> = std::sync::OnceLock::new();
    REMOTE
        .get_or_init(|| {
            let mode = std::env::var("PICOSHARE_TEST_STORAGE").unwrap_or_default();
            if mode.is_empty() || mode == "sqlite" {
                return None;
            }
            assert_eq!(
                mode, "remote",
                "PICOSHARE_TEST_STORAGE must be sqlite or remote"
            );
            let var = |k: &str| {
                std::env::var(k).unwrap_or_else(|_| {
                    panic!("PICOSHARE_TEST_STORAGE=remote needs {k} (see scripts/remote-services)")
                })
            };
            Some(RemoteStorage {
                postgres_url: var("PICOSHARE_TEST_POSTGRES_URL"),
                endpoint: var("PICOSHARE_TEST_S3_ENDPOINT"),
                bucket: var("PICOSHARE_TEST_S3_BUCKET"),
                region: var("PICOSHARE_TEST_S3_REGION"),
                access_key_id: var("PICOSHARE_TEST_S3_ACCESS_KEY_ID"),
                secret_access_key: var("PICOSHARE_TEST_S3_SECRET_ACCESS_KEY"),
            })
        })
        .as_ref()
}

/// The PostgreSQL schema and S3 key prefix of a database path.
pub fn remote_names(db: &Path) -> (String, String) {
    let digest = Sha256::digest(db.as_os_str().as_encoded_bytes());
    let schema = format!("t_{}", &hex(&digest)[..16]);
    let prefix = format!("{schema}/");
    (schema, prefix)
}

/// Runs `work` with a fresh blocking PostgreSQL connection whose search path
/// is `schema`. The blocking client drives a Tokio runtime of its own, which
/// may not be started from inside the test's runtime, hence the thread.
fn with_pg<T: Send + 'static>(
    schema: &str,
    work: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
) -> T {
    let remote = remote_storage().expect("PostgreSQL queries need the scale-out store");
    let url = remote.postgres_url.clone();
    let schema = schema.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL: {e}"));
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .expect("set search_path");
        work(&mut client).unwrap_or_else(|e| panic!("PostgreSQL (schema {schema}): {e}"))
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs one query in a schema and returns its single JSON value (the query
/// must produce one row with one `json` column).
fn pg_json(schema: &str, sql: &str) -> serde_json::Value {
    let sql = sql.to_owned();
    let text = with_pg(schema, move |client| {
        // The simple protocol hands every value over as text.
        let messages = client.simple_query(&sql)?;
        Ok(messages.into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
            _ => None,
        }))
    });
    let text = text
        .flatten()
        .unwrap_or_else(|| panic!("no JSON value from PostgreSQL"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("PostgreSQL's answer is not JSON ({e}): {text}"))
}

/// Changes the store a (stopped) server on `db` keeps its data in, for the
/// tests that set up a state no HTTP request can make: `sql` is executed
/// once per element of `rows` (with `$1`, `$2`, ... bound to its values, all
/// text), or once if `rows` is empty, all in one transaction. On SQLite it
/// runs on the database file; on the scale-out store in the PostgreSQL
/// schema of that path (whose tables have the same names and columns).
pub fn store_execute(db: &Path, sql: &str, rows: &[Vec<String>]) {
    if remote_storage().is_some() {
        let (sql, rows) = (sql.to_owned(), rows.to_vec());
        with_pg(&remote_names(db).0, move |client| {
            let mut tx = client.transaction()?;
            if rows.is_empty() {
                tx.batch_execute(&sql)?;
            } else {
                let stmt = tx.prepare(&sql)?;
                for row in &rows {
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = row
                        .iter()
                        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    tx.execute(&stmt, &params)?;
                }
            }
            tx.commit()
        });
        return;
    }
    let mut conn = open_db_read_write(db);
    let tx = conn.transaction().unwrap();
    if rows.is_empty() {
        tx.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    } else {
        // SQLite numbers `$1`, `$2`, ... by first appearance: positional.
        let mut stmt = tx.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row)).unwrap();
        }
        drop(stmt);
    }
    tx.commit().unwrap();
}

/// The tables of the scale-out store that tests look at, with the order
/// their rows are copied in (so that `rowid` follows insertion order).
const SNAPSHOT_TABLES: &[(&str, &str)] = &[
    ("entries", "seq"),
    ("downloads", "seq"),
    ("guest_links", "creation_time"),
    ("settings", "id"),
    ("picoshare_sessions", "created_time"),
    ("picoshare_tus_uploads", "created_time"),
    ("picoshare_tus_parts", "part_number"),
    ("picoshare_api_tokens", "created_time"),
    ("picoshare_entry_limits", "entry_id"),
    ("picoshare_server_keys", "name"),
    ("picoshare_shares", "created_time"),
    ("picoshare_share_entries", "position"),
    ("picoshare_pending_uploads", "started"),
    ("picoshare_deleted_objects", "since"),
    ("picoshare_replacements", "replaced_time"),
];

/// An in-memory SQLite database holding a copy of the scale-out store's
/// PostgreSQL tables (same names and columns), so that the tests' queries
/// read either store. File data has no table there; `entries_data` is made
/// up so that the questions tests ask of it get true answers: one row per
/// part of every stored object (each as long as that part), one per part of
/// an unfinished resumable upload and one for its tail, and one per upload
/// in progress or object waiting for deletion (data that belongs to no entry).
pub fn remote_snapshot(schema: &str) -> Connection {
    let parts: Vec<String> = SNAPSHOT_TABLES
        .iter()
        .map(|(t, order)| {
            format!("'{t}', (SELECT coalesce(json_agg(x ORDER BY x.{order}), '[]') FROM {t} x)")
        })
        .collect();
    let sql = format!(
        "SELECT json_build_object('columns', (SELECT json_object_agg(table_name, cols) FROM
            (SELECT table_name, json_agg(column_name::text ORDER BY ordinal_position) AS cols
             FROM information_schema.columns WHERE table_schema = current_schema()
             GROUP BY table_name) c), 'rows', json_build_object({}))",
        parts.join(", ")
    );
    let all = pg_json(schema, &sql);
    let conn = Connection::open_in_memory().expect("in-memory SQLite");
    for (table, _) in SNAPSHOT_TABLES {
        let cols: Vec<String> = all["columns"][table]
            .as_array()
            .unwrap_or_else(|| panic!("no table {table} in schema {schema}"))
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        conn.execute_batch(&format!("CREATE TABLE {table} ({});", cols.join(", ")))
            .unwrap();
        let placeholders = vec!["?"; cols.len()].join(", ");
        let insert = format!("INSERT INTO {table} VALUES ({placeholders})");
        for row in all["rows"][table].as_array().unwrap() {
            let values: Vec<rusqlite::types::Value> =
                cols.iter().map(|c| json_to_sqlite(&row[c])).collect();
            conn.execute(&insert, rusqlite::params_from_iter(values))
                .unwrap();
        }
    }
    conn.execute_batch(
        "CREATE TABLE entries_data (id TEXT, chunk_index INTEGER, chunk BLOB);
         WITH RECURSIVE parts(id, i, size, part) AS (
            SELECT id, 0, size, max(part_size, 1) FROM entries
            UNION ALL SELECT id, i + 1, size, part FROM parts WHERE (i + 1) * part < size)
         INSERT INTO entries_data SELECT id, i, zeroblob(min(part, size - i * part)) FROM parts;
         INSERT INTO entries_data SELECT t.entry_id, p.part_number - 1, zeroblob(1)
            FROM picoshare_tus_parts p JOIN picoshare_tus_uploads t ON t.id = p.upload_id
            WHERE t.completed = 0;
         INSERT INTO entries_data SELECT entry_id, upload_offset / chunk_size, tail
            FROM picoshare_tus_uploads WHERE completed = 0 AND length(tail) > 0;
         INSERT INTO entries_data SELECT entry_id, 0, zeroblob(1) FROM picoshare_pending_uploads;
         INSERT INTO entries_data SELECT replace(key, rtrim(key, replace(key, '/', '')), ''), 0, zeroblob(1)
            FROM picoshare_deleted_objects;",
    )
    .unwrap();
    conn
}

fn json_to_sqlite(v: &serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Real(n.as_f64().unwrap_or(0.0)), Value::Integer),
        // BYTEA arrives as `\x` and hex digits.
        serde_json::Value::String(s) => match s.strip_prefix("\\x") {
            Some(h) if h.len() % 2 == 0 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Value::Blob(
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect(),
            ),
            _ => Value::Text(s.clone()),
        },
        other => Value::Text(other.to_string()),
    }
}

fn open_db_read_only(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("cannot open {} read-only: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

pub fn open_db_read_write(path: &Path) -> Connection {
    let conn =
        Connection::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

pub fn count<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> i64 {
    conn.query_row(sql, params, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// One row of `entries`, as the Go server's schema defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub note: Option<String>,
    pub expiration_time: Option<String>,
    pub upload_time: String,
    pub guest_link_id: Option<String>,
}

pub fn entry_row(conn: &Connection, id: &str) -> Option<EntryRow> {
    conn.query_row(
        "SELECT id, filename, content_type, note, expiration_time, upload_time, guest_link_id
         FROM entries WHERE id = ?1",
        [id],
        |r| {
            Ok(EntryRow {
                id: r.get(0)?,
                filename: r.get(1)?,
                content_type: r.get(2)?,
                note: r.get(3)?,
                expiration_time: r.get(4)?,
                upload_time: r.get(5)?,
                guest_link_id: r.get(6)?,
            })
        },
    )
    .optional()
    .expect("query entries")
}

/// One row of `downloads`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DownloadRow {
    pub entry_id: String,
    pub download_timestamp: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn download_rows(conn: &Connection, id: &str) -> Vec<DownloadRow> {
    let mut stmt = conn
        .prepare(
            "SELECT entry_id, download_timestamp, client_ip, user_agent
             FROM downloads WHERE entry_id = ?1 ORDER BY rowid",
        )
        .expect("prepare downloads query");
    stmt.query_map([id], |r| {
        Ok(DownloadRow {
            entry_id: r.get(0)?,
            download_timestamp: r.get(1)?,
            client_ip: r.get(2)?,
            user_agent: r.get(3)?,
        })
    })
    .expect("query downloads")
    .map(|r| r.expect("downloads row"))
    .collect()
}

/// Asserts a timestamp is in the stored form `YYYY-MM-DDTHH:MM:SSZ` and
/// returns it parsed.
pub fn assert_stored_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    assert!(
        text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
        "stored time {text:?} is not RFC 3339 UTC with whole seconds"
    );
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("stored time {text:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut condition: F) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
