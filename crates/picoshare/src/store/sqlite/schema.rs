//! Database schema: creation of new databases and upgrades of existing ones.
//!
//! PicoShare databases carry `PRAGMA user_version` = 15 after the original's
//! migrations 001–015. New databases get exactly that logical schema, so a
//! database is always one format whichever server created it. Our own additions
//! are *additive* (new tables and indexes, and new columns of our own tables;
//! never a changed column, nor one in the original's tables) and recorded in
//! `picoshare_rs_migrations`, leaving `user_version` at 15 so the original server
//! can still open the file. One exception, in a table of our own that the
//! original never reads: migration 12 copies `picoshare_hook_destinations`
//! into a new table whose `kind` also allows `email` (SQLite cannot change a
//! `CHECK` in place); its rows and columns stay as they were.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// The original's schema version that this server speaks.
const USER_VERSION: i64 = 15;

/// The original's schema after migration 015 (STRICT tables).
const SCHEMA_V15: &str = r#"
CREATE TABLE "guest_links" (
    id TEXT PRIMARY KEY,
    label TEXT CHECK (
        label IS NULL OR length(label) <= 200
    ),
    max_file_bytes INTEGER CHECK (
        max_file_bytes IS NULL OR max_file_bytes > 0
    ),
    max_file_uploads INTEGER CHECK (
        max_file_uploads IS NULL OR max_file_uploads > 0
    ),
    creation_time TEXT NOT NULL CHECK (
        datetime(creation_time) IS NOT NULL
        AND datetime(creation_time) >= datetime('2022-02-20')
    ),
    url_expiration_time TEXT CHECK (
        url_expiration_time IS NULL OR (
            datetime(url_expiration_time) IS NOT NULL
            AND datetime(url_expiration_time) >= datetime('2022-02-20')
        )
    ),
    file_expiration_time TEXT,
    is_disabled INTEGER NOT NULL CHECK (is_disabled IN (0, 1)) DEFAULT 0
) STRICT;
CREATE TABLE "entries" (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    upload_time TEXT NOT NULL CHECK (
        datetime(upload_time) IS NOT NULL
        AND datetime(upload_time) >= datetime('2022-02-20')
    ),
    expiration_time TEXT CHECK (
        expiration_time IS NULL OR (
            datetime(expiration_time) IS NOT NULL
            AND datetime(expiration_time) >= datetime('2022-02-20')
        )
    ),
    guest_link_id TEXT,
    note TEXT
) STRICT;
CREATE TABLE "entries_data" (
    id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL CHECK (chunk_index >= 0),
    chunk BLOB NOT NULL,
    PRIMARY KEY (id, chunk_index)
) STRICT;
CREATE TABLE "downloads" (
    entry_id TEXT NOT NULL,
    download_timestamp TEXT NOT NULL CHECK (
        datetime(download_timestamp) IS NOT NULL
        AND datetime(download_timestamp) >= datetime('2022-02-20')
    ),
    client_ip TEXT,
    user_agent TEXT,
    FOREIGN KEY (entry_id) REFERENCES "entries" (id)
) STRICT;
CREATE TABLE "settings" (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    default_expiration_in_days INTEGER CHECK (
        default_expiration_in_days IS NULL
        OR default_expiration_in_days >= 0
    )
) STRICT;
CREATE INDEX idx_entries_guest_link_id ON entries (guest_link_id);
CREATE INDEX idx_entries_data_length ON entries_data (id, length(chunk));
INSERT INTO settings (id, default_expiration_in_days) VALUES (1, 30);
"#;

