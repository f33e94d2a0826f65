//! PostgreSQL tables of the scale-out store, and their migrations.
//!
//! The tables mirror the SQLite ones (same names, same columns, times as the
//! same RFC 3339 text), minus `entries_data`: file bytes live in object
//! storage, and `entries` gains the object's size and part size. The tables
//! that only a shared database needs (instances, slots, reservations, pending
//! uploads, the deletion queue, what wrote here) are described where they
//! are created.
//!
//! Migrations run in one transaction under an advisory lock, so instances
//! that start together upgrade the schema once.

use super::StoreError;

/// Our migrations, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r"
CREATE TABLE guest_links (
    id TEXT PRIMARY KEY,
    label TEXT,
    max_file_bytes BIGINT,
    max_file_uploads BIGINT,
    creation_time TEXT NOT NULL,
    url_expiration_time TEXT,
    file_expiration_time TEXT,
    is_disabled BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE entries (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    upload_time TEXT NOT NULL,
    expiration_time TEXT,
    guest_link_id TEXT,
    note TEXT,
    -- The object's length in bytes.
    size BIGINT NOT NULL CHECK (size >= 0),
    -- Size of every multipart part but the last (informational).
    part_size BIGINT NOT NULL,
    -- Hex SHA-256 of the bytes, when known (set by the migration from SQLite).
    sha256 TEXT,
    -- Insertion order, for stable sorting of entries uploaded in one second.
    seq BIGSERIAL
);
CREATE INDEX idx_entries_guest_link_id ON entries (guest_link_id);
CREATE TABLE downloads (
    seq BIGSERIAL PRIMARY KEY,
    entry_id TEXT NOT NULL,
    download_timestamp TEXT NOT NULL,
    client_ip TEXT,
    user_agent TEXT
);
CREATE INDEX idx_downloads_entry_id ON downloads (entry_id, download_timestamp);
CREATE TABLE settings (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    default_expiration_in_days BIGINT
);
INSERT INTO settings (id, default_expiration_in_days) VALUES (1, 30);
CREATE TABLE picoshare_sessions (
    token_sha256 TEXT PRIMARY KEY,
    created_time TEXT NOT NULL,
    expiration_time TEXT NOT NULL
);
-- Resumable uploads. Their bytes go into one multipart upload
-- (`multipart_id`) whose parts are listed in picoshare_tus_parts; bytes after
-- the last full part wait in `tail`. `chunk_size` is the part size. A writing
-- session holds a lease (`lease_owner`, until `lease_until`) so that two
-- instances never write one upload at once.
CREATE TABLE picoshare_tus_uploads (
    id TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL UNIQUE,
    guest_link_id TEXT,
    upload_length BIGINT NOT NULL CHECK (upload_length > 0),
    upload_offset BIGINT NOT NULL DEFAULT 0
        CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
    tail BYTEA,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    note TEXT,
    expiration_time TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_time TEXT NOT NULL,
    expires_time TEXT NOT NULL,
    completed BIGINT NOT NULL DEFAULT 0,
    multipart_id TEXT,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ
);
CREATE INDEX idx_tus_uploads_guest_link
    ON picoshare_tus_uploads (guest_link_id) WHERE completed = 0;
CREATE TABLE picoshare_tus_parts (
    upload_id TEXT NOT NULL,
    part_number BIGINT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE picoshare_api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_time TEXT NOT NULL,
    last_used_time TEXT,
    seq BIGSERIAL
);
-- `reserved` is unused here: downloads in progress are rows of
-- picoshare_download_reservations, per instance.
CREATE TABLE picoshare_entry_limits (
    entry_id TEXT PRIMARY KEY,
    max_downloads BIGINT,
    downloads_used BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT
);
CREATE TABLE picoshare_server_keys (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE picoshare_shares (
    id TEXT PRIMARY KEY,
    title TEXT,
    created_time TEXT NOT NULL,
    note TEXT
);
CREATE TABLE picoshare_share_entries (
    share_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    path TEXT,
    PRIMARY KEY (share_id, entry_id)
);
CREATE INDEX idx_share_entries_entry ON picoshare_share_entries (entry_id);
-- Running server processes and their last sign of life.
CREATE TABLE picoshare_instances (
    id TEXT PRIMARY KEY,
    started TIMESTAMPTZ NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL
);
-- Guest-link upload slots held by uploads in progress.
CREATE TABLE picoshare_guest_slots (
    id TEXT PRIMARY KEY,
    guest_link_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_guest_slots_link ON picoshare_guest_slots (guest_link_id);
-- Full downloads of limited entries in progress, per instance.
CREATE TABLE picoshare_download_reservations (
    entry_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (entry_id, instance_id)
);
-- Uploads whose object is being written (not resumable ones).
CREATE TABLE picoshare_pending_uploads (
    entry_id TEXT PRIMARY KEY,
    multipart_id TEXT,
    instance_id TEXT NOT NULL,
    started TIMESTAMPTZ NOT NULL
);
-- Objects to delete (multipart uploads to abort when `multipart_id` is set).
CREATE TABLE picoshare_deleted_objects (
    key TEXT NOT NULL,
    multipart_id TEXT NOT NULL DEFAULT '',
    since TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key, multipart_id)
);
",
    ),
    (
        2,
        // Sessions gain a public ID (to list and revoke them), the tag of
        // the passphrase they were opened under (a new passphrase ends
        // them), and the address and browser they logged in from.
        r"
ALTER TABLE picoshare_sessions ADD COLUMN id TEXT;
ALTER TABLE picoshare_sessions ADD COLUMN secret_tag TEXT;
ALTER TABLE picoshare_sessions ADD COLUMN client_ip TEXT;
ALTER TABLE picoshare_sessions ADD COLUMN user_agent TEXT;
CREATE UNIQUE INDEX idx_sessions_id ON picoshare_sessions (id);
",
    ),
    (
        3,
        r"
-- Instance leases (see store/remote/lease.rs). An instance holds its slots
-- and reservations under its registration: taking its lease back is
-- deleting its row, which deletes them. (The default only serves servers of
-- the previous version still running during an upgrade.)
ALTER TABLE picoshare_instances
    ADD COLUMN lease_until TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp() + interval '30 seconds';
DELETE FROM picoshare_guest_slots s
    WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i WHERE i.id = s.instance_id);
DELETE FROM picoshare_download_reservations r
    WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i WHERE i.id = r.instance_id);
