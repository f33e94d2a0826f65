//! Notifications on SQLite: the destinations, and the outbox of events
//! waiting to be delivered (tables of migration 11, `schema.rs`).
//!
//! **Same transaction.** An event is written by the writer job that makes
//! the change it reports: a guest upload's entry row (`insert_entry`, for
//! multipart and resumable uploads alike), the count of a limited download
//! (`limits.rs`), the download records (`entries.rs`, the job that writes the
//! history), garbage collection (files about to expire). So an event exists
//! exactly when its change committed: never one for a rolled-back change,
//! never a change without its event.
//!
//! **Waking the delivery.** Writing an event sets a flag of the writer
//! thread ([`take_queued`]); the writer wakes the delivery task
//! (`crate::hooks`) after the commit that holds it, so the task never reads
//! before the event is visible and never polls.
//!
//! **Bounded.** At most [`OUTBOX_MAX`](crate::store::model::hooks::OUTBOX_MAX) undelivered rows: writing more drops the
//! oldest, counted in [`dropped`] and logged. Delivered rows are kept for
//! the record, the newest [`DELIVERED_KEPT`] only.
//!
//! **Once.** A row is marked delivered (`delivered_time`) in a durable commit
//! after its receiver answered 2xx; rows so marked are never sent again,
//! after a restart neither. A crash between the receiver's answer and that
//! commit sends the event again: receivers de-duplicate by the event ID.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::{query_all, query_opt, SqliteStore};
use crate::ids::EntryId;
use crate::store::model::hooks as model;
use crate::store::model::hooks::{
    add_download, decode_destination, decode_spec, envelope, facts_of, guest_upload_events,
    log_dropped, outbox_max, spec_params, test_event, Destination, DestinationKind,
    DestinationSpec, EventFacts, EventType, COUNT_WAITING, DELETE_DESTINATION,
    DELETE_DESTINATION_EVENTS, DELIVERED_KEPT, DESTINATION_FAILED, DESTINATION_SUCCEEDED,
    DESTINATION_WAITS, DEST_COLUMNS, DOWNLOADS_WANTED, DOWNLOAD_COUNT, DOWNLOAD_LIMIT, DROP_OLDEST,
    EXPIRING_WANTED, EXPIRY_NOTICE, FORGET_GONE, GUEST_LINK_FILES, INSERT_DESTINATION,
    INSERT_EVENT, MARK_DELIVERED, MARK_FAILED, NEXT_DUE, TRIM_DELIVERED, UPDATE_DESTINATION,
};
pub(crate) use crate::store::model::hooks::{dropped, Attempt, Due, HookState};
use crate::store::model::time::db_time;
use crate::store::model::{DownloadRecord, NewEntry};
use crate::store::StoreError;
use crate::validate::NEVER_EXPIRE;

