//! Server variants: what is compared.
//!
//! A variant is written `NAME=SPEC` on the command line:
//! - `NAME=args:--chunk-size 1048576` — the default build with extra arguments
//!   (settings of one build; `NAME=` alone means no extra arguments);
//! - `NAME=bin:/path/to/server [ARGS…]` — another binary (for instance the
//!   original Go PicoShare), started the same way (`-db`, `PORT`, `PS_SHARED_SECRET`);
//! - `NAME=git:REV [ARGS…]` — a git revision of this repository, built once
//!   into a cache under the data directory;
//! - `NAME=url:http://host:port` — an already running server that speaks
//!   PicoShare's API, logged into with `--url-passphrase`;
//! - `NAME=tus:[MIB] [ARGS…]` — the default build (with extra arguments), with
//!   uploads sent as resumable tus uploads: one PATCH, or PATCHes of MIB MiB;
//! - `NAME=ref:` — not a PicoShare server but the machine's reference, for
//!   `run` only: its upload is a plain write + fsync of the file's bytes into
//!   a fresh directory on the data disk, its download a GET of that file from
//!   a static file server (`python3 -m http.server`) over loopback. Measured
//!   in the same blocks as the servers and paired like any variant, so a
//!   server's ratio to it says how close it comes to the disk and the network
//!   stack themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::results::VariantInfo;

/// How to reach a variant's server.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start this binary with these extra arguments.
    Binary {
        /// Executable.
        path: PathBuf,
        /// Extra arguments.
        args: Vec<String>,
    },
    /// Use this running server.
    Url(String),
    /// The machine's reference: write + fsync, and a static file server.
    Reference,
}

/// How a variant's uploads are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadVia {
    /// One multipart request.
    #[default]
    Multipart,
    /// A tus upload in PATCH requests of at most this many bytes (0: one).
    Tus(u64),
}

/// A variant ready to run.
#[derive(Debug, Clone)]
pub struct Variant {
    /// What the result file records about it.
    pub info: VariantInfo,
    /// How to run it.
    pub target: Target,
    /// How uploads are sent.
    pub upload: UploadVia,
}

impl Variant {
    /// The planted slowdown (fraction; 0 for none).
    pub fn plant(&self) -> f64 {
        self.info.plant.unwrap_or(0.0)
    }

    /// Extra bytes sent (and stored, and read back) per `nominal` bytes for
    /// the plant: `nominal · p / (1 − p)`, so that time per nominal byte
    /// grows by `1 / (1 − p)` and throughput falls to `1 − p` where time is
    /// proportional to bytes.
    pub fn padding(&self, nominal: u64) -> u64 {
        let p = self.plant();
        if p <= 0.0 {
            0
        } else {
            (nominal as f64 * p / (1.0 - p)).round() as u64
        }
    }
}

/// The two variants of the sensitivity self-check for `base`: its A/A twin
/// (`<name>-aa`, the same server started the same way) and its planted
/// slowdown (`<name>-plant<P>`, the same server, with every transfer carrying
/// `plant` (fraction) more time per counted byte).
pub fn self_check(base: &Variant, plant: f64) -> [Variant; 2] {
    let mut twin = base.clone();
    twin.info.name = format!("{}-aa", base.info.name);
    twin.info.twin_of = Some(base.info.name.clone());
    twin.info.plant = None;
    let mut planted = base.clone();
    planted.info.name = format!("{}-plant{}", base.info.name, fmt_percent(plant));
    planted.info.twin_of = Some(base.info.name.clone());
    planted.info.plant = Some(plant);
    [twin, planted]
}

