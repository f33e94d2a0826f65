//! Read-only reports for the admin pages on SQLite: an entry's download
//! history, the file list with sizes and download counts, and how much space
//! the database and its filesystem use.
//!
//! Everything here reads through the reader pool; nothing writes. The queries
//! are written so that their cost does not grow with the bytes stored:
//! sizes come from the `idx_entries_data_length` expression index (the chunk
//! lengths, without reading a blob), and per-entry download counts and history
//! from our `idx_downloads_entry_id` index (see `schema.rs`). A unit test below
//! pins both query plans.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{query_all, SqliteStore};
use crate::ids::EntryId;
use crate::store::model::{
    DatabaseSpace, Download, DownloadPage, DownloadQuery, EntryPage, EntryQuery, EntrySort,
    EntrySummary, StorageUsage,
};
use crate::store::StoreError;

/// Every entry with its size and download count, newest first, in one query.
/// Both aggregates are grouped scans of a covering index, joined by ID; the
/// inner join leaves out entries without data and the chunks of uploads in
/// progress (no entry row yet), as `Store::entry` does.
const ENTRIES_SQL: &str =
    "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
        e.note, e.guest_link_id, s.size, coalesce(d.n, 0)
     FROM entries e
     JOIN (SELECT id, sum(length(chunk)) AS size FROM entries_data GROUP BY id) s ON s.id = e.id
     LEFT JOIN (SELECT entry_id, count(*) AS n FROM downloads GROUP BY entry_id) d
        ON d.entry_id = e.id
     ORDER BY e.upload_time DESC, e.rowid DESC";

/// The sort key of the expiration order: files that never expire (NULL or
/// the original's sentinel) last.
const EXPIRES_KEY: &str =
    "(CASE WHEN e.expiration_time IS NULL OR e.expiration_time = '2999-12-31T00:00:00Z'
     THEN '9999' ELSE e.expiration_time END)";

/// Which files match a filter: `?1` is the filter (empty for all), `?2` the
/// `LIKE` pattern made of it. A file without data is not listed (as in
/// [`ENTRIES_SQL`]); with `all_have_data` (no entry row without chunks, see
/// [`every_entry_has_data`]) that test is left out, and with it one index
/// lookup per entry the query visits.
fn page_where(all_have_data: bool) -> &'static str {
    if all_have_data {
        "(?1 = '' OR e.filename LIKE ?2 ESCAPE '\\')"
    } else {
        "EXISTS (SELECT 1 FROM entries_data d WHERE d.id = e.id)
     AND (?1 = '' OR e.filename LIKE ?2 ESCAPE '\\')"
    }
}

/// Whether every entry row has at least one chunk row. This server never
/// writes an entry without its data (the row goes in the transaction that
/// stores the last chunk, and a delete takes both), so once true at start-up
/// it stays true while this server is the database's only writer; a
/// database that has such rows (left by another program, or made by hand)
/// keeps the exact queries until the next start.
/// Visits every entry once (about 20 ms of CPU at 100,000 entries).
///
/// # Errors
/// SQLite failures.
pub(super) fn every_entry_has_data(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM entries e
            WHERE NOT EXISTS (SELECT 1 FROM entries_data d WHERE d.id = e.id))",
        [],
        |r| r.get(0),
    )
}

/// One listed file by rowid, with its size and download count (each from
/// its index).
const PAGE_ROW_SQL: &str =
    "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
        e.note, e.guest_link_id,
        (SELECT coalesce(sum(length(chunk)), 0) FROM entries_data WHERE id = e.id),
        (SELECT count(*) FROM downloads WHERE entry_id = e.id)
     FROM entries e WHERE e.rowid = ?1";

