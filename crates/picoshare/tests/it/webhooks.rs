//! Notifications (`/api/notifications…`): events reach a real HTTP receiver
//! on loopback, started inside the test (axum), as a signed JSON webhook and
//! as an ntfy-style plain-text push; retries back off until the receiver
//! accepts; the outbox survives a killed server without sending anything
//! twice; the test event and the API's refusals.
//!
//! Retries are made fast with `PS_HOOKS_RETRY_INITIAL_MS` (a setting meant
//! for tests; 10 s by default).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use reqwest::Client;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

pub(crate) const SECRET: &str = "webhook-secret-for-tests";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    /// Which attempt at this event this was at this path: 1 for the first
    /// request with its `X-PicoShare-Event-Id` to the path, 2 for the next.
    attempt: usize,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
    fn event_type(&self) -> String {
        self.header("x-picoshare-event")
    }
}

/// Which requests a [`Receiver`] answers 500 (the others get 200).
#[derive(Debug, Clone, Copy)]
enum Failing {
    /// The first `n` requests to each path.
    FirstPerPath(usize),
    /// The first `n` attempts at each event (by its ID) at each path.
    EachEvent(usize),
}

/// A receiver on loopback that records every request and answers 500 to
/// some of them first (see [`Failing`]), 200 after.
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 500 to the first `fail_first` requests to each path.
    pub(crate) async fn start(fail_first: usize) -> Receiver {
        Self::start_on("127.0.0.1:0".parse().unwrap(), fail_first).await
    }

    async fn start_on(addr: SocketAddr, fail_first: usize) -> Receiver {
        Self::serve(addr, Failing::FirstPerPath(fail_first)).await
    }

    /// Answers 500 to the first `n` attempts at each event, at each path.
    async fn failing_each_event(n: usize) -> Receiver {
        Self::serve("127.0.0.1:0".parse().unwrap(), Failing::EachEvent(n)).await
    }

    async fn serve(addr: SocketAddr, failing: Failing) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = got.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let path = uri.path().to_owned();
                let event = headers
                    .get("x-picoshare-event-id")
                    .map(|v| v.as_bytes().to_vec())
                    .unwrap_or_default();
                // One lock: counting and recording are one step, so
                // concurrent requests are numbered one after the other.
                let mut all = record.lock().unwrap();
                let to_path = all.iter().filter(|r| r.path == path).count();
                let attempt = 1 + all
                    .iter()
                    .filter(|r| {
                        r.path == path
                            && r.headers
                                .get("x-picoshare-event-id")
                                .is_some_and(|v| v.as_bytes() == event)
                    })
                    .count();
                let fail = match failing {
                    Failing::FirstPerPath(n) => to_path < n,
                    Failing::EachEvent(n) => attempt <= n,
                };
                let status = if fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                all.push(Received {
                    path,
                    headers,
                    body,
                    at: Instant::now(),
                    attempt,
                    status: status.as_u16(),
                });
                status
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, got, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests to `path` of event type `kind`.
    fn of(&self, path: &str, kind: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.path == path && r.event_type() == kind)
            .collect()
    }

    /// Waits (up to 20 s) until `path` got `n` requests of type `kind`.
    pub(crate) async fn wait_for(&self, path: &str, kind: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.of(path, kind);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} {kind} events, not {n}; everything received: {:?}",
                got.len(),
                self.all()
                    .iter()
                    .map(|r| (r.path.clone(), r.event_type()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Receiver {
    /// Waits (up to 20 s) until `path` answered 200 to a request of type
    /// `kind`; returns every request of that type to `path`, in order.
    async fn wait_delivered(&self, path: &str, kind: &str) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.of(path, kind);
            if got.iter().any(|r| r.status == 200) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never accepted a {kind} event; everything received: {:?}",
                self.all()
                    .iter()
                    .map(|r| (r.path.clone(), r.event_type(), r.attempt, r.status))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asserts that the requests `got` (of one event type, at one path) are one
/// event tried twice: refused once with 500, then accepted; returns the
/// accepted one.
#[track_caller]
fn failed_then_delivered(got: &[Received]) -> &Received {
    let seen: Vec<(usize, u16, String)> = got
        .iter()
        .map(|r| (r.attempt, r.status, r.header("x-picoshare-event-id")))
        .collect();
    assert_eq!(got.len(), 2, "one failed attempt, one delivery: {seen:?}");
    assert_eq!((seen[0].0, seen[0].1), (1, 500), "{seen:?}");
    assert_eq!((seen[1].0, seen[1].1), (2, 200), "{seen:?}");
    assert_eq!(seen[0].2, seen[1].2, "the same event tried again: {seen:?}");
    assert_eq!(got[0].body, got[1].body, "the same body");
    &got[1]
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free loopback port with nothing listening on it (for now).
pub(crate) fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn check_signature(r: &Received) {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    let expected = format!("sha256={}", hex(&mac.finalize().into_bytes()));
    assert_eq!(r.header("x-picoshare-signature"), expected, "signature");
    let ts: i64 = r
        .header("x-picoshare-timestamp")
        .parse()
        .expect("a timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 60, "timestamp {ts} is now ({now})");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json()["id"], r.header("x-picoshare-event-id"));
}

pub(crate) async fn create_destination(s: &TestServer, c: &Client, body: Value) -> Value {
    let resp = c
        .post(s.url("/api/notifications"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 201, "creating {body}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn destinations(s: &TestServer, c: &Client) -> Vec<Value> {
    let resp = c.get(s.url("/api/notifications")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    v["destinations"].as_array().unwrap().clone()
}

pub(crate) async fn send_test(s: &TestServer, c: &Client, id: &str) -> String {
    let resp = c
        .post(s.url(&format!("/api/notifications/{id}/test")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let v: Value = resp.json().await.unwrap();
    v["eventId"].as_str().unwrap().to_owned()
}

/// Waits (up to 20 s) until destination `id`'s state satisfies `ok`.
async fn wait_state(s: &TestServer, c: &Client, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = destinations(s, c)
            .await
            .into_iter()
            .find(|d| d["id"] == id)
            .expect("the destination");
        if ok(&d["state"]) {
            return d;
        }
        assert!(Instant::now() < deadline, "state never became right: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The issue's own case: a guest's upload and a completed download reach a
/// signed webhook and a push topic, each delivered after its first attempt
/// failed at both (the receiver answers 500 to each event's first request
/// at each path; retries start after 300 ms here instead of 10 s).
#[tokio::test]
async fn guest_uploads_and_downloads_reach_a_webhook_and_a_push_topic() {
    let rx = Receiver::failing_each_event(1).await;
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_HOOKS_RETRY_INITIAL_MS", "300")
            .env("PS_METRICS_PUBLIC", "1"),
    )
    .await;
    let c = s.admin_client().await;
    let hook = create_destination(
        &s,
        &c,
        json!({"name": "hook", "kind": "webhook", "url": rx.url("/hook"), "secret": SECRET}),
    )
    .await;
    assert_eq!(hook["secret"], SECRET);
    create_destination(
        &s,
        &c,
        json!({"name": "phone", "kind": "ntfy", "url": rx.url("/topic")}),
    )
    .await;

    // A guest upload through a link that takes one file: "guest_upload",
    // then "guest_link_used_up".
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(
            &json!({"label": "Tax papers", "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s", "maxFileUploads": 1}),
        )
        .send()
        .await
        .unwrap();
    let link = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = random_bytes(300_000, 7);
    let form = Multipart::new().file("file", "return.pdf", Some("application/pdf"), &data);
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header("content-type", form.content_type())
        .header("accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let id = upload_id(resp).await;

    let hooked = rx.wait_delivered("/hook", "guest_upload").await;
    let hooked = failed_then_delivered(&hooked);
    check_signature(hooked);
    let ev = hooked.json();
    assert_eq!(ev["type"], "guest_upload");
    assert_eq!(ev["data"]["entryId"], id.as_str());
    assert_eq!(ev["data"]["filename"], "return.pdf");
    assert_eq!(ev["data"]["size"], 300_000);
    assert_eq!(ev["data"]["guestLinkId"], link.as_str());
    assert_eq!(ev["data"]["guestLinkLabel"], "Tax papers");
    let pushed = rx.wait_delivered("/topic", "guest_upload").await;
    let pushed = failed_then_delivered(&pushed);
    assert_eq!(pushed.header("title"), "PicoShare: Guest upload");
    assert_eq!(pushed.header("tags"), "inbox_tray");
    assert_eq!(
        pushed.text(),
        "return.pdf (293.0 KiB) was uploaded through the guest link \"Tax papers\"."
    );
    assert_eq!(
        pushed.header("x-picoshare-event-id"),
        hooked.header("x-picoshare-event-id"),
        "one event, one ID at every destination"
    );
    let used_up = rx.wait_delivered("/hook", "guest_link_used_up").await;
    let used_up = failed_then_delivered(&used_up);
    check_signature(used_up);
    assert_eq!(used_up.json()["data"]["maxUploads"], 1);
    failed_then_delivered(&rx.wait_delivered("/topic", "guest_link_used_up").await);

    // A range is not a download; the whole file is.
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    resp.bytes().await.unwrap();
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .header("user-agent", "webhook-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), data.len());
    let hooked = rx.wait_delivered("/hook", "download").await;
    let hooked = failed_then_delivered(&hooked);
    check_signature(hooked);
    let d = &hooked.json()["data"];
    assert_eq!(d["entryId"], id.as_str());
    assert_eq!(d["filename"], "return.pdf");
    assert_eq!(d["size"], 300_000);
    assert_eq!(d["clientIp"], "127.0.0.1");
    assert_eq!(d["userAgent"], "webhook-test/1.0");
    if remote_storage().is_none() {
        // SQLite writes the event in the job that writes the history; the
        // scale-out store writes each apart, so the count may lag there.
        assert_eq!(d["downloadCount"], 2, "the range is in the history");
    } else {
        assert!(d["downloadCount"].as_i64().unwrap() >= 1, "{d}");
    }
    assert_eq!(d["firstDownload"], true, "the first whole download");
    let pushed = rx.wait_delivered("/topic", "download").await;
    let pushed = failed_then_delivered(&pushed);
    assert!(
        pushed
            .text()
            .starts_with("return.pdf (293.0 KiB) was downloaded by 127.0.0.1"),
        "{}",
        pushed.text()
    );
    assert_eq!(
        pushed.header("x-picoshare-event-id"),
        hooked.header("x-picoshare-event-id")
    );
    // Events gather for about a second before they are written: wait for
    // more than that, then only the whole download was sent, and nothing
    // delivered was sent again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for path in ["/hook", "/topic"] {
        for kind in ["guest_upload", "guest_link_used_up", "download"] {
            failed_then_delivered(&rx.of(path, kind));
        }
    }
    assert_eq!(
        rx.all().len(),
        12,
        "3 events, tried twice at 2 destinations"
    );
    // The server counted as much.
    assert_eq!(
        s.metric("picoshare_notifications_failed_total").await,
        Some(6.0)
    );
    assert_eq!(
        s.metric("picoshare_notifications_delivered_total").await,
        Some(6.0)
    );
}

#[tokio::test]
async fn limits_used_up_first_downloads_and_chosen_files() {
    let rx = Receiver::start(0).await;
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let chosen = s
        .upload(&c, "chosen.txt", b"chosen", "text/plain", None, None)
        .await;
    let other = s
        .upload(&c, "other.txt", b"other", "text/plain", None, None)
        .await;
    // Only the first download of the chosen file.
    create_destination(
        &s,
        &c,
        json!({"name": "first", "url": rx.url("/first"), "secret": SECRET,
            "events": ["download"], "firstDownloadOnly": true, "entryIds": [chosen]}),
    )
    .await;
    // Every limit used up.
    create_destination(
        &s,
        &c,
        json!({"name": "limits", "url": rx.url("/limits"), "secret": SECRET,
            "events": ["download_limit_reached"]}),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(s.download(&other).await, b"other");
        assert_eq!(s.download(&chosen).await, b"chosen");
    }
    let first = rx.wait_for("/first", "download", 1).await;
    assert_eq!(first[0].json()["data"]["entryId"], chosen.as_str());
    assert_eq!(first[0].json()["data"]["firstDownload"], true);

    let form = Multipart::new().file("file", "once.txt", Some("text/plain"), b"once");
    let once = upload_id(
        s.post_entry(
            &c,
            &format!("?expiration={FAR_FUTURE}&maxDownloads=1"),
            form,
        )
        .await,
    )
    .await;
    assert_eq!(s.download(&once).await, b"once");
    let limits = rx.wait_for("/limits", "download_limit_reached", 1).await;
    check_signature(&limits[0]);
    assert_eq!(limits[0].json()["data"]["entryId"], once.as_str());
    assert_eq!(limits[0].json()["data"]["maxDownloads"], 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rx.of("/first", "download").len(), 1, "only the first");
    assert_eq!(rx.all().len(), 2, "nothing else: {:?}", rx.all());
}

#[tokio::test]
async fn files_about_to_expire_are_announced_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2030-01-01T00:00:00Z\n").unwrap();
    let rx = Receiver::start(0).await;
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await;
    let c = s.admin_client().await;
    create_destination(
        &s,
        &c,
        json!({"name": "expiry", "url": rx.url("/expiry"), "secret": SECRET,
            "events": ["expiring_soon"]}),
    )
    .await;
    let soon = s
        .upload(
            &c,
            "soon.txt",
            b"soon",
            "text/plain",
            None,
            Some("2030-01-01T20:00:00Z"),
        )
        .await;
    s.upload(
        &c,
        "later.txt",
        b"later",
        "text/plain",
        None,
        Some("2030-01-03T00:00:00Z"),
    )
    .await;
    for _ in 0..2 {
        let resp = c.post(s.url("/api/admin/gc")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let got = rx.wait_for("/expiry", "expiring_soon", 1).await;
    check_signature(&got[0]);
    assert_eq!(got[0].json()["data"]["entryId"], soon.as_str());
    assert_eq!(got[0].json()["data"]["expiration"], "2030-01-01T20:00:00Z");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(rx.all().len(), 1, "once, and not the later file");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff() {
    let rx = Receiver::start(2).await;
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_HOOKS_RETRY_INITIAL_MS", "400")
            .env("PS_METRICS_PUBLIC", "1"),
    )
    .await;
    let c = s.admin_client().await;
    let d = create_destination(
        &s,
        &c,
        json!({"name": "flaky", "url": rx.url("/flaky"), "secret": SECRET}),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let event = send_test(&s, &c, id).await;
    let got = rx.wait_for("/flaky", "test", 3).await;
    for r in &got {
        assert_eq!(r.header("x-picoshare-event-id"), event);
        check_signature(r);
    }
    // 400 ms, then 800 ms, each times a factor in [0.5, 1].
    let first = got[1].at - got[0].at;
    let second = got[2].at - got[1].at;
    assert!(
        first >= Duration::from_millis(200),
        "first retry after {first:?}"
    );
    assert!(
        second >= Duration::from_millis(400),
        "second retry after {second:?}"
    );
    assert!(first < Duration::from_secs(5) && second < Duration::from_secs(5));
    let d = wait_state(&s, &c, id, |st| {
        st["lastSuccess"].is_string() && st["queued"] == 0
    })
    .await;
    assert_eq!(
        s.metric("picoshare_notifications_failed_total").await,
        Some(2.0)
    );
    assert_eq!(
        s.metric("picoshare_notifications_delivered_total").await,
        Some(1.0)
    );
    assert_eq!(
        d["state"]["lastError"], "the receiver answered 500 Internal Server Error",
        "{d}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.all().len(), 3, "delivered: not sent again");
}

#[tokio::test]
async fn a_restart_sends_nothing_twice_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hooks.db");
    let opts = || {
        ServerOptions::new()
            .db(&db)
            .env("PS_HOOKS_RETRY_INITIAL_MS", "300")
    };
    let rx = Receiver::start(0).await;
    let mut s = TestServer::start_with(opts()).await;
    let c = s.admin_client().await;
    let d = create_destination(
        &s,
        &c,
        json!({"name": "hook", "url": rx.url("/hook"), "secret": SECRET}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let delivered = send_test(&s, &c, &id).await;
    rx.wait_for("/hook", "test", 1).await;
    wait_state(&s, &c, &id, |st| st["queued"] == 0).await;
    s.kill();

    // Delivered before the kill: never sent again.
    let mut s = TestServer::start_with(opts()).await;
    let c = s.admin_client().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.all().len(), 1, "sent again after a restart");

    // Queued while the receiver is down, then the server killed: delivered
    // once the server is back and the receiver up.
    let down = closed_port();
    let resp = c
        .put(s.url(&format!("/api/notifications/{id}")))
        .json(&json!({"name": "hook", "url": format!("http://{down}/later")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let queued = send_test(&s, &c, &id).await;
    assert_ne!(queued, delivered);
    let st = wait_state(&s, &c, &id, |st| st["lastError"].is_string()).await;
    assert!(
        st["state"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("could not connect"),
        "{st}"
    );
    assert_eq!(st["state"]["queued"], 1);
    s.kill();
    let later = Receiver::start_on(down, 0).await;
    let s = TestServer::start_with(opts()).await;
    let got = later.wait_for("/later", "test", 1).await;
    assert_eq!(got[0].header("x-picoshare-event-id"), queued);
    let c = s.admin_client().await;
    wait_state(&s, &c, &id, |st| st["queued"] == 0).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(later.all().len(), 1);
    assert_eq!(rx.all().len(), 1);
}

#[tokio::test]
async fn the_api_checks_requests_and_hides_secrets() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let anon = client();
    let resp = anon.get(s.url("/api/notifications")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    for (body, message) in [
        (
            json!({"url": "http://127.0.0.1/"}),
            "Invalid request: a destination needs a name",
        ),
        (
            json!({"name": "a", "url": "ftp://x/"}),
            "Invalid request: the URL must start with http:// or https://",
        ),
        (
            json!({"name": "a", "url": "http://x/", "kind": "mail"}),
            "Invalid request: kind must be",
        ),
        (
            json!({"name": "a", "url": "http://x/", "events": ["upload"]}),
            "Invalid request: unknown event type",
        ),
    ] {
        let resp = c
            .post(s.url("/api/notifications"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error_prefix(resp, 400, message).await;
    }
    // No secret given: one is made, shown once, never listed.
    let d = create_destination(&s, &c, json!({"name": "a", "url": "http://127.0.0.1:9/"})).await;
    let secret = d["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    let listed = destinations(&s, &c).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["hasSecret"], true);
    assert!(listed[0].get("secret").is_none());
    assert!(!listed[0].to_string().contains(secret));
    let id = listed[0]["id"].as_str().unwrap();
    let resp = c
        .post(s.url("/api/notifications/0123456789abcdef/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = c
        .delete(s.url(&format!("/api/notifications/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(destinations(&s, &c).await.is_empty());
}

/// An edit that leaves the secret out keeps it only for the same kind of
/// destination and, for a push topic (whose token travels with every
/// event), the same origin: a webhook's signing key never becomes a push
/// token, and a token never goes to another host.
#[tokio::test]
async fn an_edit_never_sends_a_kept_secret_somewhere_new() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let here = Receiver::start(0).await;
    let there = Receiver::start(0).await;
    let put = |id: String, body: Value| {
        let c = c.clone();
        let url = s.url(&format!("/api/notifications/{id}"));
        async move {
            let resp = c.put(url).json(&body).send().await.unwrap();
            assert_eq!(
                resp.status().as_u16(),
                200,
                "{}",
                resp.text().await.unwrap()
            );
        }
    };
    async fn auth_of_test(
        s: &TestServer,
        c: &Client,
        r: &Receiver,
        path: &str,
        id: &str,
    ) -> String {
        send_test(s, c, id).await;
        let got = r.wait_for(path, "test", 1).await;
        got.last().unwrap().header("authorization")
    }
    // A webhook turned into a push topic: no token.
    let hook = create_destination(
        &s,
        &c,
        json!({"name": "w", "url": here.url("/hook"), "secret": "signing-key"}),
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    put(
        hook_id.clone(),
        json!({"name": "w", "kind": "ntfy", "url": here.url("/from-hook")}),
    )
    .await;
    assert_eq!(
        auth_of_test(&s, &c, &here, "/from-hook", &hook_id).await,
        ""
    );
    // A push topic with a token: kept on the same origin...
    let push = create_destination(
        &s,
        &c,
        json!({"name": "p", "kind": "ntfy", "url": here.url("/topic"), "secret": "tk_secret"}),
    )
    .await;
    let push_id = push["id"].as_str().unwrap().to_owned();
    put(
        push_id.clone(),
        json!({"name": "p", "kind": "ntfy", "url": here.url("/other-topic")}),
    )
    .await;
    assert_eq!(
        auth_of_test(&s, &c, &here, "/other-topic", &push_id).await,
        "Bearer tk_secret"
    );
    // ...dropped for another host or port...
    put(
        push_id.clone(),
        json!({"name": "p", "kind": "ntfy", "url": there.url("/topic")}),
    )
    .await;
    assert_eq!(auth_of_test(&s, &c, &there, "/topic", &push_id).await, "");
    // ...and a push topic turned webhook must be given a secret.
    let resp = c
        .put(s.url(&format!("/api/notifications/{push_id}")))
        .json(&json!({"name": "p", "url": there.url("/hook")}))
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "Invalid request: a webhook needs a secret").await;
}

#[tokio::test]
async fn a_full_outbox_drops_the_oldest_events() {
    // A bound of 3 (the hidden test setting; 10,000 by default).
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_METRICS_PUBLIC", "1")
            .env("PS_HOOKS_OUTBOX_MAX", "3")
            .env("PS_HOOKS_RETRY_INITIAL_MS", "200"),
    )
    .await;
    let c = s.admin_client().await;
    let down = closed_port();
    let d = create_destination(
        &s,
        &c,
        json!({"name": "down", "url": format!("http://{down}/hook"), "secret": SECRET}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(send_test(&s, &c, &id).await);
    }
    let list: Value = c
        .get(s.url("/api/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["dropped"], 2, "{list}");
    assert_eq!(list["destinations"][0]["state"]["queued"], 3, "{list}");
    assert!(s.stderr_text().contains("the notification outbox is full"));
    assert_eq!(
        s.metric("picoshare_notifications_dropped_total").await,
        Some(2.0)
    );
    // The receiver comes up: the three newest arrive, each once.
    let rx = Receiver::start_on(down, 0).await;
    let got = rx.wait_for("/hook", "test", 3).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("x-picoshare-event-id"))
        .collect();
    ids.sort();
    let mut newest = events[2..].to_vec();
    newest.sort();
    assert_eq!(ids, newest);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(rx.all().len(), 3);
}

#[test]
fn a_bad_notification_setting_stops_the_server_at_start_up() {
    let report = run_until_exit(
        ServerOptions::new().env("PS_HOOKS_RETRY_INITIAL_MS", "soon"),
        Duration::from_secs(30),
    );
    assert!(
        report.status.is_some_and(|s| !s.success()),
        "{:?}",
        report.status
    );
    assert!(
        report.stderr.contains(
            "PS_HOOKS_RETRY_INITIAL_MS must be a positive number of milliseconds, not \"soon\""
        ),
        "{}",
        report.stderr
    );
}

/// A receiver that accepts connections and never answers: it reads nothing
/// and writes nothing, and keeps every connection open.
struct Hanging {
    addr: SocketAddr,
    accepted: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hanging {
    async fn start() -> Hanging {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted: Arc<Mutex<usize>> = Arc::default();
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
                *count.lock().unwrap() += 1;
            }
        });
        Hanging {
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The destination called `id` as `GET /api/notifications` lists it.
async fn destination(s: &TestServer, c: &Client, id: &str) -> Value {
    destinations(s, c)
        .await
        .into_iter()
        .find(|d| d["id"] == id)
        .expect("the destination")
}

/// A receiver that takes the connection and never answers delays nothing
/// but its own events: while the delivery of the first event hangs (a
/// delivery's timeout set to 10 minutes here), guest uploads and a
/// download complete, each well within a client timeout of a minute, and
/// their events wait in the outbox, none delivered nor failed yet.
#[tokio::test]
async fn a_receiver_that_never_answers_blocks_no_upload_or_download() {
    let hang = Hanging::start().await;
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_HOOKS_TIMEOUT_MS", "600000")
            .env("PS_METRICS_PUBLIC", "1"),
    )
    .await;
    let c = s.admin_client().await;
    let d = create_destination(
        &s,
        &c,
        json!({"name": "hangs", "url": format!("http://{}/hook", hang.addr), "secret": SECRET}),
    )
    .await;
    let dest = d["id"].as_str().unwrap().to_owned();
    let link: Value = c
        .post(s.url("/api/guest-links"))
        .json(&json!({"label": "hang", "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = link["id"].as_str().unwrap().to_owned();
    // Far less than the delivery's own timeout.
    let visitor = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let guest_upload = |name: &'static str, data: Vec<u8>| {
        let (s, visitor, link) = (&s, &visitor, &link);
        async move {
            let form = Multipart::new().file("file", name, Some("application/pdf"), &data);
            let resp = visitor
                .post(s.url(&format!("/api/guest/{link}")))
                .header("content-type", form.content_type())
                .header("accept", "application/json")
                .body(form.finish())
                .send()
                .await
                .expect("the guest upload is answered");
            upload_id(resp).await
        }
    };
    guest_upload("first.pdf", random_bytes(100_000, 1)).await;
    // The delivery of its event has started, and hangs.
    assert!(
        eventually(Duration::from_secs(20), || hang.accepted() == 1).await,
        "the delivery never connected"
    );
    // Meanwhile: another guest upload, and a whole download.
    let data = random_bytes(2_000_000, 2);
    let id = guest_upload("second.pdf", data.clone()).await;
    let resp = visitor
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .expect("the download is answered");
    assert_eq!(resp.status().as_u16(), 200);
    let got = resp.bytes().await.expect("the download completes");
    assert!(got == data, "the whole file");
    // Their events wait behind the hanging delivery: three queued (two
    // uploads, the download), none delivered, no attempt finished.
    let d = wait_state(&s, &c, &dest, |st| st["queued"] == 3).await;
    assert!(d["state"]["lastSuccess"].is_null(), "{d}");
    assert!(d["state"]["lastError"].is_null(), "{d}");
    assert_eq!(hang.accepted(), 1, "one delivery, still waiting");
    assert_eq!(
        s.metric("picoshare_notifications_delivered_total").await,
        Some(0.0)
    );
    assert_eq!(
        s.metric("picoshare_notifications_failed_total").await,
        Some(0.0)
    );
    let d = destination(&s, &c, &dest).await;
    assert_eq!(d["state"]["queued"], 3, "{d}");
}

/// A resumable (tus) guest upload, in two requests, is announced as a
/// multipart one is: "guest_upload" with the file's facts, then
/// "guest_link_used_up" when it was the link's last file.
#[tokio::test]
async fn a_resumable_guest_upload_sends_guest_upload_and_link_used_up() {
    use base64::Engine;
    let rx = Receiver::start(0).await;
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    create_destination(
        &s,
        &c,
        json!({"name": "hook", "url": rx.url("/hook"), "secret": SECRET}),
    )
    .await;
    let link: Value = c
        .post(s.url("/api/guest-links"))
        .json(
            &json!({"label": "Resumable", "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s", "maxFileUploads": 1}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = link["id"].as_str().unwrap().to_owned();
    let data = random_bytes(1_500_000, 3);
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}/tus")))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},filetype {}",
                b64("scan.pdf"),
                b64("application/pdf")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let url = header_str(resp.headers(), "location");
    let half = 700_000;
    let mut id = String::new();
    for (offset, piece) in [(0, &data[..half]), (half, &data[half..])] {
        let resp = plain_client()
            .patch(s.url(&url))
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        id = header_str(resp.headers(), "picoshare-entry-id");
        if offset == 0 {
            // Not a file yet: nothing to announce.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(rx.all().is_empty(), "{:?}", rx.all());
        }
    }
    assert!(!id.is_empty(), "the completed upload names its file");
    let got = rx.wait_for("/hook", "guest_upload", 1).await;
    check_signature(&got[0]);
    let d = &got[0].json()["data"];
    assert_eq!(d["entryId"], id.as_str());
    assert_eq!(d["filename"], "scan.pdf");
    assert_eq!(d["contentType"], "application/pdf");
    assert_eq!(d["size"], data.len());
    assert_eq!(d["guestLinkId"], link.as_str());
    assert_eq!(d["guestLinkLabel"], "Resumable");
    let used = rx.wait_for("/hook", "guest_link_used_up", 1).await;
    check_signature(&used[0]);
    let d = &used[0].json()["data"];
    assert_eq!(d["guestLinkId"], link.as_str());
    assert_eq!(d["maxUploads"], 1);
    assert_eq!(d["lastEntryId"], id.as_str());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.all().len(), 2, "each once: {:?}", rx.all());
}

/// A destination saved with `enabled: false` gets no event (its test
/// event aside, which is the owner's own check of it), while an enabled
/// one beside it gets them all; enabled later, it gets the next ones.
#[tokio::test]
async fn a_disabled_destination_receives_nothing() {
    let rx = Receiver::start(0).await;
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    create_destination(
        &s,
        &c,
        json!({"name": "on", "url": rx.url("/on"), "secret": SECRET}),
    )
    .await;
    let off = create_destination(
        &s,
        &c,
        json!({"name": "off", "url": rx.url("/off"), "secret": SECRET, "enabled": false}),
    )
    .await;
    let off_id = off["id"].as_str().unwrap().to_owned();
    assert_eq!(destination(&s, &c, &off_id).await["enabled"], false);
    let link: Value = c
        .post(s.url("/api/guest-links"))
        .json(&json!({"label": "L", "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s", "maxFileUploads": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"guest bytes");
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{}", link["id"].as_str().unwrap())))
        .header("content-type", form.content_type())
        .header("accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let id = upload_id(resp).await;
    let form = Multipart::new().file("file", "once.txt", Some("text/plain"), b"once");
    let once = upload_id(
        s.post_entry(
            &c,
            &format!("?expiration={FAR_FUTURE}&maxDownloads=1"),
            form,
        )
        .await,
    )
    .await;
    assert_eq!(s.download(&id).await, b"guest bytes");
    assert_eq!(s.download(&once).await, b"once");
    for kind in [
        "guest_upload",
        "guest_link_used_up",
        "download_limit_reached",
    ] {
        rx.wait_for("/on", kind, 1).await;
    }
    rx.wait_for("/on", "download", 2).await;
    // Longer than events gather before they are written.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        rx.all().iter().all(|r| r.path == "/on"),
        "the disabled destination got {:?}",
        rx.all()
            .iter()
            .filter(|r| r.path == "/off")
            .map(Received::event_type)
            .collect::<Vec<_>>()
    );
    assert_eq!(destination(&s, &c, &off_id).await["state"]["queued"], 0);

    // Enabled, it gets what comes next.
    let resp = c
        .put(s.url(&format!("/api/notifications/{off_id}")))
        .json(&json!({"name": "off", "url": rx.url("/off"), "enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    assert_eq!(s.download(&id).await, b"guest bytes");
    let got = rx.wait_for("/off", "download", 1).await;
    assert_eq!(got[0].json()["data"]["entryId"], id.as_str());
}
