//! Slow and hostile clients: request heads trickled byte by byte, idle
//! keep-alive connections, request bodies that stop, and downloads that stop
//! being read. Each must cost the server a bounded amount of time and memory,
//! and none may keep others from being served. The timeouts are set low with
//! flags; a test asserts only that a connection is closed within three times
//! its timeout (a generous bound), never how fast anything is.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Three times the configured timeout: the bound within which a connection
/// must have been closed.
fn bound(timeout_secs: u64) -> Duration {
    Duration::from_secs(3 * timeout_secs)
}

/// Reads until the server closes the connection (EOF or reset), for at most
/// `within`. Returns what was read, or `None` if the connection was still open.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The head of a raw multipart upload of `file_len` bytes to `path`, and the
/// closing boundary to send after the file's bytes.
fn upload_head(
    s: &TestServer,
    path: &str,
    cookie: Option<&str>,
    file_len: usize,
) -> (String, String) {
    let boundary = "----picoshare-it-slow";
    let part_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = part_head.len() + file_len + tail.len();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\n{cookie}Accept: application/json\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\r\n{part_head}",
        s.addr
    );
    (head, tail)
}

async fn create_guest_link(s: &TestServer, c: &reqwest::Client) -> String {
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(&serde_json::json!({
            "label": "slow", "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "168h0m0s",
            "maxFileBytes": null, "maxFileUploads": null
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// Many connections trickling a request head that never ends (a "slow loris")
/// are each closed within 3× the header timeout, even though bytes keep
/// arriving, and while they are open everyone else is served normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_heads_are_cut_and_others_are_served() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--header-timeout")
            .arg(&TIMEOUT.to_string()),
    )
    .await;
    let mut lorises = Vec::new();
    for i in 0..100 {
        let addr = s.addr;
        lorises.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(format!("GET /login HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut tick = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // One more header line, never the blank line that ends the head.
                        // (Once the server has closed, this fails and the read ends.)
                        let _ = stream.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await;
                    }
                    r = stream.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return (start.elapsed(), got),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    },
                }
                if start.elapsed() > Duration::from_secs(60) {
                    return (start.elapsed(), got);
                }
            }
        }));
    }
    // While the lorises trickle, normal requests are answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let resp = plain_client().get(s.url("/login")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    for loris in lorises {
        let (open_for, got) = loris.await.unwrap();
        assert!(
            open_for < bound(TIMEOUT),
            "a trickled request head kept its connection open for {open_for:?}"
        );
        assert!(
            !String::from_utf8_lossy(&got).contains(" 200 "),
            "an unfinished request head was answered: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let resp = plain_client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// A connection that sends nothing at all, and a keep-alive connection left
/// idle after a request, are both closed within 3× the header timeout.
#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--header-timeout")
            .arg(&TIMEOUT.to_string()),
    )
    .await;
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(format!("GET /login HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes())
        .await
        .unwrap();
    let (silent_got, idle_got) = tokio::join!(
        read_until_closed(&mut silent, bound(TIMEOUT)),
        read_until_closed(&mut idle, bound(TIMEOUT) + Duration::from_secs(1)),
    );
    assert!(silent_got.is_some(), "a silent connection stayed open");
    let idle_got = idle_got.expect("an idle keep-alive connection stayed open");
    let reply = parse_raw_response(&idle_got);
    assert_eq!(
        reply.status, 200,
        "the request before the idle time was answered"
    );
    assert_ne!(
        reply
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close"),
        "the connection was kept alive after the reply"
    );
}

/// An upload whose body stops arriving is cut after the body idle timeout:
/// the client gets 408 with a message and the connection is closed within 3×
/// the timeout; nothing is stored and the partial chunks are deleted. Holds
/// for admin uploads, guest uploads and JSON bodies alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_bodies_get_408_and_leave_nothing() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--body-idle-timeout")
            .arg(&TIMEOUT.to_string()),
    )
    .await;
    let c = s.admin_client().await;
    let cookie = s.session_cookie().await;
    let link = create_guest_link(&s, &c).await;
    let data = random_bytes(mib(2), 70);
    let admin = format!("/api/entry?expiration={FAR_FUTURE}");
    let guest = format!("/api/guest/{link}");
    for (path, cookie) in [
        (admin.as_str(), Some(cookie.as_str())),
        (guest.as_str(), None),
    ] {
        let (head, _tail) = upload_head(&s, path, cookie, data.len());
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // More than one chunk, so something reaches the database first.
        stream.write_all(&data[..mib(1)]).await.unwrap();
        assert!(
            eventually(Duration::from_secs(10), || s.orphan_chunks() > 0).await,
            "{path}: the upload should be storing chunks"
        );
        let got = read_until_closed(&mut stream, bound(TIMEOUT))
            .await
            .unwrap_or_else(|| panic!("{path}: a stalled upload kept its connection open"));
        let reply = parse_raw_response(&got);
        assert_eq!(reply.status, 408, "{path}");
        let body = String::from_utf8_lossy(&reply.rest);
        assert!(
            body.starts_with("Request timeout: the request body sent nothing for 2 seconds"),
            "{path}: {body:?}"
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(
            eventually(Duration::from_secs(10), || s.orphan_chunks() == 0).await,
            "{path}: the stalled upload's chunks were not deleted"
        );
        assert_eq!(s.entry_count(), 0, "{path}");
    }

    // A JSON body that stops half-way.
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/auth HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"sharedSecretKey\":",
                s.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let got = read_until_closed(&mut stream, bound(TIMEOUT))
        .await
        .expect("a stalled JSON body kept its connection open");
    assert_eq!(parse_raw_response(&got).status, 408);

    // The server is fine afterwards.
    let id = s
        .upload(
            &c,
            "after.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert_eq!(s.download(&id).await, data);
}

/// An upload that is slow but keeps moving is never cut, however long it
/// takes in total: 32 pieces sent 250 ms apart take 4× the body idle timeout
/// (and 4× the header timeout), and the file is stored intact.
#[tokio::test]
async fn slow_moving_upload_is_not_cut() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--body-idle-timeout")
            .arg(&TIMEOUT.to_string())
            .arg("--header-timeout")
            .arg(&TIMEOUT.to_string()),
    )
    .await;
    let cookie = s.session_cookie().await;
    let data = random_bytes(32 * 1024, 71);
    let (head, tail) = upload_head(
        &s,
        &format!("/api/entry?expiration={FAR_FUTURE}"),
        Some(&cookie),
        data.len(),
    );
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    for piece in data.chunks(1024) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        stream
            .write_all(piece)
            .await
            .expect("the server closed a slow but moving upload");
    }
    stream.write_all(tail.as_bytes()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(2 * TIMEOUT));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the reply (kept alive, so read up to the end of its JSON body).
    while !got.ends_with(b"}\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("no reply to the slow upload")
            .unwrap();
        assert!(
            n > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let reply = parse_raw_response(&got);
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.rest)
    );
    let v: serde_json::Value = serde_json::from_slice(&reply.rest).unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(s.download(id).await, data);
}

