//! The load's workers: every uploader and downloader is a task with its own
//! HTTP client (its own connection and session), drawing its next request
//! from the shared state until the run's end, recording every operation and
//! every error.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};

use crate::sut::client::Api;
use crate::sut::server::{Server, SECRET};

use super::sources::{Content, Source, Verifier};
use super::{LoadOptions, Totals, ERRORS_KEPT};

/// One finished request.
pub(super) struct Op {
    pub(super) upload: bool,
    pub(super) class: usize,
    pub(super) seconds: f64,
    /// A download that started while an upload of the largest class ran.
    pub(super) during_large_upload: bool,
}

/// What the workers share.
pub(super) struct Shared {
    pub(super) sources: Vec<Vec<Arc<Source>>>,
    pub(super) weights: Vec<u32>,
    pub(super) stored: RwLock<Vec<(String, Arc<Source>)>>,
    pub(super) ops: Mutex<Vec<Op>>,
    pub(super) errors: Mutex<Vec<String>>,
    pub(super) uploads: Mutex<Totals>,
    pub(super) downloads: Mutex<Totals>,
    pub(super) verified: AtomicU64,
    pub(super) error_count: AtomicU64,
    pub(super) uploads_started: AtomicU32,
    pub(super) uploaders_running: AtomicU32,
    pub(super) large_uploads_running: AtomicU32,
    pub(super) large_class: Option<usize>,
    pub(super) stop: AtomicBool,
}

impl Shared {
    pub(super) fn error(&self, what: &str, e: &anyhow::Error) {
        self.error_count.fetch_add(1, Ordering::SeqCst);
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < ERRORS_KEPT {
            errors.push(format!("{what}: {e:#}"));
        }
    }

    pub(super) fn pick_source(&self, rng: &mut impl Rng) -> Arc<Source> {
        let total: u32 = self.weights.iter().sum();
        let mut x = rng.gen_range(0..total);
        let mut class = 0;
        for (i, w) in self.weights.iter().enumerate() {
            if x < *w {
                class = i;
                break;
            }
            x -= w;
        }
        let sources = &self.sources[class];
        sources[rng.gen_range(0..sources.len())].clone()
    }

    pub(super) async fn upload(&self, api: &Api, source: &Arc<Source>, n: u64) {
        let large = Some(source.class) == self.large_class;
        if large {
            self.large_uploads_running.fetch_add(1, Ordering::SeqCst);
        }
        let name = format!("load-{n}-{}.bin", source.size);
        let result = match &source.content {
            Content::Memory(data) => api.upload_bytes(&name, data.clone()).await,
            Content::File(path) => api.upload(path, source.size).await,
        };
        if large {
            self.large_uploads_running.fetch_sub(1, Ordering::SeqCst);
        }
        match result {
            Ok(u) => {
                {
                    let mut t = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
                    t.ok += 1;
                    t.bytes += source.size;
                }
                self.record(Op {
                    upload: true,
                    class: source.class,
                    seconds: u.seconds,
                    during_large_upload: false,
                });
                self.stored
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((u.id, source.clone()));
            }
            Err(e) => {
                self.uploads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors += 1;
                self.error(&format!("upload of {} bytes", source.size), &e);
            }
        }
    }

    pub(super) async fn download(&self, api: &Api, id: &str, source: &Source) {
        let during = self.large_uploads_running.load(Ordering::SeqCst) > 0;
        let result = async {
            let mut verifier = Verifier::new(source)?;
            let t = api.download_with(id, |piece| verifier.feed(piece)).await?;
            verifier.finish()?;
            anyhow::Ok(t)
        }
        .await;
        match result {
            Ok(t) => {
                {
                    let mut d = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
                    d.ok += 1;
                    d.bytes += t.bytes;
                }
                self.verified.fetch_add(t.bytes, Ordering::SeqCst);
                self.record(Op {
                    upload: false,
                    class: source.class,
                    seconds: t.seconds,
                    during_large_upload: during,
                });
            }
            Err(e) => {
                self.downloads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors += 1;
                self.error(&format!("download of {id} ({} bytes)", source.size), &e);
            }
        }
    }

    pub(super) fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }
}

