//! `picoshare-bench entries`: a server with many files. For each number of
//! entries (1,000, 10,000, 100,000 by default) the bench makes, once per
//! variant, a database written by that very server (started on an empty
//! directory, then stopped) and filled directly with SQL in the original
//! PicoShare's schema, which both servers share: N files of 512 bytes, a
//! tenth of them expired, and the newest one downloaded `--history` times
//! (1,000,000 by default). Filling through HTTP would take hours at these
//! counts; the rows are the same either way.
//!
//! Then, in paired blocks (each variant once per block, in a random
//! order), a unit copies the database, starts the server on it and
//! records: the time to its first HTTP answer; for servers that collect
//! garbage at start-up and list through `GET /api/entries` (this project),
//! the time until the expired tenth is gone; `GET /files` (its first page,
//! if it has pages) and the busy file's download-history page, time and
//! bytes on the wire with `Accept-Encoding: gzip` (medians of 5); and `GET
//! /api/entries?limit=100` where there is one. Samples go into
//! `results.json` (`entries`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::params;

use crate::plan::options::BlockPlan;
use crate::plan::variants::{Target, Variant};
use crate::results::{EntriesSample, ResultFile};
use crate::run::gates::wait_for_idle;
use crate::run::save;
use crate::sut::server::{Limits, Server, Tool, SECRET};

/// What an entries run needs.
pub(crate) struct EntriesOptions {
    /// Variants (binaries only), blocks, seed, where databases and results go.
    pub plan: BlockPlan,
    /// Numbers of entries.
    pub counts: Vec<u64>,
    /// Downloads recorded for the busy file.
    pub history: u64,
}

/// Requests per timed page (the median is kept).
const REPEAT: usize = 5;

/// The alphabet of entry IDs (no look-alike characters), as both servers
/// check them.
const ID_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The `i`-th entry ID: ten characters of [`ID_ALPHABET`], distinct for
/// every `i`.
fn entry_id(i: u64) -> String {
    let mut n = i;
    let mut id = [b'a'; 10];
    for c in id.iter_mut().rev() {
        *c = ID_ALPHABET[(n % ID_ALPHABET.len() as u64) as usize];
        n /= ID_ALPHABET.len() as u64;
    }
    String::from_utf8(id.to_vec()).unwrap_or_default()
}

/// Runs the blocks; returns the result file (also written to `out_dir`).
///
/// # Errors
/// A variant that is not a binary, or a database that cannot be made.
pub(crate) async fn run(opts: EntriesOptions) -> anyhow::Result<ResultFile> {
    if opts
        .plan
        .variants
        .iter()
        .any(|v| !matches!(v.target, Target::Binary { .. }))
    {
        bail!("entries starts its own servers on databases it fills: give builds (args:, bin: or git:), not url:");
    }
    let mut results = opts.plan.start("entries", 1)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.plan.seed);
    let work = opts
        .plan
        .data_dir
        .join(format!("picoshare-bench-entries-{}", std::process::id()));
    for &count in &opts.counts {
        let mut templates = Vec::new();
        for (k, v) in opts.plan.variants.iter().enumerate() {
            eprintln!("making a database of {count} entries for {}", v.info.name);
            templates.push(
                template(
                    v,
                    count,
                    opts.history,
                    &work.join(format!("template-{k}")),
                    &mut rng,
                )
                .await?,
            );
        }
        for block in 0..opts.plan.warmup + opts.plan.blocks {
            let mut order: Vec<usize> = (0..opts.plan.variants.len()).collect();
            order.shuffle(&mut rng);
            for k in order {
                if !opts.plan.wait_idle.is_zero() {
                    wait_for_idle(opts.plan.wait_idle).await;
                }
                let v = &opts.plan.variants[k];
                let dir = work.join(format!("unit-{count}-{block}-{k}"));
                let mut s = match unit(v, &templates[k], count, opts.history, &dir).await {
                    Ok(s) => s,
                    Err(e) => EntriesSample {
                        error: Some(format!("{e:#}")),
                        ..EntriesSample::default()
                    },
                };
                let _ = std::fs::remove_dir_all(&dir);
                s.variant = v.info.name.clone();
                s.block = block;
                s.warmup = block < opts.plan.warmup;
                s.entries = count;
                s.history = opts.history;
                eprintln!(
                    "{count} entries, block {}: {} {}",
                    block + 1,
                    v.info.name,
                    if s.ok { "done" } else { "failed" }
                );
                results.entries.push(s);
                save(&results, &opts.plan.out_dir)?;
            }
        }
        // This count's databases are no longer needed.
        let _ = std::fs::remove_dir_all(&work);
    }
    let _ = std::fs::remove_dir_all(&work);
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    save(&results, &opts.plan.out_dir)?;
    Ok(results)
}

/// Starts `path` with `args` on `dir`, without limits.
pub(crate) async fn start_unlimited(
    path: &Path,
    args: &[String],
    dir: &Path,
    name: &str,
) -> anyhow::Result<Server> {
    let method = crate::sut::cgroup::LimitMethod::NotEnforced;
    let disk = crate::sut::disk::DiskMethod::NotEnforced(String::new());
    let limits = Limits {
        memory_mib: None,
        memory_method: &method,
        disk_mbps: None,
        disk_method: &disk,
    };
    Server::start(path, args, dir, limits, name, Tool::None).await
}

