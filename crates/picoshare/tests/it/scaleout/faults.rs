//! Faults on the scale-out store: two instances on one PostgreSQL and one
//! bucket, and an instance paused (SIGSTOP) for longer than its lease, an
//! instance killed (SIGKILL), PostgreSQL stopped and restarted, Garage
//! stopped, restarted and hung (SIGSTOP) in the middle of uploads and
//! downloads. Each test checks what a user must be able to rely on: no
//! acknowledged upload is lost or empty, no download or upload limit is
//! exceeded, nothing is left behind once the instances have cleaned up (no
//! upload row, no queued deletion, no unfinished multipart upload, no object
//! without its file), and a failure is a clear 5xx, never a 200 that lies.
//!
//! These tests stop and pause services, so they use a PostgreSQL and a
//! Garage of their own (`PICOSHARE_TEST_FAULT_SERVICES`, a directory that
//! `scripts/remote-services start` made; `scripts/test` starts it), one
//! scenario at a time: they run in sequence as one test,
//! `pauses_kills_and_outages`, and the rest of the suite never sees an
//! outage. Instances run with a 3-second lease (`PS_INSTANCE_LEASE_SECS`),
//! so a pause of 4.5 s outlasts it, and requests to the bucket time out
//! after 2 or 3 s (`PS_S3_TIMEOUT_SECS`).
//!
//! The scenarios print what each fault cost (how long a file stayed
//! unavailable, how long a clean-up took). To measure that with the
//! server's defaults rather than the short test settings (as
//! docs/reliability.md does), set `PICOSHARE_FAULT_LEASE_SECS=30` and
//! `PICOSHARE_FAULT_S3_TIMEOUT_SECS=30`: every wait and limit of these
//! tests follows them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;
use crate::limits::upload_with;

/// The instances' lease (`PS_INSTANCE_LEASE_SECS`): 3 s, or
/// `PICOSHARE_FAULT_LEASE_SECS`.
fn lease_secs() -> u64 {
    setting("PICOSHARE_FAULT_LEASE_SECS").unwrap_or(3)
}

/// The instances' `PS_S3_TIMEOUT_SECS`: `short`, or
/// `PICOSHARE_FAULT_S3_TIMEOUT_SECS`.
fn s3_timeout_secs(short: u64) -> u64 {
    setting("PICOSHARE_FAULT_S3_TIMEOUT_SECS").unwrap_or(short)
}

/// A number of seconds from the environment, if set.
fn setting(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: a number of seconds")),
    )
}

/// A pause longer than the lease, with room for a busy machine.
fn pause() -> Duration {
    Duration::from_millis(lease_secs() * 1000 + 1500)
}

/// How long a clean-up that waits for a lease to run out may take: the
/// lease, then up to half a lease until the next upkeep, with room for a
/// busy machine.
fn after_lease(extra_secs: u64) -> Duration {
    Duration::from_secs(lease_secs() * 2 + extra_secs)
}

/// The PostgreSQL and Garage of the fault tests.
struct Services {
    dir: PathBuf,
    storage: RemoteStorage,
    /// Garage's admin API (`http://127.0.0.1:PORT`) and its token.
    admin_url: String,
    admin_token: String,
}

/// The fault tests' services, read from `PICOSHARE_TEST_FAULT_SERVICES`.
fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let dir = std::env::var("PICOSHARE_TEST_FAULT_SERVICES").unwrap_or_else(|_| {
            panic!(
                "the fault tests need PICOSHARE_TEST_FAULT_SERVICES: a directory where \
                 `scripts/remote-services start DIR` runs a PostgreSQL and a Garage of \
                 their own (scripts/test starts one)"
            )
        });
        let dir = PathBuf::from(dir);
        let env = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_else(|e| panic!("{}/env: {e}", dir.display()));
        let var = |name: &str| {
            env.lines()
                .filter_map(|l| l.strip_prefix("export "))
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
                .unwrap_or_else(|| panic!("{name} missing from {}/env", dir.display()))
        };
        let storage = RemoteStorage {
            postgres_url: var("PICOSHARE_TEST_POSTGRES_URL"),
            endpoint: var("PICOSHARE_TEST_S3_ENDPOINT"),
            bucket: var("PICOSHARE_TEST_S3_BUCKET"),
            region: var("PICOSHARE_TEST_S3_REGION"),
            access_key_id: var("PICOSHARE_TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: var("PICOSHARE_TEST_S3_SECRET_ACCESS_KEY"),
        };
        let toml = std::fs::read_to_string(dir.join("garage/garage.toml")).unwrap();
        let admin = toml
            .split("[admin]")
            .nth(1)
            .expect("[admin] in garage.toml");
        let value = |key: &str| {
            admin
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .and_then(|v| v.trim().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
                .unwrap_or_else(|| panic!("{key} missing from garage.toml's [admin]"))
        };
        Services {
            admin_url: format!("http://{}", value("api_bind_addr")),
            admin_token: value("admin_token"),
            dir,
            storage,
        }
    })
}

