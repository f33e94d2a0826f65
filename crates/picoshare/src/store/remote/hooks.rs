//! Notifications on the scale-out store: the same tables as SQLite's
//! (`sqlite/hooks.rs`, migration 5 in `schema.rs`) in PostgreSQL, shared by
//! every instance.
//!
//! **Same transaction.** Events are written in the transaction of the change
//! they report: a guest upload's entry row (`insert_entry`), the count of a
//! limited download (`limits.rs`), garbage collection; a completed download's
//! event in a transaction of its own with its facts (the history row is
//! written apart, as always on this store). The code that commits such a
//! transaction wakes this instance's delivery task after the commit
//! ([`RemoteStore::hooks_written`]).
//!
//! **Once, with several instances.** An instance claims the events it sends
//! (`SELECT … FOR UPDATE SKIP LOCKED`, then their next try moved a claim time
//! ahead, in one transaction): no other instance takes them while it sends;
//! if it dies, they come due again when the claim runs out. Delivered rows
//! are marked in a commit after the 2xx, as on SQLite.
//!
//! **Waking.** Each instance sleeps until its own writes wake it or its next
//! due event (as read at its last round): an event left by an instance that
//! died is sent by another when that one wakes next.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_postgres::Transaction;

use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::hooks as model;
use crate::store::model::hooks::{
    add_download, decode_destination, decode_spec, envelope, facts_of, guest_upload_events,
    log_dropped, outbox_max, spec_params, test_event, Attempt, Destination, DestinationKind,
    DestinationSpec, Due, EventFacts, EventType, HookState, COUNT_WAITING, DELETE_DESTINATION,
    DELETE_DESTINATION_EVENTS, DELIVERED_KEPT, DESTINATION_FAILED, DESTINATION_SUCCEEDED,
    DESTINATION_WAITS, DEST_COLUMNS, DOWNLOADS_WANTED, DOWNLOAD_COUNT, DOWNLOAD_LIMIT, DROP_OLDEST,
    EXPIRING_WANTED, EXPIRY_NOTICE, FORGET_GONE, GUEST_LINK_FILES, INSERT_DESTINATION,
    INSERT_EVENT, MARK_DELIVERED, MARK_FAILED, NEXT_DUE, TRIM_DELIVERED, UPDATE_DESTINATION,
};
use crate::store::model::time::db_time;
use crate::store::model::{DownloadRecord, NewEntry};
use crate::store::StoreError;
use crate::validate::NEVER_EXPIRE;

/// Events of one destination sent per round at most.
const PER_DESTINATION: usize = 8;

