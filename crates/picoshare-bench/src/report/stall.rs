//! The stall table of a result file (`picoshare-bench stall`): per phase,
//! the gaps between 64 KiB pieces of downloads, on the quiet server and
//! while a large upload runs. Computed from `results.json` alone.

use std::fmt::Write as _;

use crate::report::format::fixed;
use crate::results::ResultFile;

/// `## Download stalls during an upload`, or nothing without stall samples.
pub(crate) fn stall_markdown(results: &ResultFile) -> String {
    if results.stall.is_empty() {
        return String::new();
    }
    let mut md = String::new();
    let _ = writeln!(md, "## Download stalls during an upload\n");
    let _ = writeln!(
        md,
        "One file downloaded again and again, read in 64 KiB pieces; a gap is the time between two pieces. \
         Pieces that arrived together are read at once, so the median is short; the longest and the \
         99th percentile gap show the stalls. The quiet server is the reference, measured in the same run.\n"
    );
    let _ = writeln!(
        md,
        "| phase | upload MiB | download MiB | reads | longest gap ms | p99 gap ms | median gap µs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for s in &results.stall {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            s.phase,
            s.upload_bytes >> 20,
            s.download_bytes >> 20,
            s.reads,
            fixed(s.longest_gap_s * 1000.0, 1),
            fixed(s.p99_gap_s * 1000.0, 2),
            fixed(s.median_gap_s * 1e6, 1)
        );
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::StallSample;

    #[test]
    fn one_row_per_phase_in_milliseconds() {
        let results = ResultFile {
            stall: vec![StallSample {
                phase: "upload".into(),
                upload_bytes: 1 << 30,
                download_bytes: 64 << 20,
                reads: 5000,
                longest_gap_s: 0.0123,
                p99_gap_s: 0.00045,
                median_gap_s: 0.000012,
            }],
            ..ResultFile::default()
        };
        let md = stall_markdown(&results);
        assert!(
            md.contains("| upload | 1024 | 64 | 5000 | 12.3 | 0.45 | 12.0 |"),
            "{md}"
        );
        assert_eq!(stall_markdown(&ResultFile::default()), "");
    }
}
