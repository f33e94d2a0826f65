//! One writing request per resumable upload: a new request for an upload asks
//! the one writing to it to stop (it saves what it has), and takes over once
//! it has, so a client that reconnects after a dropped connection does not
//! wait for the server to notice the old one died.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::ids::TusUploadId;

/// How long a request waits for the one it takes over to save and stop.
const TAKEOVER_WAIT: Duration = Duration::from_secs(15);

/// The request writing to each upload, so that a new one can take over.
#[derive(Default)]
pub(crate) struct TusLocks {
    map: Mutex<HashMap<TusUploadId, Arc<UploadLock>>>,
}

struct UploadLock {
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Bumped by each request that wants the upload; the holder stops when
    /// it changes.
    wanted: watch::Sender<u64>,
}

/// The right to write to one upload; dropping it lets the next request in.
pub(crate) struct UploadGuard {
    _held: tokio::sync::OwnedMutexGuard<()>,
    id: TusUploadId,
    lock: Arc<UploadLock>,
    locks: Arc<TusLocks>,
    /// Changes when another request wants this upload.
    pub(crate) wanted: watch::Receiver<u64>,
}

impl TusLocks {
    fn entry(&self, id: &TusUploadId) -> Arc<UploadLock> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.clone())
            .or_insert_with(|| {
                Arc::new(UploadLock {
                    writing: Arc::default(),
                    wanted: watch::Sender::new(0),
                })
            })
            .clone()
    }

    /// Asks the request writing to `id` (if any) to stop, and waits for it.
    /// `None` if it did not stop in time.
    pub(crate) async fn acquire(self: &Arc<Self>, id: &TusUploadId) -> Option<UploadGuard> {
        let lock = self.entry(id);
        lock.wanted.send_modify(|n| *n = n.wrapping_add(1));
        let held = tokio::time::timeout(TAKEOVER_WAIT, lock.writing.clone().lock_owned())
            .await
            .ok();
        let Some(held) = held else {
            self.forget_if_unused(id, &lock);
            return None;
        };
        let wanted = lock.wanted.subscribe();
        Some(UploadGuard {
            _held: held,
            id: id.clone(),
            lock,
            locks: self.clone(),
            wanted,
        })
    }

    /// Drops the map's entry once no request holds or waits for it.
    fn forget_if_unused(&self, id: &TusUploadId, lock: &Arc<UploadLock>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Ours and the map's: nobody else holds or waits.
        if Arc::strong_count(lock) <= 2 {
            map.remove(id);
        }
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        self.locks.forget_if_unused(&self.id, &self.lock);
    }
}
