//! The harness every test module shares.
//!
//! It starts the real `picoshare` binary as a child process (the contract with
//! the server: `--db PATH --listen 127.0.0.1:0`, secret in `PS_SHARED_SECRET`,
//! one `picoshare listening on http://127.0.0.1:PORT` line on stdout when
//! ready), talks to it over HTTP, and looks inside its SQLite database with a
//! read-only connection. Nothing here imports the server's own code: the
//! tests see the server only as a user or an HTTP client would.
//!
//! With `PICOSHARE_TEST_STORAGE=remote` the same servers keep their data in
//! PostgreSQL and S3 instead (see [`remote_storage`]); the database helpers
//! then read the PostgreSQL schema of the test's database path.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE, SET_COOKIE};
use reqwest::{Client, Response};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The admin passphrase every test server gets unless a test says otherwise.
pub const SECRET: &str = "it-secret correct horse battery staple";
/// An expiration far enough away that nothing in a test run expires.
pub const FAR_FUTURE: &str = "2040-01-01T00:00:00Z";
/// How PicoShare stores "never expires".
pub const NEVER_EXPIRES: &str = "2999-12-31T00:00:00Z";
/// Entry IDs are drawn from this alphabet (no look-alike characters).
pub const ID_ALPHABET: &str = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// The chunk size of databases written by the Go server.
pub const GO_CHUNK_SIZE: usize = 327_680;
/// A well-formed entry ID that no test ever uploads.
pub const UNKNOWN_ID: &str = "aaaaaaaaaa";

const READY_PREFIX: &str = "picoshare listening on ";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Starting and stopping the server
// ---------------------------------------------------------------------------

/// How to start a server: environment, secret and database location.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    secret: Option<String>,
    env: Vec<(String, String)>,
    db: Option<PathBuf>,
    db_flag: String,
    extra_args: Vec<String>,
    sqlite_only: bool,
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

    /// Passes an extra command-line argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
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

