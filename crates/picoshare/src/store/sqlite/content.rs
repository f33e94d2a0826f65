//! Versions of a file's content while it is replaced (`Cmd::Replace` in
//! `writer/uploads.rs`): which downloads may still read a retired version,
//! and when its chunks may go.
//!
//! A replacement moves the old chunks to a fresh id (the *retired* content)
//! in the transaction that moves the new ones under the entry's id. A
//! download reads the version it looked up (`reader.rs` finds it by the
//! upload time it saw), so the retired chunks must stay while any download
//! that may have seen them runs. Each download takes a [`ContentPin`] on its
//! entry *before* its look-up transaction: a pin older than a switch's
//! commit may have seen the old version; a younger one cannot. A retired
//! content is freed (a writer job) once no older pin of its entry remains.
//! Pins live in memory only: none survives a restart, and start-up frees
//! every retired content.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::writer::Cmd;
use crate::ids::EntryId;

/// The pins of every entry being downloaded and the retired contents they
/// keep.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    inner: Mutex<PinsInner>,
}

#[derive(Debug, Default)]
struct PinsInner {
    /// One counter orders pins and switches.
    next_seq: u64,
    by_entry: HashMap<EntryId, EntryPins>,
}

#[derive(Debug, Default)]
struct EntryPins {
    /// The sequence numbers of the pins held.
    readers: BTreeSet<u64>,
    /// Retired contents waiting for the pins older than their switch.
    retired: Vec<(u64, EntryId)>,
}

impl PinsInner {
    /// Takes the retired contents of `entry` that no pin needs any more.
    fn freeable(&mut self, entry: &EntryId) -> Vec<EntryId> {
        let Some(p) = self.by_entry.get_mut(entry) else {
            return Vec::new();
        };
        let oldest = p.readers.first().copied().unwrap_or(u64::MAX);
        let (free, keep): (Vec<_>, Vec<_>) = p.retired.drain(..).partition(|(s, _)| *s < oldest);
        p.retired = keep;
        if p.readers.is_empty() && p.retired.is_empty() {
            self.by_entry.remove(entry);
        }
        free.into_iter().map(|(_, id)| id).collect()
    }
}

impl Pins {
    fn lock(&self) -> std::sync::MutexGuard<'_, PinsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pins `entry` for a download about to look it up.
    pub(crate) fn pin(self: &Arc<Self>, entry: &EntryId, tx: flume::Sender<Cmd>) -> ContentPin {
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        g.by_entry
            .entry(entry.clone())
            .or_default()
            .readers
            .insert(seq);
        ContentPin {
            pins: self.clone(),
            entry: entry.clone(),
            seq,
            tx,
        }
    }

    /// Records that `entry`'s old content, moved to `retired`, was switched
    /// out by a commit that has completed. Returns whether it can be freed
    /// at once (no download started before the commit still runs).
    pub(crate) fn retire(&self, entry: &EntryId, retired: EntryId) -> bool {
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        let Some(p) = g.by_entry.get_mut(entry) else {
            return true;
        };
        if p.readers.first().is_some_and(|&oldest| oldest < seq) {
            p.retired.push((seq, retired));
            false
        } else {
            true
        }
    }
}

/// A download's hold on the versions of one entry's content (see the module
/// header). Dropping it frees the retired contents only it still needed.
#[derive(Debug)]
pub(crate) struct ContentPin {
    pins: Arc<Pins>,
    entry: EntryId,
    seq: u64,
    tx: flume::Sender<Cmd>,
}

impl Drop for ContentPin {
    fn drop(&mut self) {
        let free = {
            let mut g = self.pins.lock();
            if let Some(p) = g.by_entry.get_mut(&self.entry) {
                p.readers.remove(&self.seq);
            }
            g.freeable(&self.entry)
        };
        if free.is_empty() {
            return;
        }
        let cmd = Cmd::FreeContent { ids: free };
        if let Err(flume::TrySendError::Full(cmd)) = self.tx.try_send(cmd) {
            let tx = self.tx.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tx.send_async(cmd).await;
                });
            }
            // Without a runtime the server is stopping: the next start frees it.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EntryId {
        EntryId::parse(s).expect("id")
    }

    #[test]
    fn a_retired_content_waits_for_older_pins_only() {
        let pins = Arc::new(Pins::default());
        let (tx, rx) = flume::unbounded();
        let x = id("aaaaaaaaaa");
        let old = pins.pin(&x, tx.clone());
        assert!(!pins.retire(&x, id("bbbbbbbbbb")), "an older pin keeps it");
        let young = pins.pin(&x, tx.clone());
        drop(old);
        match rx.try_recv() {
            Ok(Cmd::FreeContent { ids }) => assert_eq!(ids, vec![id("bbbbbbbbbb")]),
            _ => panic!("the last older pin frees it"),
        }
        // A pin younger than the switch never kept it.
        drop(young);
        assert!(rx.try_recv().is_err());
        assert!(pins.retire(&x, id("cccccccccc")), "no pin: freed at once");
        assert!(pins.lock().by_entry.is_empty());
    }
}
