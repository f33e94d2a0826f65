//! Cut points: where the power goes off, and what of the disk's volatile
//! cache survives.
//!
//! A cut point is a flush `k` of the journal (everything before it is on
//! stable storage) plus some of the writes the device received after it and
//! before the next flush: none, all, a random subset of whole writes, or a
//! random subset of their 4 KiB pieces (a disk may persist part of a large
//! write). Flushes are drawn evenly over the whole recording (stratified), so
//! every phase of the workload is cut, and the seed makes the draw
//! repeatable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::journal::{Event, Journal, Overlay, BLOCK};

/// What a cut keeps of the writes after its flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    All,
    /// Each whole write kept or not, at even odds.
    SomeWrites,
    /// Each 4 KiB piece of each write kept or not, at even odds.
    SomePieces,
}

/// One cut point.
#[derive(Clone, Debug)]
pub struct Cut {
    /// 1-based number in the run.
    pub number: usize,
    /// Which flush (1-based) of how many.
    pub flush_no: usize,
    pub flushes: usize,
    /// The flush's sequence number: every change acknowledged at or before
    /// it must survive.
    pub at: u64,
    pub keep: Keep,
    /// Writes between this flush and the next (or the end of the recording).
    pub later: usize,
    /// What is kept of them: (sequence number, from, to) device byte ranges.
    pub kept: Vec<(u64, u64, u64)>,
    /// The recording's last sequence number.
    pub end: u64,
}

impl Cut {
    /// One line saying where the cut is and what it keeps.
    pub fn describe(&self) -> String {
        let writes = self
            .kept
            .iter()
            .map(|k| k.0)
            .collect::<std::collections::BTreeSet<_>>();
        let bytes: u64 = self.kept.iter().map(|k| k.2 - k.1).sum();
        let what = match self.keep {
            _ if self.later == 0 => "no later writes".to_string(),
            Keep::Nothing => format!("none of the {} later writes", self.later),
            Keep::All => format!("all {} later writes ({} bytes)", self.later, bytes),
            Keep::SomeWrites => format!(
                "{} of the {} later writes, whole ({} bytes)",
                writes.len(),
                self.later,
                bytes
            ),
            Keep::SomePieces => format!(
                "{} 4 KiB pieces of {} of the {} later writes ({} bytes)",
                self.kept.len(),
                writes.len(),
                self.later,
                bytes
            ),
        };
        format!(
            "cut {}: flush {} of {} (event {} of {}) + {}",
            self.number, self.flush_no, self.flushes, self.at, self.end, what
        )
    }

    /// The last event whose effect the cut can hold: its flush, or the last
    /// later write it keeps.
    pub fn horizon(&self) -> u64 {
        self.kept
            .iter()
            .map(|k| k.0)
            .max()
            .unwrap_or(self.at)
            .max(self.at)
    }

    /// The writes this cut keeps, as an overlay on the image at its flush.
    pub fn overlay(&self, journal: &Journal) -> Overlay {
        let mut o = Overlay::default();
        for &(seq, from, to) in &self.kept {
            o.keep(journal, seq, from, to);
        }
        o
    }
}

/// `n` cut points over the events up to `end`, drawn with `seed`.
pub fn plan(journal: &Journal, end: u64, n: usize, seed: u64) -> Vec<Cut> {
    let flushes: Vec<u64> = journal
        .flushes()
        .into_iter()
        .filter(|&f| f <= end)
        .collect();
    if flushes.is_empty() || n == 0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f = flushes.len();
    (0..n)
        .map(|i| {
            let lo = i * f / n;
            let hi = ((i + 1) * f / n).max(lo + 1).min(f);
            let idx = rng.gen_range(lo..hi);
            let at = flushes[idx];
            let next = flushes.get(idx + 1).copied().unwrap_or(end + 1);
            let later: Vec<(u64, u64, u64)> = (at + 1..next)
                .filter_map(|seq| {
                    journal
                        .event(seq)
                        .range()
                        .map(|(off, len)| (seq, off, off + len))
                })
                .collect();
            let keep = match rng.gen_range(0..4) {
                0 => Keep::Nothing,
                1 => Keep::All,
                2 => Keep::SomeWrites,
                _ => Keep::SomePieces,
            };
            let kept = match keep {
                Keep::Nothing => Vec::new(),
                Keep::All => later.clone(),
                Keep::SomeWrites => later
                    .iter()
                    .copied()
                    .filter(|_| rng.gen_bool(0.5))
                    .collect(),
                Keep::SomePieces => {
                    let mut out = Vec::new();
                    for &(seq, from, to) in &later {
                        let mut at = from;
                        while at < to {
                            let piece_end = ((at / BLOCK + 1) * BLOCK).min(to);
                            if rng.gen_bool(0.5) {
                                out.push((seq, at, piece_end));
                            }
                            at = piece_end;
                        }
                    }
                    out
                }
            };
            debug_assert!(kept
                .iter()
                .all(|k| matches!(journal.event(k.0), Event::Write { .. } | Event::Zero { .. })));
            Cut {
                number: i + 1,
                flush_no: idx + 1,
                flushes: f,
                at,
                keep,
                later: later.len(),
                kept,
                end,
            }
        })
        .collect()
}
