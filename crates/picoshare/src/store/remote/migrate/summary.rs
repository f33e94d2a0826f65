//! What the copy did, file by file ([`Outcome`]) and in all ([`Summary`]),
//! as the command reports it.

use std::time::Instant;

/// What the copy did.
#[derive(Debug, Default)]
pub(super) struct Summary {
    pub(super) copied: u64,
    pub(super) bytes: u64,
    pub(super) skipped_present: u64,
    /// Files already copied whose details (name, note, expiration…) changed.
    pub(super) updated: u64,
    /// Files deleted from the source since the last copy.
    pub(super) removed: u64,
    pub(super) skipped_empty: u64,
    pub(super) failed: u64,
}

/// What became of one of the source's files.
pub(super) enum Outcome {
    /// Copied and verified, this many bytes.
    Copied(u64),
    /// Copied before; `true` if its details were updated.
    Present(bool),
    /// It has no data.
    Empty,
    Failed,
}

impl Summary {
    pub(super) fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Copied(bytes) => {
                self.copied += 1;
                self.bytes += bytes;
            }
            Outcome::Present(updated) => {
                self.skipped_present += 1;
                self.updated += u64::from(updated);
            }
            Outcome::Empty => self.skipped_empty += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    pub(super) fn tell(&self, started: Instant) {
        eprintln!(
            "done in {:.1} s: {} files copied ({}), {} already there ({} updated), {} removed, \
             {} without data skipped, {} failed",
            started.elapsed().as_secs_f64(),
            self.copied,
            human(self.bytes),
            self.skipped_present,
            self.updated,
            self.removed,
            self.skipped_empty,
            self.failed
        );
    }
}

/// A size for people: B, KiB, MiB or GiB.
pub(super) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", b / f64::from(1u32 << 30))
    } else if b >= f64::from(1u32 << 20) {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