/// Our additive migrations, applied in order, each once.
const ADDITIVE: &[(i64, &str)] = &[
    (
        1,
        // Download history is looked up per entry; the original scans the table.
        "CREATE INDEX IF NOT EXISTS idx_downloads_entry_id ON downloads (entry_id, download_timestamp);",
    ),
    (
        2,
        // Server-side login sessions. Only a SHA-256 of each token is stored, so a
        // copy of the database does not hand out valid cookies.
        "CREATE TABLE IF NOT EXISTS picoshare_sessions (
            token_sha256 TEXT PRIMARY KEY,
            created_time TEXT NOT NULL,
            expiration_time TEXT NOT NULL
        ) STRICT;",
    ),
    (
        3,
        // Resumable (tus) uploads. Their full chunks live in `entries_data` under
        // `entry_id` like any upload's; the bytes after the last full chunk wait
        // in `tail` (always `upload_offset % chunk_size` bytes), because every
        // chunk of an entry but the last must have the same size. The entry row
        // is written, and `completed` set, in the transaction that stores the
        // last byte. Unfinished rows keep their chunks from garbage collection
        // until `expires_time`.
        "CREATE TABLE IF NOT EXISTS picoshare_tus_uploads (
            id TEXT PRIMARY KEY,
            entry_id TEXT NOT NULL UNIQUE,
            guest_link_id TEXT,
            upload_length INTEGER NOT NULL CHECK (upload_length > 0),
            upload_offset INTEGER NOT NULL DEFAULT 0
                CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
            chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
            tail BLOB,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            note TEXT,
            expiration_time TEXT NOT NULL,
            metadata TEXT NOT NULL,
            created_time TEXT NOT NULL,
            expires_time TEXT NOT NULL,
            completed INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1))
        ) STRICT;
        CREATE INDEX IF NOT EXISTS idx_tus_uploads_guest_link
            ON picoshare_tus_uploads (guest_link_id) WHERE completed = 0;",
    ),
    (
        4,
        // API tokens for uploads from scripts (`Authorization: Bearer`). Only a
        // SHA-256 of each token is stored, with a short prefix of it that
        // identifies the token in the list; revoking a token deletes its row.
        "CREATE TABLE IF NOT EXISTS picoshare_api_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            token_sha256 TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_time TEXT NOT NULL,
            last_used_time TEXT
        ) STRICT;",
    ),
    (
        5,
        // Download limits and passwords per entry (a row only for entries that
        // have one), and keys the server generates once (the key that signs
        // the cookies of password-protected files). `reserved` counts full
        // downloads in progress; it is reset at start-up. `password_hash` is an
        // argon2id PHC string, never the password.
        "CREATE TABLE IF NOT EXISTS picoshare_entry_limits (
            entry_id TEXT PRIMARY KEY,
            max_downloads INTEGER CHECK (max_downloads IS NULL OR max_downloads > 0),
            downloads_used INTEGER NOT NULL DEFAULT 0 CHECK (downloads_used >= 0),
            reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            password_hash TEXT
        ) STRICT;
        CREATE TABLE IF NOT EXISTS picoshare_server_keys (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) STRICT;",
    ),
    (
        6,
        // Shares: several existing entries behind one link (`/s/{id}`), in
        // order, each with an optional relative path (from a folder upload)
        // used as its name inside the share's ZIP. A share owns no data: its
        // entries stay ordinary entries. Rows of entries that are gone are
        // deleted with the entry and by garbage collection, and a share left
        // without entries with them.
        "CREATE TABLE IF NOT EXISTS picoshare_shares (
            id TEXT PRIMARY KEY,
            title TEXT,
            created_time TEXT NOT NULL,
            note TEXT
        ) STRICT;
        CREATE TABLE IF NOT EXISTS picoshare_share_entries (
            share_id TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            position INTEGER NOT NULL CHECK (position >= 0),
            path TEXT,
            PRIMARY KEY (share_id, entry_id)
        ) STRICT;
        CREATE INDEX IF NOT EXISTS idx_share_entries_entry
            ON picoshare_share_entries (entry_id);",
    ),
    (
        7,
        // Earlier versions recorded IPv4 clients as the dual-stack listener
        // reported them, `::ffff:192.0.2.9`; the original records
        // `192.0.2.9`. The same address, written the original's way, so
        // that one client is one address here and after going back.
        "UPDATE downloads SET client_ip = substr(client_ip, 8)
            WHERE client_ip LIKE '::ffff:%'
              AND substr(client_ip, 8) GLOB '[0-9]*.[0-9]*.[0-9]*.[0-9]*'
              AND substr(client_ip, 8) NOT GLOB '*[^0-9.]*';",
    ),
    (
        8,
        // Sessions gain a public ID (to list and revoke them), the tag of
        // the passphrase they were opened under (an argon2id hash: a new
        // passphrase ends them), and the address and browser they logged in
        // from. Rows from before have no tag and are ended at start-up.
        "ALTER TABLE picoshare_sessions ADD COLUMN id TEXT;
        ALTER TABLE picoshare_sessions ADD COLUMN secret_tag TEXT;
        ALTER TABLE picoshare_sessions ADD COLUMN client_ip TEXT;
        ALTER TABLE picoshare_sessions ADD COLUMN user_agent TEXT;
        CREATE UNIQUE INDEX IF NOT EXISTS idx_sessions_id ON picoshare_sessions (id);",
    ),
    (
        9,
        // The file list is read a page at a time, newest first by default
        // (`history.rs`): with this index a page of 100,000 files is read
        // without sorting them all. The other orders sort (SQLite keeps only
        // the window's rows while it does): an index each would cost every
        // upload one more random page written to the WAL.
        "CREATE INDEX IF NOT EXISTS idx_entries_upload_time ON entries (upload_time);",
    ),
    (
        10,
        // Replacements of a file's content (`PUT /api/entry/{id}/content`):
        // one row per switch, for the download history, and the id the old
        // chunks were moved to (`old_content_id`) while a download that
        // started before the switch may still read them; NULL once they are
        // freed. A download finds its version by the upload time it looked up
        // (`old_upload_time`; replacing always moves `entries.upload_time`
        // forward).
        "CREATE TABLE IF NOT EXISTS picoshare_replacements (
            entry_id TEXT NOT NULL,
            replaced_time TEXT NOT NULL,
            old_upload_time TEXT NOT NULL,
            old_filename TEXT NOT NULL,
            old_size INTEGER NOT NULL,
            new_filename TEXT NOT NULL,
            new_size INTEGER NOT NULL,
            old_content_id TEXT,
            PRIMARY KEY (entry_id, old_upload_time)
        ) STRICT;
        CREATE INDEX IF NOT EXISTS idx_replacements_content
            ON picoshare_replacements (old_content_id) WHERE old_content_id IS NOT NULL;",
    ),
    (
        11,
        // Notifications (`hooks.rs`): where events go, the outbox of events
        // waiting for delivery (one row per event and destination; an event
        // is written in the transaction of the change it reports, and marked
        // delivered, never sent again, once its receiver answered 2xx), and
        // the files whose "expiring soon" event was written (once per
        // expiration time), and the files that were downloaded already (for
        // "only the first download").
        "CREATE TABLE IF NOT EXISTS picoshare_hook_destinations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy')),
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            first_download_only INTEGER NOT NULL DEFAULT 0,
            entry_ids TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_time TEXT NOT NULL,
            last_success_time TEXT,
            last_error TEXT,
            last_error_time TEXT
        ) STRICT;
        CREATE TABLE IF NOT EXISTS picoshare_hook_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL,
            destination_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body TEXT NOT NULL,
            created_time TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_ms INTEGER NOT NULL,
            delivered_time TEXT,
            UNIQUE (event_id, destination_id)
        ) STRICT;
        CREATE INDEX IF NOT EXISTS idx_hook_outbox_due
            ON picoshare_hook_outbox (next_try_ms) WHERE delivered_time IS NULL;
        CREATE TABLE IF NOT EXISTS picoshare_hook_expiry_notices (
            entry_id TEXT PRIMARY KEY,
            expiration_time TEXT NOT NULL
        ) STRICT;
        CREATE TABLE IF NOT EXISTS picoshare_hook_downloaded (
            entry_id TEXT PRIMARY KEY
        ) STRICT;",
    ),
    (
        12,
        // E-mail notification destinations (`kind` 'email', the addresses
        // as a `mailto:` URL in `url`): the table again with the wider
        // CHECK, the rows copied, in the migration's transaction.
        "CREATE TABLE picoshare_hook_destinations_new (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy', 'email')),
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            first_download_only INTEGER NOT NULL DEFAULT 0,
            entry_ids TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_time TEXT NOT NULL,
            last_success_time TEXT,
            last_error TEXT,
            last_error_time TEXT
        ) STRICT;
        INSERT INTO picoshare_hook_destinations_new (id, name, kind, url, secret, events,
                first_download_only, entry_ids, enabled, created_time, last_success_time,
                last_error, last_error_time)
            SELECT id, name, kind, url, secret, events, first_download_only, entry_ids,
                enabled, created_time, last_success_time, last_error, last_error_time
            FROM picoshare_hook_destinations;
        DROP TABLE picoshare_hook_destinations;
        ALTER TABLE picoshare_hook_destinations_new RENAME TO picoshare_hook_destinations;",
    ),
];

