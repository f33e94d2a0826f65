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

/// Parses a size like `100M`, `1G`, `512` (MiB) or `2GiB` into MiB.
///
/// # Errors
/// A message for anything else.
pub fn parse_size_mib(raw: &str) -> anyhow::Result<u64> {
    let s = raw.trim().to_ascii_uppercase();
    let s = s.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = if let Some(n) = s.strip_suffix('G') {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix('M') {
        (n, 1)
    } else {
        (s, 1)
    };
    let n: u64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {raw:?}: use MiB or GiB, e.g. 100M, 1G"))?;
    anyhow::ensure!(n > 0, "size must be positive: {raw:?}");
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_mib() {
        assert_eq!(parse_size_mib("100M").unwrap(), 100);
        assert_eq!(parse_size_mib("1G").unwrap(), 1024);
        assert_eq!(parse_size_mib("5GiB").unwrap(), 5120);
        assert_eq!(parse_size_mib("7").unwrap(), 7);
        assert!(parse_size_mib("x").is_err());
        assert!(parse_size_mib("0M").is_err());
    }

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
