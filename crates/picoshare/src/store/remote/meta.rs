//! Metadata operations of the scale-out store. Each mirrors its SQLite
//! counterpart (same results, same order) with PostgreSQL queries; where
//! several instances could race, the query locks the row it counts against.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::RngCore;
use tokio_postgres::Row;

use super::{RemoteStore, INSTANCE_TIMEOUT_SQL};
use crate::ids::{ApiTokenId, EntryId, GuestLinkId, ShareId};
use crate::store::api_tokens::{ApiToken, NewApiToken};
use crate::store::guest_links::{FileLifetime, GuestLink, NewGuestLink};
use crate::store::history::{DatabaseSpace, Download, EntrySummary, StorageUsage};
use crate::store::limits::{Change, EntryLimits, NewLimits, Reservation};
use crate::store::settings::{FileLifetime as DefaultLifetime, Settings};
use crate::store::shares::{CreateOutcome, NewShare, Share, ShareFile};
use crate::store::{
    db_time_to_utc, expiration_from_db, expiration_to_db, DownloadRecord, Entry, StoreError,
};
use crate::validate::db_time;

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Runs `job` on a task of its own; failures are logged (fire-and-forget writes).
fn detached<F>(what: &'static str, job: F)
where
    F: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let run = async move {
        if let Err(e) = job.await {
            tracing::warn!(error = %e, "could not {what}");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(run);
        }
        Err(_) => tracing::warn!("no runtime to {what}"),
    }
}

const ENTRY_COLUMNS: &str =
    "id, filename, content_type, upload_time, expiration_time, note, guest_link_id, size, part_size";

fn entry_from_row(r: &Row, at: usize) -> Result<Entry, StoreError> {
    let id: String = r.get(at);
    let id =
        EntryId::parse(&id).map_err(|e| StoreError::Corrupt(format!("entry ID {id:?}: {e}")))?;
    Ok(Entry {
        id,
        filename: r.get(at + 1),
        content_type: r.get(at + 2),
        upload_time: db_time_to_utc(&r.get::<_, String>(at + 3)),
        expiration: expiration_from_db(r.get(at + 4)),
        note: r.get(at + 5),
        guest_link_id: r.get::<_, Option<String>>(at + 6).filter(|g| !g.is_empty()),
        size: unsigned(r.get(at + 7)),
        chunk_size: unsigned(r.get(at + 8)).max(1),
    })
}

/// Deletes every row of an entry (not its object), in the caller's transaction:
/// the entry, its download history, limits and reservations, and its places
/// in shares (with a share left empty).
pub(super) async fn delete_entry_rows(
    tx: &tokio_postgres::Transaction<'_>,
    id: &str,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM downloads WHERE entry_id = $1", &[&id])
        .await?;
    tx.execute("DELETE FROM entries WHERE id = $1", &[&id])
        .await?;
    tx.execute(
        "DELETE FROM picoshare_entry_limits WHERE entry_id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "DELETE FROM picoshare_download_reservations WHERE entry_id = $1",
        &[&id],
    )
    .await?;
    let shares: Vec<String> = tx
        .query(
            "SELECT DISTINCT share_id FROM picoshare_share_entries WHERE entry_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if shares.is_empty() {
        return Ok(());
    }
    // The shares are locked (always before their entry rows, in ID order)
    // before the entry leaves them: otherwise two transactions deleting a
    // share's last two entries would each still see the other's entry, and
    // neither would delete the share left empty.
    tx.execute(
        "SELECT 1 FROM picoshare_shares WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&shares],
    )
    .await?;
    tx.execute(
        "DELETE FROM picoshare_share_entries WHERE entry_id = $1",
        &[&id],
    )
    .await?;
    for share in &shares {
        tx.execute(
            "DELETE FROM picoshare_shares WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM picoshare_share_entries WHERE share_id = $1)",
            &[share],
        )
        .await?;
    }
    Ok(())
}

/// Stores an entry's download limit and password (replacing any).
pub(super) async fn insert_limits(
    tx: &tokio_postgres::Transaction<'_>,
    entry_id: &str,
    l: &NewLimits,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO picoshare_entry_limits
            (entry_id, max_downloads, downloads_used, reserved, password_hash)
         VALUES ($1, $2, 0, 0, $3)
         ON CONFLICT (entry_id) DO UPDATE SET max_downloads = excluded.max_downloads,
            downloads_used = 0, reserved = 0, password_hash = excluded.password_hash",
        &[&entry_id, &l.max_downloads.map(big), &l.password_hash],
    )
    .await?;
    Ok(())
}