/// The rowids of one window of the file list in `q`'s order: `?3` is the
/// limit (-1 for none), `?4` the offset. The upload order reads its index
/// (schema migration 9) and stops after the window; the others sort, with
/// only the window's rows kept; ties go newest upload first.
fn page_sql(q: &EntryQuery, all_have_data: bool) -> String {
    let page_where = page_where(all_have_data);
    let dir = if q.descending { "DESC" } else { "ASC" };
    let (from, key) = match q.sort {
        EntrySort::Uploaded => {
            return format!(
                "SELECT e.rowid FROM entries e WHERE {page_where}
                 ORDER BY e.upload_time {dir}, e.rowid {dir} LIMIT ?3 OFFSET ?4"
            )
        }
        EntrySort::Filename => ("entries e", "e.filename COLLATE NOCASE".to_owned()),
        EntrySort::Expires => ("entries e", EXPIRES_KEY.to_owned()),
        EntrySort::Size => (
            "entries e JOIN (SELECT id, sum(length(chunk)) AS size FROM entries_data GROUP BY id) s
                ON s.id = e.id",
            "s.size".to_owned(),
        ),
    };
    format!(
        "SELECT e.rowid FROM {from} WHERE {page_where}
         ORDER BY {key} {dir}, e.upload_time DESC, e.rowid DESC LIMIT ?3 OFFSET ?4"
    )
}

/// How many files match the filter (`?1`, `?2` as in [`page_where`]).
/// Without a filter and with `all_have_data`, the number of entry rows,
/// which SQLite counts from the smallest index without decoding a row
/// (a millisecond at 100,000 entries, against 20-50 ms for the query that
/// looks up each entry's data); it then takes no parameters.
fn count_sql(all_have_data: bool, filtered: bool) -> String {
    if all_have_data && !filtered {
        "SELECT count(*) FROM entries".to_owned()
    } else {
        format!(
            "SELECT count(*) FROM entries e WHERE {}",
            page_where(all_have_data)
        )
    }
}

/// A `LIKE` pattern that finds `needle` anywhere, its own `%`, `_` and `\`
/// taken literally.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// An entry's history, one window of it, newest first: `?2` is the limit
/// (-1 for none), `?3` the offset. Downloads recorded in the same second
/// keep their recording order (newest first too) through `rowid`, which
/// the index carries, so the sort needs no extra step.
const DOWNLOADS_PAGE_SQL: &str = "SELECT download_timestamp, client_ip, user_agent FROM downloads
     WHERE entry_id = ?1 ORDER BY download_timestamp DESC, rowid DESC LIMIT ?2 OFFSET ?3";

/// Each client address's most recent download of an entry, newest first,
/// one window of them (`?2` limit, `?3` offset); ties in a second go to the
/// row recorded last, as in the full history.
const UNIQUE_DOWNLOADS_PAGE_SQL: &str = "SELECT download_timestamp, client_ip, user_agent FROM (
        SELECT download_timestamp, client_ip, user_agent, rowid AS r,
            row_number() OVER (PARTITION BY coalesce(client_ip, '')
                ORDER BY download_timestamp DESC, rowid DESC) AS n
        FROM downloads WHERE entry_id = ?1)
     WHERE n = 1 ORDER BY download_timestamp DESC, r DESC LIMIT ?2 OFFSET ?3";

/// Bytes of all entries' data; chunks of unfinished uploads do not count.
const STORED_BYTES_SQL: &str = "SELECT coalesce(sum(length(chunk)), 0) FROM entries_data
     WHERE id IN (SELECT id FROM entries)";

/// The page cache of a reader while it reads a window of the file list, in
/// KiB (only the pages read take memory).
///
/// Counting the files that match a filter, and sorting by anything but the
/// upload time, visits every entry (and, in a database with entry rows
/// without data, looks up each one's data in an index); with 64 KiB
/// pages the reader's usual cache (4 MiB, sized for download batches) could
/// not hold what one pass visits at 100,000 files, and every lookup read
/// its pages again from the file: 200,000 reads of 64 KiB for one window,
/// 0.3-1.2 s (strace; docs/benchmarks.md, issue 21). With this cache the
/// window took 0.03 s.
const LIST_CACHE_KIB: i64 = 64 << 10;

/// Runs `f` with the reader's cache at [`LIST_CACHE_KIB`], then gives the
/// memory back and restores the reader's own size.
fn with_list_cache<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{LIST_CACHE_KIB}"))?;
    let result = f();
    conn.execute_batch(&format!(
        "PRAGMA cache_size = {before}; PRAGMA shrink_memory"
    ))?;
    result
}