/// The database of `count` entries for variant `v`: made by the server
/// itself, filled with SQL. Returns its path.
async fn template(
    v: &Variant,
    count: u64,
    history: u64,
    dir: &Path,
    rng: &mut impl Rng,
) -> anyhow::Result<PathBuf> {
    let Target::Binary { path, args } = &v.target else {
        bail!("not a binary");
    };
    let _ = std::fs::remove_dir_all(dir);
    let server = start_unlimited(path, args, dir, "entries").await?;
    server.stop_keeping_data().await;
    let db = dir.join("store.db");
    let seed: u64 = rng.gen();
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || fill(&db2, count, history, seed))
        .await
        .context("the fill panicked")??;
    Ok(db)
}

/// Fills the database at `db` (schema already there) with `count` entries,
/// a tenth of them expired, and `history` downloads of the newest.
fn fill(db: &Path, count: u64, history: u64, seed: u64) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let tx = conn.transaction()?;
    {
        let mut entry = tx.prepare(
            "INSERT INTO entries (id, filename, content_type, upload_time, expiration_time, guest_link_id, note)
             VALUES (?1, ?2, 'application/octet-stream', ?3, ?4, NULL, ?5)",
        )?;
        let mut chunk =
            tx.prepare("INSERT INTO entries_data (id, chunk_index, chunk) VALUES (?1, 0, ?2)")?;
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?;
        let mut data = vec![0u8; 512];
        for i in 0..count {
            let id = entry_id(i);
            let uploaded = (start + chrono::Duration::seconds(i as i64 * 60))
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let expiration = match i % 10 {
                0 => "2026-01-01T00:00:00Z",
                1 | 4 | 7 => "2999-12-31T00:00:00Z",
                _ => "2040-01-01T00:00:00Z",
            };
            let name = format!("file-{i:06}-{:04x}.bin", rng.gen::<u16>());
            let note = (i % 7 == 0).then_some("a note");
            entry.execute(params![id, name, uploaded, expiration, note])?;
            rng.fill(&mut data[..]);
            chunk.execute(params![id, data])?;
        }
        let busy = entry_id(count.saturating_sub(1));
        let mut download = tx.prepare(
            "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let start = chrono::DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z")?;
        for i in 0..history {
            let t = (start + chrono::Duration::seconds(i as i64))
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            download.execute(params![
                busy,
                t,
                ip,
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

/// Time and bytes of `GET url`, gzip accepted (the body as it came).
async fn timed_get(http: &reqwest::Client, url: &str) -> anyhow::Result<(f64, u64)> {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..REPEAT {
        let t = Instant::now();
        let resp = http
            .get(url)
            .header("accept-encoding", "gzip")
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        times.push(t.elapsed().as_secs_f64());
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        bytes = body.len() as u64;
    }
    Ok((crate::stats::median(&times), bytes))
}

/// One unit: the server started on a copy of `template`, measured, stopped.
async fn unit(
    v: &Variant,
    template: &Path,
    count: u64,
    history: u64,
    dir: &Path,
) -> anyhow::Result<EntriesSample> {
    let Target::Binary { path, args } = &v.target else {
        bail!("not a binary");
    };
    std::fs::create_dir_all(dir)?;
    std::fs::copy(template, dir.join("store.db"))?;
    let started = Instant::now();
    let server = start_unlimited(path, args, dir, "entries").await?;
    let startup_s = started.elapsed().as_secs_f64();
    let result = measure(&server.base, count, history).await;
    server.stop().await;
    let mut s = result?;
    s.startup_s = Some(startup_s);
    s.ok = true;
    Ok(s)
}

async fn measure(base: &str, count: u64, history: u64) -> anyhow::Result<EntriesSample> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let resp = http
        .post(format!("{base}/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "login refused");
    let mut s = EntriesSample::default();
    // Start-up collection: wait for the expired tenth to go, where the
    // count can be read.
    let probe = format!("{base}/api/entries?limit=1");
    let t = Instant::now();
    let left = count - count.div_ceil(10);
    loop {
        let resp = http.get(&probe).send().await?;
        if !resp.status().is_success() {
            break;
        }
        let total: Option<u64> = resp
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        match total {
            Some(n) if n <= left => {
                s.gc_s = Some(t.elapsed().as_secs_f64());
                break;
            }
            Some(_) if t.elapsed() < Duration::from_secs(120) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => break,
        }
    }
    let (secs, bytes) = timed_get(&http, &format!("{base}/files")).await?;
    s.list_page_s = Some(secs);
    s.list_page_bytes = Some(bytes);
    if s.gc_s.is_some() {
        s.list_api_s = Some(
            timed_get(&http, &format!("{base}/api/entries?limit=100"))
                .await?
                .0,
        );
    }
    if history > 0 {
        let busy = entry_id(count.saturating_sub(1));
        let (secs, bytes) = timed_get(&http, &format!("{base}/files/{busy}/downloads")).await?;
        s.history_page_s = Some(secs);
        s.history_page_bytes = Some(bytes);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(entry_id).collect();
        assert_eq!(ids.len(), 10_000);
        for id in &ids {
            assert_eq!(id.len(), 10);
            assert!(id.bytes().all(|c| ID_ALPHABET.contains(&c)));
        }
    }
}