/// Starts a download of `/-{id}` on a raw connection and reads a little of it.
async fn start_stalled_download(s: &TestServer, id: &str) -> TcpStream {
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(format!("GET /-{id} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes())
        .await
        .unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 16 * 1024];
    while got < 64 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("download did not start")
            .unwrap();
        assert!(n > 0, "download closed early");
        got += n;
    }
    stream
}

/// Clients that start a large download, read a little and stop reading hold
/// no lock and pin little memory: while 16 of them are stalled, the server
/// serves pages, stores an upload, collects garbage and deletes the very file
/// being downloaded, and its resident memory grows by far less than the
/// unread data (at most 8 MiB per stalled download, where buffering the rest
/// of the file would take ~40 MiB each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_downloads_pin_no_locks_and_bounded_memory() {
    const STALLED: u64 = 16;
    let s = TestServer::start_with(ServerOptions::new().arg("--send-timeout").arg("600")).await;
    let c = s.admin_client().await;
    let big = random_bytes(mib(48), 72);
    let id = s
        .upload(&c, "big.bin", &big, "application/octet-stream", None, None)
        .await;
    // Warm up: one full download, so the read pool and caches exist.
    assert_eq!(s.download(&id).await.len(), big.len());
    let before = s.rss_kib();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(start_stalled_download(&s, &id).await);
    }
    // Let every producer run until it blocks on its full pipe.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = s.rss_kib();
    eprintln!(
        "RSS: {before} KiB before, {during} KiB with {STALLED} stalled downloads \
         ({} KiB each)",
        during.saturating_sub(before) / STALLED
    );
    assert!(
        during < before + STALLED * 8 * 1024,
        "stalled downloads pin too much memory: {before} KiB -> {during} KiB"
    );

    let resp = plain_client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let small = random_bytes(mib(4), 73);
    let other = tokio::time::timeout(
        Duration::from_secs(60),
        s.upload(
            &c,
            "during.bin",
            &small,
            "application/octet-stream",
            None,
            None,
        ),
    )
    .await
    .expect("an upload did not finish while downloads were stalled");
    assert_eq!(s.download(&other).await, small);
    let resp = c.post(s.url("/api/admin/gc")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        c.delete(s.url(&format!("/api/entry/{id}"))).send(),
    )
    .await
    .expect("deleting a file being downloaded did not finish")
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(s.entry(&id).is_none());
    assert!(
        eventually(Duration::from_secs(10), || s.chunk_rows(&id) == 0).await,
        "the deleted file's chunks remain"
    );
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    drop(stalled);
}