/// Settings that only take effect when a database file is created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewDatabaseOptions {
    /// SQLite page size in bytes.
    pub(crate) page_size: u32,
}

/// Brings the database behind `conn` to the current schema.
///
/// # Errors
/// [`StoreError::Schema`] for a database this server cannot use, or any SQLite error.
pub(crate) fn migrate(conn: &mut Connection, new_db: NewDatabaseOptions) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if version == 0 && tables == 0 {
        create_new(conn, new_db)?;
    } else if version < USER_VERSION {
        return Err(StoreError::Schema(format!(
            "the database has schema version {version}, older than PicoShare's version {USER_VERSION}; \
             start a PicoShare 1.4 or later (Go) server on it once to upgrade it, then try again"
        )));
    } else if version > USER_VERSION {
        tracing::warn!(
            version,
            "database schema is newer than this server knows ({USER_VERSION}); continuing, \
             but features of the newer schema are ignored"
        );
    }
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS picoshare_rs_migrations (
            version INTEGER PRIMARY KEY,
            applied_time TEXT NOT NULL
        ) STRICT;",
    )?;
    for (v, sql) in ADDITIVE {
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM picoshare_rs_migrations WHERE version = ?1",
                [v],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO picoshare_rs_migrations (version, applied_time) VALUES (?1, ?2)",
                params![v, crate::validate::db_time(chrono::Utc::now())],
            )?;
            tracing::info!(version = v, "applied additive migration");
        }
    }
    tx.commit()?;
    Ok(())
}