fn spawn_server(opts: &ServerOptions, db: &Path, tmp: &Path) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picoshare"));
    cmd.arg(&opts.db_flag)
        .arg(db)
        .arg("--listen")
        .arg("127.0.0.1:0")
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
                let _ = child.kill();
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
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|e| format!("cannot parse address in ready line {url:?}: {e}"))?;
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
        let pid = self.pid().expect("server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// SIGKILL, like a power cut for the process (not for the disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
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
        let _ = child.kill();
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
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    // --- HTTP conveniences ---------------------------------------------

    /// Logs `client` in with the server's secret; asserts 200.
    pub async fn login(&self, client: &Client) {
        let resp = client
            .post(self.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": self.secret }))
            .send()
            .await
            .expect("POST /api/auth");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "login failed: {:?}",
            resp.text().await
        );
    }

    /// A cookie-keeping client that is already logged in.
    pub async fn admin_client(&self) -> Client {
        let c = client();
        self.login(&c).await;
        c
    }

    /// Logs in with a cookie-less client and returns what a browser would
    /// send back: the `Cookie` header value (`name=value[; name2=value2]`).
    pub async fn session_cookie(&self) -> String {
        let resp = plain_client()
            .post(self.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": self.secret }))
            .send()
            .await
            .expect("POST /api/auth");
        assert_eq!(resp.status().as_u16(), 200);
        let cookies = set_cookies(resp.headers());
        assert!(!cookies.is_empty(), "login set no cookie");
        cookies
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends an upload request with the given query string (`""` for none).
    pub async fn post_entry(&self, client: &Client, query: &str, form: Multipart) -> Response {
        let content_type = form.content_type();
        client
            .post(self.url(&format!("/api/entry{query}")))
            .header(CONTENT_TYPE, content_type)
            .body(form.finish())
            .send()
            .await
            .expect("POST /api/entry")
    }

    /// Uploads a file (note first, like the web UI) and returns its new ID.
    /// `expiration: None` means [`FAR_FUTURE`].
    pub async fn upload(
        &self,
        client: &Client,
        filename: &str,
        data: &[u8],
        content_type: &str,
        note: Option<&str>,
        expiration: Option<&str>,
    ) -> String {
        let mut form = Multipart::new();
        if let Some(note) = note {
            form = form.text("note", note);
        }
        form = form.file("file", filename, Some(content_type), data);
        let query = format!("?expiration={}", expiration.unwrap_or(FAR_FUTURE));
        let resp = self.post_entry(client, &query, form).await;
        upload_id(resp).await
    }

    /// GETs `/-{id}` and returns the body; asserts 200.
    pub async fn download(&self, id: &str) -> Vec<u8> {
        let resp = plain_client()
            .get(self.url(&format!("/-{id}")))
            .send()
            .await
            .expect("GET download");
        assert_eq!(resp.status().as_u16(), 200, "download of {id}");
        resp.bytes().await.expect("download body").to_vec()
    }

    // --- database conveniences -----------------------------------------

    /// A read-only connection to the live database (WAL lets it read while
    /// the server writes). On the scale-out store: an in-memory SQLite copy
    /// of the PostgreSQL tables taken now (see [`remote_snapshot`]).
    pub fn db(&self) -> Connection {
        if remote_storage().is_some() {
            return remote_snapshot(&remote_names(&self.db_path).0);
        }
        open_db_read_only(&self.db_path)
    }

    pub fn entry(&self, id: &str) -> Option<EntryRow> {
        entry_row(&self.db(), id)
    }

    pub fn entry_count(&self) -> i64 {
        count(&self.db(), "SELECT count(*) FROM entries", [])
    }

    /// Chunk rows whose entry does not exist: leftovers of failed uploads.
    pub fn orphan_chunks(&self) -> i64 {
        count(
            &self.db(),
            "SELECT count(*) FROM entries_data WHERE id NOT IN (SELECT id FROM entries)",
            [],
        )
    }

    /// The bytes stored so far for an unfinished resumable upload (its
    /// chunks in order, then its tail), straight from the database.
    pub fn tus_stored_bytes(&self, upload_id: &str) -> Vec<u8> {
        let db = self.db();
        let (entry, tail): (String, Option<Vec<u8>>) = db
            .query_row(
                "SELECT entry_id, tail FROM picoshare_tus_uploads WHERE id = ?1",
                [upload_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("resumable upload row");
        let mut out = Vec::new();
        let mut stmt = db
            .prepare("SELECT chunk FROM entries_data WHERE id = ?1 ORDER BY chunk_index")
            .expect("prepare chunk query");
        for chunk in stmt
            .query_map([&entry], |r| r.get::<_, Vec<u8>>(0))
            .expect("query chunks")
        {
            out.extend_from_slice(&chunk.expect("chunk row"));
        }
        out.extend_from_slice(&tail.unwrap_or_default());
        out
    }

    pub fn chunk_rows(&self, id: &str) -> i64 {
        count(
            &self.db(),
            "SELECT count(*) FROM entries_data WHERE id = ?1",
            [id],
        )
    }

    pub fn download_rows(&self, id: &str) -> Vec<DownloadRow> {
        download_rows(&self.db(), id)
    }

    /// Names of whatever sits in the server's TMPDIR right now.
    pub fn tmp_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every byte the server keeps about its files apart from their data:
    /// the database file and its WAL, or on the scale-out store every row
    /// of its PostgreSQL tables (as JSON).
    pub fn metadata_bytes(&self) -> Vec<u8> {
        if remote_storage().is_some() {
            let parts: Vec<String> = SNAPSHOT_TABLES
                .iter()
                .map(|(t, _)| format!("'{t}', (SELECT coalesce(json_agg(x), '[]') FROM {t} x)"))
                .collect();
            let sql = format!("SELECT json_build_object({})", parts.join(", "));
            return pg_json(&remote_names(&self.db_path).0, &sql)
                .to_string()
                .into_bytes();
        }
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", self.db_path.display());
            if let Ok(bytes) = std::fs::read(&path) {
                all.extend_from_slice(&bytes);
            }
        }
        all
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
                let _ = spawned.child.kill();
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

// ---------------------------------------------------------------------------
// HTTP clients and response checks
// ---------------------------------------------------------------------------

/// A client with a cookie store, no redirects and no proxy.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("reqwest client")
}

/// A client that keeps no cookies (for anonymous requests and manual
/// `Cookie` headers).
pub fn plain_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("reqwest client")
}

/// Reads `{"id": "..."}` from a successful upload reply and checks the ID's
/// shape.
pub async fn upload_id(resp: Response) -> String {
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("upload reply body");
    assert_eq!(status, 200, "upload failed: {body:?}");
    assert!(
        content_type.starts_with("application/json"),
        "upload reply Content-Type is {content_type:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("upload reply {body:?}: {e}"));
    let id = json["id"]
        .as_str()
        .unwrap_or_else(|| panic!("upload reply has no string id: {body:?}"))
        .to_string();
    assert_entry_id_shape(&id);
    id
}

pub fn assert_entry_id_shape(id: &str) {
    assert_eq!(id.len(), 10, "entry id {id:?} should be 10 characters");
    assert!(
        id.chars().all(|c| ID_ALPHABET.contains(c)),
        "entry id {id:?} has a character outside {ID_ALPHABET}"
    );
}

/// The header's value as text, or `""` if absent (panics on non-ASCII).
pub fn header_str(headers: &HeaderMap, name: &str) -> String {
    match headers.get(name) {
        None => String::new(),
        Some(v) => v
            .to_str()
            .unwrap_or_else(|_| panic!("header {name} is not visible ASCII: {:?}", v.as_bytes()))
            .to_string(),
    }
}

/// Asserts an error reply: status, `text/plain; charset=utf-8`, and a body of
/// exactly `message` plus a newline.
pub async fn assert_error(resp: Response, status: u16, message: &str) {
    let got_status = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("error body");
    assert_eq!(
        (got_status, body.as_str()),
        (status, format!("{message}\n").as_str()),
        "error reply for {url}"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "error Content-Type for {url}"
    );
}

/// Asserts an error reply whose body starts with `prefix`; returns the body.
pub async fn assert_error_prefix(resp: Response, status: u16, prefix: &str) -> String {
    let got_status = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("error body");
    assert_eq!(got_status, status, "status for {url}; body {body:?}");
    assert!(
        body.starts_with(prefix),
        "body for {url} should start with {prefix:?}, got {body:?}"
    );
    assert!(
        body.ends_with('\n'),
        "error body should end with a newline: {body:?}"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "error Content-Type for {url}"
    );
    body
}

/// One parsed `Set-Cookie` header.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes as written, trimmed (`HttpOnly`, `Path=/`, ...).
    pub attributes: Vec<String>,
}

impl SetCookie {
    /// Whether an attribute is present, compared case-insensitively
    /// (`"HttpOnly"`, `"SameSite=Strict"`, `"Path=/"`).
    pub fn has(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| {
            let norm: String = a.split('=').map(str::trim).collect::<Vec<_>>().join("=");
            norm.eq_ignore_ascii_case(attr)
        })
    }

    /// The value of an attribute such as `Max-Age`, if present.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            let (k, v) = a.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("Set-Cookie is ASCII");
            let mut parts = text.split(';');
            let (name, value) = parts
                .next()
                .and_then(|nv| nv.split_once('='))
                .unwrap_or_else(|| panic!("malformed Set-Cookie {text:?}"));
            SetCookie {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                attributes: parts
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            }
        })
        .collect()
}