impl Services {
    /// `scripts/remote-services ctl DIR SERVICE ACTION`.
    fn ctl(&self, service: &str, action: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/remote-services");
        let out = Command::new(script)
            .arg("ctl")
            .arg(&self.dir)
            .args([service, action])
            .output()
            .expect("run scripts/remote-services");
        assert!(
            out.status.success(),
            "remote-services ctl {service} {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Objects and unfinished multipart uploads in the bucket (all tests').
    async fn bucket(&self) -> (i64, i64) {
        let info: Value = plain_client()
            .get(format!(
                "{}/v2/GetBucketInfo?globalAlias={}",
                self.admin_url, self.storage.bucket
            ))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("Garage admin API")
            .json()
            .await
            .expect("Garage bucket info");
        (
            info["objects"].as_i64().unwrap(),
            info["unfinishedMultipartUploads"].as_i64().unwrap(),
        )
    }
}

/// One fault test: its turn on the services, its servers' database path
/// (hence its PostgreSQL schema and key prefix), and the state of the
/// services, put right again when the test ends, whichever way it ends.
struct Fault {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    /// The bucket's objects and unfinished multipart uploads when the test began.
    bucket_before: (i64, i64),
    postgres_down: bool,
    garage_down: bool,
    garage_paused: bool,
}

impl Fault {
    async fn begin() -> Fault {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let turn = TURN.lock().await;
        let bucket_before = services().bucket().await;
        Fault {
            _turn: turn,
            dir: tempfile::tempdir().unwrap(),
            bucket_before,
            postgres_down: false,
            garage_down: false,
            garage_paused: false,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// A server on the fault services with this test's schema and prefix.
    async fn server(&self, extra: &[(&str, &str)]) -> TestServer {
        let s = &services().storage;
        let lease = lease_secs().to_string();
        let mut opts = ServerOptions::new()
            .db(self.db())
            .env("PS_POSTGRES_URL", &s.postgres_url)
            .env("PS_S3_ENDPOINT", &s.endpoint)
            .env("PS_S3_BUCKET", &s.bucket)
            .env("PS_S3_REGION", &s.region)
            .env("PS_S3_ACCESS_KEY_ID", &s.access_key_id)
            .env("PS_S3_SECRET_ACCESS_KEY", &s.secret_access_key)
            .env("PS_INSTANCE_LEASE_SECS", lease.as_str());
        for (k, v) in extra {
            opts = opts.env(k, *v);
        }
        assert!(
            remote_storage().is_some(),
            "scaleout tests need PICOSHARE_TEST_STORAGE=remote (see scripts/remote-services)"
        );
        TestServer::start_with(opts).await
    }

    /// Two servers sharing this test's schema and prefix.
    async fn pair(&self) -> (TestServer, TestServer) {
        self.pair_with(&[]).await
    }

    /// Two servers sharing this test's schema and prefix, with more settings.
    async fn pair_with(&self, extra: &[(&str, &str)]) -> (TestServer, TestServer) {
        (self.server(extra).await, self.server(extra).await)
    }

    /// A number from this test's PostgreSQL schema (`sql` returns one BIGINT).
    fn count(&self, sql: &str) -> i64 {
        let url = services().storage.postgres_url.clone();
        let schema = remote_names(&self.db()).0;
        let sql = sql.to_owned();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("PostgreSQL");
            c.batch_execute(&format!("SET search_path TO {schema}"))
                .unwrap();
            c.query_one(&sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get::<_, i64>(0)
        })
        .join()
        .unwrap()
    }

    /// Uploads in progress and objects waiting to be deleted, in this test's schema.
    fn leftovers(&self) -> (i64, i64) {
        (
            self.count("SELECT count(*) FROM picoshare_pending_uploads"),
            self.count("SELECT count(*) FROM picoshare_deleted_objects"),
        )
    }

    /// Waits (up to `within`) until nothing is left behind: no upload row,
    /// no queued deletion, no unfinished multipart upload, and one object
    /// per file in the bucket, then says how long that took.
    async fn assert_clean(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let leftovers = self.leftovers();
            let files = self.count("SELECT count(*) FROM entries");
            let (objects, multipart) = services().bucket().await;
            let (objects_before, multipart_before) = self.bucket_before;
            let clean = leftovers == (0, 0)
                && multipart == multipart_before
                && objects - objects_before == files;
            if clean {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "left behind after {within:?}: {} upload rows, {} queued deletions, \
                 {} unfinished multipart uploads, {} objects for {files} files",
                leftovers.0,
                leftovers.1,
                multipart - multipart_before,
                objects - objects_before,
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop_postgres(&mut self) {
        self.postgres_down = true;
        services().ctl("postgres", "stop");
    }

    fn start_postgres(&mut self) {
        services().ctl("postgres", "start");
        self.postgres_down = false;
    }

    fn stop_garage(&mut self) {
        self.garage_down = true;
        services().ctl("garage", "stop");
    }

    fn start_garage(&mut self) {
        services().ctl("garage", "start");
        self.garage_down = false;
    }

    fn pause_garage(&mut self) {
        self.garage_paused = true;
        services().ctl("garage", "pause");
    }

    fn resume_garage(&mut self) {
        services().ctl("garage", "resume");
        self.garage_paused = false;
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        // The next test gets both services running, even after a failure.
        if self.garage_paused {
            services().ctl("garage", "resume");
        }
        if self.garage_down {
            services().ctl("garage", "start");
        }
        if self.postgres_down {
            services().ctl("postgres", "start");
        }
    }
}

/// SIGSTOP or SIGCONT to a server.
fn signal(s: &TestServer, sig: libc::c_int) {
    let pid = s.pid().expect("server running") as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own child, which is not reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// A request sent by hand and its reply read off the wire, for requests
/// that must stop half-way: an upload whose body is sent a piece at a time,
/// a download read a piece at a time.
struct Wire {
    stream: TcpStream,
    /// What was read past the reply's head so far.
    body: Vec<u8>,
}

/// A reply read by [`Wire`]: its status and body, or `None` for a
/// connection cut before the whole body arrived.
type Reply = Option<(u16, Vec<u8>)>;

impl Wire {
    /// Connects with a small receive buffer (so a download that is not
    /// read stops the server's sending early) and sends `head`.
    async fn open(s: &TestServer, head: &str) -> Wire {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 << 10).unwrap();
        let mut stream = socket.connect(s.addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.unwrap();
        Wire {
            stream,
            body: Vec::new(),
        }
    }

    /// Starts a multipart upload of a file of `len` bytes to `path` (with
    /// the `Cookie` header `cookie`, if any); its bytes follow with
    /// [`Wire::send`], the closing delimiter with [`Wire::finish_upload`].
    async fn upload(s: &TestServer, path: &str, cookie: Option<&str>, len: usize) -> Wire {
        let part = "--fault-test\r\nContent-Disposition: form-data; name=\"file\"; \
                    filename=\"fault.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{cookie}Accept: application/json\r\n\
             Content-Type: multipart/form-data; boundary=fault-test\r\nContent-Length: {}\r\n\r\n{part}",
            s.addr,
            part.len() + len + UPLOAD_TAIL.len()
        );
        Wire::open(s, &head).await
    }

    /// Sends upload bytes; false once the server has closed the connection.
    async fn send(&mut self, data: &[u8]) -> bool {
        for piece in data.chunks(256 << 10) {
            let sent = tokio::time::timeout(Duration::from_secs(30), self.stream.write_all(piece));
            if !matches!(sent.await, Ok(Ok(()))) {
                return false;
            }
        }
        true
    }

    /// Sends the upload's closing delimiter and reads the reply.
    async fn finish_upload(mut self) -> Reply {
        if !self.send(UPLOAD_TAIL.as_bytes()).await {
            return None;
        }
        self.reply().await
    }

    /// Sends a GET of `path` and reads the reply's head and its first bytes.
    async fn download(s: &TestServer, path: &str) -> (u16, Wire) {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
        let mut w = Wire::open(s, &head).await;
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), w.stream.read(&mut buf))
                .await
                .expect("the download's first bytes within 30 s")
                .unwrap();
            assert!(n > 0, "connection closed before the first bytes");
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&raw, b"\r\n\r\n", 0) {
                if raw.len() > end + 4 {
                    let status = parse_raw_response(&raw).status;
                    w.body = raw[end + 4..].to_vec();
                    return (status, w);
                }
            }
        }
    }

    /// Reads the rest of the reply: the whole body its Content-Length
    /// announces, or `None` if the connection is cut first.
    async fn reply(&mut self) -> Reply {
        let mut raw = std::mem::take(&mut self.body);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            if let Some(end) = find(&raw, b"\r\n\r\n", 0) {
                let head = parse_raw_response(&raw);
                let length: usize = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if raw.len() - end - 4 >= length {
                    return Some((head.status, raw[end + 4..end + 4 + length].to_vec()));
                }
            }
            match tokio::time::timeout(Duration::from_secs(60), self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
                Ok(_) => return None,
                Err(_) => panic!("no reply within 60 s"),
            }
        }
    }

