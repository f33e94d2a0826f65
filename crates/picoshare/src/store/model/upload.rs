//! What the upload sinks of both backends share: cutting an upload's bytes
//! into pieces of one size, SQLite's chunk rows or the bucket's multipart
//! parts. Every piece but the last is full, so the piece that holds a byte
//! follows from its offset (range reads and resumed uploads rely on it).

use bytes::{Bytes, BytesMut};

/// An upload's bytes, cut into pieces of `size` bytes as they arrive.
///
/// A piece that a network buffer holds whole is taken from it without a
/// copy; the bytes of a piece that spans buffers are gathered in one buffer
/// of `size` bytes, the only memory it holds.
#[derive(Debug)]
pub(crate) struct Pieces {
    size: usize,
    buf: BytesMut,
}

impl Pieces {
    /// Pieces of `size` bytes (at least 1), continuing after `tail`: the
    /// bytes after the last full piece stored before (empty for a new
    /// upload).
    pub(crate) fn new(size: usize, tail: &[u8]) -> Self {
        let size = size.max(1);
        let mut buf = BytesMut::new();
        if !tail.is_empty() {
            buf.reserve(size.max(tail.len()));
            buf.extend_from_slice(tail);
        }
        Pieces { size, buf }
    }

    /// The size of every piece but the last.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The next full piece that `data` completes, taking its bytes from
    /// `data`; `None` once `data` is used up, its rest kept for the next
    /// call. Call it until it returns `None`.
    pub(crate) fn next(&mut self, data: &mut Bytes) -> Option<Bytes> {
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.size {
                // A whole piece straight from the network buffer.
                return Some(data.split_to(self.size));
            }
            if self.buf.capacity() < self.size {
                self.buf.reserve(self.size - self.buf.len());
            }
            let take = (self.size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() == self.size {
                return Some(self.buf.split().freeze());
            }
        }
        None
    }

    /// The bytes after the last full piece, not yet taken.
    pub(crate) fn rest(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes after the last full piece (the last, partial piece,
    /// or a resumable upload's tail); empty if there are none.
    pub(crate) fn take_rest(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `inputs` and returns the pieces cut and the rest.
    fn cut(size: usize, tail: &[u8], inputs: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut pieces = Pieces::new(size, tail);
        let mut out = Vec::new();
        for input in inputs {
            let mut data = Bytes::copy_from_slice(input);
            while let Some(p) = pieces.next(&mut data) {
                out.push(p.to_vec());
            }
            assert!(data.is_empty());
        }
        (out, pieces.take_rest().to_vec())
    }

    #[test]
    fn pieces_are_full_whatever_the_reads() {
        let (pieces, rest) = cut(4, b"", &[b"ab", b"cdefghij", b"k"]);
        assert_eq!(pieces, [b"abcd".to_vec(), b"efgh".to_vec()]);
        assert_eq!(rest, b"ijk");
        let (pieces, rest) = cut(3, b"", &[b"abcdef"]);
        assert_eq!(pieces, [b"abc".to_vec(), b"def".to_vec()]);
        assert!(rest.is_empty());
    }

    #[test]
    fn a_tail_is_continued() {
        let mut pieces = Pieces::new(4, b"xy");
        assert_eq!(pieces.rest(), b"xy");
        let mut data = Bytes::from_static(b"zw12");
        assert_eq!(pieces.next(&mut data).as_deref(), Some(&b"xyzw"[..]));
        assert_eq!(pieces.next(&mut data), None);
        assert_eq!(pieces.rest(), b"12");
        assert_eq!(&pieces.take_rest()[..], b"12");
        assert!(pieces.rest().is_empty());
    }

    #[test]
    fn a_whole_piece_is_not_copied() {
        let mut pieces = Pieces::new(4, b"");
        let mut data = Bytes::from(b"abcdefgh".to_vec());
        let start = data.as_ptr();
        let first = pieces.next(&mut data).unwrap_or_default();
        assert_eq!(first.as_ptr(), start);
    }
}