/// Downloads in progress of an entry on live instances.
fn live_reservations_sql(entry: &str) -> String {
    format!(
        "(SELECT coalesce(sum(r.count), 0)::BIGINT FROM picoshare_download_reservations r
            JOIN picoshare_instances i ON i.id = r.instance_id
          WHERE r.entry_id = {entry} AND i.heartbeat > now() - {INSTANCE_TIMEOUT_SQL})"
    )
}

fn limits_from_row(r: &Row) -> EntryLimits {
    EntryLimits {
        max_downloads: r.get::<_, Option<i64>>(0).map(|m| unsigned(m.max(1))),
        downloads_used: unsigned(r.get(1)),
        reserved: unsigned(r.get(2)),
        password_hash: r.get(3),
    }
}

const SELECT_GUEST_LINK: &str = "SELECT g.id, g.label, g.max_file_bytes, g.max_file_uploads,
        g.creation_time, g.url_expiration_time, g.file_expiration_time, g.is_disabled,
        (SELECT count(*) FROM entries e WHERE e.guest_link_id = g.id)
            + (SELECT count(*) FROM picoshare_tus_uploads t
               WHERE t.guest_link_id = g.id AND t.completed = 0)
     FROM guest_links g";

fn guest_link_from_row(r: &Row) -> Result<GuestLink, StoreError> {
    let id: String = r.get(0);
    let id = GuestLinkId::parse(&id)
        .map_err(|e| StoreError::Corrupt(format!("guest link {id:?}: {e}")))?;
    let lifetime: Option<String> = r.get(6);
    let file_lifetime = match lifetime.as_deref().map(FileLifetime::parse_go) {
        None => FileLifetime::INFINITE,
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            return Err(StoreError::Corrupt(format!(
                "guest link {id}: file lifetime: {e}"
            )))
        }
    };
    let limit = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0);
    Ok(GuestLink {
        id,
        label: r.get::<_, Option<String>>(1).unwrap_or_default(),
        max_file_bytes: limit(r.get(2)),
        max_file_uploads: limit(r.get(3)),
        creation_time: db_time_to_utc(&r.get::<_, String>(4)),
        url_expiration: expiration_from_db(r.get(5)),
        file_lifetime,
        is_disabled: r.get::<_, i64>(7) != 0,
        files_uploaded: unsigned(r.get(8)),
    })
}

fn token_from_row(r: &Row) -> Result<ApiToken, StoreError> {
    let id: String = r.get(0);
    let Ok(id) = ApiTokenId::parse(&id) else {
        return Err(StoreError::Corrupt(format!("API token ID {id:?}")));
    };
    Ok(ApiToken {
        id,
        name: r.get(1),
        prefix: r.get(2),
        created: db_time_to_utc(&r.get::<_, String>(3)),
        last_used: r.get::<_, Option<String>>(4).as_deref().map(db_time_to_utc),
    })
}