/// The session cookie among a login reply's cookies: PicoShare's
/// `sharedSecret` if present, otherwise the only cookie set.
pub fn session_set_cookie(headers: &HeaderMap) -> SetCookie {
    let cookies = set_cookies(headers);
    if let Some(c) = cookies.iter().find(|c| c.name == "sharedSecret") {
        return c.clone();
    }
    assert_eq!(
        cookies.len(),
        1,
        "cannot tell which cookie is the session: {cookies:?}"
    );
    cookies[0].clone()
}

// ---------------------------------------------------------------------------
// Multipart bodies built by hand (exact control over filenames and order)
// ---------------------------------------------------------------------------

/// A `multipart/form-data` body written byte by byte, so tests control part
/// order, filename bytes and part headers exactly.
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    pub fn new() -> Self {
        Multipart {
            boundary: format!("----picoshare-it-{:016x}", rand::random::<u64>()),
            body: Vec::new(),
        }
    }

    /// A plain form field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.open_part(&format!("form-data; name=\"{name}\""), None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file field. The filename is sent as a quoted-string: raw UTF-8,
    /// with `\` and `"` backslash-escaped. `content_type: None` leaves the
    /// part's Content-Type header out.
    pub fn file(self, name: &str, filename: &str, content_type: Option<&str>, data: &[u8]) -> Self {
        let quoted = filename.replace('\\', "\\\\").replace('"', "\\\"");
        self.file_with_disposition(
            &format!("form-data; name=\"{name}\"; filename=\"{quoted}\""),
            content_type,
            data,
        )
    }

    /// A part with a hand-written Content-Disposition value.
    pub fn file_with_disposition(
        mut self,
        disposition: &str,
        content_type: Option<&str>,
        data: &[u8],
    ) -> Self {
        self.open_part(disposition, content_type);
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn open_part(&mut self, disposition: &str, content_type: Option<&str>) {
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        self.body
            .extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        if let Some(ct) = content_type {
            self.body
                .extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        self.body.extend_from_slice(b"\r\n");
    }

    /// The request's Content-Type header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The complete body, closing delimiter included.
    pub fn finish(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body
    }
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// `len` pseudo-random bytes, the same for the same seed (splitmix64: fast
/// even in a debug build, and incompressible enough for storage tests).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn mib(n: usize) -> usize {
    n * MIB
}

/// Now + `offset`, in the RFC 3339 form the server stores (UTC, seconds).
pub fn rfc3339_from_now(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// Database inspection
// ---------------------------------------------------------------------------

/// Where the scale-out store's services are, when the tests run against it.
#[derive(Debug, Clone)]
pub struct RemoteStorage {
    pub postgres_url: String,
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// `Some` when this test run uses PostgreSQL and S3
/// (`PICOSHARE_TEST_STORAGE=remote` and the `PICOSHARE_TEST_*` settings that
/// `scripts/remote-services start` prints); `None` for SQLite.
pub fn remote_storage() -> Option<&'static RemoteStorage> {
    static REMOTE: std::sync::OnceLock<Option<RemoteStorage>> = std::sync::OnceLock::new();
    REMOTE
        .get_or_init(|| {
            let mode = std::env::var("PICOSHARE_TEST_STORAGE").unwrap_or_default();
            if mode.is_empty() || mode == "sqlite" {
                return None;
            }
            assert_eq!(
                mode, "remote",
                "PICOSHARE_TEST_STORAGE must be sqlite or remote"
            );
            let var = |k: &str| {
                std::env::var(k).unwrap_or_else(|_| {
                    panic!("PICOSHARE_TEST_STORAGE=remote needs {k} (see scripts/remote-services)")
                })
            };
            Some(RemoteStorage {
                postgres_url: var("PICOSHARE_TEST_POSTGRES_URL"),
                endpoint: var("PICOSHARE_TEST_S3_ENDPOINT"),
                bucket: var("PICOSHARE_TEST_S3_BUCKET"),
                region: var("PICOSHARE_TEST_S3_REGION"),
                access_key_id: var("PICOSHARE_TEST_S3_ACCESS_KEY_ID"),
                secret_access_key: var("PICOSHARE_TEST_S3_SECRET_ACCESS_KEY"),
            })
        })
        .as_ref()
}

/// The PostgreSQL schema and S3 key prefix of a database path.
pub fn remote_names(db: &Path) -> (String, String) {
    let digest = Sha256::digest(db.as_os_str().as_encoded_bytes());
    let schema = format!("t_{}", &hex(&digest)[..16]);
    let prefix = format!("{schema}/");
    (schema, prefix)
}

/// Runs `work` with a fresh blocking PostgreSQL connection whose search path
/// is `schema`. The blocking client drives a Tokio runtime of its own, which
/// may not be started from inside the test's runtime, hence the thread.
fn with_pg<T: Send + 'static>(
    schema: &str,
    work: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
) -> T {
    let remote = remote_storage().expect("PostgreSQL queries need the scale-out store");
    let url = remote.postgres_url.clone();
    let schema = schema.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL: {e}"));
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .expect("set search_path");
        work(&mut client).unwrap_or_else(|e| panic!("PostgreSQL (schema {schema}): {e}"))
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs one query in a schema and returns its single JSON value (the query
/// must produce one row with one `json` column).
pub fn pg_json(schema: &str, sql: &str) -> serde_json::Value {
    let sql = sql.to_owned();
    let text = with_pg(schema, move |client| {
        // The simple protocol hands every value over as text.
        let messages = client.simple_query(&sql)?;
        Ok(messages.into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
            _ => None,
        }))
    });
    let text = text
        .flatten()
        .unwrap_or_else(|| panic!("no JSON value from PostgreSQL"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("PostgreSQL's answer is not JSON ({e}): {text}"))
}

/// Changes the store a (stopped) server on `db` keeps its data in, for the
/// tests that set up a state no HTTP request can make: `sql` is executed
/// once per element of `rows` (with `$1`, `$2`, ... bound to its values, all
/// text), or once if `rows` is empty, all in one transaction. On SQLite it
/// runs on the database file; on the scale-out store in the PostgreSQL
/// schema of that path (whose tables have the same names and columns).
pub fn store_execute(db: &Path, sql: &str, rows: &[Vec<String>]) {
    if remote_storage().is_some() {
        let (sql, rows) = (sql.to_owned(), rows.to_vec());
        with_pg(&remote_names(db).0, move |client| {
            let mut tx = client.transaction()?;
            if rows.is_empty() {
                tx.batch_execute(&sql)?;
            } else {
                let stmt = tx.prepare(&sql)?;
                for row in &rows {
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = row
                        .iter()
                        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    tx.execute(&stmt, &params)?;
                }
            }
            tx.commit()
        });
        return;
    }
    let mut conn = open_db_read_write(db);
    let tx = conn.transaction().unwrap();
    if rows.is_empty() {
        tx.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    } else {
        // SQLite numbers `$1`, `$2`, ... by first appearance: positional.
        let mut stmt = tx.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row)).unwrap();
        }
        drop(stmt);
    }
    tx.commit().unwrap();
}

