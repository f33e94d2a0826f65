//! The recorded disk: a base image, then every write and flush that reached
//! the device, in order, each with a global sequence number; and the image as
//! it stood after any prefix of that record, read without copying anything.
//!
//! Written here rather than taken from a crate: what is needed is a block
//! log with versioned reads (the contents of any block as of any sequence
//! number), which no crate found provides; it is a few hundred lines.
//!
//! Writes are kept whole in an append-only data file (on the host's own
//! filesystem, so the kernel's page cache holds it); an index gives, for
//! every 4 KiB block, the writes that touched it in order, each with the
//! 512-byte sectors of the block it covered. The image as of sequence number
//! `s` is then, sector by sector, the last write at or before `s` that
//! covered the sector, or the base image.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes per indexed block.
pub const BLOCK: u64 = 4096;
/// Bytes per sector: the smallest unit a write may cover (a loop device's
/// logical block size).
pub const SECTOR: u64 = 512;
const SECTORS_PER_BLOCK: u64 = BLOCK / SECTOR;
const FULL: u8 = u8::MAX;

/// One event that reached the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Bytes written at `offset`, kept in the data file at `data_pos`.
    Write {
        offset: u64,
        len: u64,
        data_pos: u64,
    },
    /// A range set to zeroes (a hole punched or zeroes written by
    /// `fallocate`).
    Zero { offset: u64, len: u64 },
    /// A cache flush: everything before it is on stable storage.
    Flush,
}

impl Event {
    /// The byte range a write or zeroing covers.
    pub fn range(&self) -> Option<(u64, u64)> {
        match *self {
            Event::Write { offset, len, .. } | Event::Zero { offset, len } => Some((offset, len)),
            Event::Flush => None,
        }
    }
}

/// Where a sector's bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The data file, at this position for the block's first sector (it may
    /// lie before the write's own bytes when the write starts inside the
    /// block; only the sectors of `mask` are ever read).
    Data(i64),
    Zeroes,
}

/// One write's part in one block.
#[derive(Clone, Copy, Debug)]
struct Piece {
    seq: u64,
    source: Source,
    /// Which of the block's 8 sectors the write covered.
    mask: u8,
}

/// A device's history: base image, events, and the block index.
pub struct Journal {
    base: File,
    size: u64,
    data: File,
    data_len: u64,
    events: Vec<Event>,
    index: HashMap<u64, Vec<Piece>>,
}

impl Journal {
    /// A journal over the base image at `base` (read, never written), with
    /// its written bytes kept in a new file at `data`.
    ///
    /// # Errors
    /// The files cannot be opened or created.
    pub fn new(base: &Path, data: &Path) -> io::Result<Journal> {
        let base = File::open(base)?;
        let size = base.metadata()?.len();
        let data = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(data)?;
        Ok(Journal {
            base,
            size,
            data,
            data_len: 0,
            events: Vec::new(),
            index: HashMap::new(),
        })
    }

    /// The device's size in bytes (the base image's).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many events so far: the sequence number of the last one (events
    /// are numbered from 1). A client that notes this when a reply arrives
    /// knows which events came before it.
    pub fn seq(&self) -> u64 {
        self.events.len() as u64
    }

    /// The event with sequence number `seq` (from 1).
    pub fn event(&self, seq: u64) -> Event {
        self.events[(seq - 1) as usize]
    }

    /// Every event, the one with sequence number `n` at index `n - 1`.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Bytes of written data kept.
    pub fn data_bytes(&self) -> u64 {
        self.data_len
    }

