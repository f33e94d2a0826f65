//! Starting and stopping the server under test: [`TestServer`] (a running
//! child process with a temp directory of its own) and its [`ServerOptions`],
//! and [`run_until_exit`] for a server that is expected to refuse to start.
//!
//! In the scale-out configuration (see [`remote_storage`]) every server gets
//! a PostgreSQL schema and an S3 key prefix of its database path's own.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::Client;
use tempfile::TempDir;

use super::{client, remote_names, remote_storage, SECRET};

const READY_PREFIX: &str = "picoshare listening on ";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a server: environment, secret and database location.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    secret: Option<String>,
    env: Vec<(String, String)>,
    db: Option<PathBuf>,
    db_flag: String,
    extra_args: Vec<String>,
    sqlite_only: bool,
    program: Option<PathBuf>,
    listen: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            secret: Some(SECRET.to_string()),
            env: Vec::new(),
            db: None,
            db_flag: "--db".to_string(),
            extra_args: Vec::new(),
            sqlite_only: false,
            program: None,
            listen: "127.0.0.1:0".to_string(),
        }
    }
}

impl ServerOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an environment variable for the child process.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Sets `PS_SHARED_SECRET` to this value.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_string());
        self
    }

    /// Starts the server without `PS_SHARED_SECRET` in its environment.
    pub fn without_secret(mut self) -> Self {
        self.secret = None;
        self
    }

    /// Uses this database file instead of a fresh one in the server's temp dir.
    pub fn db(mut self, path: impl Into<PathBuf>) -> Self {
        self.db = Some(path.into());
        self
    }

    /// Spells the database flag this way (`--db` by default, or `-db`).
    pub fn db_flag(mut self, flag: &str) -> Self {
        self.db_flag = flag.to_string();
        self
    }

    /// Runs this server on SQLite even when the suite runs against the
    /// scale-out store (to make a database to copy over).
    pub fn sqlite(mut self) -> Self {
        self.sqlite_only = true;
        self
    }

    /// Listens on this address (`127.0.0.1:0` by default); with an
    /// unspecified address (`[::]:0`), [`TestServer::base`] still reaches it
    /// on the loopback address of the same family.
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// Passes an extra command-line argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// Runs this program with the server's arguments instead of the server
    /// itself (a wrapper that starts it, such as the image's entrypoint).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }
}

/// A child process plus the threads that drain its output.
struct Spawned {
    child: Child,
    ready: mpsc::Receiver<String>,
    stdout_log: Arc<Mutex<String>>,
    stderr_log: Arc<Mutex<Vec<u8>>>,
    stdout_thread: JoinHandle<()>,
    stderr_thread: JoinHandle<()>,
}

/// SIGKILL to the child's whole process group (the child and whatever it
/// started), then to the child itself.
fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) on the group of a child we have not reaped yet, so
    // its id cannot have been reused.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
}

fn spawn_server(opts: &ServerOptions, db: &Path, tmp: &Path) -> Spawned {
    let program = opts
        .program
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_picoshare")));
    let mut cmd = Command::new(program);
    cmd.arg(&opts.db_flag)
        .arg(db)
        .arg("--listen")
        .arg(&opts.listen)
        .args(&opts.extra_args);
    // A clean environment, so a developer's own PS_* or PORT variables
    // cannot change what a test sees.
    cmd.env_clear();
    for key in ["PATH", "RUST_LOG", "RUST_BACKTRACE", "LANG"] {
        if let Ok(value) = std::env::var(key) {
            cmd.env(key, value);
        }
    }
    cmd.env("TMPDIR", tmp);
    if let Some(remote) = remote_storage().filter(|_| !opts.sqlite_only) {
        // The scale-out store: PostgreSQL and S3, in a schema and under a
        // key prefix of this database path's own, so that a restart on the
        // same path finds its data and other tests never see it.
        let (schema, prefix) = remote_names(db);
        cmd.env("PS_POSTGRES_URL", &remote.postgres_url)
            .env("PS_POSTGRES_SCHEMA", schema)
            .env("PS_POSTGRES_POOL", "6")
            .env("PS_S3_ENDPOINT", &remote.endpoint)
            .env("PS_S3_BUCKET", &remote.bucket)
            .env("PS_S3_REGION", &remote.region)
            .env("PS_S3_ACCESS_KEY_ID", &remote.access_key_id)
            .env("PS_S3_SECRET_ACCESS_KEY", &remote.secret_access_key)
            .env("PS_S3_PREFIX", prefix)
            // Small parts, so that files of a few MiB are multipart uploads.
            .env("PS_S3_PART_MIB", "5");
    }
    if let Some(secret) = &opts.secret {
        cmd.env("PS_SHARED_SECRET", secret);
    }
    for (key, value) in &opts.env {
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A process group of its own, so that a kill also reaches the server a
    // wrapper started (the image's entrypoint runs it under Litestream).
    cmd.process_group(0);
    let mut child = cmd.spawn().expect("failed to spawn the picoshare binary");

    let (tx, ready) = mpsc::channel();
    let stdout_log = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let log = Arc::clone(&stdout_log);
    // Keeps draining stdout after the ready line so the server never blocks
    // on (or dies of) a full or closed pipe.
    let stdout_thread = std::thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if !announced {
                if let Some(url) = line.trim().strip_prefix(READY_PREFIX) {
                    announced = true;
                    let _ = tx.send(url.trim().to_string());
                }
            }
        }
    });
    let stderr_log = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::clone(&stderr_log);
    let stderr_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => log.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    });
    Spawned {
        child,
        ready,
        stdout_log,
        stderr_log,
        stdout_thread,
        stderr_thread,
    }
}