impl RemoteStore {
    /// Looks up an entry's metadata and size.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE id = $1"),
                &[&id.as_str()],
            )
            .await?;
        row.map(|r| entry_from_row(&r, 0)).transpose()
    }

    /// Changes an entry's filename, expiration and note. Returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn update_entry(
        &self,
        id: &EntryId,
        filename: String,
        expiration: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        let n = self
            .pg()
            .await?
            .execute(
                "UPDATE entries SET filename = $2, expiration_time = $3, note = $4 WHERE id = $1",
                &[
                    &id.as_str(),
                    &filename,
                    &expiration_to_db(expiration),
                    &note,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// Records a download. Fire-and-forget.
    pub fn record_download(&self, rec: DownloadRecord) {
        let store = self.clone();
        detached("record a download", async move {
            store
                .pg()
                .await?
                .execute(
                    "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &rec.entry_id.as_str(),
                        &db_time(rec.time),
                        &rec.client_ip,
                        &rec.user_agent,
                    ],
                )
                .await?;
            Ok(())
        });
    }

    /// Stores a new login session by the SHA-256 of its token.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn create_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM picoshare_sessions WHERE expiration_time < $1",
            &[&db_time(now)],
        )
        .await?;
        tx.execute(
            "INSERT INTO picoshare_sessions (token_sha256, created_time, expiration_time)
             VALUES ($1, $2, $3)",
            &[&token_sha256, &db_time(now), &db_time(expires)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a session with this token hash exists and has not expired.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn session_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                "SELECT expiration_time FROM picoshare_sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await?;
        Ok(row.is_some_and(|r| db_time_to_utc(&r.get::<_, String>(0)) > now))
    }

    /// Revokes a session.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.pg()
            .await?
            .execute(
                "DELETE FROM picoshare_sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await?;
        Ok(())
    }

    /// Stores a new API token (its SHA-256 only).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError> {
        let id = ApiTokenId::generate();
        self.pg()
            .await?
            .execute(
                "INSERT INTO picoshare_api_tokens
                     (id, name, token_sha256, prefix, created_time, last_used_time)
                 VALUES ($1, $2, $3, $4, $5, NULL)",
                &[
                    &id.as_str(),
                    &token.name,
                    &token.token_sha256,
                    &token.prefix,
                    &db_time(token.created),
                ],
            )
            .await?;
        Ok(ApiToken {
            id,
            name: token.name,
            prefix: token.prefix,
            created: token.created,
            last_used: None,
        })
    }

    /// Every API token, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self
            .pg()
            .await?
            .query(
                "SELECT id, name, prefix, created_time, last_used_time
                 FROM picoshare_api_tokens ORDER BY created_time DESC, seq DESC",
                &[],
            )
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The API token with this SHA-256, if any.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn api_token_by_hash(
        &self,
        token_sha256: String,
    ) -> Result<Option<ApiToken>, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                "SELECT id, name, prefix, created_time, last_used_time
                 FROM picoshare_api_tokens WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Records a token's use. Fire-and-forget.
    pub fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>) {
        let store = self.clone();
        let id = id.clone();
        detached("record an API token's use", async move {
            store
                .pg()
                .await?
                .execute(
                    "UPDATE picoshare_api_tokens SET last_used_time = $2 WHERE id = $1",
                    &[&id.as_str(), &db_time(now)],
                )
                .await?;
            Ok(())
        });
    }

    /// Revokes an API token; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        let n = self
            .pg()
            .await?
            .execute(
                "DELETE FROM picoshare_api_tokens WHERE id = $1",
                &[&id.as_str()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Creates a guest link with a new random ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn create_guest_link(&self, link: NewGuestLink) -> Result<GuestLinkId, StoreError> {
        let id = GuestLinkId::generate();
        self.pg()
            .await?
            .execute(
                "INSERT INTO guest_links (id, label, max_file_bytes, max_file_uploads,
                     creation_time, url_expiration_time, file_expiration_time, is_disabled)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
                &[
                    &id.as_str(),
                    &link.label,
                    &link.max_file_bytes.map(big),
                    &link.max_file_uploads.map(big),
                    &db_time(link.creation_time),
                    &expiration_to_db(link.url_expiration),
                    &link.file_lifetime.to_string(),
                ],
            )
            .await?;
        Ok(id)
    }

    /// Looks up a guest link, with its live upload count.
    ///
    /// # Errors
    /// PostgreSQL failures, or a row that cannot be read.
    pub async fn guest_link(&self, id: &GuestLinkId) -> Result<Option<GuestLink>, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                &format!("{SELECT_GUEST_LINK} WHERE g.id = $1"),
                &[&id.as_str()],
            )
            .await?;
        row.as_ref().map(guest_link_from_row).transpose()
    }

    /// Every guest link, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures, or a row that cannot be read.
    pub async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError> {
        let rows = self
            .pg()
            .await?
            .query(
                &format!("{SELECT_GUEST_LINK} ORDER BY g.creation_time DESC"),
                &[],
            )
            .await?;
        rows.iter().map(guest_link_from_row).collect()
    }

    /// Files stored through a guest link plus its unfinished resumable uploads.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn guest_link_files_uploaded(&self, id: &GuestLinkId) -> Result<u64, StoreError> {
        let row = self
            .pg()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM entries WHERE guest_link_id = $1)
                    + (SELECT count(*) FROM picoshare_tus_uploads
                       WHERE guest_link_id = $1 AND completed = 0)",
                &[&id.as_str()],
            )
            .await?;
        Ok(unsigned(row.get(0)))
    }

    /// Deletes a guest link; files uploaded through it stay.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE entries SET guest_link_id = NULL WHERE guest_link_id = $1",
            &[&id.as_str()],
        )
        .await?;
        tx.execute("DELETE FROM guest_links WHERE id = $1", &[&id.as_str()])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables or re-enables a guest link; returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn set_guest_link_disabled(
        &self,
        id: &GuestLinkId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let n = self
            .pg()
            .await?
            .execute(
                "UPDATE guest_links SET is_disabled = $2 WHERE id = $1",
                &[&id.as_str(), &i64::from(disabled)],
            )
            .await?;
        Ok(n > 0)
    }

    /// An entry's download history, newest first; `None` if it does not exist.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn downloads(&self, id: &EntryId) -> Result<Option<Vec<Download>>, StoreError> {
        let mut client = self.pg().await?;
        // One snapshot for both reads.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let exists = tx
            .query_opt("SELECT 1 FROM entries WHERE id = $1", &[&id.as_str()])
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = tx
            .query(
                "SELECT download_timestamp, client_ip, user_agent FROM downloads
                 WHERE entry_id = $1 ORDER BY download_timestamp DESC, seq DESC",
                &[&id.as_str()],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(
            rows.iter()
                .map(|r| Download {
                    time: db_time_to_utc(&r.get::<_, String>(0)),
                    client_ip: r.get::<_, Option<String>>(1).unwrap_or_default(),
                    user_agent: r.get::<_, Option<String>>(2).unwrap_or_default(),
                })
                .collect(),
        ))
    }

    /// Every entry with its size and number of downloads, newest upload first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn entries(&self) -> Result<Vec<EntrySummary>, StoreError> {
        let rows = self
            .pg()
            .await?
            .query(
                "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
                    e.note, e.guest_link_id, e.size, coalesce(d.n, 0)
                 FROM entries e
                 LEFT JOIN (SELECT entry_id, count(*) AS n FROM downloads GROUP BY entry_id) d
                    ON d.entry_id = e.id
                 ORDER BY e.upload_time DESC, e.seq DESC",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| EntrySummary {
                id: r.get(0),
                filename: r.get(1),
                content_type: r.get(2),
                upload_time: db_time_to_utc(&r.get::<_, String>(3)),
                expiration: expiration_from_db(r.get(4)),
                note: r.get(5),
                guest_link_id: r.get::<_, Option<String>>(6).filter(|g| !g.is_empty()),
                size: unsigned(r.get(7)),
                downloads: unsigned(r.get(8)),
            })
            .collect())
    }

    /// Stored bytes and the metadata database's size. Object storage has no
    /// fixed capacity and the server has no local disk of data, so the
    /// filesystem figures (`fs_*`) are 0, and nothing is reclaimable: a
    /// deleted object's space is the storage service's to give back.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn usage(&self) -> Result<StorageUsage, StoreError> {
        let row = self
            .pg()
            .await?
            .query_one(
                "SELECT pg_database_size(current_database()),
                    (SELECT coalesce(sum(size), 0)::BIGINT FROM entries)",
                &[],
            )
            .await?;
        Ok(StorageUsage {
            fs_total: 0,
            fs_used: 0,
            fs_free: 0,
            database: unsigned(row.get(0)),
            stored_files: unsigned(row.get(1)),
            reclaimable: 0,
        })
    }

    /// The metadata database's size (nothing reclaimable, see [`Self::usage`]).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn database_space(&self) -> Result<DatabaseSpace, StoreError> {
        let row = self
            .pg()
            .await?
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(DatabaseSpace {
            database: unsigned(row.get(0)),
            reclaimable: 0,
        })
    }

    /// An entry's limits; `reserved` counts downloads in progress on live instances.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn entry_limits(&self, id: &EntryId) -> Result<Option<EntryLimits>, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                &format!(
                    "SELECT max_downloads, downloads_used, {}, password_hash
                     FROM picoshare_entry_limits l WHERE entry_id = $1",
                    live_reservations_sql("l.entry_id")
                ),
                &[&id.as_str()],
            )
            .await?;
        Ok(row.as_ref().map(limits_from_row))
    }

    /// The limits of every entry that has any, by entry ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError> {
        let rows = self
            .pg()
            .await?
            .query(
                &format!(
                    "SELECT max_downloads, downloads_used, {}, password_hash, entry_id
                     FROM picoshare_entry_limits l",
                    live_reservations_sql("l.entry_id")
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(4), limits_from_row(r)))
            .collect())
    }

    /// Changes an entry's download limit and password; returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn update_limits(
        &self,
        id: &EntryId,
        max_downloads: Change<u64>,
        password_hash: Change<String>,
    ) -> Result<bool, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let id = id.as_str();
        // Locked so that the entry cannot be deleted before the limits are
        // written, which would leave a limits row without its entry.
        if tx
            .query_opt("SELECT 1 FROM entries WHERE id = $1 FOR SHARE", &[&id])
            .await?
            .is_none()
        {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO picoshare_entry_limits (entry_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&id],
        )
        .await?;
        match max_downloads {
            Change::Keep => {}
            Change::Clear => {
                tx.execute(
                    "UPDATE picoshare_entry_limits SET max_downloads = NULL WHERE entry_id = $1",
                    &[&id],
                )
                .await?;
            }
            Change::Set(m) => {
                tx.execute(
                    "UPDATE picoshare_entry_limits SET max_downloads = $2 WHERE entry_id = $1",
                    &[&id, &big(m)],
                )
                .await?;
            }
        }
        match password_hash {
            Change::Keep => {}
            Change::Clear => {
                tx.execute(
                    "UPDATE picoshare_entry_limits SET password_hash = NULL WHERE entry_id = $1",
                    &[&id],
                )
                .await?;
            }
            Change::Set(h) => {
                tx.execute(
                    "UPDATE picoshare_entry_limits SET password_hash = $2 WHERE entry_id = $1",
                    &[&id, &h],
                )
                .await?;
            }
        }
        tx.execute(
            "DELETE FROM picoshare_entry_limits WHERE entry_id = $1
                AND max_downloads IS NULL AND password_hash IS NULL
                AND NOT EXISTS (SELECT 1 FROM picoshare_download_reservations WHERE entry_id = $1)",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes one of an entry's remaining downloads for a full download about
    /// to start, under a lock on its limits row, so that instances never hand
    /// out more downloads than remain between them.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT max_downloads, downloads_used FROM picoshare_entry_limits
                 WHERE entry_id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await?
        else {
            return Ok(Reservation::Unlimited);
        };
        let Some(max) = row.get::<_, Option<i64>>(0) else {
            return Ok(Reservation::Unlimited);
        };
        let used: i64 = row.get(1);
        if used >= max {
            return Ok(Reservation::UsedUp);
        }
        let reserved: i64 = tx
            .query_one(
                &format!("SELECT {}", live_reservations_sql("$1")),
                &[&id.as_str()],
            )
            .await?
            .get(0);
        if used + reserved >= max {
            return Ok(Reservation::Busy);
        }
        tx.execute(
            "INSERT INTO picoshare_download_reservations (entry_id, instance_id, count)
             VALUES ($1, $2, 1)
             ON CONFLICT (entry_id, instance_id)
             DO UPDATE SET count = picoshare_download_reservations.count + 1",
            &[&id.as_str(), &self.instance()],
        )
        .await?;
        tx.commit().await?;
        Ok(Reservation::Reserved)
    }

    /// Ends a reserved download: with `completed` it becomes a used
    /// download, otherwise the reservation is released. Fire-and-forget.
    pub fn end_download(&self, id: &EntryId, completed: bool) {
        let store = self.clone();
        let id = id.clone();
        detached("record the end of a limited download", async move {
            let mut client = store.pg().await?;
            let tx = client.transaction().await?;
            // The limits row first, as `reserve_download` and
            // `delete_entry_rows` lock it, then the reservation: locking them
            // in the other order deadlocks against a reservation of the same
            // entry on this instance.
            tx.execute(
                "SELECT 1 FROM picoshare_entry_limits WHERE entry_id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await?;
            tx.execute(
                "UPDATE picoshare_download_reservations SET count = count - 1
                 WHERE entry_id = $1 AND instance_id = $2",
                &[&id.as_str(), &store.instance()],
            )
            .await?;
            tx.execute(
                "DELETE FROM picoshare_download_reservations
                 WHERE entry_id = $1 AND instance_id = $2 AND count <= 0",
                &[&id.as_str(), &store.instance()],
            )
            .await?;
            if completed {
                tx.execute(
                    "UPDATE picoshare_entry_limits SET downloads_used = downloads_used + 1
                     WHERE entry_id = $1",
                    &[&id.as_str()],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        });
    }

    /// The server's key called `name`, created on first use; instances
    /// starting together agree on one.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let client = self.pg().await?;
        client
            .execute(
                "INSERT INTO picoshare_server_keys (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT value FROM picoshare_server_keys WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The settings.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(
                "SELECT default_expiration_in_days FROM settings WHERE id = 1",
                &[],
            )
            .await?;
        Ok(match row {
            Some(r) => Settings {
                default_lifetime: DefaultLifetime::from_db(r.get(0)),
            },
            None => Settings::default(),
        })
    }

    /// Saves the settings.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn update_settings(&self, settings: Settings) -> Result<(), StoreError> {
        self.pg()
            .await?
            .execute(
                "INSERT INTO settings (id, default_expiration_in_days) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET default_expiration_in_days = excluded.default_expiration_in_days",
                &[&settings.default_lifetime.to_db()],
            )
            .await?;
        Ok(())
    }

    /// Creates a share of existing entries.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError> {
        let id = ShareId::generate();
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        for (entry, _) in &share.files {
            // Locked so that the entry cannot be deleted before the share exists.
            if tx
                .query_opt(
                    "SELECT 1 FROM entries WHERE id = $1 FOR SHARE",
                    &[&entry.as_str()],
                )
                .await?
                .is_none()
            {
                return Ok(CreateOutcome::UnknownEntry(entry.clone()));
            }
        }
        tx.execute(
            "INSERT INTO picoshare_shares (id, title, created_time, note) VALUES ($1, $2, $3, $4)",
            &[
                &id.as_str(),
                &share.title,
                &db_time(share.created),
                &share.note,
            ],
        )
        .await?;
        for (i, (entry, path)) in share.files.iter().enumerate() {
            tx.execute(
                "INSERT INTO picoshare_share_entries (share_id, entry_id, position, path)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &id.as_str(),
                    &entry.as_str(),
                    &i64::try_from(i).unwrap_or(i64::MAX),
                    path,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(CreateOutcome::Created(id))
    }

    async fn load_share(
        &self,
        client: &tokio_postgres::Client,
        id: &str,
    ) -> Result<Option<Share>, StoreError> {
        let Some(row) = client
            .query_opt(
                "SELECT title, note, created_time FROM picoshare_shares WHERE id = $1",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let Ok(share_id) = ShareId::parse(id) else {
            return Err(StoreError::Corrupt(format!("share ID {id:?}")));
        };
        let rows = client
            .query(
                "SELECT se.path, e.id, e.filename, e.content_type, e.upload_time,
                    e.expiration_time, e.note, e.guest_link_id, e.size, e.part_size
                 FROM picoshare_share_entries se JOIN entries e ON e.id = se.entry_id
                 WHERE se.share_id = $1 ORDER BY se.position",
                &[&id],
            )
            .await?;
        let mut files = Vec::with_capacity(rows.len());
        for r in &rows {
            let Ok(entry) = entry_from_row(r, 1) else {
                continue;
            };
            files.push(ShareFile {
                path: r.get(0),
                entry,
            });
        }
        Ok(Some(Share {
            id: share_id,
            title: row.get(0),
            note: row.get(1),
            created: db_time_to_utc(&row.get::<_, String>(2)),
            files,
        }))
    }

    /// One share with its files in order.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError> {
        let client = self.pg().await?;
        self.load_share(&client, id.as_str()).await
    }

    /// Every share, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn shares(&self) -> Result<Vec<Share>, StoreError> {
        let client = self.pg().await?;
        let ids = client
            .query(
                "SELECT id FROM picoshare_shares ORDER BY created_time DESC, id",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for row in ids {
            let id: String = row.get(0);
            if let Some(share) = self.load_share(&client, &id).await? {
                out.push(share);
            }
        }
        Ok(out)
    }

    /// Deletes a share, and with `with_files` its entries; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn delete_share(&self, id: &ShareId, with_files: bool) -> Result<bool, StoreError> {
        let (found, entries) = {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            // The share's row first: `delete_entry_rows` locks a share
            // before its entry rows too.
            let found = tx
                .execute(
                    "DELETE FROM picoshare_shares WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?
                > 0;
            let entries: Vec<String> = tx
                .query(
                    "DELETE FROM picoshare_share_entries WHERE share_id = $1 RETURNING entry_id",
                    &[&id.as_str()],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().await?;
            (found, entries)
        };
        if with_files {
            for entry in entries {
                if let Ok(entry) = EntryId::parse(&entry) {
                    self.delete_entry(&entry).await?;
                }
            }
        }
        Ok(found)
    }
}