thread_local! {
    /// Set on the writer thread when a job wrote an event.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a job on this (the writer's) thread wrote an event since the
/// last call; the writer asks after each commit.
pub(super) fn take_queued() -> bool {
    QUEUED.with(|q| q.replace(false))
}

/// Events of one destination sent per round at most.
const PER_DESTINATION: i64 = 8;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Writes event `kind` with `data` for every destination that wants it
/// (`facts`), in the caller's transaction; keeps the outbox within its bound.
/// Returns the event's ID, or `None` when no destination wanted it.
fn enqueue(
    conn: &Connection,
    kind: EventType,
    data: Value,
    facts: &EventFacts<'_>,
) -> Result<Option<String>, StoreError> {
    let dests = query_all(
        conn,
        &format!("SELECT {DEST_COLUMNS} FROM picoshare_hook_destinations d"),
        [],
        |r| decode_spec(r),
    )?;
    let wanted: Vec<&String> = dests
        .iter()
        .filter(|(id, spec)| spec.wants(id, facts))
        .map(|(id, _)| id)
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let event_id = crate::ids::random_hex(16);
    let now = Utc::now();
    let body = envelope(&event_id, kind, now, data).to_string();
    let mut insert = conn.prepare_cached(INSERT_EVENT.sqlite())?;
    for dest in &wanted {
        insert.execute(params![
            event_id,
            dest,
            kind.as_str(),
            body,
            db_time(now),
            now.timestamp_millis()
        ])?;
    }
    let waiting: i64 = conn.query_row(COUNT_WAITING.sqlite(), [], |r| r.get(0))?;
    let max = outbox_max();
    if waiting > max {
        let dropped = conn.execute(DROP_OLDEST.sqlite(), [waiting - max])?;
        log_dropped(dropped as u64, max);
    }
    QUEUED.with(|q| q.set(true));
    Ok(Some(event_id))
}

/// The facts of entry `id` every event about a file carries: ID, name,
/// type and size.
fn entry_facts(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    query_opt(
        conn,
        "SELECT filename, content_type, expiration_time,
            (SELECT coalesce(sum(length(chunk)), 0) FROM entries_data d WHERE d.id = e.id)
         FROM entries e WHERE e.id = ?1",
        [id],
        |r| model::entry_facts(id, r),
    )
}

/// Called where a finished upload's entry row is written: for a guest's
/// upload, writes the "guest upload" event, and "guest link used up" when
/// it was the link's last allowed file.
pub(super) fn entry_inserted(
    conn: &Connection,
    id: &EntryId,
    entry: &NewEntry,
) -> Result<(), StoreError> {
    let Some(link) = entry.guest_link_id.as_deref() else {
        return Ok(());
    };
    let Some(data) = entry_facts(conn, id.as_str())? else {
        return Ok(());
    };
    let row: Option<(Option<String>, Option<i64>, i64)> = conn
        .query_row(GUEST_LINK_FILES.sqlite(), params![link, id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let (label, max, count) = row.unwrap_or((None, None, 0));
    let events = guest_upload_events(data, id.as_str(), entry, link, label.as_deref(), max, count);
    for (kind, data) in events {
        enqueue(conn, kind, data, &facts_of(kind, Some(id.as_str()), false))?;
    }
    Ok(())
}

/// Called in the job that counts a limited download of `id`: writes
/// "download limit used up" when that was its last allowed download.
pub(super) fn download_counted(conn: &Connection, id: &EntryId) -> Result<(), StoreError> {
    let row: Option<(Option<i64>, i64)> = conn
        .query_row(DOWNLOAD_LIMIT.sqlite(), [id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((Some(max), used)) = row else {
        return Ok(());
    };
    if used != max {
        return Ok(());
    }
    let Some(mut data) = entry_facts(conn, id.as_str())? else {
        return Ok(());
    };
    data["maxDownloads"] = json!(max);
    let kind = EventType::DownloadLimitReached;
    enqueue(conn, kind, data, &facts_of(kind, Some(id.as_str()), false))?;
    Ok(())
}

/// Called in the job that writes the download history, after its records:
/// writes a "download" event for each download whose body was sent whole
/// (`completed`), with the facts the history has and the file's number of
/// recorded downloads. It is the file's first download when the file is
/// not yet in `picoshare_hook_downloaded` (filled from the history when a
/// destination is saved, then by this job, one download after the other).
pub(super) fn downloads_completed(
    conn: &Connection,
    completed: &[DownloadRecord],
) -> Result<(), StoreError> {
    for rec in completed {
        let id = rec.entry_id.as_str();
        let Some(mut data) = entry_facts(conn, id)? else {
            continue;
        };
        let count: i64 = conn.query_row(DOWNLOAD_COUNT.sqlite(), [id], |r| r.get(0))?;
        let first = conn.execute(
            "INSERT OR IGNORE INTO picoshare_hook_downloaded (entry_id) VALUES (?1)",
            [id],
        )? == 1;
        add_download(&mut data, rec, count, first);
        let kind = EventType::Download;
        enqueue(conn, kind, data, &facts_of(kind, Some(id), first))?;
    }
    Ok(())
}

/// Called by garbage collection (its job, at `now` by the server's clock):
/// writes "expiring soon" once for each file that expires within
/// [`EXPIRY_NOTICE`] (again if its expiration is changed), and forgets the
/// notices of files that are gone.
pub(super) fn expiring(conn: &Connection, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute_batch(FORGET_GONE.sqlite())?;
    let wanted: bool = conn.query_row(EXPIRING_WANTED.sqlite(), [], |r| r.get(0))?;
    if !wanted {
        return Ok(());
    }
    let soon = query_all(
        conn,
        "SELECT e.id, e.expiration_time FROM entries e
         WHERE e.expiration_time <> ?1 AND e.expiration_time > ?2 AND e.expiration_time <= ?3
           AND NOT EXISTS (SELECT 1 FROM picoshare_hook_expiry_notices n
                           WHERE n.entry_id = e.id AND n.expiration_time = e.expiration_time)",
        params![NEVER_EXPIRE, db_time(now), db_time(now + EXPIRY_NOTICE)],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    for (id, expiration) in soon {
        conn.execute(
            "INSERT OR REPLACE INTO picoshare_hook_expiry_notices (entry_id, expiration_time)
             VALUES (?1, ?2)",
            params![id, expiration],
        )?;
        if let Some(data) = entry_facts(conn, &id)? {
            let kind = EventType::ExpiringSoon;
            enqueue(conn, kind, data, &facts_of(kind, Some(&id), false))?;
        }
    }
    Ok(())
}

/// Marks every file with a download in its history as downloaded already
/// (before a destination that wants only first downloads is saved).
fn mark_downloaded(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO picoshare_hook_downloaded (entry_id)
         SELECT DISTINCT entry_id FROM downloads",
        [],
    )?;
    Ok(())
}

/// Writes destination `id`'s settings: a new row created at `created`, or
/// (`None`) the row there is, false if there is none. Files downloaded
/// already are marked first, so that a destination that wants only first
/// downloads is never told of them.
fn save_destination(
    conn: &Connection,
    id: &str,
    spec: &DestinationSpec,
    created: Option<String>,
) -> Result<bool, StoreError> {
    let (events, entries) = spec_params(spec);
    mark_downloaded(conn)?;
    let kind = spec.kind.as_str();
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![
        &id,
        &spec.name,
        &kind,
        &spec.url,
        &spec.secret,
        &events,
        &spec.first_download_only,
        &entries,
        &spec.enabled,
    ];
    let sql = match &created {
        Some(time) => {
            values.push(time);
            INSERT_DESTINATION
        }
        None => UPDATE_DESTINATION,
    };
    Ok(conn.execute(sql.sqlite(), values.as_slice())? > 0)
}

impl SqliteStore {
    /// The notification state the delivery task shares.
    pub(crate) fn hook_state(&self) -> &HookState {
        &self.inner.shared.hooks
    }

    /// Re-reads whether some destination wants downloads, and wakes the
    /// delivery task.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn refresh_hooks(&self) -> Result<(), StoreError> {
        let wanted = self
            .read(
                |conn| Ok(conn.query_row(DOWNLOADS_WANTED.sqlite(), [], |r| r.get::<_, bool>(0))?),
            )
            .await?;
        let state = self.hook_state();
        state.downloads_wanted.store(wanted, Ordering::Relaxed);
        state.wake.notify_one();
        Ok(())
    }

    /// Every destination, oldest first, with its delivery state.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn hook_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        self.read(|conn| {
            query_all(
                conn,
                &format!(
                    "SELECT {DEST_COLUMNS}, (SELECT count(*) FROM picoshare_hook_outbox o
                        WHERE o.destination_id = d.id AND o.delivered_time IS NULL)
                     FROM picoshare_hook_destinations d ORDER BY d.created_time, d.id"
                ),
                [],
                |r| decode_destination(r),
            )
        })
        .await
    }

    /// Adds a destination; returns its ID.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn create_hook_destination(
        &self,
        spec: DestinationSpec,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = crate::ids::random_hex(8);
        let row_id = id.clone();
        self.write(move |conn| save_destination(conn, &row_id, &spec, Some(db_time(now))))
            .await?;
        self.refresh_hooks().await?;
        Ok(id)
    }

    /// Changes destination `id`; false if there is none. Its queued events
    /// stay queued (and go to the new URL).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn update_hook_destination(
        &self,
        id: String,
        spec: DestinationSpec,
    ) -> Result<bool, StoreError> {
        let found = self
            .write(move |conn| save_destination(conn, &id, &spec, None))
            .await?;
        self.refresh_hooks().await?;
        Ok(found)
    }

    /// Deletes destination `id` and its events; false if there is none.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_hook_destination(&self, id: String) -> Result<bool, StoreError> {
        let found = self
            .write(move |conn| {
                conn.execute(DELETE_DESTINATION_EVENTS.sqlite(), [&id])?;
                Ok(conn.execute(DELETE_DESTINATION.sqlite(), [&id])? > 0)
            })
            .await?;
        self.refresh_hooks().await?;
        Ok(found)
    }

    /// Queues a test event for destination `id` (enabled or not): its
    /// event ID, or `None` if there is no such destination.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn send_hook_test(&self, id: String) -> Result<Option<String>, StoreError> {
        let event = self
            .write(move |conn| {
                let (data, facts) = test_event(&id);
                enqueue(conn, EventType::Test, data, &facts)
            })
            .await?;
        Ok(event)
    }

    /// Up to `limit` events due for delivery now, oldest first, at most
    /// [`PER_DESTINATION`] of each destination (so that one slow receiver
    /// does not hold up the others' events for long).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn hooks_due(&self, limit: usize) -> Result<Vec<Due>, StoreError> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT o.seq, o.event_id, o.event_type, o.body, o.attempts,
                    d.id, d.kind, d.url, d.secret
                 FROM (SELECT seq, event_id, event_type, body, attempts, destination_id,
                          next_try_ms, row_number() OVER (PARTITION BY destination_id
                              ORDER BY next_try_ms, seq) AS nth
                       FROM picoshare_hook_outbox
                       WHERE delivered_time IS NULL AND next_try_ms <= ?1) o
                 JOIN picoshare_hook_destinations d ON d.id = o.destination_id
                 WHERE o.nth <= ?3
                 ORDER BY o.next_try_ms, o.seq LIMIT ?2",
                params![now_ms(), limit as i64, PER_DESTINATION],
                |r| {
                    let kind: String = r.get(2)?;
                    let dest_kind: String = r.get(6)?;
                    Ok(Due {
                        seq: r.get(0)?,
                        event_id: r.get(1)?,
                        kind: EventType::parse(&kind).unwrap_or(EventType::Test),
                        body: r.get(3)?,
                        attempts: r.get::<_, i64>(4)? as u32,
                        destination_id: r.get(5)?,
                        dest_kind: DestinationKind::parse(&dest_kind)
                            .unwrap_or(DestinationKind::Webhook),
                        url: r.get(7)?,
                        secret: r.get(8)?,
                    })
                },
            )
        })
        .await
    }

    /// When the next undelivered event is due (milliseconds since the
    /// epoch), if there is one.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn hooks_next_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn| Ok(conn.query_row(NEXT_DUE.sqlite(), [], |r| r.get(0))?))
            .await
    }

    /// Records how attempts went, durably: delivered rows are marked (and
    /// the oldest delivered ones beyond [`DELIVERED_KEPT`] deleted), failed
    /// ones get their next try; the destinations' last success or error.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn record_hook_attempts(
        &self,
        attempts: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        let now = db_time(Utc::now());
        self.write(move |conn| {
            for a in &attempts {
                match &a.outcome {
                    Ok(()) => {
                        conn.execute(MARK_DELIVERED.sqlite(), params![a.seq, now])?;
                        conn.execute(
                            DESTINATION_SUCCEEDED.sqlite(),
                            params![a.destination_id, now],
                        )?;
                    }
                    Err((error, next)) => {
                        conn.execute(MARK_FAILED.sqlite(), params![a.seq, next])?;
                        conn.execute(DESTINATION_WAITS.sqlite(), params![a.destination_id, next])?;
                        conn.execute(
                            DESTINATION_FAILED.sqlite(),
                            params![a.destination_id, error, now],
                        )?;
                    }
                }
            }
            conn.execute(TRIM_DELIVERED.sqlite(), [DELIVERED_KEPT - 1])?;
            Ok(())
        })
        .await
    }
}
