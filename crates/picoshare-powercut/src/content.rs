//! The workload's file contents: seeded pseudo-random bytes, made again on
//! demand instead of kept, so that a 136 MiB file costs no memory and any
//! download can be compared with what was sent byte for byte.

use std::io::{self, Read};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A file's bytes: `len` bytes of the stream seeded with `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Content {
    pub seed: u64,
    pub len: u64,
}

impl Content {
    /// A reader of the bytes.
    pub fn reader(&self) -> ContentReader {
        ContentReader {
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            block: Box::new([0u8; STREAM_BLOCK]),
            used: STREAM_BLOCK,
            left: self.len,
        }
    }

    /// The bytes, in memory (for small files).
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len as usize];
        let mut r = self.reader();
        r.read_exact(&mut v).expect("in-memory read");
        v
    }

    /// The first `n` bytes.
    pub fn prefix(&self, n: u64) -> Vec<u8> {
        Content {
            seed: self.seed,
            len: n.min(self.len),
        }
        .bytes()
    }

    /// Compares the bytes `other` yields with these; `Ok(())` when they are
    /// identical, otherwise a sentence saying where they first differ.
    ///
    /// # Errors
    /// Reading `other` fails.
    pub fn compare(&self, other: &mut impl Read) -> io::Result<Result<(), String>> {
        let mut want = self.reader();
        let mut a = vec![0u8; 256 << 10];
        let mut b = vec![0u8; 256 << 10];
        let mut at = 0u64;
        loop {
            let n = read_fill(other, &mut a)?;
            let m = read_fill(&mut want, &mut b[..n.max(1)])?;
            if n == 0 {
                return Ok(if at == self.len {
                    Ok(())
                } else {
                    Err(format!("{at} bytes where {} were stored", self.len))
                });
            }
            if m < n {
                return Ok(Err(format!(
                    "more than the {} bytes stored (at least {})",
                    self.len,
                    at + n as u64
                )));
            }
            if let Some(i) = (0..n).find(|&i| a[i] != b[i]) {
                return Ok(Err(format!("bytes differ from offset {}", at + i as u64)));
            }
            at += n as u64;
        }
    }
}

/// Reads until `buf` is full or the end; returns how many bytes.
fn read_fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The generator is always asked for whole blocks of this size, so that the
/// stream does not depend on how a reader splits its reads.
const STREAM_BLOCK: usize = 16 << 10;

/// The bytes of a [`Content`] as a [`Read`].
pub struct ContentReader {
    rng: ChaCha8Rng,
    block: Box<[u8; STREAM_BLOCK]>,
    used: usize,
    left: u64,
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.used == STREAM_BLOCK {
            self.rng.fill_bytes(&mut self.block[..]);
            self.used = 0;
        }
        let n = (buf.len() as u64)
            .min(self.left)
            .min((STREAM_BLOCK - self.used) as u64) as usize;
        buf[..n].copy_from_slice(&self.block[self.used..self.used + n]);
        self.used += n;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_same_however_it_is_read() {
        let c = Content {
            seed: 3,
            len: 100_003,
        };
        let whole = c.bytes();
        let mut pieces = Vec::new();
        let mut r = c.reader();
        let mut buf = [0u8; 977];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..n]);
        }
        assert_eq!(whole, pieces);
        assert_eq!(c.prefix(10), whole[..10]);
        assert_eq!(c.compare(&mut &whole[..]).unwrap(), Ok(()));
        let mut changed = whole.clone();
        changed[5000] ^= 1;
        assert_eq!(
            c.compare(&mut &changed[..]).unwrap(),
            Err("bytes differ from offset 5000".to_string())
        );
        assert!(c.compare(&mut &whole[..100]).unwrap().is_err());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(c.compare(&mut &longer[..]).unwrap().is_err());
    }
}
