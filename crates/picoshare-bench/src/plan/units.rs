//! The one parser of sizes and durations on the command line.
//!
//! Sizes are whole numbers with an optional binary unit: `K`, `M`, `G`, each
//! also written `KB`/`KiB` (any case), all powers of 1024, or `B` for bytes.
//! What a bare number means is the option's own: MiB for file sizes of the
//! upload matrix (`--sizes 100` is 100 MiB, as the results record sizes in
//! MiB), bytes for the small-file and load options. Durations are seconds or
//! a number with `s`, `m` or `h`, fractions allowed.
//!
//! Written here rather than taken from a crate: the size crates of the Rust
//! package registry read `M` as 10^6 bytes or a bare number as bytes always,
//! and the duration crates refuse fractions (`1.5h`) and bare seconds, all of
//! which the bench's options have always accepted.

use std::time::Duration;

use anyhow::Context as _;

/// What a size without a unit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// Bytes.
    Bytes,
    /// MiB (2^20 bytes).
    Mib,
}

/// Parses a positive size such as `4096`, `4K`, `100M`, `2GiB` into bytes;
/// a bare number is read as `bare`.
///
/// # Errors
/// A message for anything else, for zero and for sizes beyond `u64`.
pub fn parse_size(raw: &str, bare: Bare) -> anyhow::Result<u64> {
    let s = raw.trim().to_ascii_uppercase();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let shift = match unit.trim() {
        "" if bare == Bare::Mib => 20,
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => anyhow::bail!(
            "bad size {raw:?}: use a whole number with K, M or G (powers of 1024), e.g. 4K, 100M, 1G; a bare number is {}",
            match bare {
                Bare::Bytes => "bytes",
                Bare::Mib => "MiB",
            }
        ),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("bad size {raw:?}: use a whole number, e.g. 4K, 100M, 1G"))?;
    anyhow::ensure!(n > 0, "size must be positive: {raw:?}");
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .with_context(|| format!("size {raw:?} is too large"))
}

/// Parses a positive size into whole MiB; a bare number is MiB.
///
/// # Errors
/// As [`parse_size`], and for a size that is not a whole number of MiB.
pub fn parse_size_mib(raw: &str) -> anyhow::Result<u64> {
    let bytes = parse_size(raw, Bare::Mib)?;
    anyhow::ensure!(
        bytes % (1 << 20) == 0,
        "size {raw:?} is not a whole number of MiB: use e.g. 100M, 1G"
    );
    Ok(bytes >> 20)
}

/// Parses a positive duration: `90`, `90s`, `2m`, `1.5h`.
///
/// # Errors
/// A message for anything else, and for zero.
pub fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let s = raw.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let secs: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad duration {raw:?}: use seconds or e.g. 30s, 2m, 1h"))?;
    anyhow::ensure!(
        secs.is_finite() && secs > 0.0,
        "duration must be positive: {raw:?}"
    );
    Ok(Duration::from_secs_f64(secs * mult))
}

/// Parses `1k`, `10k`, `100k`, `1m` or a number.
///
/// # Errors
/// Anything else.
pub(crate) fn parse_count(raw: &str) -> anyhow::Result<u64> {
    let s = raw.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix('k') {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000)
    } else {
        (s.as_str(), 1)
    };
    let n: u64 = num
        .replace('_', "")
        .parse()
        .with_context(|| format!("bad count {raw:?}: write e.g. 1000, 10k, 1m"))?;
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("10k").unwrap(), 10_000);
        assert_eq!(parse_count("1m").unwrap(), 1_000_000);
        assert_eq!(parse_count("1_000").unwrap(), 1_000);
        assert!(parse_count("lots").is_err());
    }

    #[test]
    fn file_sizes_are_mib() {
        assert_eq!(parse_size_mib("100M").unwrap(), 100);
        assert_eq!(parse_size_mib("100MB").unwrap(), 100);
        assert_eq!(parse_size_mib("1G").unwrap(), 1024);
        assert_eq!(parse_size_mib("2 g").unwrap(), 2048);
        assert_eq!(parse_size_mib("5GiB").unwrap(), 5120);
        assert_eq!(parse_size_mib("7").unwrap(), 7);
        assert!(parse_size_mib("x").is_err());
        assert!(parse_size_mib("0M").is_err());
        assert!(parse_size_mib("512K").is_err());
        assert!(parse_size_mib("100B").is_err());
    }

    #[test]
    fn byte_sizes_are_binary() {
        let b = |s| parse_size(s, Bare::Bytes);
        assert_eq!(b("4K").unwrap(), 4096);
        assert_eq!(b("4k").unwrap(), 4096);
        assert_eq!(b("1M").unwrap(), 1 << 20);
        assert_eq!(b("1MiB").unwrap(), 1 << 20);
        assert_eq!(b("2G").unwrap(), 2 << 30);
        assert_eq!(b("12800").unwrap(), 12_800);
        assert_eq!(b("100B").unwrap(), 100);
        assert!(b("0").is_err());
        assert!(b("x").is_err());
        assert!(b("4T").is_err());
        assert!(b("1.5M").is_err());
        assert!(b("99999999999G").is_err());
        let e = b("4Q").unwrap_err().to_string();
        assert!(e.contains("bare number is bytes"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