/// The tables of the scale-out store that tests look at, with the order
/// their rows are copied in (so that `rowid` follows insertion order).
const SNAPSHOT_TABLES: &[(&str, &str)] = &[
    ("entries", "seq"),
    ("downloads", "seq"),
    ("guest_links", "creation_time"),
    ("settings", "id"),
    ("picoshare_sessions", "created_time"),
    ("picoshare_tus_uploads", "created_time"),
    ("picoshare_tus_parts", "part_number"),
    ("picoshare_api_tokens", "created_time"),
    ("picoshare_entry_limits", "entry_id"),
    ("picoshare_server_keys", "name"),
    ("picoshare_shares", "created_time"),
    ("picoshare_share_entries", "position"),
    ("picoshare_pending_uploads", "started"),
    ("picoshare_deleted_objects", "since"),
];

/// An in-memory SQLite database holding a copy of the scale-out store's
/// PostgreSQL tables (same names and columns), so that the tests' queries
/// read either store. File data has no table there; `entries_data` is made
/// up so that the questions tests ask of it get true answers: one row per
/// part of every stored object (each as long as that part), one per part of
/// an unfinished resumable upload and one for its tail, and one per upload
/// in progress or object waiting for deletion (data that belongs to no entry).
pub fn remote_snapshot(schema: &str) -> Connection {
    let parts: Vec<String> = SNAPSHOT_TABLES
        .iter()
        .map(|(t, order)| {
            format!("'{t}', (SELECT coalesce(json_agg(x ORDER BY x.{order}), '[]') FROM {t} x)")
        })
        .collect();
    let sql = format!(
        "SELECT json_build_object('columns', (SELECT json_object_agg(table_name, cols) FROM
            (SELECT table_name, json_agg(column_name::text ORDER BY ordinal_position) AS cols
             FROM information_schema.columns WHERE table_schema = current_schema()
             GROUP BY table_name) c), 'rows', json_build_object({}))",
        parts.join(", ")
    );
    let all = pg_json(schema, &sql);
    let conn = Connection::open_in_memory().expect("in-memory SQLite");
    for (table, _) in SNAPSHOT_TABLES {
        let cols: Vec<String> = all["columns"][table]
            .as_array()
            .unwrap_or_else(|| panic!("no table {table} in schema {schema}"))
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        conn.execute_batch(&format!("CREATE TABLE {table} ({});", cols.join(", ")))
            .unwrap();
        let placeholders = vec!["?"; cols.len()].join(", ");
        let insert = format!("INSERT INTO {table} VALUES ({placeholders})");
        for row in all["rows"][table].as_array().unwrap() {
            let values: Vec<rusqlite::types::Value> =
                cols.iter().map(|c| json_to_sqlite(&row[c])).collect();
            conn.execute(&insert, rusqlite::params_from_iter(values))
                .unwrap();
        }
    }
    conn.execute_batch(
        "CREATE TABLE entries_data (id TEXT, chunk_index INTEGER, chunk BLOB);
         WITH RECURSIVE parts(id, i, size, part) AS (
            SELECT id, 0, size, max(part_size, 1) FROM entries
            UNION ALL SELECT id, i + 1, size, part FROM parts WHERE (i + 1) * part < size)
         INSERT INTO entries_data SELECT id, i, zeroblob(min(part, size - i * part)) FROM parts;
         INSERT INTO entries_data SELECT t.entry_id, p.part_number - 1, zeroblob(1)
            FROM picoshare_tus_parts p JOIN picoshare_tus_uploads t ON t.id = p.upload_id
            WHERE t.completed = 0;
         INSERT INTO entries_data SELECT entry_id, upload_offset / chunk_size, tail
            FROM picoshare_tus_uploads WHERE completed = 0 AND length(tail) > 0;
         INSERT INTO entries_data SELECT entry_id, 0, zeroblob(1) FROM picoshare_pending_uploads;
         INSERT INTO entries_data SELECT replace(key, rtrim(key, replace(key, '/', '')), ''), 0, zeroblob(1)
            FROM picoshare_deleted_objects;",
    )
    .unwrap();
    conn
}