/// `5`, `2.5`: a fraction as a percentage without trailing zeros.
fn fmt_percent(fraction: f64) -> String {
    let s = format!("{:.2}", fraction * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Splits an argument string on whitespace, honouring simple quotes.
pub fn split_args(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in raw.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses `NAME=SPEC`; git revisions are built (or taken from the cache) in `cache`.
///
/// # Errors
/// A message saying what is wrong with the spec, or why the build failed.
pub fn parse(raw: &str, default_binary: &Path, cache: &Path) -> anyhow::Result<Variant> {
    let (name, spec) = raw
        .split_once('=')
        .with_context(|| format!("variant {raw:?} must be NAME=SPEC (see --help)"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(['/', ',', ' ']) {
        bail!("variant name {name:?} must be non-empty, without '/', ',' or spaces");
    }
    let spec = spec.trim();
    let (kind, rest) = match spec.split_once(':') {
        Some((k @ ("args" | "bin" | "git" | "url" | "tus" | "ref"), rest)) => (k, rest.trim()),
        _ => ("args", spec),
    };
    let info =
        |kind: &str, binary: Option<&Path>, args: Vec<String>, url: Option<String>| VariantInfo {
            name: name.to_owned(),
            kind: kind.to_owned(),
            binary: binary.map(|b| b.display().to_string()),
            args,
            url,
            git_revision: None,
            version: None,
            upload: None,
            plant: None,
            twin_of: None,
        };
    let variant = match kind {
        "args" => {
            let args = split_args(rest);
            Variant {
                info: info("settings", Some(default_binary), args.clone(), None),
                target: Target::Binary {
                    path: default_binary.to_owned(),
                    args,
                },
                upload: UploadVia::Multipart,
            }
        }
        "tus" => {
            let mut args = split_args(rest);
            let mib = match args.first().map(|a| a.parse::<u64>()) {
                Some(Ok(n)) => {
                    args.remove(0);
                    n
                }
                _ => 0,
            };
            let mut v = info("settings", Some(default_binary), args.clone(), None);
            v.upload = Some(if mib == 0 {
                "tus".to_owned()
            } else {
                format!("tus/{mib} MiB")
            });
            Variant {
                info: v,
                target: Target::Binary {
                    path: default_binary.to_owned(),
                    args,
                },
                upload: UploadVia::Tus(mib << 20),
            }
        }
        "bin" => {
            let mut words = split_args(rest);
            if words.is_empty() {
                bail!("variant {name}: bin: needs a path");
            }
            let path = PathBuf::from(words.remove(0));
            Variant {
                info: info("binary", Some(&path), words.clone(), None),
                target: Target::Binary { path, args: words },
                upload: UploadVia::Multipart,
            }
        }
        "git" => {
            let mut words = split_args(rest);
            if words.is_empty() {
                bail!("variant {name}: git: needs a revision");
            }
            let rev = words.remove(0);
            let (path, hash) = build_revision(&rev, cache)?;
            let mut v = info("git", Some(&path), words.clone(), None);
            v.git_revision = Some(hash);
            Variant {
                info: v,
                target: Target::Binary { path, args: words },
                upload: UploadVia::Multipart,
            }
        }
        "ref" => {
            if !rest.is_empty() {
                bail!("variant {name}: ref: takes no arguments");
            }
            let mut v = info("reference", None, Vec::new(), None);
            v.upload = Some("write + fsync; downloads from python3 -m http.server".to_owned());
            Variant {
                info: v,
                target: Target::Reference,
                upload: UploadVia::Multipart,
            }
        }
        _ => {
            if !rest.starts_with("http://") && !rest.starts_with("https://") {
                bail!("variant {name}: url: needs an http:// URL");
            }
            let url = rest.trim_end_matches('/').to_owned();
            Variant {
                info: info("url", None, Vec::new(), Some(url.clone())),
                target: Target::Url(url),
                upload: UploadVia::Multipart,
            }
        }
    };
    Ok(variant)
}

/// The git revision of the working tree the binary was built from, if known.
pub fn current_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `BINARY --version`, if it answers.
pub fn binary_version(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Builds `rev` of this repository into `cache` (once) and returns the binary
/// and the full commit hash.
fn build_revision(rev: &str, cache: &Path) -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("git revision {rev:?} not found");
    }
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = cache.join("builds").join(&hash);
    let binary = dir.join("picoshare");
    if binary.exists() {
        return Ok((binary, hash));
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src)?;
    eprintln!("building {rev} ({}) into {}", &hash[..12], dir.display());
    let archive = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git archive {hash} | tar -x -C '{}'",
            src.display()
        ))
        .status()?;
    if !archive.success() {
        bail!("could not export revision {rev}");
    }
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked", "-p", "picoshare"])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", cache.join("builds").join("target"))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building revision {rev} failed");
    }
    std::fs::copy(cache.join("builds/target/release/picoshare"), &binary)?;
    let _ = std::fs::remove_dir_all(&src);
    Ok((binary, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arguments_with_quotes() {
        assert_eq!(split_args("--a 1  --b 'x y'"), ["--a", "1", "--b", "x y"]);
        assert_eq!(split_args(""), Vec::<String>::new());
        assert_eq!(split_args("''"), [""]);
    }

    #[test]
    fn parses_each_kind() {
        let bin = Path::new("/bin/ps");
        let cache = Path::new("/nonexistent");
        let v = parse("a=", bin, cache).unwrap();
        assert_eq!(
            v.target,
            Target::Binary {
                path: bin.into(),
                args: vec![]
            }
        );
        assert_eq!(v.info.kind, "settings");
        let v = parse("big=--chunk-size 1048576", bin, cache).unwrap();
        assert_eq!(v.info.args, ["--chunk-size", "1048576"]);
        assert_eq!(v.upload, UploadVia::Multipart);
        let v = parse("t=tus:", bin, cache).unwrap();
        assert_eq!(
            (v.upload, v.info.upload.as_deref()),
            (UploadVia::Tus(0), Some("tus"))
        );
        let v = parse("t64=tus:64 --commit-mib 32", bin, cache).unwrap();
        assert_eq!(v.upload, UploadVia::Tus(64 << 20));
        assert_eq!(v.info.upload.as_deref(), Some("tus/64 MiB"));
        assert_eq!(v.info.args, ["--commit-mib", "32"]);
        let v = parse("go=bin:/opt/go-picoshare -x", bin, cache).unwrap();
        assert_eq!(
            v.target,
            Target::Binary {
                path: "/opt/go-picoshare".into(),
                args: vec!["-x".into()]
            }
        );
        let v = parse("ext=url:http://127.0.0.1:4001/", bin, cache).unwrap();
        assert_eq!(v.target, Target::Url("http://127.0.0.1:4001".into()));
        let v = parse("disk=ref:", bin, cache).unwrap();
        assert_eq!(
            (v.target, v.info.kind.as_str()),
            (Target::Reference, "reference")
        );
        assert!(parse("disk=ref:x", bin, cache).is_err());
        assert!(parse("noequals", bin, cache).is_err());
        assert!(parse("=x", bin, cache).is_err());
        assert!(parse("u=url:ftp://x", bin, cache).is_err());
    }

    #[test]
    fn self_check_twins() {
        let base = parse(
            "rust=--chunk-size 1048576",
            Path::new("/bin/ps"),
            Path::new("/x"),
        )
        .unwrap();
        let [aa, plant] = self_check(&base, 0.05);
        assert_eq!(
            (aa.info.name.as_str(), plant.info.name.as_str()),
            ("rust-aa", "rust-plant5")
        );
        assert_eq!(aa.target, base.target);
        assert_eq!(plant.info.args, ["--chunk-size", "1048576"]);
        assert_eq!((aa.padding(1 << 30), base.padding(1 << 30)), (0, 0));
        // 1 GiB · 0.05 / 0.95
        assert_eq!(plant.padding(1 << 30), 56_512_728);
        assert_eq!(plant.info.twin_of.as_deref(), Some("rust"));
        assert_eq!(fmt_percent(0.025), "2.5");
    }
}