impl SqliteStore {
    /// Every entry with its size and number of downloads, newest upload first.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn entries(&self) -> Result<Vec<EntrySummary>, StoreError> {
        self.read(|conn| query_all(conn, ENTRIES_SQL, [], |r| EntrySummary::decode(r)))
            .await
    }

    /// One window of the file list (see [`EntryQuery`]) and the number of
    /// files that match its filter, read in one transaction.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn entries_page(&self, q: EntryQuery) -> Result<EntryPage, StoreError> {
        if q == EntryQuery::default() {
            let entries = self.entries().await?;
            let total = entries.len() as u64;
            return Ok(EntryPage { entries, total });
        }
        let all_have_data = self.inner.every_entry_has_data;
        self.read(move |conn| {
            with_list_cache(conn, || {
                let tx = conn.unchecked_transaction()?;
                let pattern = like_pattern(&q.filter);
                let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
                let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
                let filtered = !q.filter.is_empty();
                let mut count = tx.prepare_cached(&count_sql(all_have_data, filtered))?;
                let total: i64 = if count.parameter_count() == 0 {
                    count.query_row([], |r| r.get(0))?
                } else {
                    count.query_row(rusqlite::params![q.filter, pattern], |r| r.get(0))?
                };
                drop(count);
                let rowids = query_all(
                    &tx,
                    &page_sql(&q, all_have_data),
                    rusqlite::params![q.filter, pattern, limit, offset],
                    |r| Ok(r.get::<_, i64>(0)?),
                )?;
                let mut entries = Vec::with_capacity(rowids.len());
                for rowid in rowids {
                    let mut stmt = tx.prepare_cached(PAGE_ROW_SQL)?;
                    let mut rows = stmt.query([rowid])?;
                    if let Some(r) = rows.next()? {
                        entries.push(EntrySummary::decode(r)?);
                    }
                }
                Ok(EntryPage {
                    entries,
                    total: total.max(0) as u64,
                })
            })
        })
        .await
    }

    /// One window of an entry's download history (see [`DownloadQuery`]),
    /// with the number of rows in all; `None` if the entry does not exist.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn downloads_page(
        &self,
        id: &EntryId,
        q: DownloadQuery,
    ) -> Result<Option<DownloadPage>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let exists = tx
                .query_row(
                    "SELECT 1 FROM entries e WHERE e.id = ?1
                       AND EXISTS (SELECT 1 FROM entries_data d WHERE d.id = e.id)",
                    [id.as_str()],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let count_sql = if q.unique {
                "SELECT count(DISTINCT coalesce(client_ip, '')) FROM downloads WHERE entry_id = ?1"
            } else {
                "SELECT count(*) FROM downloads WHERE entry_id = ?1"
            };
            let total: i64 = tx.query_row(count_sql, [id.as_str()], |r| r.get(0))?;
            let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
            let sql = if q.unique {
                UNIQUE_DOWNLOADS_PAGE_SQL
            } else {
                DOWNLOADS_PAGE_SQL
            };
            let rows = query_all(
                &tx,
                sql,
                rusqlite::params![id.as_str(), limit, offset],
                |r| Download::decode(r),
            )?;
            Ok(Some(DownloadPage {
                rows,
                total: total.max(0) as u64,
            }))
        })
        .await
    }

    /// Space used by the database and free on its filesystem.
    ///
    /// # Errors
    /// SQLite failures, or the filesystem cannot be queried.
    pub(crate) async fn usage(&self) -> Result<StorageUsage, StoreError> {
        let path = self.path().to_owned();
        self.read(move |conn| {
            let (stored_files, reclaimable) = sql_usage(conn)?;
            let fs = filesystem_usage(&path)?;
            let database = database_files_bytes(&path);
            Ok(StorageUsage {
                fs_total: fs.total,
                fs_used: fs.used,
                fs_free: fs.free,
                database,
                stored_files,
                reclaimable,
                local_disk: true,
            })
        })
        .await
    }

    /// The size of the database files and the space inside them that deleted
    /// files left (free pages). Cheap enough for every metrics scrape: two
    /// pragmas and three `stat` calls, no table scan.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn database_space(&self) -> Result<DatabaseSpace, StoreError> {
        let path = self.path().to_owned();
        self.read(move |conn| {
            Ok(DatabaseSpace {
                database: database_files_bytes(&path),
                reclaimable: free_page_bytes(conn)?,
            })
        })
        .await
    }
}