fn json_to_sqlite(v: &serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Real(n.as_f64().unwrap_or(0.0)), Value::Integer),
        // BYTEA arrives as `\x` and hex digits.
        serde_json::Value::String(s) => match s.strip_prefix("\\x") {
            Some(h) if h.len() % 2 == 0 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Value::Blob(
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect(),
            ),
            _ => Value::Text(s.clone()),
        },
        other => Value::Text(other.to_string()),
    }
}

pub fn open_db_read_only(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("cannot open {} read-only: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

pub fn open_db_read_write(path: &Path) -> Connection {
    let conn =
        Connection::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

pub fn count<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> i64 {
    conn.query_row(sql, params, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// One row of `entries`, as the Go server's schema defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub note: Option<String>,
    pub expiration_time: Option<String>,
    pub upload_time: String,
    pub guest_link_id: Option<String>,
}

pub fn entry_row(conn: &Connection, id: &str) -> Option<EntryRow> {
    conn.query_row(
        "SELECT id, filename, content_type, note, expiration_time, upload_time, guest_link_id
         FROM entries WHERE id = ?1",
        [id],
        |r| {
            Ok(EntryRow {
                id: r.get(0)?,
                filename: r.get(1)?,
                content_type: r.get(2)?,
                note: r.get(3)?,
                expiration_time: r.get(4)?,
                upload_time: r.get(5)?,
                guest_link_id: r.get(6)?,
            })
        },
    )
    .optional()
    .expect("query entries")
}

/// One row of `downloads`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DownloadRow {
    pub entry_id: String,
    pub download_timestamp: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn download_rows(conn: &Connection, id: &str) -> Vec<DownloadRow> {
    let mut stmt = conn
        .prepare(
            "SELECT entry_id, download_timestamp, client_ip, user_agent
             FROM downloads WHERE entry_id = ?1 ORDER BY rowid",
        )
        .expect("prepare downloads query");
    stmt.query_map([id], |r| {
        Ok(DownloadRow {
            entry_id: r.get(0)?,
            download_timestamp: r.get(1)?,
            client_ip: r.get(2)?,
            user_agent: r.get(3)?,
        })
    })
    .expect("query downloads")
    .map(|r| r.expect("downloads row"))
    .collect()
}

/// Asserts a timestamp is in the stored form `YYYY-MM-DDTHH:MM:SSZ` and
/// returns it parsed.
pub fn assert_stored_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    assert!(
        text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
        "stored time {text:?} is not RFC 3339 UTC with whole seconds"
    );
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("stored time {text:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut condition: F) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP over TCP (for what reqwest hides: HEAD bodies, aborted uploads)
// ---------------------------------------------------------------------------

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Every byte after the blank line that ends the head.
    pub rest: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` verbatim and reads until the server closes (send
/// `Connection: close`), at most 30 s.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
        .await
        .expect("server did not close the connection within 30 s")
        .expect("read response");
    parse_raw_response(&buf)
}

pub fn parse_raw_response(bytes: &[u8]) -> RawResponse {
    let end = find(bytes, b"\r\n\r\n", 0)
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).expect("head is UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        rest: bytes[end + 4..].to_vec(),
    }
}

pub fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&i| &haystack[i..i + needle.len()] == needle)
}

// ---------------------------------------------------------------------------
// Content-Disposition (RFC 6266) and multipart/byteranges parsing
// ---------------------------------------------------------------------------

/// A parsed Content-Disposition header.
#[derive(Debug, Default, Clone)]
pub struct ContentDisposition {
    /// `inline`, `attachment`, ... (lower-cased); PicoShare's original sent none.
    pub disposition: Option<String>,
    /// The `filename` parameter, unquoted.
    pub filename: Option<String>,
    /// The `filename*` parameter, percent-decoded.
    pub filename_star: Option<String>,
}

impl ContentDisposition {
    /// The name a browser would use: `filename*` wins over `filename`.
    pub fn effective_filename(&self) -> Option<&str> {
        self.filename_star.as_deref().or(self.filename.as_deref())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// Parses a Content-Disposition value strictly: optional disposition type,
/// then `; name=value` parameters whose values are tokens or quoted-strings,
/// nothing left over, no duplicate parameters, `filename*` as RFC 8187
/// `UTF-8''percent-encoded`.
pub fn parse_content_disposition(value: &str) -> Result<ContentDisposition, String> {
    let b = value.as_bytes();
    let mut i = 0usize;
    fn skip_ows(b: &[u8], i: &mut usize) {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    }
    fn token(value: &str, i: &mut usize) -> Option<String> {
        let b = value.as_bytes();
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (start != *i).then(|| value[start..*i].to_string())
    }
    let mut cd = ContentDisposition::default();
    skip_ows(b, &mut i);
    let save = i;
    if let Some(t) = token(value, &mut i) {
        let mut j = i;
        skip_ows(b, &mut j);
        if j < b.len() && b[j] == b'=' {
            i = save; // it was a parameter name, not a disposition type
        } else {
            cd.disposition = Some(t.to_ascii_lowercase());
        }
    }
    let mut need_semicolon = cd.disposition.is_some();
    let mut seen = HashSet::new();
    loop {
        skip_ows(b, &mut i);
        if i == b.len() {
            break;
        }
        if need_semicolon {
            if b[i] != b';' {
                return Err(format!("expected ';' at byte {i} of {value:?}"));
            }
            i += 1;
            skip_ows(b, &mut i);
        }
        need_semicolon = true;
        let name = token(value, &mut i)
            .ok_or_else(|| format!("expected a parameter name at byte {i} of {value:?}"))?
            .to_ascii_lowercase();
        skip_ows(b, &mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("expected '=' after {name:?} in {value:?}"));
        }
        i += 1;
        skip_ows(b, &mut i);
        let quoted = i < b.len() && b[i] == b'"';
        let raw = if quoted {
            i += 1;
            let mut out = Vec::new();
            loop {
                if i >= b.len() {
                    return Err(format!("unterminated quoted-string in {value:?}"));
                }
                match b[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        if i + 1 >= b.len() {
                            return Err(format!("dangling backslash in {value:?}"));
                        }
                        out.push(b[i + 1]);
                        i += 2;
                    }
                    c if c == b'\t' || (c >= 0x20 && c != 0x7f) => {
                        out.push(c);
                        i += 1;
                    }
                    c => return Err(format!("control byte {c:#x} in quoted-string of {value:?}")),
                }
            }
            String::from_utf8(out).map_err(|e| e.to_string())?
        } else {
            token(value, &mut i)
                .ok_or_else(|| format!("expected a value for {name:?} in {value:?}"))?
        };
        if !seen.insert(name.clone()) {
            return Err(format!("duplicate parameter {name:?} in {value:?}"));
        }
        match name.as_str() {
            "filename" => cd.filename = Some(raw),
            "filename*" => {
                if quoted {
                    return Err(format!("filename* must not be a quoted-string: {value:?}"));
                }
                cd.filename_star = Some(decode_ext_value(&raw)?);
            }
            _ => {}
        }
    }
    Ok(cd)
}

/// Decodes an RFC 8187 ext-value (`UTF-8'lang'pct-encoded`).
fn decode_ext_value(raw: &str) -> Result<String, String> {
    let mut pieces = raw.splitn(3, '\'');
    let charset = pieces.next().unwrap_or_default();
    let _lang = pieces
        .next()
        .ok_or_else(|| format!("ext-value without language part: {raw:?}"))?;
    let encoded = pieces
        .next()
        .ok_or_else(|| format!("ext-value without value part: {raw:?}"))?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return Err(format!("ext-value charset is not UTF-8: {raw:?}"));
    }
    let b = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = encoded
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {raw:?}"))?;
            out.push(h);
            i += 3;
        } else if is_attr_char(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return Err(format!(
                "byte {:?} must be percent-encoded in {raw:?}",
                b[i] as char
            ));
        }
    }
    String::from_utf8(out).map_err(|e| format!("filename* is not UTF-8: {e}"))
}

/// Checks a download's Content-Disposition: exactly one header, ASCII, well
/// formed, naming `expected` (through `filename*` when it is not plain
/// ASCII).
pub fn assert_disposition_names(headers: &HeaderMap, expected: &str) -> ContentDisposition {
    let all: Vec<_> = headers.get_all("content-disposition").iter().collect();
    assert_eq!(
        all.len(),
        1,
        "expected exactly one Content-Disposition, got {all:?}"
    );
    let text = all[0].to_str().unwrap_or_else(|_| {
        panic!(
            "Content-Disposition has raw non-ASCII or control bytes: {:?}",
            String::from_utf8_lossy(all[0].as_bytes())
        )
    });
    let cd = parse_content_disposition(text)
        .unwrap_or_else(|e| panic!("Content-Disposition {text:?} is malformed: {e}"));
    assert_eq!(
        cd.effective_filename(),
        Some(expected),
        "Content-Disposition {text:?} does not name {expected:?}"
    );
    if !expected.is_ascii() {
        assert!(
            text.contains("filename*=UTF-8''") || text.contains("filename*=utf-8''"),
            "non-ASCII name needs filename*=UTF-8''...: {text:?}"
        );
    }
    cd
}

/// One part of a `multipart/byteranges` body.
#[derive(Debug)]
pub struct BytePart {
    pub content_range: String,
    pub data: Vec<u8>,
}

/// Splits a `multipart/byteranges` body into its parts.
pub fn parse_byteranges(content_type: &str, body: &[u8]) -> Result<Vec<BytePart>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .ok_or_else(|| format!("no boundary in {content_type:?}"))?
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}").into_bytes();
    let next_delim = format!("\r\n--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or("no opening delimiter")? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(format!("no CRLF after delimiter at byte {pos}"));
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part head not terminated")?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|e| e.to_string())?;
        let content_range = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-range"))
            .map(|(_, v)| v.trim().to_string())
            .ok_or_else(|| format!("part without Content-Range: {head:?}"))?;
        let data_start = head_end + 4;
        let data_end = find(body, &next_delim, data_start).ok_or("part not terminated")?;
        parts.push(BytePart {
            content_range,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + next_delim.len();
    }
}

// ---------------------------------------------------------------------------
// The original's database
// ---------------------------------------------------------------------------

/// Copies the Go server's fixture database into `into` (never open the
/// original in place: even a read-only open creates -wal/-shm files) and
/// returns its path and the fixture's manifest. `PICOSHARE_FIXTURES` if set, else `shared/` beside the repository.
pub fn copy_fixture(into: &Path) -> (PathBuf, serde_json::Value) {
    let src = match std::env::var("PICOSHARE_FIXTURES") {
        Ok(dir) => PathBuf::from(dir).join("picoshare-v15"),
        Err(_) => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/picoshare-v15")
        }
    };
    let manifest = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(src.join("manifest.json"))
            .unwrap_or_else(|e| panic!("cannot read {}/manifest.json: {e}", src.display())),
    )
    .expect("manifest.json");
    let db = into.join("store.db");
    std::fs::copy(src.join("store.db"), &db).expect("copy store.db");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();
    (db, manifest)
}

#[cfg(test)]
mod self_tests {
    use super::*;

    /// The disposition parser accepts what RFC 6266 allows and rejects
    /// headers a hostile filename broke.
    #[test]
    fn content_disposition_parser() {
        let cd = parse_content_disposition(
            "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf",
        )
        .unwrap();
        assert_eq!(cd.effective_filename(), Some("Résumé.pdf"));
        let cd = parse_content_disposition(r#"filename="a\"b.txt""#).unwrap();
        assert_eq!(cd.filename.as_deref(), Some("a\"b.txt"));
        assert!(parse_content_disposition(r#"inline; filename="a"b.txt""#).is_err());
        assert!(parse_content_disposition("inline; filename=\"x\"; filename=\"y\"").is_err());
        assert!(parse_content_disposition("inline; filename*=UTF-8''a b").is_err());
    }
}
