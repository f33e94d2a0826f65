//! Test files: random bytes, MiB-sized, made once and reused across runs.
//!
//! Random content defeats any compression or deduplication between the client
//! and the disk. The bytes come from a seeded ChaCha generator, so a file of a
//! given size is the same on every machine, and a run can check a download
//! against it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::{RngCore, SeedableRng};

/// Seed of the test files' contents.
const CONTENT_SEED: u64 = 0x5049_434f_5348_4152; // "PICOSHAR"

/// Path of the test file of `size_mib` MiB in `dir`.
pub fn path_for(dir: &Path, size_mib: u64) -> PathBuf {
    dir.join(format!("random-{size_mib}MiB.bin"))
}

/// Makes sure the test file of `size_mib` MiB exists in `dir` (creating it if
/// missing or of the wrong size) and returns its path.
///
/// # Errors
/// I/O failures.
pub fn ensure(dir: &Path, size_mib: u64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = path_for(dir, size_mib);
    let want = size_mib << 20;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == want) {
        return Ok(path);
    }
    let tmp = path.with_extension("partial");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(CONTENT_SEED ^ size_mib);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..size_mib {
        rng.fill_bytes(&mut buf);
        out.write_all(&buf)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_made_once_with_fixed_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = ensure(dir.path(), 2).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 2 << 20);
        let first = std::fs::read(&p).unwrap();
        let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
        let again = ensure(dir.path(), 2).unwrap();
        assert_eq!(
            std::fs::metadata(&again).unwrap().modified().unwrap(),
            modified
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(
            std::fs::read(ensure(dir.path(), 2).unwrap()).unwrap(),
            first
        );
    }
}