fn lossy_tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// A running `picoshare` child process with its own temp directory.
///
/// The process is killed when this value is dropped; the temp directory
/// (database, unless the test supplied one, and the server's `TMPDIR`) lives
/// exactly as long.
///
/// Starting, stopping and the process are here; logging in, uploading and
/// downloading are in [`http`](super::http), looking inside its store in
/// [`db`](super::db).
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub addr: SocketAddr,
    pub db_path: PathBuf,
    /// The directory the server got as `TMPDIR`.
    pub tmp_dir: PathBuf,
    /// The passphrase that logs in (empty if the test configured it itself).
    pub secret: String,
    stdout_log: Arc<Mutex<String>>,
    stderr_log: Arc<Mutex<Vec<u8>>>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts a server with a fresh database and the default secret.
    pub async fn start() -> TestServer {
        Self::start_with(ServerOptions::new()).await
    }

    /// Starts a server on an existing (or not yet existing) database file.
    pub async fn start_on_db(db: &Path) -> TestServer {
        Self::start_with(ServerOptions::new().db(db)).await
    }

    /// Starts a server with the given options; panics with its stderr if it
    /// does not announce itself within 30 s.
    pub async fn start_with(opts: ServerOptions) -> TestServer {
        match Self::try_start(opts) {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    fn try_start(opts: ServerOptions) -> Result<TestServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("picoshare-it-")
            .tempdir()
            .map_err(|e| format!("cannot create temp dir: {e}"))?;
        let tmp_dir = dir.path().join("tmp");
        std::fs::create_dir(&tmp_dir).map_err(|e| e.to_string())?;
        let db_path = opts
            .db
            .clone()
            .unwrap_or_else(|| dir.path().join("data").join("store.db"));
        let spawned = spawn_server(&opts, &db_path, &tmp_dir);
        let Spawned {
            mut child,
            ready,
            stdout_log,
            stderr_log,
            stdout_thread,
            stderr_thread,
        } = spawned;
        let url = match ready.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => url,
            Err(e) => {
                kill_group(&mut child);
                let status = child.wait();
                let _ = stdout_thread.join();
                let _ = stderr_thread.join();
                return Err(format!(
                    "picoshare did not print `{READY_PREFIX}http://...` ({e:?}); exit status {status:?}\n\
                     --- stdout ---\n{}\n--- stderr ---\n{}",
                    stdout_log.lock().unwrap(),
                    lossy_tail(&stderr_log.lock().unwrap(), 20_000)
                ));
            }
        };
        let hostport = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("ready line has no http:// URL: {url:?}"))?
            .trim_end_matches('/');
        let mut addr: SocketAddr = hostport
            .parse()
            .map_err(|e| format!("cannot parse address in ready line {url:?}: {e}"))?;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(TestServer {
            child: Some(child),
            base: format!("http://{addr}"),
            addr,
            db_path,
            tmp_dir,
            secret: opts.secret.clone().unwrap_or_default(),
            stdout_log,
            stderr_log,
            _dir: dir,
        })
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A cookie-keeping client (not logged in).
    pub fn client(&self) -> Client {
        client()
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        self.stdout_log.lock().unwrap().clone()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr_log.lock().unwrap()).into_owned()
    }

    /// The server's process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's resident memory in KiB (`VmRSS` from `/proc`).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// The server's peak resident memory so far in KiB (`VmHWM` from `/proc`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let pid = self.pid().expect("server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// SIGKILL, like a power cut for the process (not for the disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit on its
    /// own; returns its exit status, or `None` if it had to be killed.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain kill(2) on the pid of a child we have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(&mut child);
        let _ = child.wait();
        None
    }

    /// SIGTERM, then up to 15 s for a graceful exit, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on the pid of a child we have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
            kill_group(&mut child);
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- picoshare stdout ---\n{}\n--- picoshare stderr (tail) ---\n{}",
                self.stdout_log.lock().unwrap(),
                lossy_tail(&self.stderr_log.lock().unwrap(), 20_000)
            );
        }
    }
}

/// What a server that was expected to refuse to start did.
#[derive(Debug)]
pub struct ExitReport {
    /// `None` if it was still running at the deadline (then it was killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the server and waits (at most `timeout`) for it to exit by itself.
pub fn run_until_exit(opts: ServerOptions, timeout: Duration) -> ExitReport {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let db = opts
        .db
        .clone()
        .unwrap_or_else(|| dir.path().join("store.db"));
    let mut spawned = spawn_server(&opts, &db, &tmp);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match spawned.child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill_group(&mut spawned.child);
                let _ = spawned.child.wait();
                break None;
            }
        }
    };
    let _ = spawned.stdout_thread.join();
    let _ = spawned.stderr_thread.join();
    let stdout = spawned.stdout_log.lock().unwrap().clone();
    let stderr = String::from_utf8_lossy(&spawned.stderr_log.lock().unwrap()).into_owned();
    ExitReport {
        status,
        stdout,
        stderr,
    }
}
