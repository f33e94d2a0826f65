//! A limited download counted durably before its last byte leaves: the
//! reservation a full GET holds ([`CountGuard`]) and the body that holds
//! the last byte back until the count is committed ([`Counting`]). A crash
//! or a power cut can then never give a download back, and a download that
//! does not finish releases its reservation.

use bytes::Bytes;
use futures_util::StreamExt;

use super::pump;
use crate::ids::EntryId;
use crate::store::Store;

/// One reserved download of a limited entry. It is counted, durably, once
/// every byte of the body but the last has been handed to the connection,
/// and only then is the last byte sent: so a crash or power cut can never
/// give a download back. Dropped before that (the client went away, reading
/// failed, the reply is not a full body, counting failed), it releases the
/// reservation.
pub(super) struct CountGuard {
    pub(super) store: Store,
    pub(super) id: EntryId,
    pub(super) done: bool,
}

impl CountGuard {
    /// Counts the download; false (and the reservation released) if that
    /// failed, in which case the last byte must not be sent.
    async fn count(mut self) -> bool {
        match self.store.count_download(&self.id).await {
            Ok(()) => {
                self.done = true;
                true
            }
            Err(e) => {
                tracing::error!(entry = %crate::ids::log_ref(self.id.as_str()), error = %e, "could not count a limited download; its last byte is not sent");
                false
            }
        }
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        if !self.done {
            self.store.release_download(&self.id);
        }
    }
}

/// A download body on its way out, and the count of a limited download:
/// the piece that holds the last byte is sent without it, then the download
/// is counted, then the last byte goes.
pub(super) struct Counting {
    pub(super) pieces: pump::Pieces,
    pub(super) counter: Option<CountGuard>,
    pub(super) total: u64,
    pub(super) sent: u64,
    /// The last byte, held back until the download is counted.
    pub(super) last: Option<Bytes>,
}

impl Counting {
    pub(super) async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if let Some(last) = self.last.take() {
            return Some((self.count_then(last).await, self));
        }
        match self.pieces.next().await {
            Some(Ok(piece)) => {
                self.sent += piece.len() as u64;
                if self.counter.is_some() && self.sent >= self.total && !piece.is_empty() {
                    let split = piece.len() - 1;
                    self.last = Some(piece.slice(split..));
                    return Some((Ok(piece.slice(..split)), self));
                }
                Some((Ok(piece), self))
            }
            // An error: the download does not count.
            Some(Err(e)) => {
                drop(self.counter.take());
                Some((Err(e), self))
            }
            // The end. An empty file's full body counts here.
            None => {
                if self.counter.is_some() && self.sent >= self.total {
                    return Some((self.count_then(Bytes::new()).await, self));
                }
                drop(self.counter.take());
                None
            }
        }
    }

    /// Counts the download, then gives `last` to send; an error instead if
    /// counting failed, which cuts the connection before the last byte.
    async fn count_then(&mut self, last: Bytes) -> Result<Bytes, std::io::Error> {
        let counted = match self.counter.take() {
            Some(c) => c.count().await,
            None => true,
        };
        if counted {
            Ok(last)
        } else {
            Err(std::io::Error::other("the download could not be counted"))
        }
    }
}
