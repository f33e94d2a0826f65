//! The replay of the fuzz targets on the stable toolchain (tests only): the
//! committed seed corpus, then seeded random mutations of it, through every
//! target of [`TARGETS`]; and a check that every target is wired into
//! `cargo fuzz`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path.display().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

/// Runs one input; on a panic, fails with the input in the message so
/// that it can be added to the corpus and replayed.
fn run(name: &str, target: Target, data: &[u8], origin: &str) {
    if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
        panic!(
            "fuzz target {name} failed on {origin}: input b\"{}\"",
            data.escape_ascii()
        );
    }
}

/// Every target has its `cargo fuzz` wrapper, its `[[bin]]` and a seed corpus.
#[test]
fn every_target_is_wired_into_cargo_fuzz() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let wrapper = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&wrapper)
            .unwrap_or_else(|e| panic!("{}: {e}", wrapper.display()));
        assert!(
            text.contains(&format!("fuzz_targets::{name}(")),
            "{} does not call fuzz_targets::{name}",
            wrapper.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(!seeds(name).is_empty(), "fuzz/corpus/{name} is empty");
    }
}

/// The committed seed corpus (regressions included) passes every target.
#[test]
fn seed_corpus_replays_cleanly() {
    for (name, target) in TARGETS {
        for (path, data) in seeds(name) {
            run(name, *target, &data, &path);
        }
    }
}

/// Fragments that make mutated inputs reach deeper into the parsers.
const TOKENS: &[&[u8]] = &[
    b"bytes=",
    b"-",
    b",",
    b", ",
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"\"",
    b"W/",
    b"*",
    b"%",
    b"/",
    b"\\",
    b"..",
    b"\0",
    b"\n",
    b"18446744073709551615",
    b"9223372036854775808",
    b"0",
    b"9999",
    b"T23:59:59",
    b"-23:59",
    b"+23:59",
    b"Z",
    b" GMT",
    b"h",
    b"m",
    b"s",
    b"ns",
    b"\xc2\xb5s",
    b".5",
    b"filename=",
    b"filename*=UTF-8''",
    b"name=\"file\"",
    b"name=\"note\"",
    b"Content-Disposition: form-data; ",
    b"<script>",
    b"\xe2\x80\xae",
    b"\xff",
    b"for=",
    b";proto=https",
    b"host=",
    b"[2001:db8::1]:4711",
    b"\\\"",
];

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=input.len());
        match rng.gen_range(0..6) {
            0 if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => input.insert(at, rng.gen()),
            2 if !input.is_empty() => {
                let end = rng.gen_range(at..=input.len().min(at + 16));
                input.drain(at..end);
            }
            3 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if !input.is_empty() => {
                let start = rng.gen_range(0..input.len());
                let end = rng.gen_range(start..=input.len().min(start + 32));
                let piece = input[start..end].to_vec();
                input.splice(at..at, piece);
            }
            _ => {
                let digit = b'0' + rng.gen_range(0..10);
                input.insert(at, digit);
            }
        }
    }
}

/// Seeded random mutations of the corpus (and some plain random bytes)
/// through every target: 5000 per target, or
/// `PICOSHARE_FUZZ_REPLAY_CASES`; the seed is printed and can be set with
/// `PICOSHARE_FUZZ_REPLAY_SEED` to reproduce a failure.
#[test]
fn seeded_mutations_pass_every_target() {
    let cases: usize = std::env::var("PICOSHARE_FUZZ_REPLAY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed: u64 = std::env::var("PICOSHARE_FUZZ_REPLAY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5049_434f_4655_5a5a);
    eprintln!("fuzz replay seed {seed}, {cases} cases per target");
    for (name, target) in TARGETS {
        let corpus: Vec<Vec<u8>> = seeds(name).into_iter().map(|(_, d)| d).collect();
        let mut rng = StdRng::seed_from_u64(seed ^ name.len() as u64);
        for case in 0..cases {
            let mut input = if case % 10 == 9 {
                (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
            } else {
                corpus[rng.gen_range(0..corpus.len())].clone()
            };
            mutate(&mut rng, &mut input);
            run(
                name,
                *target,
                &input,
                &format!("case {case} of seed {seed}"),
            );
        }
    }
}
