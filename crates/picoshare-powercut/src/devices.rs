//! The files of the FUSE filesystem (`fusefs.rs`), each a fixed-size block
//! device image.
//!
//! Two kinds ([`Device`]): [`Recorder`], the disk a workload runs on, whose
//! every write and flush goes into the [`Journal`]; and [`CutImage`], the
//! disk as a power cut left it (the journal's image at a flush plus the later
//! writes the cut keeps), with what is written to it afterwards (journal
//! recovery, the restarted server) kept apart in a copy-on-write file, so
//! that checking a cut never copies or changes the recording.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use crate::journal::{Journal, Overlay, BLOCK, SECTOR};

/// A file of this filesystem: a fixed-size block device image.
pub trait Device: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at `offset` (whole sectors).
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `data` at `offset` (whole sectors).
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Sets a range to zeroes (`fallocate` punching a hole or zeroing).
    fn zero(&self, offset: u64, len: u64) -> io::Result<()>;
    /// A cache flush.
    fn flush(&self);
}

/// The recorded disk: reads see every write so far; writes, zeroings and
/// flushes are appended to the journal.
pub struct Recorder {
    journal: Arc<RwLock<Journal>>,
}

impl Recorder {
    /// A device recording into `journal`.
    pub fn new(journal: Arc<RwLock<Journal>>) -> Recorder {
        Recorder { journal }
    }
}

fn read_lock(j: &RwLock<Journal>) -> std::sync::RwLockReadGuard<'_, Journal> {
    j.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(j: &RwLock<Journal>) -> std::sync::RwLockWriteGuard<'_, Journal> {
    j.write().unwrap_or_else(|e| e.into_inner())
}

impl Device for Recorder {
    fn size(&self) -> u64 {
        read_lock(&self.journal).size()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let j = read_lock(&self.journal);
        j.read_at(j.seq(), None, offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        write_lock(&self.journal).write(offset, data).map(|_| ())
    }

    fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        write_lock(&self.journal).zero(offset, len).map(|_| ())
    }

    fn flush(&self) {
        write_lock(&self.journal).flush();
    }
}

/// The disk as a power cut left it, writable without changing the journal.
pub struct CutImage {
    journal: Arc<RwLock<Journal>>,
    at: u64,
    overlay: Overlay,
    /// Blocks written since the cut, kept whole at their own offsets in a
    /// sparse file.
    cow: File,
    written: Mutex<HashSet<u64>>,
}

impl CutImage {
    /// The image after event `at` with `overlay` over it; writes go to a new
    /// file at `cow_path` (removed by the caller once the image is dropped).
    ///
    /// # Errors
    /// The copy-on-write file cannot be created.
    pub fn new(
        journal: Arc<RwLock<Journal>>,
        at: u64,
        overlay: Overlay,
        cow_path: &Path,
    ) -> io::Result<CutImage> {
        let cow = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(cow_path)?;
        Ok(CutImage {
            journal,
            at,
            overlay,
            cow,
            written: Mutex::new(HashSet::new()),
        })
    }

    /// Bytes written to the image since the cut (in whole blocks).
    pub fn written_bytes(&self) -> u64 {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).len() as u64 * BLOCK
    }

    fn read_block(&self, written: &HashSet<u64>, block: u64, out: &mut [u8]) -> io::Result<()> {
        if written.contains(&block) {
            self.cow.read_exact_at(out, block * BLOCK)
        } else {
            read_lock(&self.journal).read_at(self.at, Some(&self.overlay), block * BLOCK, out)
        }
    }

    /// Applies `f` to each block a range touches: block number, the range's
    /// part of the block (start, length), and the offset of that part in the
    /// caller's buffer.
    fn for_blocks(
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, usize, usize, usize) -> io::Result<()>,
    ) -> io::Result<()> {
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let block = at / BLOCK;
            let start = (at % BLOCK) as usize;
            let n = ((BLOCK - at % BLOCK).min(end - at)) as usize;
            f(block, start, n, (at - offset) as usize)?;
            at += n as u64;
        }
        Ok(())
    }

    fn write_with(&self, offset: u64, len: u64, fill: impl Fn(&mut [u8], usize)) -> io::Result<()> {
        check_sectors(offset, len, self.size())?;
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        Self::for_blocks(offset, len, |block, start, n, buf_pos| {
            let mut whole = [0u8; BLOCK as usize];
            if n != BLOCK as usize {
                self.read_block(&written, block, &mut whole)?;
            }
            fill(&mut whole[start..start + n], buf_pos);
            self.cow.write_all_at(&whole, block * BLOCK)?;
            written.insert(block);
            Ok(())
        })
    }
}

fn check_sectors(offset: u64, len: u64, size: u64) -> io::Result<()> {
    if offset % SECTOR != 0 || len % SECTOR != 0 || offset + len > size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("I/O at {offset}+{len} is not whole sectors within {size} bytes"),
        ));
    }
    Ok(())
}

impl Device for CutImage {
    fn size(&self) -> u64 {
        read_lock(&self.journal).size()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_sectors(offset, buf.len() as u64, self.size())?;
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.is_empty() {
            drop(written);
            return read_lock(&self.journal).read_at(self.at, Some(&self.overlay), offset, buf);
        }
        Self::for_blocks(offset, buf.len() as u64, |block, start, n, pos| {
            if written.contains(&block) {
                self.cow
                    .read_exact_at(&mut buf[pos..pos + n], block * BLOCK + start as u64)
            } else {
                read_lock(&self.journal).read_at(
                    self.at,
                    Some(&self.overlay),
                    block * BLOCK + start as u64,
                    &mut buf[pos..pos + n],
                )
            }
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_with(offset, data.len() as u64, |dst, pos| {
            dst.copy_from_slice(&data[pos..pos + dst.len()]);
        })
    }

    fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        self.write_with(offset, len, |dst, _| dst.fill(0))
    }

    fn flush(&self) {}
}