/// The sizes of the database file and its `-wal` and `-shm` files.
fn database_files_bytes(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            // A missing -wal or -shm file simply holds nothing.
            std::fs::metadata(&p).map_or(0, |m| m.len())
        })
        .sum()
}

/// Stored file bytes and the bytes of free pages, in one read transaction.
fn sql_usage(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let stored: i64 = tx.query_row(STORED_BYTES_SQL, [], |r| r.get(0))?;
    Ok((stored.max(0) as u64, free_page_bytes(&tx)?))
}

/// Bytes of free pages in the database file: space that deletes freed and
/// that incremental vacuum has not yet returned to the filesystem.
fn free_page_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let free_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(free_pages.max(0) as u64 * page_size.max(0) as u64)
}

struct FsUsage {
    total: u64,
    used: u64,
    free: u64,
}

/// `statvfs` of the directory holding the database. "Free" is what an
/// unprivileged process may still use (`f_bavail`), which is what decides
/// whether the next upload fits; "used" counts the blocks not free at all
/// (`f_bfree`), so used + free can be less than total by the root reserve.
#[cfg(unix)]
fn filesystem_usage(db: &Path) -> Result<FsUsage, StoreError> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let st = rustix::fs::statvfs(dir).map_err(|e| StoreError::Io(e.into()))?;
    // The block counts are in units of the fragment size; some filesystems
    // leave it zero, and then the block size is the unit.
    let unit = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    let (blocks, bfree, bavail) = (st.f_blocks, st.f_bfree, st.f_bavail);
    Ok(FsUsage {
        total: blocks.saturating_mul(unit),
        used: blocks.saturating_sub(bfree).saturating_mul(unit),
        free: bavail.saturating_mul(unit),
    })
}