/// Writes event `kind` for every destination that wants it, in `tx`; keeps
/// the outbox within its bound. The event's ID, or `None` if none wanted it.
async fn enqueue(
    tx: &Transaction<'_>,
    kind: EventType,
    data: Value,
    facts: &EventFacts<'_>,
) -> Result<Option<String>, StoreError> {
    let rows = tx
        .query(
            &format!("SELECT {DEST_COLUMNS} FROM picoshare_hook_destinations d"),
            &[],
        )
        .await?;
    let mut wanted = Vec::new();
    for r in &rows {
        let (id, spec) = decode_spec(r)?;
        if spec.wants(&id, facts) {
            wanted.push(id);
        }
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    let event_id = crate::ids::random_hex(16);
    let now = Utc::now();
    let body = envelope(&event_id, kind, now, data).to_string();
    for dest in &wanted {
        tx.execute(
            INSERT_EVENT.pg(),
            &[
                &event_id,
                dest,
                &kind.as_str(),
                &body,
                &db_time(now),
                &now.timestamp_millis(),
            ],
        )
        .await?;
    }
    let waiting: i64 = tx.query_one(COUNT_WAITING.pg(), &[]).await?.get(0);
    let max = outbox_max();
    if waiting > max {
        let dropped = tx.execute(DROP_OLDEST.pg(), &[&(waiting - max)]).await?;
        log_dropped(dropped, max);
    }
    Ok(Some(event_id))
}

/// The facts of entry `id` every event about a file carries.
async fn entry_facts(tx: &Transaction<'_>, id: &str) -> Result<Option<Value>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT filename, content_type, expiration_time, size FROM entries WHERE id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| model::entry_facts(id, &r)).transpose()
}

/// Called where a finished upload's entry row is written (see SQLite's).
pub(super) async fn entry_inserted(
    tx: &Transaction<'_>,
    id: &EntryId,
    entry: &NewEntry,
) -> Result<(), StoreError> {
    let Some(link) = entry.guest_link_id.as_deref() else {
        return Ok(());
    };
    let Some(data) = entry_facts(tx, id.as_str()).await? else {
        return Ok(());
    };
    let row = tx
        .query_opt(GUEST_LINK_FILES.pg(), &[&link, &id.as_str()])
        .await?;
    let (label, max, count): (Option<String>, Option<i64>, i64) = match &row {
        Some(r) => (r.get(0), r.get(1), r.get(2)),
        None => (None, None, 0),
    };
    let events = guest_upload_events(data, id.as_str(), entry, link, label.as_deref(), max, count);
    for (kind, data) in events {
        enqueue(tx, kind, data, &facts_of(kind, Some(id.as_str()), false)).await?;
    }
    Ok(())
}

/// Called in the transaction that counts a limited download of `id`.
pub(super) async fn download_counted(tx: &Transaction<'_>, id: &EntryId) -> Result<(), StoreError> {
    let row = tx.query_opt(DOWNLOAD_LIMIT.pg(), &[&id.as_str()]).await?;
    let Some(r) = row else { return Ok(()) };
    let (max, used): (Option<i64>, i64) = (r.get(0), r.get(1));
    let Some(max) = max.filter(|m| *m == used) else {
        return Ok(());
    };
    let Some(mut data) = entry_facts(tx, id.as_str()).await? else {
        return Ok(());
    };
    data["maxDownloads"] = json!(max);
    let kind = EventType::DownloadLimitReached;
    enqueue(tx, kind, data, &facts_of(kind, Some(id.as_str()), false)).await?;
    Ok(())
}

/// Called by garbage collection, in its transaction (see SQLite's).
pub(super) async fn expiring(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    tx.batch_execute(FORGET_GONE.pg()).await?;
    let wanted: bool = tx.query_one(EXPIRING_WANTED.pg(), &[]).await?.get(0);
    if !wanted {
        return Ok(());
    }
    let soon = tx
        .query(
            "SELECT e.id, e.expiration_time FROM entries e
             WHERE e.expiration_time <> $1 AND e.expiration_time > $2 AND e.expiration_time <= $3",
            &[&NEVER_EXPIRE, &db_time(now), &db_time(now + EXPIRY_NOTICE)],
        )
        .await?;
    for r in &soon {
        let (id, expiration): (String, String) = (r.get(0), r.get(1));
        // Instances collecting at once: one of them writes the notice.
        let new = tx
            .execute(
                "INSERT INTO picoshare_hook_expiry_notices (entry_id, expiration_time)
                 VALUES ($1, $2)
                 ON CONFLICT (entry_id) DO UPDATE SET expiration_time = EXCLUDED.expiration_time
                 WHERE picoshare_hook_expiry_notices.expiration_time <> EXCLUDED.expiration_time",
                &[&id, &expiration],
            )
            .await?;
        if new == 0 {
            continue;
        }
        if let Some(data) = entry_facts(tx, &id).await? {
            let kind = EventType::ExpiringSoon;
            enqueue(tx, kind, data, &facts_of(kind, Some(&id), false)).await?;
        }
    }
    Ok(())
}

async fn mark_downloaded(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO picoshare_hook_downloaded (entry_id)
         SELECT DISTINCT entry_id FROM downloads ON CONFLICT DO NOTHING",
        &[],
    )
    .await?;
    Ok(())
}

impl RemoteStore {
    /// The notification state this instance's delivery task waits on.
    pub(crate) fn hook_state(&self) -> &HookState {
        &self.inner.hooks
    }

