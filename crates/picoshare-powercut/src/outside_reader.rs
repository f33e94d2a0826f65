//! The outside reader of the workload (`workload.rs`): another process that
//! opens the database, counts its entries and closes it again every 100 ms,
//! as an administrator's `sqlite3` would, each run stamped with the
//! journal's sequence number.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// The outside reader: another process that opens the database, reads, and
/// closes it, again and again, as an administrator's `sqlite3` would.
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    /// (sequence number after the run, whether it succeeded, message)
    runs: Arc<Mutex<Vec<(u64, bool, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    pub(crate) fn start(db: PathBuf, seq: Arc<dyn Fn() -> u64 + Send + Sync>) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (stop.clone(), runs.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if db.exists() {
                    let out = crate::system::tool("sqlite3")
                        .arg(&db)
                        .arg("SELECT count(*) FROM entries")
                        .output();
                    let (ok, msg) = match out {
                        Ok(o) if o.status.success() => (true, String::new()),
                        Ok(o) => (false, String::from_utf8_lossy(&o.stderr).trim().to_string()),
                        Err(e) => (false, e.to_string()),
                    };
                    r.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((seq(), ok, msg));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Reader {
            stop,
            runs,
            thread: Some(thread),
        }
    }

    /// Successful runs that ended after sequence number `after`.
    pub(crate) fn successes_after(&self, after: u64) -> usize {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter().filter(|(s, ok, _)| *ok && *s > after).count()
    }

    pub(crate) fn stop(mut self) -> Vec<(u64, bool, String)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.runs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the reader has `runs` successful runs that ended after
/// sequence number `after` (30 s at most).
pub(crate) fn wait_for_reader(reader: &Reader, after: u64, runs: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.successes_after(after) < runs {
        if Instant::now() > deadline {
            bail!("the outside reader did not complete {runs} runs within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
