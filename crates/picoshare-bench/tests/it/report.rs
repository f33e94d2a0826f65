//! End-to-end check of the report outputs on a hand-made result file
//! (`tests/fixtures/results-small.json`: 2 variants × 2 workloads × 2 sizes ×
//! 2 memory limits, 1 warm-up + 5 measured samples each, one failed sample).

use std::collections::BTreeMap;
use std::path::Path;

use picoshare_bench::report::compare::compare_files;
use picoshare_bench::report::{self, write_all};
use picoshare_bench::results::ResultFile;

use crate::helpers::median;

fn fixture() -> ResultFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-small.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Splits CSV text into records (RFC 4180: quoted fields may hold commas,
/// doubled quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "CSV must end with a newline"
    );
    rows
}

/// Balanced, properly nested tags; one root element.
fn assert_well_formed(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    let mut roots = 0;
    while let Some(start) = rest.find('<') {
        assert!(!rest[..start].contains('>'), "stray '>'");
        let end = start + rest[start..].find('>').expect("unterminated tag");
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "'<' inside a tag");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched closing tag");
        } else if !tag.starts_with('?') {
            roots += usize::from(stack.is_empty());
            if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap().to_owned());
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

#[test]
fn fixture_has_the_documented_shape() {
    let r = fixture();
    assert_eq!(r.samples.len(), 2 * 2 * 2 * 2 * 6);
    assert_eq!(r.samples.iter().filter(|s| s.warmup).count(), 16);
    assert_eq!(r.samples.iter().filter(|s| !s.ok).count(), 1);
    assert_eq!(r.groups().len(), 16);
}

#[test]
fn write_all_produces_every_file_consistently() {
    let r = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let paths = write_all(&r, &out).unwrap();
    let mut names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "comparisons.csv",
            "memory.svg",
            "paired.csv",
            "ratios-download.svg",
            "ratios-upload.svg",
            "report.md",
            "results.json",
            "samples.csv",
            "summary.csv",
            "summary.json",
            "throughput-download-256mib.svg",
            "throughput-download.svg",
            "throughput-upload-256mib.svg",
            "throughput-upload.svg",
        ]
    );
    for p in &paths {
        assert!(
            p.starts_with(&out) && std::fs::metadata(p).unwrap().len() > 0,
            "{p:?}"
        );
    }
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();

    // results.json is the result file itself.
    let again: ResultFile = serde_json::from_str(&read("results.json")).unwrap();
    assert_eq!(again.samples.len(), r.samples.len());
    assert_eq!(again.variants, r.variants);

    // samples.csv: a row per sample, throughput as in the JSON, quoting intact.
    let rows = parse_csv(&read("samples.csv"));
    let header = &rows[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    for phase in ["commit", "read", "receive", "store"] {
        col(&format!("phase_{phase}_s"));
    }
    assert_eq!(rows.len() - 1, r.samples.len());
    for (row, s) in rows[1..].iter().zip(&r.samples) {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[col("seq")], s.seq.to_string());
        assert_eq!(
            row[col("throughput_mbps")].parse::<f64>().unwrap(),
            s.throughput_mbps
        );
        assert_eq!(row[col("error")], s.error.clone().unwrap_or_default());
        let store = s
            .phases
            .get("store")
            .map(|x| x.to_string())
            .unwrap_or_default();
        assert_eq!(row[col("phase_store_s")], store);
    }

    // summary.json: medians recomputed here from the raw samples.
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 16);
    type Key = (String, String, u64, Option<u64>);
    let mut raw: BTreeMap<Key, (Vec<f64>, usize)> = BTreeMap::new();
    for s in r.samples.iter().filter(|s| !s.warmup) {
        let entry = raw
            .entry((
                s.variant.clone(),
                s.workload.clone(),
                s.size_bytes,
                s.memory_limit_mib,
            ))
            .or_default();
        if s.ok {
            entry.0.push(s.throughput_mbps);
        } else {
            entry.1 += 1;
        }
    }
    for g in groups {
        let k = &g["key"];
        let key = (
            k["variant"].as_str().unwrap().to_owned(),
            k["workload"].as_str().unwrap().to_owned(),
            k["size_bytes"].as_u64().unwrap(),
            k["memory_limit_mib"].as_u64(),
        );
        let (xs, failures) = raw[&key].clone();
        assert_eq!(g["throughput"]["n"].as_u64().unwrap() as usize, xs.len());
        assert_eq!(g["failures"].as_u64().unwrap() as usize, failures);
        let got = g["throughput"]["median"].as_f64().unwrap();
        assert!(
            close(got, median(xs.clone())),
            "{key:?}: {got} vs {}",
            median(xs)
        );
    }
    assert_eq!(summary["comparisons"].as_array().unwrap().len(), 8);
    assert_eq!(parse_csv(&read("summary.csv")).len(), 17);
    assert_eq!(parse_csv(&read("comparisons.csv")).len(), 9);

    // Charts: well-formed, every variant named.
    for name in names.iter().filter(|n| n.ends_with(".svg")) {
        let svg = read(name);
        assert_well_formed(&svg);
        for v in &r.variants {
            assert!(svg.contains(&v.name), "{name} lacks {}", v.name);
        }
    }

    // report.md: variants, verdicts, machine, chart links, escaped cells.
    let md = read("report.md");
    for v in &r.variants {
        assert!(md.contains(&v.name));
    }
    assert!(md.contains("| upload | 100 MiB | unlimited | unlimited | go-picoshare | rust | 5 |"));
    assert!(md.contains("| upload | 100 MiB | unlimited | unlimited | 1 | go-picoshare | rust |"));
    assert!(
        md.contains("**faster**"),
        "the 3× faster uploads are called"
    );
    assert!(
        md.contains("no detectable difference"),
        "the close 100 MiB downloads are not"
    );
    assert!(
        md.contains("AMD EPYC 7763") && md.contains("cgroup-v2") && md.contains("leftover files")
    );
    assert!(md.contains("load average 0.31 \\| 1 busy process"));
    assert!(md.contains("](throughput-upload-256mib.svg)") && md.contains("](memory.svg)"));
    assert!(md.contains("## Where the time goes") && md.contains("receive s"));
    assert!(!md.contains("Interrupted"));
}

#[test]
fn reporting_results_json_again_reproduces_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // Throughputs computed in memory, as the runner does: many of these f64s
    // do not survive serde_json's default (not exactly rounding) parser.
    let mut results = fixture();
    for s in &mut results.samples {
        s.throughput_mbps = s.bytes as f64 / (s.seconds * 1.000_000_1) / 1e6;
    }
    write_all(&results, &first).unwrap();
    let text = std::fs::read_to_string(first.join("results.json")).unwrap();
    let reloaded: ResultFile = serde_json::from_str(&text).unwrap();
    for path in write_all(&reloaded, &second).unwrap() {
        let name = path.file_name().unwrap();
        if name == "results.json" {
            continue; // its last digits may differ, for the reason above
        }
        let again = std::fs::read(&path).unwrap();
        assert!(
            std::fs::read(first.join(name)).unwrap() == again,
            "{name:?} differs"
        );
    }
}

#[test]
fn summaries_are_deterministic() {
    let r = fixture();
    assert_eq!(report::summarize(&r), report::summarize(&r));
}

#[test]
fn comparing_a_file_with_itself_finds_no_difference() {
    let r = fixture();
    let md = compare_files(&r, &r);
    assert_eq!(md.matches("no detectable difference |").count(), 16);
    assert!(!md.contains("only in"));
}
