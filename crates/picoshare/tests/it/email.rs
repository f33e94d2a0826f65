//! E-mail notifications through a real SMTP server on loopback: aiosmtpd
//! (Python; `scripts/test` installs it with pip), run from
//! `crates/picoshare/tests/smtp_sink.py`, which saves each message it
//! accepts as a JSON file (envelope, headers, decoded subject and body).
//!
//! A guest upload, the guest link used up and a whole download each arrive
//! as one mail to the destination's addresses, with their subject and
//! facts; a server that is down, then refuses with 451, gets the mail
//! later; the test event over STARTTLS with a login and over TLS from the
//! first byte, trusting the test's own CA (`PS_SMTP_CA_FILE`, a certificate
//! made with the `openssl` command), while the system's roots refuse it and
//! a wrong password is reported; and the API's and start-up's refusals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

use crate::helpers::*;

/// The sink's script, in the repository.
const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");

/// How the sink is started.
#[derive(Default)]
struct SinkOptions {
    /// The port (0: any free one).
    port: u16,
    /// Messages answered 451 before the first one accepted.
    fail_first: usize,
    /// `USER:PASSWORD` the sink requires.
    auth: Option<String>,
    /// Certificate and key (STARTTLS, or TLS from the first byte with
    /// `implicit_tls`).
    tls: Option<(PathBuf, PathBuf)>,
    implicit_tls: bool,
}