    /// Reads the rest of a download whose head [`Wire::download`] read:
    /// its body if every byte of `len` arrives, `None` if the connection is
    /// cut before.
    async fn finish_download(mut self, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256 << 10];
        while self.body.len() < len {
            match tokio::time::timeout(Duration::from_secs(60), self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.body.extend_from_slice(&buf[..n]),
                Ok(_) => return None,
                Err(_) => panic!("download stalled for 60 s"),
            }
        }
        Some(self.body)
    }
}

/// The end of [`Wire::upload`]'s body.
const UPLOAD_TAIL: &str = "\r\n--fault-test--\r\n";

/// What became of an upload.
#[derive(Debug, PartialEq)]
enum Upload {
    /// Answered 200: the new file's ID.
    Acknowledged(String),
    /// Refused with this status (a 5xx that says why).
    Refused(u16),
    /// The connection was cut before an answer.
    Cut,
}

/// An upload answered 200 must download in full (through `s`); any other
/// answer must be a 5xx with a message.
async fn check_upload_reply(reply: Reply, s: &TestServer, data: &[u8]) -> Upload {
    let Some((status, body)) = reply else {
        eprintln!("upload: connection cut");
        return Upload::Cut;
    };
    eprintln!("upload: {status} {}", String::from_utf8_lossy(&body).trim());
    if status == 200 {
        let v: Value = serde_json::from_slice(&body).expect("JSON reply");
        let id = v["id"].as_str().expect("id").to_owned();
        let got = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status().as_u16(), 200, "an acknowledged upload is gone");
        let got = got.bytes().await;
        assert!(
            got.as_ref().is_ok_and(|b| b.as_ref() == data),
            "an acknowledged upload does not download in full: {} of {} bytes",
            got.map(|b| b.len()).unwrap_or(0),
            data.len()
        );
        return Upload::Acknowledged(id);
    }
    assert!(
        (500..600).contains(&status),
        "unexpected status {status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(body.len() > 10, "a refusal says why");
    Upload::Refused(status)
}

