//! What the async side sends the writer thread: the [`Cmd`] messages (an
//! upload's chunks and finish, a replacement's switch, jobs run in the
//! writer's transaction, resumable sessions, shutdown), the jobs' types, the
//! state the writer shares with the rest of the store, and
//! [`WriterHandle`], which sends them and waits for the replies. What the
//! thread does with each command is in `mod.rs` and its job files.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::ids::{EntryId, TusUploadId};
use crate::store::model::{NewEntry, Replacement, TusUpload};
use crate::store::StoreError;

/// Called once the transaction holding a job's changes has committed (or failed).
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A unit of work run inside the writer's transaction. `Err` means the job failed
/// and its changes must be rolled back; the completion then carries its error.
/// It is given the transaction's connection, or the reason none could be started.
pub(super) type Job =
    Box<dyn FnOnce(Result<&Connection, StoreError>) -> Result<Completion, Completion> + Send>;

/// Where the writer answers a request whose outcome is a commit.
pub(super) type Reply = oneshot::Sender<Result<(), StoreError>>;

/// How a resumable upload's completing save completes it.
pub(in crate::store::sqlite) enum TusCompletion {
    /// As a new entry.
    Entry(NewEntry),
    /// As the new content of entry `target` ([`Writer::replace`](super::Writer::replace)'s switch).
    Replace {
        target: EntryId,
        change: crate::store::model::Replacement,
    },
}

/// A message to the writer thread.
pub(in crate::store::sqlite) enum Cmd {
    /// One chunk of an upload (`index` counts from 0).
    Chunk {
        id: EntryId,
        index: u64,
        data: Bytes,
    },
    /// Writes the entry row of an upload whose chunks were all sent.
    Finish {
        id: EntryId,
        entry: NewEntry,
        reply: Reply,
    },
    /// Abandons an upload: deletes its chunks.
    Abort { id: EntryId },
    /// Makes the chunks of upload `id` (all sent) the content of entry
    /// `target`, retiring its old content (`uploads.rs`). Replies whether
    /// the entry was there.
    Replace {
        id: EntryId,
        target: EntryId,
        change: Replacement,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Frees retired contents that no download reads any more (`content.rs`).
    FreeContent { ids: Vec<EntryId> },
    /// Runs a job in the running transaction. `detached`: nobody waits for
    /// its commit (download records, a token's last use), so it may wait for
    /// company in the transaction for up to [`DETACHED_COMMIT_AFTER`](super::DETACHED_COMMIT_AFTER).
    Exec {
        job: Job,
        durable: bool,
        detached: bool,
    },
    /// Starts a writing session on a resumable upload: loads its row and
    /// registers it as in progress.
    TusOpen {
        upload_id: TusUploadId,
        track: bool,
        reply: oneshot::Sender<Result<Option<(TusUpload, u64)>, StoreError>>,
    },
    /// Ends a session by recording its offset and tail durably, or by
    /// completing the upload (entry row written in the same transaction).
    TusSave {
        id: EntryId,
        session: u64,
        offset: u64,
        tail: Bytes,
        expires: String,
        complete: Option<TusCompletion>,
        reply: Reply,
    },
    /// Ends a session without saving its tail: keeps what the transactions
    /// recorded, or with `discard_from` deletes the chunks the session wrote.
    TusRelease {
        id: EntryId,
        session: u64,
        discard_from: Option<u64>,
    },
    /// Commits, abandons what is unfinished, checkpoints and stops.
    Shutdown { reply: oneshot::Sender<()> },
}

/// State the writer shares with jobs and the rest of the store.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Entries whose upload is in progress (their chunks have no entry row yet).
    pub(crate) in_progress: std::sync::Mutex<HashSet<EntryId>>,
    /// Set when pages were freed (deletes): the writer then returns them to the
    /// filesystem with small incremental-vacuum steps whenever it is idle.
    pub(crate) vacuum_wanted: AtomicBool,
    /// The downloads' pins on versions of a file's content (`content.rs`).
    pub(crate) pins: Arc<super::super::content::Pins>,
    /// Retired contents to free once the running commit is done: their
    /// switch committed with no download left that may read them.
    pub(crate) free_after_commit: std::sync::Mutex<Vec<EntryId>>,
    /// Notifications: the delivery task's wake-up (`hooks.rs`).
    pub(crate) hooks: super::super::hooks::HookState,
}

/// The async side's handle on the writer thread.
pub(in crate::store::sqlite) struct WriterHandle {
    pub(super) tx: flume::Sender<Cmd>,
}

impl WriterHandle {
    /// A sender of commands, for the upload sinks.
    pub(in crate::store::sqlite) fn sender(&self) -> flume::Sender<Cmd> {
        self.tx.clone()
    }

    /// Starts a writing session on resumable upload `upload_id` (see
    /// `resumable.rs`): its row and the session's number, or `None` for an
    /// unknown upload (a completed one gets session 0 and no sink).
    pub(in crate::store::sqlite) async fn tus_open(
        &self,
        upload_id: TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, u64)>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Cmd::TusOpen {
                upload_id,
                track,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    fn job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| match conn.and_then(f) {
            Ok(v) => Ok(Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.map(|()| v));
            })),
            Err(e) => Err(Box::new(move |_| {
                let _ = tx.send(Err(e));
            })),
        });
        (job, rx)
    }

    /// Runs `f` in the writer's transaction; resolves after the commit.
    pub(in crate::store::sqlite) async fn exec<T, F>(
        &self,
        f: F,
        durable: bool,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = Self::job(f);
        self.tx
            .send_async(Cmd::Exec {
                job,
                durable,
                detached: false,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `f` without waiting for it; failures are logged (by the
    /// writer thread, when the job's transaction ends). Queued at once when
    /// the queue has room, the usual case, with no task spawned; a task
    /// waits for room otherwise.
    pub(in crate::store::sqlite) fn exec_detached<F>(&self, f: F)
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let log = |r: Result<(), StoreError>| {
            if let Err(e) = r {
                tracing::warn!(error = %e, "background database write failed");
            }
        };
        let job: Job = Box::new(move |conn| match conn.and_then(f) {
            Ok(()) => Ok(Box::new(log)),
            Err(e) => Err(Box::new(move |_| log(Err(e)))),
        });
        let cmd = Cmd::Exec {
            job,
            durable: false,
            detached: true,
        };
        match self.tx.try_send(cmd) {
            Ok(()) | Err(flume::TrySendError::Disconnected(_)) => {}
            Err(flume::TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send_async(cmd).await;
                });
            }
        }
    }

    pub(in crate::store::sqlite) async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send_async(Cmd::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