fn create_new(conn: &mut Connection, opts: NewDatabaseOptions) -> Result<(), StoreError> {
    // Both pragmas only take effect before the first table exists.
    conn.execute_batch(&format!(
        "PRAGMA page_size = {}; PRAGMA auto_vacuum = INCREMENTAL;",
        opts.page_size
    ))?;
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA_V15)?;
    tx.pragma_update(None, "user_version", USER_VERSION)?;
    tx.commit()?;
    tracing::info!(page_size = opts.page_size, "created a new database");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: NewDatabaseOptions = NewDatabaseOptions { page_size: 4096 };

    fn insert(conn: &Connection, id: &str, kind: &str) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO picoshare_hook_destinations (id, name, kind, url, secret, events,
                first_download_only, entry_ids, enabled, created_time, last_success_time,
                last_error, last_error_time)
             VALUES (?1, 'n', ?2, 'https://example.com/h', 's', 'download', 1, 'abcdefghij', 0,
                '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z', 'e', '2026-12-03T00:00:00Z')",
            params![id, kind],
        )
    }

    #[test]
    fn migration_12_keeps_the_destinations_and_allows_email() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, OPTIONS).unwrap();
        // The table as migration 11 made it, with a destination, as in a
        // database of before migration 12.
        conn.execute_batch(
            "DROP TABLE picoshare_hook_destinations;
             DELETE FROM picoshare_rs_migrations WHERE version = 12;",
        )
        .unwrap();
        let v11 = ADDITIVE.iter().find(|(v, _)| *v == 11).unwrap().1;
        conn.execute_batch(v11).unwrap();
        insert(&conn, "a", "webhook").unwrap();
        assert!(insert(&conn, "b", "email").is_err(), "not before");

        migrate(&mut conn, OPTIONS).unwrap();
        let row: Vec<String> = conn
            .query_row(
                "SELECT id, name, kind, url, secret, events, first_download_only, entry_ids,
                    enabled, created_time, last_success_time, last_error, last_error_time
                 FROM picoshare_hook_destinations",
                [],
                |r| {
                    (0..13)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect()
                },
            )
            .unwrap();
        assert_eq!(
            row.join(" "),
            "Text(\"a\") Text(\"n\") Text(\"webhook\") Text(\"https://example.com/h\") \
             Text(\"s\") Text(\"download\") Integer(1) Text(\"abcdefghij\") Integer(0) \
             Text(\"2026-12-01T00:00:00Z\") Text(\"2026-12-02T00:00:00Z\") Text(\"e\") \
             Text(\"2026-12-03T00:00:00Z\")"
        );
        insert(&conn, "b", "email").unwrap();
        assert!(
            insert(&conn, "c", "sms").is_err(),
            "the CHECK is still there"
        );
        // Applied once: a later start changes nothing.
        migrate(&mut conn, OPTIONS).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM picoshare_hook_destinations",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
    }
}