/// Creates a guest link for `max` uploads; returns its ID.
async fn guest_link(s: &TestServer, max: u64) -> String {
    let resp = s
        .admin_client()
        .await
        .post(s.url("/api/guest-links"))
        .header(CONTENT_TYPE, "application/json")
        .body(
            json!({
                "label": "faults",
                "urlExpirationTime": FAR_FUTURE,
                "fileLifetime": "168h0m0s",
                "maxFileBytes": null,
                "maxFileUploads": max,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `GET /healthz` on `s`: its status and text.
async fn health(s: &TestServer) -> (u16, String) {
    let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// POST /api/admin/gc on `s`; asserts 200.
async fn collect(s: &TestServer) {
    let resp = s
        .admin_client()
        .await
        .post(s.url("/api/admin/gc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
}

/// D1: A stalls between storing a file's object and recording its entry
/// (its request to the bucket is in flight when it freezes); B, taking A
/// for dead, collects A's upload and deletes the object. A must then not
/// acknowledge the upload: a 200 would point to a file with no bytes.
async fn a_paused_instance_never_acknowledges_an_upload_that_was_collected() {
    let mut f = Fault::begin().await;
    let (a, b) = f.pair().await;
    let cookie = a.session_cookie().await;
    let data = random_bytes(300_000, 11);
    // Garage hangs: A's one PUT of the object waits for its answer.
    f.pause_garage();
    let mut up = Wire::upload(&a, "/api/entry", Some(&cookie), data.len()).await;
    assert!(up.send(&data).await);
    let reply = tokio::spawn(async move { up.finish_upload().await });
    assert!(
        eventually(Duration::from_secs(10), || f.leftovers().0 == 1).await,
        "A did not register its upload"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A freezes; Garage stores the object, its answer waits in A's socket.
    signal(&a, libc::SIGSTOP);
    f.resume_garage();
    tokio::time::sleep(pause()).await;
    collect(&b).await;
    assert_eq!(f.leftovers(), (0, 0), "B did not collect A's upload");
    signal(&a, libc::SIGCONT);
    let reply = reply.await.unwrap();
    let outcome = check_upload_reply(reply, &b, &data).await;
    assert_eq!(outcome, Upload::Refused(503), "a collected upload");
    f.assert_clean(Duration::from_secs(15)).await;
}

/// D2: A serves a one-shot file and freezes before its last byte; B, taking
/// A for dead, serves the file in full. When A wakes up it must not send the
/// last byte: the file would have been served twice.
async fn a_paused_instance_never_serves_a_one_shot_file_twice() {
    let f = Fault::begin().await;
    let (a, b) = f.pair().await;
    let data = random_bytes(mib(16), 12);
    let id = upload_with(&a, &[("maxDownloads", "1")], "", &data).await;
    let (status, slow) = Wire::download(&a, &format!("/-{id}")).await;
    assert_eq!(status, 200);
    // A's sending stops: the client reads nothing more for now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&a, libc::SIGSTOP);
    tokio::time::sleep(pause()).await;
    let resp = plain_client()
        .get(b.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    let b_status = resp.status().as_u16();
    let b_whole = b_status == 200 && resp.bytes().await.unwrap() == data;
    signal(&a, libc::SIGCONT);
    let a_whole = slow.finish_download(data.len()).await.as_deref() == Some(&data[..]);
    eprintln!(
        "one-shot file: B (while A was paused) answered {b_status}, whole: {b_whole}; \
         A after its pause, whole: {a_whole}"
    );
    assert!(
        !(a_whole && b_whole),
        "the one-shot file was served in full twice"
    );
    assert!(
        a_whole || b_whole,
        "B answered {b_status}, A cut its download"
    );
    assert_eq!(
        f.count("SELECT downloads_used FROM picoshare_entry_limits"),
        1
    );
}

/// D2: a guest link allows one upload; A receives one and freezes before
/// recording it; B, taking A for dead, accepts another through the link.
/// When A wakes up it must refuse its upload: the link would hold two files.
async fn a_paused_instance_never_exceeds_a_guest_link_limit() {
    let f = Fault::begin().await;
    let (a, b) = f.pair().await;
    let link = guest_link(&a, 1).await;
    let data = random_bytes(mib(6), 13);
    let mut up = Wire::upload(&a, &format!("/api/guest/{link}"), None, data.len()).await;
    assert!(up.send(&data[..mib(1)]).await);
    assert!(
        eventually(Duration::from_secs(10), || f
            .count("SELECT count(*) FROM picoshare_guest_slots")
            == 1)
        .await,
        "A took no slot"
    );
    signal(&a, libc::SIGSTOP);
    tokio::time::sleep(pause()).await;
    let form = Multipart::new().file(
        "file",
        "b.bin",
        Some("application/octet-stream"),
        &random_bytes(100_000, 14),
    );
    let resp = plain_client()
        .post(b.url(&format!("/api/guest/{link}")))
        .header(CONTENT_TYPE, form.content_type())
        .header("Accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let b_status = resp.status().as_u16();
    signal(&a, libc::SIGCONT);
    let reply = if up.send(&data[mib(1)..]).await {
        up.finish_upload().await
    } else {
        None
    };
    let a_kept = matches!(
        check_upload_reply(reply, &a, &data).await,
        Upload::Acknowledged(_)
    );
    let files = f.count(&format!(
        "SELECT count(*) FROM entries WHERE guest_link_id = '{link}'"
    ));
    assert!(
        files <= 1,
        "the link allows 1 upload and holds {files} files"
    );
    assert_eq!(
        i64::from(a_kept) + i64::from(b_status == 200),
        files,
        "B answered {b_status}"
    );
    f.assert_clean(Duration::from_secs(15)).await;
}

/// D5: A is killed (SIGKILL) in the middle of an upload (a multipart upload
/// with parts stored) and of a one-shot download. Without any garbage
/// collection being asked for, B takes back what A held once A's lease has
/// run out: the multipart upload is aborted, the rows are gone, and the
/// one-shot file downloads again.
async fn what_a_killed_instance_held_is_taken_back_without_waiting_for_gc() {
    let f = Fault::begin().await;
    let (mut a, b) = f.pair().await;
    let shot = random_bytes(mib(16), 15);
    let id = upload_with(&b, &[("maxDownloads", "1")], "", &shot).await;
    let cookie = a.session_cookie().await;
    let data = random_bytes(mib(24), 16);
    let mut up = Wire::upload(&a, "/api/entry", Some(&cookie), data.len()).await;
    assert!(up.send(&data[..mib(12)]).await);
    assert!(
        eventually(Duration::from_secs(20), || f.count(
            "SELECT count(*) FROM picoshare_pending_uploads WHERE multipart_id IS NOT NULL"
        ) == 1)
        .await,
        "A started no multipart upload"
    );
    let (status, _slow) = Wire::download(&a, &format!("/-{id}")).await;
    assert_eq!(status, 200);
    a.kill();
    let killed = Instant::now();
    // Until A's lease runs out its download holds the file ("in progress").
    let limit = after_lease(24);
    loop {
        let resp = plain_client()
            .get(b.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 200 {
            assert_eq!(resp.bytes().await.unwrap(), shot);
            break;
        }
        assert_eq!(status, 409, "{:?}", resp.text().await);
        assert!(
            killed.elapsed() < limit,
            "the one-shot file stays blocked {limit:?} after the kill"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "the killed instance's one-shot download was given back {:?} after the kill",
        killed.elapsed()
    );
    f.assert_clean(limit).await;
    eprintln!(
        "the killed instance's upload was cleaned up {:?} after the kill",
        killed.elapsed()
    );
    collect(&b).await;
    f.assert_clean(Duration::from_secs(10)).await;
}

/// D3: a one-shot download reaches its last byte while PostgreSQL is down,
/// so it cannot be counted: A cuts the connection before the last byte.
/// Once PostgreSQL is back the file downloads in full (it never stays
/// "in progress", 409, for good), once. (D7: meanwhile `/healthz` names
/// PostgreSQL.)
async fn a_limited_download_cut_by_a_postgres_outage_is_given_back() {
    let mut f = Fault::begin().await;
    let (a, b) = f.pair().await;
    let data = random_bytes(mib(16), 17);
    let id = upload_with(&a, &[("maxDownloads", "1")], "", &data).await;
    let (status, slow) = Wire::download(&a, &format!("/-{id}")).await;
    assert_eq!(status, 200);
    f.stop_postgres();
    let cut = slow.finish_download(data.len()).await;
    assert!(cut.is_none(), "an uncounted download got its last byte");
    // D7: /healthz names the service that is down.
    let (status, text) = health(&a).await;
    assert_eq!(status, 503);
    assert!(
        text.starts_with("PostgreSQL unavailable: ") && !text.contains("object storage"),
        "{text}"
    );
    f.start_postgres();
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let resp = plain_client()
            .get(a.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        last = resp.status().as_u16();
        if last == 200 {
            assert_eq!(resp.bytes().await.unwrap(), data);
            break;
        }
        assert!(
            matches!(last, 409 | 503),
            "unexpected {last}: {:?}",
            resp.text().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        last, 200,
        "the file still answers {last} 30 s after the outage"
    );
    eprintln!(
        "the download was given back {:?} after PostgreSQL restarted",
        started.elapsed()
    );
    let resp = plain_client()
        .get(b.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 410, "served twice");
}

/// Uploads and downloads in flight on both instances while PostgreSQL stops
/// and starts again: each upload is either acknowledged and whole, or
/// refused with a 5xx; nothing is left behind after the next collection.
async fn a_postgres_restart_mid_transfer_loses_nothing_acknowledged() {
    let mut f = Fault::begin().await;
    let (a, b) = f.pair().await;
    let data: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(mib(11), 20 + i)).collect();
    let mut wires = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let s = if i % 2 == 0 { &a } else { &b };
        let cookie = s.session_cookie().await;
        let mut w = Wire::upload(s, "/api/entry", Some(&cookie), d.len()).await;
        assert!(w.send(&d[..mib(6)]).await);
        wires.push(w);
    }
    f.stop_postgres();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.start_postgres();
    let mut acknowledged = 0;
    for (i, (mut w, d)) in wires.into_iter().zip(&data).enumerate() {
        let reply = if w.send(&d[mib(6)..]).await {
            w.finish_upload().await
        } else {
            None
        };
        let other = if i % 2 == 0 { &b } else { &a };
        if let Upload::Acknowledged(_) = check_upload_reply(reply, other, d).await {
            acknowledged += 1;
        }
    }
    eprintln!("{acknowledged} of 4 uploads in flight during the restart were acknowledged");
    collect(&b).await;
    f.assert_clean(Duration::from_secs(15)).await;
    assert_eq!(f.count("SELECT count(*) FROM entries"), acknowledged);
}

/// D5: an upload cut by an object-store outage (Garage stopped while its
/// parts go out) leaves nothing behind once Garage is back: its row and
/// its multipart upload are cleaned up by the instances themselves, while
/// they keep running and without a collection being asked for. Uploads
/// acknowledged around the outage are whole.
async fn an_upload_cut_by_an_object_store_outage_leaves_nothing_behind() {
    let mut f = Fault::begin().await;
    let timeout = s3_timeout_secs(3).to_string();
    let (a, b) = f
        .pair_with(&[("PS_S3_TIMEOUT_SECS", timeout.as_str())])
        .await;
    let cookie = a.session_cookie().await;
    let data = random_bytes(mib(24), 30);
    let mut up = Wire::upload(&a, "/api/entry", Some(&cookie), data.len()).await;
    assert!(up.send(&data[..mib(12)]).await);
    assert!(
        eventually(Duration::from_secs(20), || f.count(
            "SELECT count(*) FROM picoshare_pending_uploads WHERE multipart_id IS NOT NULL"
        ) == 1)
        .await,
        "A started no multipart upload"
    );
    f.stop_garage();
    let reply = if up.send(&data[mib(12)..]).await {
        up.finish_upload().await
    } else {
        None
    };
    assert!(
        !matches!(
            check_upload_reply(reply, &b, &data).await,
            Upload::Acknowledged(_)
        ),
        "acknowledged while the bucket was down"
    );
    // Garage stays down a while after the failure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.start_garage();
    let took = f.assert_clean(after_lease(24)).await;
    eprintln!("the cut upload was cleaned up {took:?} after Garage restarted");
    let c = b.admin_client().await;
    let id = b
        .upload(&c, "after.bin", &data[..1000], "text/plain", None, None)
        .await;
    assert_eq!(a.download(&id).await, &data[..1000]);
}

/// D6: while the bucket is down, or hangs, a download is refused with a 503
/// that says so, before any header of a 200 is sent. (D7: meanwhile
/// `/healthz` names the object store.)
async fn downloads_during_an_object_store_outage_are_503_not_empty_200s() {
    let mut f = Fault::begin().await;
    let timeout = s3_timeout_secs(2);
    let a = f
        .server(&[("PS_S3_TIMEOUT_SECS", timeout.to_string().as_str())])
        .await;
    let data = random_bytes(mib(1), 40);
    let c = a.admin_client().await;
    let id = a
        .upload(&c, "x.bin", &data, "application/octet-stream", None, None)
        .await;
    for fault in ["stopped", "hung"] {
        match fault {
            "stopped" => f.stop_garage(),
            _ => f.pause_garage(),
        }
        let started = Instant::now();
        let resp = plain_client()
            .get(a.url(&format!("/-{id}")))
            .timeout(Duration::from_secs(timeout + 28))
            .send()
            .await
            .expect("an answer while Garage is down");
        assert_eq!(resp.status().as_u16(), 503, "Garage {fault}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("storage"), "Garage {fault}: {text}");
        eprintln!(
            "Garage {fault}: 503 after {:?}: {}",
            started.elapsed(),
            text.trim()
        );
        // D7: /healthz names the service that is down.
        let (status, text) = health(&a).await;
        assert_eq!(status, 503, "Garage {fault}");
        assert!(
            text.starts_with("object storage unavailable: ") && !text.contains("PostgreSQL"),
            "Garage {fault}: {text}"
        );
        match fault {
            "stopped" => f.start_garage(),
            _ => f.resume_garage(),
        }
        assert_eq!(a.download(&id).await, data);
    }
    assert_eq!(health(&a).await, (200, "ok\n".to_owned()));
}

/// Every scenario above, one after another: they take turns on the fault
/// services anyway, and as one test they hold one of the harness's test
/// threads rather than two (a test waiting for its turn would hold another).
/// Each runs in a task of its own, so that a failing one is reported (its
/// servers' logs with it) and the others still run.
#[tokio::test]
async fn pauses_kills_and_outages() {
    type Scenario = fn() -> futures_util::future::BoxFuture<'static, ()>;
    let scenarios: &[(&str, Scenario)] = &[
        (
            "a_paused_instance_never_acknowledges_an_upload_that_was_collected",
            || Box::pin(a_paused_instance_never_acknowledges_an_upload_that_was_collected()),
        ),
        (
            "a_paused_instance_never_serves_a_one_shot_file_twice",
            || Box::pin(a_paused_instance_never_serves_a_one_shot_file_twice()),
        ),
        ("a_paused_instance_never_exceeds_a_guest_link_limit", || {
            Box::pin(a_paused_instance_never_exceeds_a_guest_link_limit())
        }),
        (
            "what_a_killed_instance_held_is_taken_back_without_waiting_for_gc",
            || Box::pin(what_a_killed_instance_held_is_taken_back_without_waiting_for_gc()),
        ),
        (
            "a_limited_download_cut_by_a_postgres_outage_is_given_back",
            || Box::pin(a_limited_download_cut_by_a_postgres_outage_is_given_back()),
        ),
        (
            "a_postgres_restart_mid_transfer_loses_nothing_acknowledged",
            || Box::pin(a_postgres_restart_mid_transfer_loses_nothing_acknowledged()),
        ),
        (
            "an_upload_cut_by_an_object_store_outage_leaves_nothing_behind",
            || Box::pin(an_upload_cut_by_an_object_store_outage_leaves_nothing_behind()),
        ),
        (
            "downloads_during_an_object_store_outage_are_503_not_empty_200s",
            || Box::pin(downloads_during_an_object_store_outage_are_503_not_empty_200s()),
        ),
    ];
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        let started = Instant::now();
        let outcome = tokio::spawn(scenario()).await;
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => eprintln!("ok     {name} ({took:.1} s)"),
            Err(e) => {
                eprintln!("FAILED {name} ({took:.1} s): {e}");
                failed.push(*name);
            }
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}