ALTER TABLE picoshare_guest_slots ADD CONSTRAINT picoshare_guest_slots_instance_fk
    FOREIGN KEY (instance_id) REFERENCES picoshare_instances (id) ON DELETE CASCADE;
CREATE INDEX idx_guest_slots_instance ON picoshare_guest_slots (instance_id);
ALTER TABLE picoshare_download_reservations ADD CONSTRAINT picoshare_download_reservations_instance_fk
    FOREIGN KEY (instance_id) REFERENCES picoshare_instances (id) ON DELETE CASCADE;
CREATE INDEX idx_download_reservations_instance ON picoshare_download_reservations (instance_id);
-- What wrote here: the SQLite database the last --copy-to-remote copied
-- (and when), and when a server first used this store (NULL while only
-- copies wrote here; a store that already held data counts as used).
CREATE TABLE picoshare_store_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    copied_from TEXT,
    copied TIMESTAMPTZ,
    served_since TIMESTAMPTZ
);
INSERT INTO picoshare_store_state (id, served_since)
    SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM entries) OR EXISTS (SELECT 1 FROM guest_links)
        OR EXISTS (SELECT 1 FROM picoshare_api_tokens) OR EXISTS (SELECT 1 FROM picoshare_sessions)
        OR EXISTS (SELECT 1 FROM picoshare_shares) THEN now() END;
",
    ),
    (
        4,
        r"
-- Replacing a file's content (store/remote/replace.rs). The new bytes are
-- uploaded to an object of their own, `entries/{content_id}`; NULL means the
-- entry's first content, `entries/{id}`.
ALTER TABLE entries ADD COLUMN content_id TEXT;
-- A queued object is not deleted before `not_before` (NULL: at once): a
-- replaced content waits until no instance streams it any more.
ALTER TABLE picoshare_deleted_objects ADD COLUMN not_before TIMESTAMPTZ;
-- One row per replacement, as in SQLite; `old_content_id` names the object
-- the old content was in (`entries/{old_content_id}`), kept for the record.
CREATE TABLE picoshare_replacements (
    entry_id TEXT NOT NULL,
    replaced_time TEXT NOT NULL,
    old_upload_time TEXT NOT NULL,
    old_filename TEXT NOT NULL,
    old_size BIGINT NOT NULL,
    new_filename TEXT NOT NULL,
    new_size BIGINT NOT NULL,
    old_content_id TEXT,
    PRIMARY KEY (entry_id, old_upload_time)
);
",
    ),
    (
        5,
        r"
-- Notifications (store/remote/hooks.rs), the same tables as SQLite's
-- (sqlite/schema.rs, migration 11): destinations, the outbox (one row per
-- event and destination; an instance claims rows with FOR UPDATE SKIP LOCKED
-- and moves their next try ahead while it sends), the files whose
-- 'expiring soon' event was written, and the files already downloaded.
CREATE TABLE picoshare_hook_destinations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy')),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    first_download_only BIGINT NOT NULL DEFAULT 0,
    entry_ids TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_time TEXT NOT NULL,
    last_success_time TEXT,
    last_error TEXT,
    last_error_time TEXT
);
CREATE TABLE picoshare_hook_outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_time TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_try_ms BIGINT NOT NULL,
    delivered_time TEXT,
    UNIQUE (event_id, destination_id)
);
CREATE INDEX idx_hook_outbox_due
    ON picoshare_hook_outbox (next_try_ms) WHERE delivered_time IS NULL;
CREATE TABLE picoshare_hook_expiry_notices (
    entry_id TEXT PRIMARY KEY,
    expiration_time TEXT NOT NULL
);
CREATE TABLE picoshare_hook_downloaded (
    entry_id TEXT PRIMARY KEY
);
",
    ),
    (
        6,
        r"
-- E-mail notification destinations (SQLite's migration 12): kind 'email'.
ALTER TABLE picoshare_hook_destinations
    DROP CONSTRAINT picoshare_hook_destinations_kind_check;
ALTER TABLE picoshare_hook_destinations
    ADD CONSTRAINT picoshare_hook_destinations_kind_check
    CHECK (kind IN ('webhook', 'ntfy', 'email'));
",
    ),
];

/// Creates the schema if needed and applies the migrations not yet applied.
///
/// # Errors
/// [`StoreError::Schema`] for a database newer than this server; PostgreSQL failures.
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Object,
    schema: Option<&str>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // One instance at a time: the others wait here, then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(7201590414)", &[])
        .await?;
    if let Some(schema) = schema {
        // The name was checked when the pool was built.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS picoshare_migrations (
            version BIGINT PRIMARY KEY,
            applied TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM picoshare_migrations",
            &[],
        )
        .await?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(StoreError::Schema(format!(
            "the PostgreSQL database has schema version {current}, newer than this server's {latest}; upgrade the server"
        )));
    }
    for (version, sql) in MIGRATIONS {
        if *version > current {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO picoshare_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
    }
    tx.commit().await?;
    Ok(())
}