/// A download nobody reads is closed after the send timeout: after 3× the
/// timeout without reading, the client finds the connection closed before the
/// end of the file, and the server still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_timeout_closes_a_stalled_download() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--send-timeout")
            .arg(&TIMEOUT.to_string()),
    )
    .await;
    let c = s.admin_client().await;
    let big = random_bytes(mib(32), 74);
    let id = s
        .upload(&c, "big.bin", &big, "application/octet-stream", None, None)
        .await;
    let mut stream = start_stalled_download(&s, &id).await;
    tokio::time::sleep(bound(TIMEOUT)).await;
    // Whatever the kernel buffered is still readable; then the connection ends.
    let got = read_until_closed(&mut stream, Duration::from_secs(30))
        .await
        .expect("a download nobody read stayed open past the send timeout");
    assert!(
        64 * 1024 + got.len() < big.len(),
        "the whole file was delivered"
    );
    // A client that keeps reading gets everything.
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&big));
}

/// A body trickled a byte at a time, each byte well inside the idle timeout,
/// is cut off once it falls below the minimum rate: an unauthenticated login
/// body (64 KiB announced) sent a byte every 500 ms gets 408 a few seconds
/// after the idle timeout, where it would otherwise hold its connection for
/// as long as the client likes. An upload of the same size sent steadily is
/// stored.
#[tokio::test]
async fn trickled_bodies_are_cut_below_the_minimum_rate() {
    const TIMEOUT: u64 = 2;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--body-idle-timeout")
            .arg(&TIMEOUT.to_string())
            .env("PS_BODY_MIN_RATE", "1024"),
    )
    .await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            format!(
                "POST /api/auth HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 65536\r\n\r\n{{",
                s.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a body trickled at 2 bytes a second still held its connection after {:?}",
        started.elapsed()
    );
    let reply = parse_raw_response(&got);
    assert_eq!(reply.status, 408);
    let body = String::from_utf8_lossy(&reply.rest);
    assert!(
        body.starts_with(
            "Request timeout: the request body arrived slower than 1024 bytes per second"
        ),
        "{body:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4 * TIMEOUT));
    // The server goes on serving.
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "after.txt", b"still here", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&id).await, b"still here");
}