    fn check_range(&self, offset: u64, len: u64) -> io::Result<()> {
        if offset % SECTOR != 0 || len % SECTOR != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("I/O at {offset}+{len} is not in whole 512-byte sectors"),
            ));
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "I/O at {offset}+{len} ends past the device's {} bytes",
                    self.size
                ),
            ));
        }
        Ok(())
    }

    /// Records a write; returns its sequence number.
    ///
    /// # Errors
    /// A range not in whole sectors or past the end, or the data file failing.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<u64> {
        let len = bytes.len() as u64;
        self.check_range(offset, len)?;
        let data_pos = self.data_len;
        self.data.write_all_at(bytes, data_pos)?;
        self.data_len += len;
        self.push(Event::Write {
            offset,
            len,
            data_pos,
        })
    }

    /// Records that a range now reads as zeroes; returns its sequence number.
    ///
    /// # Errors
    /// A range not in whole sectors or past the end.
    pub fn zero(&mut self, offset: u64, len: u64) -> io::Result<u64> {
        self.check_range(offset, len)?;
        self.push(Event::Zero { offset, len })
    }

    /// Records a cache flush; returns its sequence number.
    pub fn flush(&mut self) -> u64 {
        self.events.push(Event::Flush);
        self.seq()
    }

    fn push(&mut self, event: Event) -> io::Result<u64> {
        self.events.push(event);
        let seq = self.seq();
        for (block, source, mask) in pieces(&event) {
            self.index
                .entry(block)
                .or_default()
                .push(Piece { seq, source, mask });
        }
        Ok(seq)
    }

    /// The sequence numbers of every flush, in order.
    pub fn flushes(&self) -> Vec<u64> {
        self.events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Event::Flush))
            .map(|(i, _)| i as u64 + 1)
            .collect()
    }

    /// Reads `buf.len()` bytes at `offset` of the image as it stood after
    /// the event `at` (0: the base image), with `extra` (later writes that a
    /// cut keeps, see [`Overlay`]) laid over it.
    ///
    /// # Errors
    /// A range not in whole sectors or past the end, or a file failing.
    pub fn read_at(
        &self,
        at: u64,
        extra: Option<&Overlay>,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        let mut pos = 0usize;
        while pos < buf.len() {
            let abs = offset + pos as u64;
            let block = abs / BLOCK;
            let first_sector = ((abs % BLOCK) / SECTOR) as usize;
            let sectors = ((buf.len() - pos) as u64 / SECTOR)
                .min(SECTORS_PER_BLOCK - first_sector as u64) as usize;
            let mut whole = [0u8; BLOCK as usize];
            self.read_block(at, extra, block, &mut whole)?;
            let from = first_sector * SECTOR as usize;
            let n = sectors * SECTOR as usize;
            buf[pos..pos + n].copy_from_slice(&whole[from..from + n]);
            pos += n;
        }
        Ok(())
    }

    /// The whole block `block` as of event `at`, with `extra` over it.
    fn read_block(
        &self,
        at: u64,
        extra: Option<&Overlay>,
        block: u64,
        out: &mut [u8; BLOCK as usize],
    ) -> io::Result<()> {
        // Which sectors are settled, newest source first: the overlay's
        // pieces (newest last in its list), then the journal's.
        let mut filled: u8 = 0;
        if let Some(over) = extra.and_then(|o| o.blocks.get(&block)) {
            for p in over.iter().rev() {
                self.fill(p.source, p.mask & !filled, out)?;
                filled |= p.mask;
                if filled == FULL {
                    return Ok(());
                }
            }
        }
        if let Some(list) = self.index.get(&block) {
            let visible = list.partition_point(|p| p.seq <= at);
            for p in list[..visible].iter().rev() {
                self.fill(p.source, p.mask & !filled, out)?;
                filled |= p.mask;
                if filled == FULL {
                    return Ok(());
                }
            }
        }
        if filled != FULL {
            let mut base = [0u8; BLOCK as usize];
            read_full_at(&self.base, &mut base, block * BLOCK)?;
            for s in 0..SECTORS_PER_BLOCK as usize {
                if filled & (1 << s) == 0 {
                    let r = s * SECTOR as usize..(s + 1) * SECTOR as usize;
                    out[r.clone()].copy_from_slice(&base[r]);
                }
            }
        }
        Ok(())
    }

    /// Copies the sectors of `mask` from `source` into `out`.
    fn fill(&self, source: Source, mask: u8, out: &mut [u8; BLOCK as usize]) -> io::Result<()> {
        let mut s = 0usize;
        while s < SECTORS_PER_BLOCK as usize {
            if mask & (1 << s) == 0 {
                s += 1;
                continue;
            }
            // A run of sectors in one read.
            let mut e = s;
            while e < SECTORS_PER_BLOCK as usize && mask & (1 << e) != 0 {
                e += 1;
            }
            let r = s * SECTOR as usize..e * SECTOR as usize;
            match source {
                Source::Zeroes => out[r].fill(0),
                Source::Data(block_pos) => {
                    let at = block_pos + (s as i64) * SECTOR as i64;
                    read_full_at(&self.data, &mut out[r], at as u64)?;
                }
            }
            s = e;
        }
        Ok(())
    }
}

/// The blocks an event touches: block number, source, sectors covered.
fn pieces(event: &Event) -> Vec<(u64, Source, u8)> {
    let (offset, len, data_pos) = match *event {
        Event::Write {
            offset,
            len,
            data_pos,
        } => (offset, len, Some(data_pos)),
        Event::Zero { offset, len } => (offset, len, None),
        Event::Flush => return Vec::new(),
    };
    let mut out = Vec::new();
    let end = offset + len;
    let mut block = offset / BLOCK;
    while block * BLOCK < end {
        let start = (block * BLOCK).max(offset);
        let stop = ((block + 1) * BLOCK).min(end);
        let first = (start - block * BLOCK) / SECTOR;
        let last = (stop - block * BLOCK) / SECTOR;
        let mut mask = 0u8;
        for s in first..last {
            mask |= 1 << s;
        }
        let source = match data_pos {
            Some(pos) => Source::Data(pos as i64 + (block * BLOCK) as i64 - offset as i64),
            None => Source::Zeroes,
        };
        out.push((block, source, mask));
        block += 1;
    }
    out
}

fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    // The base image is sparse and as long as the device, so a short read
    // only happens past its end, which check_range excludes.
    file.read_exact_at(buf, at)
}

/// Writes that a cut keeps beyond its flush, laid over the image: whole
/// writes, or some of their sectors, applied in the order they happened.
#[derive(Default)]
pub struct Overlay {
    blocks: HashMap<u64, Vec<Piece>>,
}

impl Overlay {
    /// Keeps the part of event `seq` that lies in `[from, to)` (byte offsets
    /// on the device, sector-aligned; the whole event if it lies within).
    /// Events must be added in increasing order of `seq`.
    pub fn keep(&mut self, journal: &Journal, seq: u64, from: u64, to: u64) {
        for (block, source, mask) in pieces(&journal.event(seq)) {
            let mut keep = 0u8;
            for s in 0..SECTORS_PER_BLOCK {
                let at = block * BLOCK + s * SECTOR;
                if at >= from && at < to {
                    keep |= 1 << s;
                }
            }
            let mask = mask & keep;
            if mask != 0 {
                self.blocks
                    .entry(block)
                    .or_default()
                    .push(Piece { seq, source, mask });
            }
        }
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A plain in-memory model of the device that every read is compared with.
    struct Model {
        history: Vec<Vec<u8>>,
    }

    #[test]
    fn reads_match_a_plain_copy_at_every_point_of_history() {
        let dir = tempfile::tempdir().unwrap();
        let size = 64 * BLOCK;
        let mut base = vec![0u8; size as usize];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        rng.fill(&mut base[..]);
        std::fs::write(dir.path().join("base"), &base).unwrap();
        let mut j = Journal::new(&dir.path().join("base"), &dir.path().join("data")).unwrap();
        let mut model = Model {
            history: vec![base.clone()],
        };
        let mut current = base;
        for _ in 0..400 {
            match rng.gen_range(0..10) {
                0 => {
                    j.flush();
                }
                1 => {
                    let off = rng.gen_range(0..size / SECTOR) * SECTOR;
                    let len = rng.gen_range(1..=((size - off) / SECTOR).min(20)) * SECTOR;
                    j.zero(off, len).unwrap();
                    current[off as usize..(off + len) as usize].fill(0);
                }
                _ => {
                    let off = rng.gen_range(0..size / SECTOR) * SECTOR;
                    let len = rng.gen_range(1..=((size - off) / SECTOR).min(40)) * SECTOR;
                    let mut bytes = vec![0u8; len as usize];
                    rng.fill(&mut bytes[..]);
                    j.write(off, &bytes).unwrap();
                    current[off as usize..(off + len) as usize].copy_from_slice(&bytes);
                }
            }
            model.history.push(current.clone());
        }
        for at in 0..=j.seq() {
            let mut got = vec![0u8; size as usize];
            j.read_at(at, None, 0, &mut got).unwrap();
            assert!(got == model.history[at as usize], "image at event {at}");
        }
        // Unaligned reads in the middle agree too.
        let mut got = vec![0u8; 3 * SECTOR as usize];
        j.read_at(200, None, 5 * SECTOR, &mut got).unwrap();
        assert_eq!(got[..], model.history[200][5 * 512..8 * 512]);
        // Misaligned I/O is refused.
        assert!(j.write(100, &[0u8; 512]).is_err());
        assert!(j.read_at(1, None, 0, &mut [0u8; 100]).is_err());
    }

    #[test]
    fn an_overlay_keeps_the_chosen_sectors_of_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8 * BLOCK;
        std::fs::write(dir.path().join("base"), vec![1u8; size as usize]).unwrap();
        let mut j = Journal::new(&dir.path().join("base"), &dir.path().join("data")).unwrap();
        j.write(0, &[2u8; 2 * BLOCK as usize]).unwrap();
        let flush = j.flush();
        let w1 = j.write(SECTOR, &[3u8; 3 * SECTOR as usize]).unwrap();
        let w2 = j.write(BLOCK, &[4u8; BLOCK as usize]).unwrap();
        let mut over = Overlay::default();
        // Only the second and third sectors of w1, then all of w2.
        over.keep(&j, w1, SECTOR, 3 * SECTOR);
        over.keep(&j, w2, 0, size);
        let mut got = vec![0u8; 3 * BLOCK as usize];
        j.read_at(flush, Some(&over), 0, &mut got).unwrap();
        let mut want = vec![2u8; 2 * BLOCK as usize];
        want.extend_from_slice(&[1u8; BLOCK as usize]);
        want[SECTOR as usize..3 * SECTOR as usize].fill(3);
        want[BLOCK as usize..2 * BLOCK as usize].fill(4);
        assert!(got == want);
    }
}