    /// Wakes this instance's delivery task: called after a commit that may
    /// have written events.
    pub(crate) fn hooks_written(&self) {
        self.inner.hooks.wake.notify_one();
    }

    /// Re-reads whether some destination wants downloads (also at every
    /// lease upkeep, so that a change made through another instance is
    /// seen), and wakes the delivery task.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn refresh_hooks(&self) -> Result<(), StoreError> {
        let wanted: bool = self.query_one(DOWNLOADS_WANTED.pg(), &[]).await?.get(0);
        self.inner
            .hooks
            .downloads_wanted
            .store(wanted, std::sync::atomic::Ordering::Relaxed);
        self.hooks_written();
        Ok(())
    }

    /// Whether some destination wants downloads.
    pub(crate) fn downloads_wanted(&self) -> bool {
        self.inner
            .hooks
            .downloads_wanted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes the "download" event of a download whose body was sent whole
    /// (in the background; failures are logged).
    pub(crate) fn download_completed(&self, rec: DownloadRecord) {
        if !self.downloads_wanted() {
            return;
        }
        let store = self.clone();
        self.spawn_background("write a download notification", async move {
            let mut client = store.pg().await?;
            let tx = client.transaction().await?;
            let id = rec.entry_id.as_str();
            let Some(mut data) = entry_facts(&tx, id).await? else {
                return Ok(());
            };
            let count: i64 = tx.query_one(DOWNLOAD_COUNT.pg(), &[&id]).await?.get(0);
            let first = tx
                .execute(
                    "INSERT INTO picoshare_hook_downloaded (entry_id) VALUES ($1)
                     ON CONFLICT DO NOTHING",
                    &[&id],
                )
                .await?
                == 1;
            add_download(&mut data, &rec, count, first);
            let kind = EventType::Download;
            enqueue(&tx, kind, data, &facts_of(kind, Some(id), first)).await?;
            tx.commit().await?;
            store.hooks_written();
            Ok(())
        });
    }

    /// Every destination with its delivery state.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn hook_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {DEST_COLUMNS}, (SELECT count(*) FROM picoshare_hook_outbox o
                        WHERE o.destination_id = d.id AND o.delivered_time IS NULL)
                     FROM picoshare_hook_destinations d ORDER BY d.created_time, d.id"
                ),
                &[],
            )
            .await?;
        rows.iter().map(decode_destination).collect()
    }

    /// Adds a destination; its ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_hook_destination(
        &self,
        spec: DestinationSpec,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = crate::ids::random_hex(8);
        self.save_destination(&id, &spec, Some(db_time(now)))
            .await?;
        Ok(id)
    }

    /// Changes a destination; false if there is none.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn update_hook_destination(
        &self,
        id: String,
        spec: DestinationSpec,
    ) -> Result<bool, StoreError> {
        self.save_destination(&id, &spec, None).await
    }

    /// Writes destination `id`'s settings in a transaction of its own (see
    /// SQLite's `save_destination`): a new row created at `created`, or the
    /// row there is (false if there is none).
    async fn save_destination(
        &self,
        id: &str,
        spec: &DestinationSpec,
        created: Option<String>,
    ) -> Result<bool, StoreError> {
        let (events, entries) = spec_params(spec);
        let (kind, first, enabled) = (
            spec.kind.as_str(),
            i64::from(spec.first_download_only),
            i64::from(spec.enabled),
        );
        let mut values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &id,
            &spec.name,
            &kind,
            &spec.url,
            &spec.secret,
            &events,
            &first,
            &entries,
            &enabled,
        ];
        let sql = match &created {
            Some(time) => {
                values.push(time);
                INSERT_DESTINATION
            }
            None => UPDATE_DESTINATION,
        };
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        mark_downloaded(&tx).await?;
        let n = tx.execute(sql.pg(), &values).await?;
        tx.commit().await?;
        drop(client);
        self.refresh_hooks().await?;
        Ok(n > 0)
    }

    /// Deletes a destination and its events; false if there is none.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_hook_destination(&self, id: String) -> Result<bool, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(DELETE_DESTINATION_EVENTS.pg(), &[&id]).await?;
        let n = tx.execute(DELETE_DESTINATION.pg(), &[&id]).await?;
        tx.commit().await?;
        drop(client);
        self.refresh_hooks().await?;
        Ok(n > 0)
    }

    /// Queues a test event for one destination.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn send_hook_test(&self, id: String) -> Result<Option<String>, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let (data, facts) = test_event(&id);
        let event = enqueue(&tx, EventType::Test, data, &facts).await?;
        tx.commit().await?;
        self.hooks_written();
        Ok(event)
    }

    /// Claims up to `limit` due events (at most [`PER_DESTINATION`] of one
    /// destination) for `claim`: their next try moves that far ahead, so no
    /// other instance takes them meanwhile.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn hooks_due(
        &self,
        limit: usize,
        claim: Duration,
    ) -> Result<Vec<Due>, StoreError> {
        let now = Utc::now().timestamp_millis();
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT o.seq, o.event_id, o.event_type, o.body, o.attempts, o.destination_id
                 FROM picoshare_hook_outbox o
                 WHERE o.delivered_time IS NULL AND o.next_try_ms <= $1
                 ORDER BY o.next_try_ms, o.seq LIMIT $2
                 FOR UPDATE SKIP LOCKED",
                &[&now, &((limit * PER_DESTINATION) as i64)],
            )
            .await?;
        let mut per: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut chosen = Vec::new();
        for r in &rows {
            let dest: String = r.get(5);
            let n = per.entry(dest).or_default();
            if *n < PER_DESTINATION && chosen.len() < limit {
                *n += 1;
                chosen.push(r);
            }
        }
        let until = now + claim.as_millis() as i64;
        let mut due = Vec::new();
        for r in chosen {
            let seq: i64 = r.get(0);
            let dest_id: String = r.get(5);
            tx.execute(
                "UPDATE picoshare_hook_outbox SET next_try_ms = $2 WHERE seq = $1",
                &[&seq, &until],
            )
            .await?;
            let Some(d) = tx
                .query_opt(
                    "SELECT kind, url, secret FROM picoshare_hook_destinations WHERE id = $1",
                    &[&dest_id],
                )
                .await?
            else {
                continue;
            };
            let kind: String = r.get(2);
            let dest_kind: String = d.get(0);
            due.push(Due {
                seq,
                event_id: r.get(1),
                kind: EventType::parse(&kind).unwrap_or(EventType::Test),
                body: r.get(3),
                attempts: r.get::<_, i64>(4) as u32,
                destination_id: dest_id,
                dest_kind: DestinationKind::parse(&dest_kind).unwrap_or(DestinationKind::Webhook),
                url: d.get(1),
                secret: d.get(2),
            });
        }
        tx.commit().await?;
        Ok(due)
    }

    /// When the next undelivered event is due (ms since the epoch).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn hooks_next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.query_one(NEXT_DUE.pg(), &[]).await?.get(0))
    }

    /// Records how attempts went (see SQLite's).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn record_hook_attempts(
        &self,
        attempts: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        let now = db_time(Utc::now());
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        for a in &attempts {
            match &a.outcome {
                Ok(()) => {
                    tx.execute(MARK_DELIVERED.pg(), &[&a.seq, &now]).await?;
                    tx.execute(DESTINATION_SUCCEEDED.pg(), &[&a.destination_id, &now])
                        .await?;
                }
                Err((error, next)) => {
                    tx.execute(MARK_FAILED.pg(), &[&a.seq, next]).await?;
                    tx.execute(DESTINATION_WAITS.pg(), &[&a.destination_id, next])
                        .await?;
                    tx.execute(DESTINATION_FAILED.pg(), &[&a.destination_id, error, &now])
                        .await?;
                }
            }
        }
        tx.execute(TRIM_DELIVERED.pg(), &[&(DELIVERED_KEPT - 1)])
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