/// The preload and the timed phase against a running server.
pub(super) async fn drive(
    opts: &LoadOptions,
    server: &Server,
    sources: Vec<Vec<Arc<Source>>>,
    large_class: Option<usize>,
    bar: &ProgressBar,
) -> anyhow::Result<(Arc<Shared>, f64, bool)> {
    let shared = Arc::new(Shared {
        sources,
        weights: opts.mix.iter().map(|c| c.weight).collect(),
        stored: RwLock::new(Vec::new()),
        ops: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        uploads: Mutex::new(Totals::default()),
        downloads: Mutex::new(Totals::default()),
        verified: AtomicU64::new(0),
        error_count: AtomicU64::new(0),
        uploads_started: AtomicU32::new(0),
        uploaders_running: AtomicU32::new(opts.uploaders),
        large_uploads_running: AtomicU32::new(0),
        large_class,
        stop: AtomicBool::new(false),
    });
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::SeqCst);
            }
        });
    }

    // Preload: one entry per class in turn, a few at a time, so that
    // downloaders find work of every size from the first second.
    bar.set_message(format!("preloading {} entries", opts.preload));
    let api = Api::login(&server.base, SECRET).await?;
    let parallel = opts.uploaders.clamp(1, 8) as usize;
    let preload: Vec<Arc<Source>> = (0..opts.preload as usize)
        .map(|i| {
            let class = &shared.sources[i % shared.sources.len()];
            class[(i / shared.sources.len()) % class.len()].clone()
        })
        .collect();
    for batch in preload.chunks(parallel) {
        futures_util::future::join_all(
            batch
                .iter()
                .enumerate()
                .map(|(i, s)| shared.upload(&api, s, i as u64)),
        )
        .await;
    }

    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for w in 0..opts.uploaders {
        let (shared, base) = (shared.clone(), server.base.clone());
        let max = opts.max_uploads;
        let seed = opts.seed ^ (u64::from(w) << 32) ^ 0x55;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            match Api::login(&base, SECRET).await {
                Ok(api) => {
                    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
                        let n = shared.uploads_started.fetch_add(1, Ordering::SeqCst);
                        if max.is_some_and(|m| n >= m) {
                            break;
                        }
                        let source = shared.pick_source(&mut rng);
                        shared.upload(&api, &source, u64::from(n)).await;
                    }
                }
                Err(e) => shared.error("login", &e),
            }
            shared.uploaders_running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for w in 0..opts.downloaders {
        let (shared, base) = (shared.clone(), server.base.clone());
        let seed = opts.seed ^ (u64::from(w) << 32) ^ 0xdd;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let api = match Api::login(&base, SECRET).await {
                Ok(api) => api,
                Err(e) => return shared.error("login", &e),
            };
            loop {
                let uploading = shared.uploaders_running.load(Ordering::SeqCst) > 0;
                if shared.stop.load(Ordering::SeqCst) || (Instant::now() >= deadline && !uploading)
                {
                    break;
                }
                let pick = {
                    let stored = shared.stored.read().unwrap_or_else(|p| p.into_inner());
                    (!stored.is_empty()).then(|| stored[rng.gen_range(0..stored.len())].clone())
                };
                match pick {
                    Some((id, source)) => shared.download(&api, &id, &source).await,
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    let ticker = {
        let (shared, bar) = (shared.clone(), bar.clone());
        let pid = server.pid();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(start.elapsed().as_secs().min(bar.length().unwrap_or(0)));
                let (up, down) = (
                    shared.uploads.lock().map(|t| t.clone()).unwrap_or_default(),
                    shared
                        .downloads
                        .lock()
                        .map(|t| t.clone())
                        .unwrap_or_default(),
                );
                let rss = pid.and_then(crate::sut::proc::current_rss).unwrap_or(0);
                bar.set_message(format!(
                    "{} uploads ({} MiB) · {} downloads ({} MiB) · {} errors · server RSS {} MiB",
                    up.ok,
                    up.bytes >> 20,
                    down.ok,
                    down.bytes >> 20,
                    shared.error_count.load(Ordering::SeqCst),
                    rss >> 20
                ));
            }
        })
    };
    for t in tasks {
        if let Err(e) = t.await {
            shared.error("worker", &anyhow::anyhow!("{e}"));
        }
    }
    ticker.abort();
    let completed = !shared.stop.load(Ordering::SeqCst);
    Ok((shared, start.elapsed().as_secs_f64(), completed))
}