#[cfg(not(unix))]
fn filesystem_usage(_db: &Path) -> Result<FsUsage, StoreError> {
    Err(StoreError::Io(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "filesystem usage is only available on Unix",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    fn new_db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, schema::NewDatabaseOptions { page_size: 4096 }).unwrap();
        conn
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let params: Vec<&dyn rusqlite::ToSql> = (0..n).map(|_| &"x" as _).collect();
        let rows = stmt
            .query_map(params.as_slice(), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Whether running `sql` ever reads a column (or the rowid) of `table`'s
    /// rows. SQLite's plan says `USING INDEX` rather than `USING COVERING
    /// INDEX` for the expression index even when it takes `length(chunk)` from
    /// the index and never seeks the table (the seek is deferred until a table
    /// column is needed, and none is), so the bytecode is the reliable witness.
    fn reads_table_rows(conn: &Connection, sql: &str, table: &str) -> bool {
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let params: Vec<&dyn rusqlite::ToSql> = (0..n).map(|_| &"x" as _).collect();
        let ops: Vec<(String, i64, i64)> = stmt
            .query_map(params.as_slice(), |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let cursors: Vec<i64> = ops
            .iter()
            .filter(|(op, _, p2)| op == "OpenRead" && *p2 == root)
            .map(|(_, p1, _)| *p1)
            .collect();
        ops.iter()
            .any(|(op, p1, _)| (op == "Column" || op == "Rowid") && cursors.contains(p1))
    }

    /// The reports stay index-only: no chunk row is read to size a file, no
    /// download row to count them, and the history is neither a table scan
    /// nor a separate sort.
    #[test]
    fn queries_use_the_indexes() {
        let conn = new_db();
        let p = plan(&conn, ENTRIES_SQL);
        assert!(p.contains("INDEX idx_entries_data_length"), "sizes: {p}");
        assert!(
            p.contains("COVERING INDEX idx_downloads_entry_id"),
            "counts: {p}"
        );
        assert!(!reads_table_rows(&conn, ENTRIES_SQL, "entries_data"), "{p}");
        let p = plan(&conn, STORED_BYTES_SQL);
        assert!(p.contains("INDEX idx_entries_data_length"), "stored: {p}");
        assert!(
            !reads_table_rows(&conn, STORED_BYTES_SQL, "entries_data"),
            "{p}"
        );
        let p = plan(&conn, DOWNLOADS_PAGE_SQL);
        assert!(
            p.contains("idx_downloads_entry_id (entry_id=?)"),
            "history: {p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "history needs a sort: {p}");
        // The check itself can fail: reading the blobs does read the rows.
        assert!(reads_table_rows(
            &conn,
            "SELECT sum(length(chunk || x'00')) FROM entries_data",
            "entries_data"
        ));
    }

    /// The default window reads the upload-time index and stops: no sort of
    /// the whole table.
    #[test]
    fn the_newest_window_reads_an_index() {
        let conn = new_db();
        let q = EntryQuery {
            limit: Some(100),
            ..EntryQuery::default()
        };
        for all_have_data in [false, true] {
            let p = plan(&conn, &page_sql(&q, all_have_data));
            assert!(p.contains("idx_entries_upload_time"), "{p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
        // The count of all files reads no entry's data.
        let p = plan(&conn, &count_sql(true, false));
        assert!(!p.contains("entries_data"), "{p}");
    }

    /// With an entry row without data, only the exact queries leave it out;
    /// the check at start-up tells the two cases apart.
    #[test]
    fn an_entry_without_data_keeps_the_exact_count() {
        let conn = new_db();
        conn.execute_batch(
            "INSERT INTO entries VALUES ('aaaaaaaaaa', 'a.txt', '', '2026-01-01T00:00:00Z', NULL, NULL, NULL);
             INSERT INTO entries_data VALUES ('aaaaaaaaaa', 0, x'01');",
        )
        .unwrap();
        assert!(every_entry_has_data(&conn).unwrap());
        let count = |sql: &str| -> i64 {
            let mut stmt = conn.prepare(sql).unwrap();
            if stmt.parameter_count() == 0 {
                stmt.query_row([], |r| r.get(0)).unwrap()
            } else {
                stmt.query_row(rusqlite::params!["", "%%"], |r| r.get(0))
                    .unwrap()
            }
        };
        assert_eq!(count(&count_sql(true, false)), 1);
        conn.execute_batch(
            "INSERT INTO entries VALUES ('bbbbbbbbbb', 'b.txt', '', '2026-01-02T00:00:00Z', NULL, NULL, NULL);",
        )
        .unwrap();
        assert!(!every_entry_has_data(&conn).unwrap());
        assert_eq!(count(&count_sql(false, false)), 1);
        assert_eq!(count(&count_sql(false, true)), 1);
    }

    /// Every window the SQL reads is the model's rule applied to the whole
    /// list (the scale-out store's way), for every order and a filter.
    #[test]
    fn windows_in_sql_follow_the_model() {
        let conn = new_db();
        for i in 0..40u32 {
            let id = format!("{:a>10}", format!("x{i}"));
            let name = format!("{}{i}.txt", ["Cat", "dog", "cAt_"][i as usize % 3]);
            // Some uploads share a second; some never expire.
            let uploaded = format!("2026-01-01T00:{:02}:00Z", i / 2);
            let expires = match i % 4 {
                0 => None,
                1 => Some("2999-12-31T00:00:00Z".to_owned()),
                _ => Some(format!("2030-01-{:02}T00:00:00Z", 1 + i % 5)),
            };
            conn.execute(
                "INSERT INTO entries VALUES (?1, ?2, '', ?3, ?4, NULL, NULL)",
                rusqlite::params![id, name, uploaded, expires],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO entries_data VALUES (?1, 0, zeroblob(?2))",
                rusqlite::params![id, 1 + (i * 7) % 11],
            )
            .unwrap();
        }
        let all = query_all(&conn, ENTRIES_SQL, [], |r| EntrySummary::decode(r)).unwrap();
        for sort in [
            EntrySort::Uploaded,
            EntrySort::Filename,
            EntrySort::Size,
            EntrySort::Expires,
        ] {
            for descending in [false, true] {
                for filter in ["", "cat", "_"] {
                    for (offset, limit) in [(0, Some(7)), (5, Some(100)), (38, None)] {
                        let q = EntryQuery {
                            sort,
                            descending,
                            filter: filter.to_owned(),
                            offset,
                            limit,
                        };
                        let pattern = like_pattern(filter);
                        let l = limit.map_or(-1, |l| l as i64);
                        for all_have_data in [false, true] {
                            let rowids = query_all(
                                &conn,
                                &page_sql(&q, all_have_data),
                                rusqlite::params![filter, pattern, l, offset as i64],
                                |r| Ok(r.get::<_, i64>(0)?),
                            )
                            .unwrap();
                            let got: Vec<String> = rowids
                                .iter()
                                .map(|r| {
                                    conn.query_row(
                                        "SELECT id FROM entries WHERE rowid = ?1",
                                        [r],
                                        |r| r.get(0),
                                    )
                                    .unwrap()
                                })
                                .collect();
                            let mut stmt = conn
                                .prepare(&count_sql(all_have_data, !filter.is_empty()))
                                .unwrap();
                            let total: i64 = if stmt.parameter_count() == 0 {
                                stmt.query_row([], |r| r.get(0)).unwrap()
                            } else {
                                stmt.query_row(rusqlite::params![filter, pattern], |r| r.get(0))
                                    .unwrap()
                            };
                            let want = q.apply(all.clone());
                            let want_ids: Vec<String> =
                                want.entries.iter().map(|e| e.id.clone()).collect();
                            assert_eq!(got, want_ids, "{q:?} {all_have_data}");
                            assert_eq!(total as u64, want.total, "{q:?} {all_have_data}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn entries_report_sizes_counts_and_order() {
        let conn = new_db();
        conn.execute_batch(
            "INSERT INTO entries VALUES
               ('aaaaaaaaaa', 'old.txt', 'text/plain', '2026-01-01T00:00:00Z', '2999-12-31T00:00:00Z', NULL, NULL),
               ('bbbbbbbbbb', 'new.txt', '', '2026-02-01T00:00:00Z', '2030-01-01T00:00:00Z', 'gggggggggggggggg', 'hi'),
               ('cccccccccc', 'nodata.txt', '', '2026-03-01T00:00:00Z', NULL, NULL, NULL);
             INSERT INTO entries_data VALUES
               ('aaaaaaaaaa', 0, x'0102030405'), ('aaaaaaaaaa', 1, x'06'),
               ('bbbbbbbbbb', 0, x'0102'),
               ('zzzzzzzzzz', 0, x'010203');
             INSERT INTO downloads VALUES
               ('aaaaaaaaaa', '2026-01-02T00:00:00Z', '1.2.3.4', 'curl/8'),
               ('aaaaaaaaaa', '2026-01-03T00:00:00Z', NULL, NULL);",
        )
        .unwrap();
        let mut stmt = conn.prepare(ENTRIES_SQL).unwrap();
        let got: Vec<(String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(7)?, r.get(8)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            vec![
                ("bbbbbbbbbb".to_owned(), 2, 0),
                ("aaaaaaaaaa".to_owned(), 6, 2)
            ]
        );
        assert_eq!(sql_usage(&conn).unwrap().0, 8);
    }

    #[test]
    fn filesystem_numbers_are_consistent() {
        let dir = std::env::temp_dir();
        let fs = filesystem_usage(&dir.join("store.db")).unwrap();
        assert!(fs.total > 0);
        assert!(fs.used <= fs.total);
        assert!(fs.free <= fs.total);
        assert!(filesystem_usage(Path::new("relative.db")).is_ok());
    }
}
