//! What the load's uploaders send and its downloaders check: the sources
//! (random bytes in memory for small files, the shared test files on disk
//! for large ones) and the verifier that compares every downloaded byte
//! with what was uploaded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};

use super::{SizeClass, IN_MEMORY_MAX, SIZES_PER_CLASS};

/// What an upload holds: bytes in memory, or a test file on disk.
pub(super) enum Content {
    Memory(Bytes),
    File(PathBuf),
}

/// One file the uploaders can send: its size class, size and content.
pub(super) struct Source {
    pub(super) class: usize,
    pub(super) size: u64,
    pub(super) content: Content,
}

/// Compares a download, piece by piece, with the source it was uploaded from.
pub(super) struct Verifier<'a> {
    pub(super) source: &'a Source,
    pub(super) file: Option<std::fs::File>,
    pub(super) offset: u64,
    pub(super) buf: Vec<u8>,
}

impl<'a> Verifier<'a> {
    pub(super) fn new(source: &'a Source) -> anyhow::Result<Self> {
        let file = match &source.content {
            Content::File(path) => Some(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
            Content::Memory(_) => None,
        };
        Ok(Verifier {
            source,
            file,
            offset: 0,
            buf: Vec::new(),
        })
    }

    pub(super) fn feed(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        let end = self.offset + piece.len() as u64;
        if end > self.source.size {
            bail!(
                "downloaded more than the {} bytes uploaded",
                self.source.size
            );
        }
        let expected: &[u8] = match (&self.source.content, &mut self.file) {
            (Content::Memory(data), _) => &data[self.offset as usize..end as usize],
            (Content::File(_), Some(file)) => {
                self.buf.resize(piece.len(), 0);
                file.read_exact(&mut self.buf)?;
                &self.buf
            }
            (Content::File(path), None) => bail!("{} is not open", path.display()),
        };
        if let Some(i) = expected.iter().zip(piece).position(|(a, b)| a != b) {
            bail!(
                "downloaded byte {} differs from the uploaded one",
                self.offset + i as u64
            );
        }
        self.offset = end;
        Ok(())
    }

    pub(super) fn finish(&self) -> anyhow::Result<()> {
        if self.offset != self.source.size {
            bail!(
                "downloaded {} bytes of the {} uploaded",
                self.offset,
                self.source.size
            );
        }
        Ok(())
    }
}

/// Deterministic random bytes of one size.
pub(super) fn random_bytes(size: u64, seed: u64) -> Bytes {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ size);
    let mut data = vec![0u8; size as usize];
    rng.fill_bytes(&mut data);
    Bytes::from(data)
}

/// The sources of each class: a few sizes spread evenly on a log scale
/// between the class's bounds.
pub(super) fn make_sources(
    mix: &[SizeClass],
    files_dir: &Path,
    seed: u64,
) -> anyhow::Result<Vec<Vec<Arc<Source>>>> {
    let mut out = Vec::new();
    for (class, c) in mix.iter().enumerate() {
        let mut sizes: Vec<u64> = (0..SIZES_PER_CLASS)
            .map(|i| {
                let t = i as f64 / (SIZES_PER_CLASS - 1) as f64;
                let (lo, hi) = ((c.min as f64).ln(), (c.max as f64).ln());
                ((lo + t * (hi - lo)).exp().round() as u64).clamp(c.min, c.max)
            })
            .map(|s| {
                if s > IN_MEMORY_MAX {
                    (s >> 20).max(1) << 20
                } else {
                    s
                }
            })
            .collect();
        sizes.dedup();
        let mut sources = Vec::new();
        for size in sizes {
            let content = if size <= IN_MEMORY_MAX {
                Content::Memory(random_bytes(size, seed))
            } else {
                Content::File(crate::plan::files::ensure(files_dir, size >> 20)?)
            };
            sources.push(Arc::new(Source {
                class,
                size,
                content,
            }));
        }
        out.push(sources);
    }
    Ok(out)
}