/// A running SMTP sink, killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start(opts: SinkOptions) -> Sink {
        let dir = tempfile::Builder::new()
            .prefix("picoshare-smtp-")
            .tempdir()
            .unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SINK)
            .arg("--dir")
            .arg(dir.path())
            .arg("--port")
            .arg(opts.port.to_string())
            .arg("--fail-first")
            .arg(opts.fail_first.to_string());
        if let Some(auth) = &opts.auth {
            cmd.arg("--auth").arg(auth);
        }
        if let Some((cert, key)) = &opts.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if opts.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the SMTP sink did not start ({SINK}; it needs aiosmtpd: \
                 `python3 -m pip install aiosmtpd`, which scripts/test does): {line}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        Sink { child, port, dir }
    }

    /// The messages accepted so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to 20 s) for `n` messages of event type `kind`.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| header(m, "X-PicoShare-Event") == kind)
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} {kind} mails, not {n}; all: {:?}",
                got.len(),
                self.messages()
                    .iter()
                    .map(|m| m["subject"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Header `name` of a saved message (the first, as sent).
fn header(m: &Value, name: &str) -> String {
    m["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A free loopback port with nothing listening on it (for now).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    addr.port()
}

/// Server options that send e-mail through the sink on `port`.
fn smtp_options(port: u16, tls: &str) -> ServerOptions {
    ServerOptions::new()
        .env("PS_SMTP_HOST", "127.0.0.1")
        .env("PS_SMTP_PORT", port.to_string())
        .env("PS_SMTP_TLS", tls)
        .env("PS_SMTP_FROM", "PicoShare <picoshare@example.com>")
}

async fn create(s: &TestServer, c: &Client, body: Value) -> Value {
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

async fn send_test(s: &TestServer, c: &Client, id: &str) -> String {
    let resp = c
        .post(s.url(&format!("/api/notifications/{id}/test")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let v: Value = resp.json().await.unwrap();
    v["eventId"].as_str().unwrap().to_owned()
}

/// Waits (up to 20 s) until destination `id` satisfies `ok`; returns it.
async fn wait_destination(
    s: &TestServer,
    c: &Client,
    id: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value = c
            .get(s.url("/api/notifications"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = list["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .expect("the destination")
            .clone();
        if ok(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "never became right: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body's line that starts with `label`.
fn line<'a>(body: &'a str, label: &str) -> &'a str {
    body.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {body}"))
}

#[tokio::test]
async fn guest_uploads_and_downloads_arrive_by_email() {
    let sink = Sink::start(SinkOptions::default());
    let s = TestServer::start_with(smtp_options(sink.port, "none")).await;
    let c = s.admin_client().await;
    let d = create(
        &s,
        &c,
        json!({"name": "owner's mail", "kind": "email",
            "to": ["owner@example.com", "partner@example.org"]}),
    )
    .await;
    assert_eq!(d["kind"], "email");
    assert_eq!(d["to"], json!(["owner@example.com", "partner@example.org"]));
    assert_eq!(d["url"], "mailto:owner@example.com,partner@example.org");
    assert_eq!(d["hasSecret"], false);
    assert_eq!(d["secret"], "", "no secret to show");

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
    let data = random_bytes(300_000, 9);
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

    let mail = &sink.wait_for("guest_upload", 1).await[0];
    assert_eq!(mail["mail_from"], "picoshare@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["owner@example.com", "partner@example.org"])
    );
    assert_eq!(mail["tls"], false);
    assert_eq!(header(mail, "From"), "PicoShare <picoshare@example.com>");
    assert_eq!(header(mail, "To"), "owner@example.com, partner@example.org");
    assert_eq!(
        mail["subject"],
        "PicoShare: guest upload of return.pdf (293.0 KiB)"
    );
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["charset"], "utf-8");
    assert_eq!(header(mail, "Auto-Submitted"), "auto-generated");
    assert!(!header(mail, "Date").is_empty(), "{mail}");
    let event = header(mail, "X-PicoShare-Event-Id");
    assert_eq!(event.len(), 32, "{event}");
    assert_eq!(
        header(mail, "Message-ID"),
        format!("<{event}@example.com>"),
        "a resend is the same message"
    );
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.starts_with(
            "return.pdf (293.0 KiB) was uploaded through the guest link \"Tax papers\".\n\n"
        ),
        "{body}"
    );
    assert_eq!(
        line(body, "Size:"),
        "Size:            293.0 KiB (300000 bytes)"
    );
    assert_eq!(line(body, "File ID:"), format!("File ID:         {id}"));
    assert_eq!(
        line(body, "Guest link:"),
        format!("Guest link:      \"Tax papers\" ({link})")
    );
    assert_eq!(line(body, "Event ID:"), format!("Event ID:        {event}"));

    let used_up = &sink.wait_for("guest_link_used_up", 1).await[0];
    assert_eq!(
        used_up["subject"],
        "PicoShare: guest link \"Tax papers\" used up"
    );
    assert_eq!(
        line(used_up["body"].as_str().unwrap(), "Upload limit:"),
        "Upload limit:    1 files"
    );

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
        .header("user-agent", "mail-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), data.len());
    let mail = &sink.wait_for("download", 1).await[0];
    assert_eq!(
        mail["subject"],
        "PicoShare: return.pdf (293.0 KiB) was downloaded"
    );
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.starts_with("return.pdf (293.0 KiB) was downloaded by 127.0.0.1 (mail-test/1.0)."),
        "{body}"
    );
    assert_eq!(line(body, "Downloaded by:"), "Downloaded by:   127.0.0.1");
    assert_eq!(line(body, "Browser:"), "Browser:         mail-test/1.0");

    // Events gather for about a second before they are written: after
    // more than that, these three were all.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.messages().len(), 3, "{:?}", sink.messages());
    let id = d["id"].as_str().unwrap();
    let d = wait_destination(&s, &c, id, |d| d["state"]["queued"] == 0).await;
    assert!(d["state"]["lastSuccess"].is_string(), "{d}");
    assert!(d["state"]["lastError"].is_null(), "{d}");

    // Changed to another address; becoming a webhook needs a secret.
    let body = json!({"name": d["name"], "kind": "email", "to": ["new@example.com"],
        "events": d["events"], "enabled": true});
    let resp = c
        .put(s.url(&format!("/api/notifications/{id}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["url"], "mailto:new@example.com");
    let resp = c
        .put(s.url(&format!("/api/notifications/{id}")))
        .json(&json!({"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/"}))
        .send()
        .await
        .unwrap();
    assert_error_prefix(
        resp,
        400,
        "Invalid request: a webhook needs a secret to sign its events with",
    )
    .await;
    let event = send_test(&s, &c, id).await;
    let got = sink.wait_for("test", 1).await;
    assert_eq!(got[0]["rcpt_tos"], json!(["new@example.com"]));
    assert_eq!(header(&got[0], "X-PicoShare-Event-Id"), event);
}

#[tokio::test]
async fn a_mail_server_that_is_down_or_refusing_gets_the_mail_later() {
    let port = closed_port();
    let s = TestServer::start_with(
        smtp_options(port, "none")
            .env("PS_HOOKS_RETRY_INITIAL_MS", "300")
            .env("PS_METRICS_PUBLIC", "1"),
    )
    .await;
    let c = s.admin_client().await;
    let d = create(
        &s,
        &c,
        json!({"name": "mail", "kind": "email", "to": ["owner@example.com"]}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let event = send_test(&s, &c, &id).await;
    // Nothing listens yet.
    let d = wait_destination(&s, &c, &id, |d| d["state"]["lastError"].is_string()).await;
    let error = d["state"]["lastError"].as_str().unwrap();
    assert!(error.starts_with("could not connect"), "{error}");
    assert_eq!(d["state"]["queued"], 1);

    // The server comes up, refuses the first message for now (451), then
    // takes it.
    let sink = Sink::start(SinkOptions {
        port,
        fail_first: 1,
        ..SinkOptions::default()
    });
    let got = sink.wait_for("test", 1).await;
    assert_eq!(header(&got[0], "X-PicoShare-Event-Id"), event);
    assert_eq!(got[0]["subject"], "PicoShare: test e-mail");
    assert_eq!(got[0]["rcpt_tos"], json!(["owner@example.com"]));
    let d = wait_destination(&s, &c, &id, |d| {
        d["state"]["lastSuccess"].is_string() && d["state"]["queued"] == 0
    })
    .await;
    let error = d["state"]["lastError"].as_str().unwrap();
    assert!(
        error.starts_with("the mail server answered 451: ")
            && error.contains("Try again later (test refusal)"),
        "the refusal is the last error: {d}"
    );
    assert!(
        s.metric("picoshare_notifications_failed_total")
            .await
            .unwrap()
            >= 2.0
    );
    assert_eq!(
        s.metric("picoshare_notifications_delivered_total").await,
        Some(1.0)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "delivered: not sent again");
}

/// A self-signed certificate for 127.0.0.1 and its key, made with the
/// `openssl` command in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (Debian's openssl package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[tokio::test]
async fn starttls_and_tls_with_a_login_and_the_servers_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "s3cret pass\n").unwrap();
    for (tls, implicit) in [("starttls", false), ("tls", true)] {
        let sink = Sink::start(SinkOptions {
            auth: Some("picoshare:s3cret pass".into()),
            tls: Some((cert.clone(), key.clone())),
            implicit_tls: implicit,
            ..SinkOptions::default()
        });
        let with_login = |opts: ServerOptions, password: &Path| {
            opts.env("PS_SMTP_USERNAME", "picoshare")
                .env("PS_SMTP_PASSWORD_FILE", password.to_str().unwrap())
        };
        // Trusting the test's certificate: the test event arrives, over
        // TLS, after the login.
        let s = TestServer::start_with(with_login(
            smtp_options(sink.port, tls).env("PS_SMTP_CA_FILE", cert.to_str().unwrap()),
            &password_file,
        ))
        .await;
        let c = s.admin_client().await;
        let d = create(
            &s,
            &c,
            json!({"name": "mail", "kind": "email", "to": ["owner@example.com"]}),
        )
        .await;
        let event = send_test(&s, &c, d["id"].as_str().unwrap()).await;
        let got = sink.wait_for("test", 1).await;
        assert_eq!(header(&got[0], "X-PicoShare-Event-Id"), event, "{tls}");
        assert_eq!(got[0]["tls"], true, "{tls}");
        assert_eq!(got[0]["auth_user"], "picoshare", "{tls}");
        assert!(
            got[0]["body"]
                .as_str()
                .unwrap()
                .starts_with("A test event from PicoShare: this destination works."),
            "{got:?}"
        );
        drop(s);

        // The system's roots do not know the certificate: refused.
        let s =
            TestServer::start_with(with_login(smtp_options(sink.port, tls), &password_file)).await;
        let c = s.admin_client().await;
        let d = create(
            &s,
            &c,
            json!({"name": "mail", "kind": "email", "to": ["owner@example.com"]}),
        )
        .await;
        let id = d["id"].as_str().unwrap();
        send_test(&s, &c, id).await;
        let d = wait_destination(&s, &c, id, |d| d["state"]["lastError"].is_string()).await;
        let error = d["state"]["lastError"].as_str().unwrap();
        assert_eq!(
            error, "TLS failed: invalid peer certificate: UnknownIssuer",
            "{tls}"
        );
        drop(s);

        // A wrong password: the login is refused (535), nothing is sent.
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "guess").unwrap();
        let s = TestServer::start_with(with_login(
            smtp_options(sink.port, tls).env("PS_SMTP_CA_FILE", cert.to_str().unwrap()),
            &wrong,
        ))
        .await;
        let c = s.admin_client().await;
        let d = create(
            &s,
            &c,
            json!({"name": "mail", "kind": "email", "to": ["owner@example.com"]}),
        )
        .await;
        let id = d["id"].as_str().unwrap();
        send_test(&s, &c, id).await;
        let d = wait_destination(&s, &c, id, |d| d["state"]["lastError"].is_string()).await;
        let error = d["state"]["lastError"].as_str().unwrap();
        assert!(
            error.starts_with("the mail server answered 535"),
            "{tls}: {error}"
        );
        assert_eq!(sink.messages().len(), 1, "{tls}: only the first server's");
    }
}

#[tokio::test]
async fn email_destinations_need_an_smtp_server_and_good_addresses() {
    // Without an SMTP server: refused, and the page says why.
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .post(s.url("/api/notifications"))
        .json(&json!({"name": "m", "kind": "email", "to": ["owner@example.com"]}))
        .send()
        .await
        .unwrap();
    assert_error_prefix(
        resp,
        400,
        "Invalid request: e-mail needs an SMTP server, and this server has none",
    )
    .await;
    let page = c
        .get(s.url("/settings/notifications"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("E-mail (needs an SMTP server: PS_SMTP_HOST)"),
        "{page}"
    );
    assert!(!page.contains("id=\"hook-to\""), "no address field");
    drop(s);

    let s = TestServer::start_with(smtp_options(closed_port(), "none")).await;
    let c = s.admin_client().await;
    for (body, message) in [
        (
            json!({"name": "m", "kind": "email", "to": ["owner"]}),
            "Invalid request: \"owner\" is not an e-mail address",
        ),
        (
            json!({"name": "m", "kind": "email", "to": []}),
            "Invalid request: an e-mail destination needs at least one address",
        ),
        (
            json!({"name": "m", "kind": "email", "url": "https://example.com/hook"}),
            "Invalid request: an e-mail destination takes its addresses in \"to\"",
        ),
        (
            json!({"name": "m", "url": "https://example.com/hook", "to": ["a@example.com"]}),
            "Invalid request: only an e-mail destination takes \"to\"",
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
    let page = c
        .get(s.url("/settings/notifications"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<option value=\"email\">E-mail (plain text)</option>"));
    assert!(page.contains("id=\"hook-to\""), "the address field");
    assert!(
        page.contains("Sent from picoshare@example.com through 127.0.0.1:"),
        "{page}"
    );
}

#[test]
fn a_bad_smtp_setting_stops_the_server_at_start_up() {
    for (opts, message) in [
        (
            ServerOptions::new().env("PS_SMTP_HOST", "127.0.0.1"),
            "PS_SMTP_HOST is set but PS_SMTP_FROM is not",
        ),
        (
            ServerOptions::new()
                .env("PS_SMTP_HOST", "127.0.0.1")
                .env("PS_SMTP_FROM", "PicoShare"),
            "PS_SMTP_FROM must be an e-mail address",
        ),
        (
            ServerOptions::new()
                .env("PS_SMTP_HOST", "127.0.0.1")
                .env("PS_SMTP_FROM", "ps@example.com")
                .env("PS_SMTP_TLS", "ssl"),
            "PS_SMTP_TLS must be starttls, tls or none, not \"ssl\"",
        ),
    ] {
        let report = run_until_exit(opts, Duration::from_secs(30));
        assert!(
            report.status.is_some_and(|s| !s.success()),
            "{:?}",
            report.status
        );
        assert!(report.stderr.contains(message), "{}", report.stderr);
    }
}
